"""Training the digit models whose weights ship in `data/`: the classifier and its FCNs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from convscope.core.arguments import positive
from convscope.core.metrics import accuracy, segmentation_scores
from convscope.core.net import GraphNet, Net
from convscope.core.seeding import seed_everything
from convscope.data.datasets import load_digits
from convscope.data.scenes import compose_scenes
from convscope.models.fcn import init_digit_fcn
from convscope.models.registry import load_model


def jitter(
    images: torch.Tensor,
    generator: torch.Generator,
    max_angle: float = 10.0,
    max_scale: float = 0.1,
    max_shift: float = 2.0,
) -> torch.Tensor:
    """Random small rotations, scalings and shifts of a digit batch, each image its own.

    With only 4,000 training digits, these keep the classifier from memorising them.

    Args:
        images: `(N, 1, H, W)`.
        generator: the random source (one draw per image and motion, whatever the ranges).
        max_angle: rotations up to ± this many degrees.
        max_scale: scalings up to ± this fraction.
        max_shift: shifts up to ± this many pixels along each axis.

    Returns:
        `(N, 1, H, W)`, each image moved by its own random affine map (zero ranges: unmoved).
    """
    n, _, height, width = images.shape
    angle = (torch.rand(n, generator=generator) - 0.5) * math.radians(2 * max_angle)
    scale = 1 + (torch.rand(n, generator=generator) - 0.5) * (2 * max_scale)
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 2 * (max_shift / (width / 2))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


def train_digit_classifier(
    epochs: int = 60,
    batch_size: int = 64,
    learning_rate: float = 0.05,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Net, float]:
    """Train the `digits` net from scratch on the training split.

    SGD with momentum, cosine learning-rate decay, weight decay and `jitter` augmentation.

    Returns:
        The trained net in eval mode and its held-out accuracy.
    """
    generator = seed_everything(seed)
    model = load_model("digits", weights="random").train()
    images, labels = load_digits("train")
    steps_per_epoch = math.ceil(len(images) / batch_size)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=learning_rate, momentum=0.9, weight_decay=5e-4
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=epochs * steps_per_epoch
    )
    bar = tqdm(range(epochs), desc="train digits", unit="epoch", disable=not progress)
    for _ in bar:
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch_size):
            batch = order[start : start + batch_size]
            inputs = model.preprocess(jitter(images[batch], generator))
            loss = F.cross_entropy(model(inputs), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    heldout_images, heldout_labels = load_digits("heldout")
    return model, accuracy(model, heldout_images, heldout_labels)


def train_permuted_digits(
    epochs: int = 80,
    count: int = 2000,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Net, float, float]:
    """Train a copy of the `digits` net on `count` training digits whose labels are permuted
    at random: the data randomisation test of Adebayo et al. (2018).

    Nothing links an image to its label any more, so the net can only memorise. Adam, no
    augmentation, dropout off (memorising is the point); 2,000 digits and 80 epochs take about
    a minute on two cores and reach over 99% training accuracy.

    Returns:
        The net in eval mode, its accuracy on the permuted labels it was trained on, and its
        held-out accuracy on the true labels (chance: about 10%).
    """
    generator = seed_everything(seed)
    count = positive("count", count)
    epochs = positive("epochs", epochs)
    images, labels = load_digits("train")
    chosen = torch.randperm(len(images), generator=generator)[:count]
    images = images[chosen]
    labels = labels[chosen][torch.randperm(len(chosen), generator=generator)]
    model = load_model("digits", weights="random").eval()  # eval: no dropout
    inputs = model.preprocess(images)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    bar = tqdm(range(epochs), desc="train digits-permuted", unit="epoch", disable=not progress)
    for _ in bar:
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(model(inputs[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    heldout_images, heldout_labels = load_digits("heldout")
    trained = accuracy(model, images, labels)
    return model, trained, accuracy(model, heldout_images, heldout_labels)


def _scene_set(split: str, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` 64×64 scenes of three digits from `split`: images `(N, 1, 64, 64)`, labels."""
    digits, labels = load_digits(split)
    images, label_maps, _ = compose_scenes(
        digits, labels, n=count, size=(64, 64), count=3, seed=seed
    )
    return images, label_maps


def heldout_scenes(count: int = 200, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation scenes: held-out digits only, a fixed seed."""
    return _scene_set("heldout", count, seed)


def train_digit_fcn(
    steps: dict[str, int] | None = None,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, tuple[GraphNet, float, float]]:
    """Train digit FCN-32s, then 16s from it, then 8s from that, on scenes of training digits.

    Each stage starts from the previous one by net surgery (`init_digit_fcn`); the last
    upsampling stays bilinear, as in FCN. Adam on the mean per-pixel cross-entropy.

    Returns:
        variant -> (trained net, pixel accuracy, mean IU on `heldout_scenes()`).
    """
    steps = steps or {"32s": 1200, "16s": 800, "8s": 800}
    generator = seed_everything(seed)
    images, label_maps = _scene_set("train", 3000, seed)
    test_images, test_maps = heldout_scenes()
    source, results = load_model("digits"), {}
    for variant, count in steps.items():
        net = init_digit_fcn(variant, source).train()
        net.upscore.weight.requires_grad_(False)
        trainable = [p for p in net.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=learning_rate)
        bar = tqdm(range(count), desc=f"train digit-fcn{variant}", disable=not progress)
        for _ in bar:
            batch = torch.randint(len(images), (batch_size,), generator=generator)
            scores = net(net.preprocess(images[batch]))
            loss = F.cross_entropy(scores, label_maps[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        net.eval()
        results[variant] = (net, *segmentation_scores(net, test_images, test_maps))
        source = net
    return results
