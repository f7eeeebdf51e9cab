"""Lesson 07's one entry point: `explain(model, image, target, method)` for eight methods.

Every method explains the unnormalised class score S_c, in the network's (preprocessed)
input space, and returns the same two things: the raw attribution `(C, H, W)` and a map
`(H, W)` of non-negative evidence. The map is the maximum over channels of the attribution's
magnitude (Simonyan et al.'s rule) for the gradient-like methods; Grad-CAM's map is its
upsampled class map; occlusion's is the positive part of the score's drop.

Where the methods differ is the backward pass: `BACKWARD_PASSES` is that table, as data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from convscope.core.arguments import image_for
from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.meta import check_input_fits, has_large_input, images_per_batch
from convscope.core.net import LayeredModel
from convscope.core.plotting import Heat, in_colour, show_panels
from convscope.core.tables import Table
from convscope.explain.averaged_gradients import integrated_gradients, smoothgrad
from convscope.explain.backward_rules import modified_backward
from convscope.explain.grad_cam import cam_layer, layer_cam, upsampled
from convscope.explain.occlusion import occlusion_attribution, occlusion_windows
from convscope.explain.saliency import channel_maximum, check_image_fits, class_gradients

METHODS = (
    "gradient",
    "deconvnet",
    "guided_backprop",
    "grad_cam",
    "guided_grad_cam",
    "occlusion",
    "smoothgrad",
    "integrated_gradients",
)
# method -> (paper, the ReLU's backward rule, max-pooling's, what is multiplied by what)
BACKWARD_PASSES = {
    "gradient": ("Simonyan et al. 2014", "g·[x>0]", "switches", "—"),
    "deconvnet": ("Zeiler & Fergus 2014", "max(g, 0)", "switches", "—"),
    "guided_backprop": ("Springenberg et al. 2015", "max(g, 0)·[x>0]", "switches", "—"),
    "grad_cam": (
        "Selvaraju et al. 2017",
        "g·[x>0] (above the layer)",
        "switches",
        "maps A^k × their mean gradient α_k, summed, ReLU",
    ),
    "guided_grad_cam": (
        "Selvaraju et al. 2017",
        "max(g, 0)·[x>0]",
        "switches",
        "guided backprop × upsampled Grad-CAM",
    ),
    "occlusion": (
        "Zeiler & Fergus 2014",
        "none (forward passes only)",
        "—",
        "score drop, averaged over covering squares",
    ),
    "smoothgrad": ("Smilkov et al. 2017", "g·[x>0]", "switches", "mean gradient over noisy copies"),
    "integrated_gradients": (
        "Sundararajan et al. 2017",
        "g·[x>0]",
        "switches",
        "(x − baseline) × mean gradient along the path",
    ),
}


@dataclass
class Explanation:
    """One method's answer for one image and class.

    Attributes:
        method: one of `METHODS`; class_index: the class explained.
        attribution: `(C, H, W)` in the network's input space (Grad-CAM's upsampled map is
            repeated over the channels).
        map: `(H, W)`, non-negative.
        layer: Grad-CAM's layer, `""` for the other methods.
    """

    method: str
    class_index: int
    attribution: torch.Tensor
    map: torch.Tensor
    layer: str = ""


def suggested_counts(model: LayeredModel) -> tuple[int, int]:
    """SmoothGrad's samples and integrated gradients' steps: 20 and 20 for the digits; 10 and
    16 for ImageNet-size nets, so that one map of the photo net (about 50 ms a pass on two CPU
    cores) stays within a widget's second. Integrated gradients are then far from complete on
    the photo net (lesson 07's fourth exercise measures how far)."""
    return (10, 16) if has_large_input(model) else (20, 20)


def backward_pass_table() -> Table:
    """What each method changes in the backward pass: `BACKWARD_PASSES` as a table."""
    rows = [(method, *row) for method, row in BACKWARD_PASSES.items()]
    return Table(["method", "paper", "ReLU sends back", "max-pool", "multiplied"], rows)


def map_label(method: str) -> str:
    """What a method's map (`Explanation.map`) holds, short enough for its colour bar: the
    Grad-CAM map ReLU(Σ α_k A^k), upsampled; occlusion's drop of the score (0 where it
    rose); else the largest |attribution| over the colour channels."""
    if method == "grad_cam":
        return "Grad-CAM"
    if method == "occlusion":
        return "score drop"
    return "|attribution|"


@dataclass(frozen=True)
class Settings:
    """What the methods read besides the images and their classes (see `explain`): Grad-CAM's
    `layer`, SmoothGrad's `samples`, `noise` and `seed`, integrated gradients' `steps`,
    occlusion's square `window` and `stride`, each resolved from its default already."""

    layer: str
    samples: int
    noise: float
    steps: int
    window: int
    stride: int
    seed: int | None


Attribution = Callable[[LayeredModel, torch.Tensor, torch.Tensor, Settings], torch.Tensor]


def _by_rule(rule: str) -> Attribution:
    """∂S_c/∂input under a ReLU rule (`backward_rules`), in memory-bounded batches."""

    def attribution(model, data, indices, settings):
        with modified_backward(model, rule):
            return class_gradients(model, data, indices)

    return attribution


def _cams(model, data, indices, settings: Settings) -> torch.Tensor:
    """Each image's Grad-CAM map `(N, 1, H, W)`, upsampled bilinearly to the input."""
    # one image is one batch: no shape pass needed to bound it
    batch = 1 if len(data) == 1 else images_per_batch(model, data.shape[1:], 64)
    cams = [
        upsampled(
            layer_cam(model, data[i : i + batch], indices[i : i + batch], settings.layer),
            data.shape[2:],
        )
        for i in range(0, len(data), batch)
    ]
    return torch.cat(cams)[:, None]


def _grad_cam(model, data, indices, settings):
    return _cams(model, data, indices, settings).expand_as(data).clone()


def _guided_grad_cam(model, data, indices, settings):
    cams = _cams(model, data, indices, settings)  # first: `layer_cam` checks the layer
    return _by_rule("guided")(model, data, indices, settings) * cams  # the paper's product


def _occlusion(model, data, indices, settings):
    return torch.stack(
        [
            occlusion_attribution(
                model, data[i : i + 1], int(index), settings.window, settings.stride
            )
            for i, index in enumerate(indices)
        ]
    )


def _smoothgrad(model, data, indices, settings):
    return smoothgrad(model, data, indices, settings.samples, settings.noise, settings.seed)


def _integrated_gradients(model, data, indices, settings):
    return integrated_gradients(model, data, indices, settings.steps)


# method -> its attribution `(N, C, H, W)` of preprocessed images for their classes
ATTRIBUTIONS: dict[str, Attribution] = {
    "gradient": _by_rule("gradient"),
    "deconvnet": _by_rule("deconvnet"),
    "guided_backprop": _by_rule("guided"),
    "grad_cam": _grad_cam,
    "guided_grad_cam": _guided_grad_cam,
    "occlusion": _occlusion,
    "smoothgrad": _smoothgrad,
    "integrated_gradients": _integrated_gradients,
}  # in the order of METHODS (tested)


def _heat(method: str, attribution: torch.Tensor) -> torch.Tensor:
    """The map `(N, H, W)` of attributions `(N, C, H, W)` (`map_label` says what it holds)."""
    if method == "grad_cam":
        return attribution[:, 0]
    if method == "occlusion":
        return attribution.mean(1).clamp(min=0)
    return channel_maximum(attribution)  # Simonyan et al.'s rule


def _explained(model, images, indices, method, layer, settings) -> list[Explanation]:
    """Every image's `Explanation`: the images fit the model and `indices` are checked."""
    if method not in METHODS:
        raise unknown_name("method", method, METHODS)
    side = min(images.shape[2:])
    samples, steps = suggested_counts(model)
    window, stride = occlusion_windows(side)
    # the layer is checked once, by `layer_cam`, before any pass
    cam_at = (layer or cam_layer(model)) if method in ("grad_cam", "guided_grad_cam") else ""
    resolved = Settings(
        layer=cam_at,
        samples=settings.get("samples") or samples,
        noise=settings.get("noise", 0.15),
        steps=settings.get("steps") or steps,
        window=settings.get("window") or window,
        stride=settings.get("stride") or stride,
        seed=settings.get("seed"),
    )
    attribution = ATTRIBUTIONS[method](model, model.preprocess(images), indices, resolved)
    heat = _heat(method, attribution)
    # every map value is >= 0 or not finite, and the maximum propagates NaN: one reduction
    if not math.isfinite(heat.max()):
        raise ConvscopeError(f"{method} gave a map that is not finite")
    return [
        Explanation(method, index, part, map_, cam_at)
        for index, part, map_ in zip(indices.tolist(), attribution, heat)
    ]


SETTINGS = ("samples", "noise", "steps", "window", "stride", "seed")


def _check_settings(settings: dict) -> dict:
    unknown = [name for name in settings if name not in SETTINGS]
    if unknown:
        raise unknown_name("setting", unknown[0], SETTINGS)
    return settings


def explain_many(
    model: LayeredModel,
    images: torch.Tensor,
    targets: Sequence[int | str],
    method: str,
    layer: str = "",
    **settings,
) -> list[Explanation]:
    """Explain each image's own class by `method`, many images per backward pass.

    Args:
        images: `(N, C, H, W)` in [0, 1]; targets: a class (index or name) per image.
        method, layer, settings: as for `explain`. SmoothGrad's noise for every image is
            drawn from its own generator seeded with `seed` (torch's global one when None),
            so each image gets the noise `explain` draws for it with the same seed.

    Returns:
        One `Explanation` per image, equal to `explain` of that image (tested). Batches are
        bounded by memory (`images_per_batch`).

    Raises:
        ConvscopeError: naming a bad argument. Each is checked once: the images and classes
            here, a method's own settings and layer by the function that uses them.
    """
    image_for(model, images, "images", batched=True)
    check_input_fits(model, images.shape[1:], "images")  # one size for all
    indices = model.class_indices(targets, len(images))
    return _explained(model, images, indices, method, layer, _check_settings(settings))


def explain(
    model: LayeredModel,
    image: torch.Tensor,
    target: int | str,
    method: str,
    layer: str = "",
    **settings,
) -> Explanation:
    """Explain the score of class `target` for `image` by `method`: `explain_many` of one.

    Args:
        model: a classifier (`Net`), in eval mode.
        image: `(C, H, W)` in [0, 1] (a sliding classifier reads any size).
        target: a class index or name.
        method: one of `METHODS`.
        layer: Grad-CAM's layer (`""`: `cam_layer(model)`, the last rectified conv).
        settings: `samples`, `noise` (SmoothGrad's n and σ / (max − min)), `steps`
            (integrated gradients' m; 0 means `suggested_counts(model)`), `window`, `stride`
            (occlusion's square; 0: `occlusion_windows`), `seed` (SmoothGrad's noise), as
            for `explain_many`.

    Returns:
        An `Explanation` with `attribution` `(C, H, W)` and `map` `(H, W)`.
    """
    check_image_fits(model, image)
    indices = torch.tensor([model.class_index(target)])
    return _explained(model, image[None], indices, method, layer, _check_settings(settings))[0]


def show_explanations(
    model: LayeredModel,
    image: torch.Tensor,
    target: int | str,
    methods: Sequence[str] = METHODS,
    layer: str = "",
    **settings,
) -> Figure:
    """The image, then each method's map laid over it (settings go to `explain`)."""
    panels = [(f"class {model.class_names[model.class_index(target)]}", image)]
    for method in methods:
        result = explain(model, image, target, method, layer, **settings)
        heat = Heat(result.map, map_label(method), over=image, cmap="hot")
        panels.append((method.replace("_", " "), heat))
    return show_panels(panels, columns=min(len(panels), 5), size=1.5)


def show_explanation(
    model: LayeredModel,
    image: torch.Tensor,
    target: int | str,
    method: str,
    layer: str = "",
    **settings,
) -> Figure:
    """One method: the image, its map, and the map laid over the image."""
    result = explain(model, image, target, method, layer, **settings)
    title = method.replace("_", " ") + (f" at {result.layer}" if result.layer else "")
    return show_panels(
        [
            (f"class {model.class_names[result.class_index]}", in_colour(image)),
            (title, Heat(result.map, map_label(method), cmap="hot")),
            ("over the image", Heat(result.map, map_label(method), over=image, cmap="hot")),
        ],
        size=1.9,
    )
