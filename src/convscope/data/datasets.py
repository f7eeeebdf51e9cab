"""The shipped data: MNIST digits with a fixed train / held-out split, and class names."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from convscope.core.errors import unknown_name
from convscope.core.metrics import predicted_classes
from convscope.core.paths import data_path
from convscope.data.images import load_photo

SPLITS = ("train", "heldout")
# Mean pixel of the training split in [0, 1]; the digit model subtracts it (a test recomputes it).
DIGIT_MEAN = 0.1315


@lru_cache(maxsize=1)
def _digit_archive() -> dict[str, np.ndarray]:
    with np.load(data_path("digits.npz")) as archive:
        return {key: archive[key] for key in archive.files}


def load_digits(split: str = "heldout") -> tuple[torch.Tensor, torch.Tensor]:
    """Real handwritten digits from MNIST, shipped in `data/digits.npz`.

    Args:
        split: `"train"` or `"heldout"` (never used for training).

    Returns:
        images `(N, 1, 28, 28)` float32 in [0, 1] (white digit on black), labels `(N,)` int64.
    """
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    archive = _digit_archive()
    images = torch.from_numpy(archive[f"{split}_images"].astype(np.float32) / 255.0)
    labels = torch.from_numpy(archive[f"{split}_labels"].astype(np.int64))
    return images.unsqueeze(1), labels


def _read_lines(relative: str) -> list[str]:
    return data_path(relative).read_text(encoding="utf-8").splitlines()


def digit_class_names() -> list[str]:
    """The ten digit classes, `"0"` to `"9"`."""
    return _read_lines("digit_classes.txt")


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (281 is 'tabby')."""
    return _read_lines("imagenet_classes.txt")


def photo_crops(size: tuple[int, int], count: int = 24, seed: int = 0) -> torch.Tensor:
    """Random square crops of the shipped photos, each resized to `size` `(H, W)`.

    A small image set for the ImageNet nets' lessons (the digits' counterpart).

    Returns:
        `(count, 3, H, W)` in [0, 1].
    """

    generator = torch.Generator().manual_seed(seed)
    photos = [load_photo(name) for name in ("chelsea", "coffee", "astronaut")]
    crops = []
    for index in range(count):
        photo = photos[index % len(photos)]
        side = int(min(photo.shape[1:]) * (0.5 + 0.5 * torch.rand(1, generator=generator)))
        top = int(torch.randint(photo.shape[1] - side + 1, (1,), generator=generator))
        left = int(torch.randint(photo.shape[2] - side + 1, (1,), generator=generator))
        crop = photo[:, top : top + side, left : left + side]
        resized = torch.nn.functional.interpolate(
            crop[None], size=size, mode="bilinear", align_corners=False, antialias=True
        )
        crops.append(resized[0])
    return torch.stack(crops).clamp(0, 1)


def answer_key(
    model, images: torch.Tensor, labels: torch.Tensor | None
) -> tuple[torch.Tensor, str]:
    """The labels a lesson judges edits of `model` by, and what the resulting score means.

    Held-out digits have true labels: the score is accuracy. Photo crops have none offline:
    the unedited model's own top-1 classes stand in, and the score is agreement with it.

    Returns:
        `(N,)` class indices and `"held-out accuracy"` or `"agreement with the unedited net"`.
    """
    if labels is not None:
        return labels, "held-out accuracy"

    return predicted_classes(model, images), "agreement with the unedited net"


PHOTO_CROP_COUNT = 24  # the ImageNet nets' lesson set: crops of the three shipped photos


def lesson_image_count(model) -> int:
    """How many images `lesson_images(model)` gives (1,000 held-out digits, or 24 crops)."""
    if tuple(model.input_size) == (1, 28, 28):
        return len(load_digits("heldout")[1])
    return PHOTO_CROP_COUNT


def lesson_images(model) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images a lesson runs on: held-out digits for the digit net (with labels), crops
    of the shipped photos at the model's input size for an ImageNet net (no labels)."""
    if tuple(model.input_size) == (1, 28, 28):
        return load_digits("heldout")
    return photo_crops(tuple(model.input_size[1:]), PHOTO_CROP_COUNT), None
