"""Where does each method point? Two scores on scenes whose objects' boxes are known.

- Pointing game (Zhang et al. 2016, as benchmarked by TorchRay): a hit when the map's
  maximum falls on an object of the target class, within `tolerance` pixels of its box.
  Each accuracy comes with Wilson's 95% interval over the scenes. Two baselines: the centre
  (TorchRay's: always the scene's centre) and a random point (the expected accuracy of a point
  drawn uniformly over the scene: the share of the scene within `tolerance` of a target box).
- Box IoU: the map is thresholded at a fraction of its maximum (Grad-CAM's protocol uses 15%),
  the box drawn around the largest connected region, and compared with the target's box (the
  best of several of that class). The baseline is a box of the mean target box's size,
  centred in the scene.

Scenes: `photo_localisation_scenes` pastes the shipped photos into collages read by the photo
net, whose class score depends on the whole image. `localisation_scenes` puts two held-out
digits side by side on 32×64 pixels, read by the sliding classifier (the digit net over every
window, the best window's score per class).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from tqdm.auto import tqdm

from convscope.core.arguments import integer
from convscope.core.errors import ConvscopeError
from convscope.core.meta import has_large_input, total_macs
from convscope.core.metrics import box_iou, predicted_classes, wilson_interval
from convscope.core.net import LayeredModel
from convscope.core.plotting import FIGURE_DPI, in_colour
from convscope.core.precision import float64_where_cheap, settled
from convscope.core.tables import Table
from convscope.data.datasets import load_digits
from convscope.data.images import square_photo
from convscope.data.photo_scenes import PhotoScene, photo_scenes
from convscope.data.scenes import Scene, compose_scenes
from convscope.explain.localization import bounding_box, largest_component
from convscope.explain.methods import METHODS, explain_many

CAM_FRACTION = 0.15
CENTRE = "centre baseline"
RANDOM_POINT = "random point"
# Two held-out digits side by side on a 32×64 canvas: the centre lies between them, and one
# scene costs a quarter of a 64×64 one. 200 scenes × 8 methods is ~1,800 explanations, so the
# scene scores use lighter settings than one image's defaults (about 25 s on one CPU thread).
SCENE_SIZE, SCENE_DIGITS = (32, 64), 2
SCENE_SETTINGS = {"samples": 10, "steps": 10}
SMALL_SCENE_SETTINGS = {**SCENE_SETTINGS, "window": 16, "stride": 8}
PHOTO_OBJECTS = ("coffee", "chelsea")  # the shipped photos whose class ImageNet knows
# Forward multiply-accumulates the pointing game may spend on an ImageNet-size net: 50 scenes
# × 4 methods of EfficientNet-Lite0 (0.39 G a pass), about 15 s on two CPU cores
SCENE_MACS = 78 * 10**9
SMALL_NET_SCENES, FEWEST_SCENES = 200, 10


def suggested_scene_count(model: LayeredModel, methods: int = 4) -> int:
    """How many scenes lesson 07's pointing game takes when none is chosen: 200 for the
    digits; for ImageNet-size nets as many as keep `methods` explanations of each within
    `SCENE_MACS`, and at least 10: 50 for EfficientNet-Lite0, 27 for AlexNet, 10 for VGG16."""
    if not has_large_input(model):
        return SMALL_NET_SCENES
    per_scene = methods * total_macs(model, model.input_size)
    return max(FEWEST_SCENES, SCENE_MACS // per_scene)


def localisation_scenes(count: int = 200, seed: int = 1) -> list[Scene]:
    """`count` scenes of `SCENE_DIGITS` held-out digits on a `SCENE_SIZE` canvas (the same
    for the same seed)."""
    count = integer("count", count, 1)
    digits, labels = load_digits("heldout")
    _, _, scenes = compose_scenes(digits, labels, count, SCENE_SIZE, SCENE_DIGITS, seed)
    return scenes


def photo_localisation_scenes(
    model: LayeredModel, count: int = 50, seed: int = 1
) -> list[PhotoScene]:
    """`count` collages of the `PHOTO_OBJECTS` on 224×224 grey (`photo_scenes`), each object
    given the class `model` ranks first for its photo alone; the objects take turns as the
    target (the first object)."""
    alone = torch.stack([square_photo(name, model.input_size[-1]) for name in PHOTO_OBJECTS])
    classes = predicted_classes(model, alone).tolist()
    return photo_scenes(PHOTO_OBJECTS, classes, count, tuple(model.input_size[1:]), seed=seed)


def target_boxes(scene: Scene | PhotoScene, target: int) -> torch.Tensor:
    """The boxes `(K, 4)` of the scene's objects of class `target`."""
    return scene.boxes[scene.classes == target]


def pointed_pixel(heat: torch.Tensor) -> tuple[int, int]:
    """`(row, column)` of the maximum of `heat` `(H, W)`. Values equal but for rounding are
    equal (`settled`), and of equal values the first, row by row, is the maximum: the same
    pixel on every CPU, but in rare cases (`core.precision`)."""
    row, column = divmod(int(settled(heat).flatten().argmax()), heat.shape[1])
    return row, column


def points_at(heat: torch.Tensor, boxes: torch.Tensor, tolerance: int) -> bool:
    """Whether the maximum of `heat` `(H, W)` (`pointed_pixel`) lies within `tolerance` pixels
    of one of `boxes` `(K, 4)` (top, left, bottom, right; exclusive)."""
    return _near(*pointed_pixel(heat), boxes, tolerance)


def _near(row: int, column: int, boxes: torch.Tensor, tolerance: int) -> bool:
    return any(
        top - tolerance <= row < bottom + tolerance
        and left - tolerance <= column < right + tolerance
        for top, left, bottom, right in boxes.tolist()
    )


def thresholded_box(
    heat: torch.Tensor, fraction: float = CAM_FRACTION
) -> tuple[int, int, int, int]:
    """The box (top, left, bottom, right) around the largest 8-connected region where
    `heat` `(H, W)` is at least `fraction` of its maximum; all zero for an all-zero map."""
    if not 0 < fraction < 1:
        raise ConvscopeError(f"fraction must be in (0, 1); got {fraction!r}")
    heat = settled(heat)  # a value at the threshold but for rounding is at it on every CPU
    if heat.max() <= 0:
        return (0, 0, 0, 0)
    region = largest_component((heat >= fraction * heat.max()).numpy())
    return bounding_box(torch.from_numpy(region))


def _best_iou(box, boxes: torch.Tensor) -> float:
    return max(box_iou(box, tuple(each)) for each in boxes.tolist())


def _centre_box(scene: Scene | PhotoScene, size: tuple[float, float]) -> tuple[int, int, int, int]:
    height, width = scene.image.shape[1:]
    top, left = round((height - size[0]) / 2), round((width - size[1]) / 2)
    return (top, left, top + round(size[0]), left + round(size[1]))


def _scene_settings(scorer: LayeredModel, settings: dict) -> dict:
    """`settings` over the scenes' defaults: `SCENE_SETTINGS`, and on small inputs also
    occlusion's `SMALL_SCENE_SETTINGS`."""
    return {**(SCENE_SETTINGS if has_large_input(scorer) else SMALL_SCENE_SETTINGS), **settings}


def localisation_table(
    scorer: LayeredModel,
    scenes: Sequence[Scene | PhotoScene],
    methods: Sequence[str] = METHODS,
    tolerance: int = 2,
    fraction: float = CAM_FRACTION,
    progress: bool = False,
    **settings,
) -> Table:
    """The pointing game and box IoU of every method, then the centre and random-point
    baselines; in float64 on the CPU for nets with small inputs (`core.precision`).

    Args:
        scorer: a classifier of whole scenes (the photo net, or `sliding_classifier(net)`).
        scenes: each explains the class of its first object.
        tolerance: pixels around a box that still count as a hit; fraction: the threshold.
        progress: show a progress bar over the methods.
        settings: passed to `explain`, over `SCENE_SETTINGS` (SmoothGrad's 10 samples,
            integrated gradients' 10 steps; on small inputs also occlusion's 16-pixel squares
            8 apart).

    Returns:
        A `Table` with columns method, pointing (the accuracy), its 95% interval (Wilson's,
        over the scenes; none for the random point, an expectation), mean IoU and IoU >= 0.5.
    """
    tolerance = integer("tolerance", tolerance, 0)
    settings = _scene_settings(scorer, settings)
    # 200 scenes' argmaxes and thresholds: float64 where cheap, so no count moves by rounding
    scorer = float64_where_cheap(scorer)
    if not scenes:
        raise ConvscopeError("scenes must hold at least one scene")
    images = torch.stack([scene.image for scene in scenes])
    targets = [int(scene.classes[0]) for scene in scenes]
    rows = []
    for method in tqdm(methods, desc="methods", disable=not progress, leave=False):
        hits, ious = [], []
        for scene, target, result in zip(
            scenes, targets, explain_many(scorer, images, targets, method, **settings)
        ):
            boxes = target_boxes(scene, target)
            hits.append(points_at(result.map, boxes, tolerance))
            ious.append(_best_iou(thresholded_box(result.map, fraction), boxes))
        rows.append(_row(method, hits, ious))
    rows += _baseline_rows(scenes, tolerance)
    return Table(["method", "pointing", "95% interval", "mean IoU", "IoU ≥ 0.5"], rows, 2)


def _interval(hits: list[bool]) -> str:
    low, high = wilson_interval(sum(hits), len(hits))
    return f"{low:.2f}–{high:.2f}"


def _row(method: str, hits: list[bool], ious: list[float], interval: str | None = None) -> tuple:
    iou = torch.tensor(ious)
    return (
        method,
        round(float(np.mean(hits)), 2),
        interval or _interval(hits),
        round(iou.mean().item(), 2),
        round((iou >= 0.5).float().mean().item(), 2),
    )


def near_share(scene: Scene | PhotoScene, boxes: torch.Tensor, tolerance: int) -> float:
    """The share of the scene's pixels within `tolerance` of one of `boxes`: the chance that
    a point drawn uniformly over the scene is a hit."""
    height, width = scene.image.shape[1:]
    near = torch.zeros(height, width, dtype=torch.bool)
    for top, left, bottom, right in boxes.tolist():
        near[
            max(0, top - tolerance) : bottom + tolerance,
            max(0, left - tolerance) : right + tolerance,
        ] = True
    return near.float().mean().item()


def _baseline_rows(scenes: Sequence[Scene | PhotoScene], tolerance: int) -> list[tuple]:
    chosen = [target_boxes(scene, int(scene.classes[0])) for scene in scenes]
    sizes = torch.cat(chosen).double()
    mean_size = (
        (sizes[:, 2] - sizes[:, 0]).mean().item(),
        (sizes[:, 3] - sizes[:, 1]).mean().item(),
    )
    hits, ious, shares = [], [], []
    for scene, boxes in zip(scenes, chosen):
        height, width = scene.image.shape[1:]
        hits.append(_near(height // 2, width // 2, boxes, tolerance))
        ious.append(_best_iou(_centre_box(scene, mean_size), boxes))
        shares.append(near_share(scene, boxes, tolerance))
    expected = float(np.mean(shares))
    return [
        _row(CENTRE, hits, ious),
        (RANDOM_POINT, round(expected, 2), "expected", None, None),
    ]


# TorchRay's pointing-game benchmark, VOC07 test (all images), VGG16, 15 px tolerance: the
# first vgg16 column of TorchRay's docs/pointing.csv (the second is the difficult subset)
TORCHRAY_POINTING = {
    CENTRE: 69.6,
    "gradient": 76.3,
    "deconvnet": 67.5,
    "guided_backprop": 75.9,
    "grad_cam": 86.6,
}


POINT_MARKERS = "o^sDvP*X"  # one per method, in the order given


def show_pointing(
    scorer: LayeredModel,
    scenes: Sequence[Scene | PhotoScene],
    methods: Sequence[str],
    tolerance: int = 2,
    count: int = 4,
    **settings,
) -> Figure:
    """The first `count` scenes, each with its target's box (solid), the band of `tolerance`
    pixels around it (dotted), the centre (a grey cross) and each method's maximum (a marker
    per method, filled where it is a hit, hollow where it is a miss); `settings` as for
    `localisation_table`."""
    tolerance = integer("tolerance", tolerance, 0)
    shown = list(scenes[: integer("count", count, 1)])
    settings = _scene_settings(scorer, settings)
    scorer = float64_where_cheap(scorer)  # the same maxima as `localisation_table` finds
    images = torch.stack([scene.image for scene in shown])
    targets = [int(scene.classes[0]) for scene in shown]
    found = {
        method: explain_many(scorer, images, targets, method, **settings) for method in methods
    }
    figure = Figure(figsize=(2.6 * len(shown), 3.3), dpi=FIGURE_DPI)
    colours = colormaps["tab10"]
    for column, (scene, target) in enumerate(zip(shown, targets)):
        axes = figure.add_subplot(1, len(shown), column + 1)
        axes.imshow(in_colour(scene.image).permute(1, 2, 0).numpy())
        boxes = target_boxes(scene, target)
        for top, left, bottom, right in boxes.tolist():
            axes.add_patch(
                Rectangle(
                    (left - 0.5, top - 0.5),
                    right - left,
                    bottom - top,
                    fill=False,
                    color="white",
                    linewidth=1.5,
                )
            )
            axes.add_patch(
                Rectangle(
                    (left - tolerance - 0.5, top - tolerance - 0.5),
                    right - left + 2 * tolerance,
                    bottom - top + 2 * tolerance,
                    fill=False,
                    color="white",
                    linestyle=":",
                )
            )
        height, width = scene.image.shape[1:]
        axes.plot(width // 2, height // 2, "x", color="black", markersize=9, mew=2)
        for index, method in enumerate(methods):
            row, col = pointed_pixel(found[method][column].map)
            hit = _near(row, col, boxes, tolerance)
            colour = colours(index)
            axes.plot(
                col,
                row,
                POINT_MARKERS[index % len(POINT_MARKERS)],
                markersize=9,
                mec=colour,
                mfc=colour if hit else "none",
                mew=2,
            )
        axes.set_xlim(-0.5, width - 0.5)  # markers at the edge must not widen the picture
        axes.set_ylim(height - 0.5, -0.5)
        axes.set_title(f"target: {scorer.class_names[target]}", fontsize=9)
        axes.axis("off")
    handles = [  # each method's marker filled, as a hit: the first scene's may be a miss
        Line2D(
            [],
            [],
            linestyle="none",
            marker=POINT_MARKERS[index % len(POINT_MARKERS)],
            markersize=9,
            mec=colours(index),
            mfc=colours(index),
            mew=2,
        )
        for index in range(len(methods))
    ]
    labels = [method.replace("_", " ") for method in methods]
    figure.legend(handles, labels, loc="lower center", ncol=len(methods), fontsize=8)
    caption = (
        f"each method's maximum: filled = a hit (within {tolerance} px of the target's "
        "box, dotted), hollow = a miss; x = the centre"
    )
    figure.suptitle(caption, fontsize=9)
    figure.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.12, wspace=0.05)
    return figure
