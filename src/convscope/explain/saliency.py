"""Simonyan, Vedaldi & Zisserman (2014): image-specific class saliency and class models.

Saliency: the gradient w = ∂S_c/∂I of the *unnormalised* class score S_c (not the softmax,
whose value also depends on the other classes) with respect to the network's input I, at the
image; the map is M_ij = max over colour channels |w_ij|. Many re-implementations sum over
channels or use the softmax — we follow the paper.

Class model: the input I* = argmax_I S_c(I) − λ‖I‖², found by gradient ascent from I = 0; in
the network's input space zero is the dataset mean, which is added back for display.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from matplotlib.figure import Figure

from convscope.core.arguments import image_for, positive
from convscope.core.blur import gaussian_blur
from convscope.core.class_scores import chosen_scores
from convscope.core.conv_kernels import input_gradient
from convscope.core.devices import device_of, dtype_of, to_cpu, to_model
from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.meta import check_input_fits, images_per_batch
from convscope.core.net import LayeredModel
from convscope.core.plotting import Heat, show_panels
from convscope.core.precision import float64_where_cheap

AUGMENTATIONS = ("none", "flip", "crops_and_flips")
# Steps between two blurs of a regularised class model: Yosinski et al. (2015) blur "every
# several steps"; 4 is this lesson's choice (with σ = 0.5 px it keeps the photo net's espresso
# class model recognisable in 120 steps, measured)
BLUR_EVERY = 4


def check_image_fits(model: LayeredModel, image: torch.Tensor) -> None:
    """Refuse an image `(C, H, W)` that the model cannot read: the wrong channels, too small,
    or (fully connected layers) not exactly its input size (`check_input_fits`)."""
    image_for(model, image)
    check_input_fits(model, image.shape)


def input_gradients(model: LayeredModel, data: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """∂S_c/∂data for one batch `(N, C, H, W)`, each input for its own class `indices` `(N,)`.

    One backward pass from the chosen scores serves the whole batch: each image's score
    depends on its own input only (eval mode). Only the input needs a gradient, so autograd
    skips every weight gradient; only the chosen classes' scores are computed
    (`chosen_scores`), and each step runs on the faster kernels (`input_gradient`).
    """
    outputs = lambda x: chosen_scores(model, x, indices)  # noqa: E731
    return to_cpu(input_gradient(model, to_model(model, data), outputs))


def class_gradients(model: LayeredModel, data: torch.Tensor, indices) -> torch.Tensor:
    """∂S_c/∂input for each preprocessed input `(N, C, H, W)` and its own class `indices`
    `(N,)`, in memory-bounded batches (`images_per_batch`). Returns `(N, C, H, W)` on the CPU.

    The one batched backward pass behind the saliency of many images and lesson 07's methods
    (under a ReLU rule of `backward_rules.modified_backward` when one is in force).
    """
    indices = torch.as_tensor(indices, dtype=torch.long)
    if len(data) == 1:  # one image is one batch: no shape pass needed to bound it
        return input_gradients(model, data, indices)
    batch = images_per_batch(model, data.shape[1:], 64)
    return torch.cat(
        [
            input_gradients(model, data[i : i + batch], indices[i : i + batch])
            for i in range(0, len(data), batch)
        ]
    )


def channel_maximum(gradient: torch.Tensor) -> torch.Tensor:
    """Simonyan et al.'s saliency map of a gradient: M = max over channels of |w|,
    `(..., C, H, W)` -> `(..., H, W)`. The one home of the rule (lesson 07's methods too)."""
    return gradient.abs().amax(dim=-3)


def class_saliency(
    model: LayeredModel, image: torch.Tensor, class_index: int, augment: str = "none"
) -> torch.Tensor:
    """The image-specific saliency map of one class.

    Args:
        model: a classifier `Net`, in eval mode.
        image: `(C, H, W)` in [0, 1], the model's input size.
        class_index: `0 .. classes - 1` (`model.class_index(name)` converts a name).
        augment: `"none"`; `"flip"` averages with the map of the mirrored image (mirrored
            back); `"crops_and_flips"` averages the centre and four corner crops of the image
            padded by one pixel, each also mirrored (ten views, as the paper's ten crops);
            every map is moved back onto the original pixels before averaging.

    Returns:
        `(H, W)`: max over channels of |∂S_c/∂I|, with I the network's (preprocessed) input.
    """
    check_image_fits(model, image)
    index = model.class_index(class_index)
    views = _views(image, augment)
    batch = model.preprocess(torch.stack([view for view, _ in views]))
    maps = channel_maximum(input_gradients(model, batch, torch.full((len(views),), index)))
    if len(views) == 1:
        return maps[0]
    return torch.stack([undo(m) for m, (_, undo) in zip(maps, views)]).mean(0)


def saliency_of_images(
    model: LayeredModel, images: torch.Tensor, classes: Sequence[int | str]
) -> torch.Tensor:
    """Each image's saliency map for its own class, from batched backward passes.

    Args:
        images: `(N, C, H, W)` in [0, 1], the model's input size.
        classes: one class (index or name) per image.

    Returns:
        `(N, H, W)`; row i equals `class_saliency(model, images[i], classes[i])`. Batches are
        bounded by memory (`images_per_batch`).

    Raises:
        ConvscopeError: images that do not fit the model, or a count of classes that differs.
    """
    image_for(model, images, "images", batched=True)
    check_input_fits(model, images.shape[1:], "images")  # one size for all
    indices = model.class_indices(classes, len(images), "classes")
    return channel_maximum(class_gradients(model, model.preprocess(images), indices))


_CROP_OFFSETS = ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))  # centre and four corners


def _views(image: torch.Tensor, augment: str) -> list[tuple[torch.Tensor, Callable]]:
    """The images whose maps are averaged, each with the function that maps its saliency
    back onto the original image's pixels."""
    if augment not in AUGMENTATIONS:
        raise unknown_name("augmentation", augment, AUGMENTATIONS)
    flips = [False] if augment == "none" else [False, True]
    offsets = _CROP_OFFSETS if augment == "crops_and_flips" else ((0, 0),)
    views = []
    for flip in flips:
        for dy, dx in offsets:
            view = _shift(image.flip(-1) if flip else image, dy, dx)

            def undo(saliency, flip=flip, dy=dy, dx=dx):
                back = _shift(saliency, -dy, -dx)
                return back.flip(-1) if flip else back

            views.append((view, undo))
    return views


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The crop at offset `(dy, dx)` of `x` (`(..., H, W)`) padded by one edge-replicated pixel."""
    if dy == dx == 0:
        return x
    height, width = x.shape[-2:]
    flat = x.reshape(-1, 1, height, width)
    padded = torch.nn.functional.pad(flat, (1, 1, 1, 1), mode="replicate")
    crop = padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
    return crop.reshape(x.shape)


def all_class_saliency(
    model: LayeredModel, image: torch.Tensor, classes: list[int] | None = None
) -> torch.Tensor:
    """Several classes' saliency maps for one image, from one vectorised backward pass.

    Args:
        classes: class indices or names (default all); each is checked by `class_index`.

    Returns:
        `(len(classes), H, W)`; row i equals `class_saliency(model, image, classes[i])`.

    Raises:
        ConvscopeError: the image does not fit the model, `classes` is empty or not a list, or
            one class is not the model's (named with the valid choices).
    """
    check_image_fits(model, image)
    if classes is None:
        chosen = list(range(len(model.class_names)))
    elif isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        raise ConvscopeError(f"classes must be a list of classes; got {classes!r}")
    else:
        chosen = [model.class_index(each) for each in classes]
    if not chosen:
        raise ConvscopeError("classes must name at least one class; got an empty list")
    data = to_model(model, model.preprocess(image[None])).detach().requires_grad_(True)
    selectors = torch.eye(len(model.class_names), device=data.device)[chosen][:, None, :]
    with torch.enable_grad():
        scores = model(data)
        (gradients,) = torch.autograd.grad(
            scores, data, grad_outputs=selectors, is_grads_batched=True
        )
    return to_cpu(channel_maximum(gradients[:, 0]))


def softmax_saliency(model: LayeredModel, image: torch.Tensor, class_index: int) -> torch.Tensor:
    """What many re-implementations compute instead: the map of the softmax probability P_c.

    ∂P_c/∂I = P_c (∂S_c/∂I − Σ_k P_k ∂S_k/∂I) also depends on every other class.

    Returns:
        `(H, W)`: max over channels of |∂P_c/∂I|.
    """
    check_image_fits(model, image)
    data = to_model(model, model.preprocess(image[None])).detach().requires_grad_(True)
    with torch.enable_grad():
        probability = model(data).softmax(dim=1)[0, model.class_index(class_index)]
        (gradient,) = torch.autograd.grad(probability, data)
    return to_cpu(channel_maximum(gradient[0]))


def class_model(
    model: LayeredModel,
    class_index: int,
    l2: float = 1e-2,
    step: float = 0.2,
    iterations: int = 400,
    progress: Callable[[int], None] | None = None,
    *,
    blur: float = 0.0,
    blur_every: int = BLUR_EVERY,
) -> tuple[torch.Tensor, float]:
    """The paper's class model: gradient ascent on S_c(I) − λ‖I‖² from I = 0; with `blur`,
    Yosinski et al.'s (2015) regulariser as well.

    Args:
        model: a classifier `Net`.
        class_index: the class to visualise.
        l2: λ, the weight of the L2 penalty.
        step: the gradient-ascent step size.
        iterations: how many steps.
        progress: called with the number of steps done after each one (a progress bar).
        blur: σ in pixels of a Gaussian blur applied to I every `blur_every` steps; 0 (the
            paper's setting) never blurs. Gradient ascent alone favours high spatial
            frequencies, which raise the score without looking like anything; the blur
            removes them.

    Returns:
        The image for display `(C, H, W)` in [0, 1] (the dataset mean added back by the
        model's `deprocess`), and the final score S_c(I*); both computed in float64 on the
        CPU for nets with small inputs (`core.precision.float64_where_cheap`).
    """
    index = model.class_index(class_index)
    iterations = positive("iterations", iterations)
    if not (l2 >= 0 and step > 0) or not math.isfinite(l2 + step):
        raise ConvscopeError(f"class_model needs l2 >= 0 and step > 0, finite; got {l2}, {step}")
    if not (isinstance(blur, int | float) and blur >= 0 and math.isfinite(blur)):
        raise ConvscopeError(f"blur must be a σ >= 0 in pixels (0: no blur); got {blur!r}")
    blur_every = positive("blur_every", blur_every)
    # Hundreds of steps, each feeding on the last, amplify rounding: float64 on the CPU for
    # small nets, so the score prints the same on every CPU (core.precision).
    model = float64_where_cheap(model)
    data = torch.zeros(
        1, *model.input_size, device=device_of(model), dtype=dtype_of(model), requires_grad=True
    )
    for done in range(1, iterations + 1):
        with torch.enable_grad():
            objective = model(data)[0, index] - l2 * data.pow(2).sum()
            (gradient,) = torch.autograd.grad(objective, data)
        with torch.no_grad():
            data += step * gradient
            if blur and done % blur_every == 0:
                data.copy_(gaussian_blur(data, blur))
        if progress is not None:
            progress(done)
    with torch.no_grad():
        score = model(data)[0, index].item()
    return model.preprocess.deprocess(to_cpu(data))[0], score


def show_saliency(model: LayeredModel, image: torch.Tensor, class_name: str | int) -> Figure:
    """An image, its saliency map for one class, and the map over the image."""
    index = model.class_index(class_name)
    saliency = class_saliency(model, image, index)
    label = "max over channels of |∂S/∂I|"
    return show_panels(
        [
            ("image", image),
            (f"saliency: {model.class_names[index]}", Heat(saliency, label, cmap="hot")),
            ("over the image", Heat(saliency, label, over=image, cmap="hot")),
        ],
        size=2.2,
    )
