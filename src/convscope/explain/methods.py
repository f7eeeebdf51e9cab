"""Lesson 07's one entry point: `explain(model, image, target, method)` for eight methods.

Every method explains the unnormalised class score S_c, in the network's (preprocessed)
input space, and returns the same two things: the raw attribution `(C, H, W)` and a map
`(H, W)` of non-negative evidence. The map is the maximum over channels of the attribution's
magnitude (Simonyan et al.'s rule) for the gradient-like methods; Grad-CAM's map is its
upsampled class map; occlusion's is the positive part of the score's drop.

Where the methods differ is the backward pass: `BACKWARD_PASSES` is that table, as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from convscope.core.arguments import image_tensor
from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.inspection import check_feature_map_layer
from convscope.core.meta import has_large_input, images_per_batch
from convscope.core.net import LayeredModel
from convscope.core.plotting import Heat, in_colour, show_panels
from convscope.core.tables import Table
from convscope.explain.averaged_gradients import integrated_gradients, smoothgrad
from convscope.explain.backward_rules import modified_backward
from convscope.explain.grad_cam import cam_layer, layer_cam, upsampled
from convscope.explain.occlusion import occlusion_attribution, occlusion_windows
from convscope.explain.saliency import check_image_fits, class_gradients

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
    "grad_cam": ("Selvaraju et al. 2017", "g·[x>0] (above the layer)", "switches",
                 "maps A^k × their mean gradient α_k, summed, ReLU"),
    "guided_grad_cam": ("Selvaraju et al. 2017", "max(g, 0)·[x>0]", "switches",
                        "guided backprop × upsampled Grad-CAM"),
    "occlusion": ("Zeiler & Fergus 2014", "none (forward passes only)", "—",
                  "score drop, averaged over covering squares"),
    "smoothgrad": ("Smilkov et al. 2017", "g·[x>0]", "switches",
                   "mean gradient over noisy copies"),
    "integrated_gradients": ("Sundararajan et al. 2017", "g·[x>0]", "switches",
                             "(x − baseline) × mean gradient along the path"),
}  # fmt: skip


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


def _heat(method: str, attribution: torch.Tensor) -> torch.Tensor:
    """The map `(N, H, W)` of attributions `(N, C, H, W)` (`map_label` says what it holds)."""
    if method == "grad_cam":
        return attribution[:, 0]
    if method == "occlusion":
        return attribution.mean(1).clamp(min=0)
    return attribution.abs().amax(dim=1)  # Simonyan et al.'s rule


def _gradients_by_rule(model, data: torch.Tensor, indices: torch.Tensor, rule: str):
    """∂S_index/∂input per row of `data` `(N, C, H, W)` under a ReLU rule, in batches."""
    with modified_backward(model, rule):
        return class_gradients(model, data, indices)


def _attributions(model, data, indices, method, layer, samples, noise, steps, window, stride,
                  seed) -> torch.Tensor:  # fmt: skip
    """Every image's attribution `(N, C, H, W)` by `method`; `data` is preprocessed."""
    side = min(data.shape[2:])
    if method in ("gradient", "deconvnet", "guided_backprop", "guided_grad_cam"):
        rule = {"deconvnet": "deconvnet", "guided_backprop": "guided", "guided_grad_cam": "guided"}
        attribution = _gradients_by_rule(model, data, indices, rule.get(method, "gradient"))
    if method in ("grad_cam", "guided_grad_cam"):
        batch = images_per_batch(model, data.shape[1:], 64)
        cams = torch.cat([
            upsampled(layer_cam(model, data[i : i + batch], indices[i : i + batch], layer),
                      data.shape[2:])
            for i in range(0, len(data), batch)
        ])[:, None]  # fmt: skip
        attribution = cams.expand_as(data).clone() if method == "grad_cam" else attribution * cams
    if method == "occlusion":
        default_window, default_stride = occlusion_windows(side)
        attribution = torch.stack([
            occlusion_attribution(model, data[i : i + 1], int(index),
                                  window or default_window, stride or default_stride)
            for i, index in enumerate(indices)
        ])  # fmt: skip
    if method == "smoothgrad":
        attribution = smoothgrad(model, data, indices, samples, noise, seed)
    if method == "integrated_gradients":
        attribution = integrated_gradients(model, data, indices, steps)
    return attribution


def explain_many(
    model: LayeredModel,
    images: torch.Tensor,
    targets: Sequence[int | str],
    method: str,
    layer: str = "",
    *,
    samples: int = 0,
    noise: float = 0.15,
    steps: int = 0,
    window: int = 0,
    stride: int = 0,
    seed: int | None = None,
) -> list[Explanation]:
    """Explain each image's own class by `method`, many images per backward pass.

    Args:
        images: `(N, C, H, W)` in [0, 1]; targets: a class (index or name) per image.
        method, layer, samples, noise, steps, window, stride: as for `explain`.
        seed: SmoothGrad's noise for every image is drawn from its own generator seeded with
            it (torch's global one when None), so each image gets the noise `explain` draws
            for it with the same seed.

    Returns:
        One `Explanation` per image, equal to `explain` of that image (tested). Batches are
        bounded by memory (`images_per_batch`).
    """
    if method not in METHODS:
        raise unknown_name("method", method, METHODS)
    image_tensor("images", images, batched=True)
    check_image_fits(model, images[0])  # one size for all: the first stands for the rest
    if isinstance(targets, (str, bytes)) or len(targets) != len(images):
        raise ConvscopeError(
            f"targets must name one class per image ({len(images)}); got {targets!r}"
        )
    indices = torch.tensor([model.class_index(target) for target in targets])
    suggested_samples, suggested_steps = suggested_counts(model)
    cam_at = (layer or cam_layer(model)) if method in ("grad_cam", "guided_grad_cam") else ""
    if cam_at:
        check_feature_map_layer(model, cam_at)
    attribution = _attributions(
        model, model.preprocess(images), indices, method, cam_at, samples or suggested_samples,
        noise, steps or suggested_steps, window, stride, seed,
    )  # fmt: skip
    heat = _heat(method, attribution)
    if not torch.isfinite(heat).all():
        raise ConvscopeError(f"{method} gave a map that is not finite")
    return [
        Explanation(method, int(index), attribution[i], heat[i], cam_at)
        for i, index in enumerate(indices)
    ]


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
    image_tensor("image", image)
    return explain_many(model, image[None], [target], method, layer, **settings)[0]


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


def show_explanation(model: LayeredModel, image: torch.Tensor, target: int | str, method: str,
                     layer: str = "", **settings) -> Figure:  # fmt: skip
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
