"""The pointing game and box IoU, on hand-made maps and on scenes with known boxes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.stats import binomtest

import convscope as cs
from convscope.core.errors import ConvscopeError
from convscope.data.photo_scenes import photo_scenes
from convscope.explain.pointing import (
    localisation_table,
    points_at,
    target_boxes,
    thresholded_box,
)


def test_a_hit_is_the_maximum_within_tolerance_of_a_box():
    boxes = torch.tensor([[10, 10, 20, 20]])  # rows 10..19, columns 10..19
    heat = torch.zeros(40, 40)
    for (row, column), tolerance, hit in [
        ((15, 15), 0, True),
        ((20, 15), 0, False),
        ((21, 15), 2, True),
        ((22, 15), 2, False),
        ((8, 8), 2, True),
        ((7, 8), 2, False),
    ]:
        heat.zero_()
        heat[row, column] = 1.0
        assert points_at(heat, boxes, tolerance) is hit, (row, column, tolerance)


def test_the_thresholded_box_surrounds_the_largest_region_only():
    heat = torch.zeros(30, 30)
    heat[2:12, 3:9] = 0.5  # the largest region above 15% of the maximum: 60 pixels
    heat[20:23, 20:23] = 1.0  # the maximum, but only 9 pixels
    heat[25, 0] = 0.1  # below 15% of the maximum: ignored
    assert thresholded_box(heat) == (2, 3, 12, 9)
    assert thresholded_box(torch.zeros(5, 5)) == (0, 0, 0, 0)


def _by_hand(heat: np.ndarray, boxes: list, tolerance: int) -> tuple[bool, float]:
    """The hit and the best box IoU of one map, written out with NumPy and SciPy: the first
    maximum row by row; the largest 8-connected region at 15% of the maximum (SciPy's
    labelling); intersection over union of pixel sets."""
    row, column = np.unravel_index(np.argmax(heat), heat.shape)
    hit = any(
        t - tolerance <= row < b + tolerance and x - tolerance <= column < r + tolerance
        for t, x, b, r in boxes
    )
    labels, count = ndimage.label(heat >= 0.15 * heat.max(), structure=np.ones((3, 3)))
    sizes = ndimage.sum_labels(np.ones_like(heat), labels, index=range(1, count + 1))
    rows, columns = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    region = np.zeros(heat.shape, bool)
    region[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1] = True
    ious = []
    for t, x, b, r in boxes:
        digit = np.zeros(heat.shape, bool)
        digit[t:b, x:r] = True
        ious.append((region & digit).sum() / (region | digit).sum())
    return hit, max(ious)


def test_the_table_scores_every_column_and_the_centre_baseline_by_hand():
    net = cs.load_model("digits")
    scorer = cs.sliding_classifier(net)
    images, labels = cs.load_digits("heldout")
    # the centre (32, 32) of the first scene lies on its digit; the second has two digits
    scenes = [
        cs.compose_scene(images, labels, (64, 64), positions=[(18, 18)], sources=[7]),
        cs.compose_scene(
            images, labels, (64, 64), positions=[(0, 0), (36, 36)], sources=[450, 920]
        ),
        cs.compose_scene(images, labels, (64, 64), positions=[(34, 2), (2, 34)], sources=[33, 600]),
    ]
    table = localisation_table(scorer, scenes, ["gradient"])  # the default tolerance, 2
    assert table.column("method") == ["gradient", "centre baseline", "random point"]
    exact = copy.deepcopy(scorer).double()  # the table runs the digits in float64
    hits, ious = [], []
    for scene in scenes:  # the gradient by plain autograd on the sliding scorer
        data = exact.preprocess(scene.image[None].double()).requires_grad_()
        exact(data)[0, int(scene.classes[0])].backward()
        boxes = target_boxes(scene, int(scene.classes[0])).tolist()
        hit, iou = _by_hand(data.grad[0].abs().amax(0).numpy(), boxes, 2)
        hits.append(hit)
        ious.append(iou)
    assert 0 < np.mean(ious) < 1  # the maps are neither empty nor the boxes themselves
    expected = (np.mean(hits), np.mean(ious), np.mean(np.array(ious) >= 0.5))
    assert (table.rows[0][1], *table.rows[0][3:]) == tuple(round(float(v), 2) for v in expected)
    low, high = binomtest(int(sum(hits)), len(hits)).proportion_ci(method="wilson")
    assert table.rows[0][2] == f"{low:.2f}–{high:.2f}"
    # the centre baseline: the centre pixel, and a centred box of the mean target box's size
    targets = [target_boxes(s, int(s.classes[0])).tolist() for s in scenes]
    height, width = np.mean([[b - t, r - x] for boxes in targets for t, x, b, r in boxes], axis=0)
    top, left = round((64 - height) / 2), round((64 - width) / 2)
    centre = np.zeros((64, 64))
    centre[top : top + round(height), left : left + round(width)] = 1.0
    centre[32, 32] = 2.0  # its maximum is the centre pixel, its region the centred box
    baseline = [_by_hand(centre, boxes, 2) for boxes in targets]
    expected = (
        np.mean([h for h, _ in baseline]),
        np.mean([i for _, i in baseline]),
        np.mean([i >= 0.5 for _, i in baseline]),
    )
    assert (table.rows[1][1], *table.rows[1][3:]) == tuple(round(float(v), 2) for v in expected)
    # the random point: the share of the 64×64 canvas within 2 px of a target box, by hand
    shares = []
    for boxes in targets:
        near = np.zeros((64, 64), bool)
        for t, x, b, r in boxes:
            near[max(0, t - 2) : b + 2, max(0, x - 2) : r + 2] = True
        shares.append(near.mean())
    assert table.rows[2][:3] == ("random point", round(float(np.mean(shares)), 2), "expected")


def test_wilsons_interval_is_scipys():
    """SciPy's `binomtest(...).proportion_ci(method="wilson")`: the same closed form, so the
    two agree to a few float64 roundings (1e-12 of values in [0, 1])."""
    for hits, trials in ((0, 10), (3, 10), (10, 10), (49, 50), (1, 1)):
        expected = binomtest(hits, trials).proportion_ci(method="wilson")
        low, high = cs.wilson_interval(hits, trials)
        assert abs(low - expected.low) < 1e-12 and abs(high - expected.high) < 1e-12


def test_photo_scenes_paste_each_photo_into_its_box():
    names, classes = ["coffee", "chelsea"], [967, 285]
    scenes = photo_scenes(names, classes, 4, seed=3)
    again = photo_scenes(names, classes, 4, seed=3)
    for index, (scene, same) in enumerate(zip(scenes, again)):
        assert torch.equal(scene.image, same.image)  # the same for the same seed
        assert scene.names[0] == names[index % 2]  # the objects take turns as the target
        assert scene.classes.tolist() == [classes[names.index(n)] for n in scene.names]
        outside = torch.ones(224, 224, dtype=torch.bool)
        for (top, left, bottom, right), name in zip(scene.boxes.tolist(), scene.names):
            assert bottom - top == right - left and 80 <= bottom - top <= 112
            outside[top:bottom, left:right] = False
            pasted = scene.image[:, top:bottom, left:right]
            photo = cs.square_photo(name, 112)  # the same photo, resized independently
            resized = F.interpolate(
                photo[None], size=pasted.shape[1:], mode="bilinear", antialias=True
            )[0]
            flipped = resized.flip(-1)
            error = min((pasted - resized).abs().max(), (pasted - flipped).abs().max())
            assert error < 1e-6  # one of the two orientations, to float32 rounding of [0, 1]
        a, b = scene.boxes.tolist()
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]  # apart
        assert (scene.image[:, outside] == 0.5).all()  # plain grey elsewhere


def test_photo_scene_arguments_are_named():
    with pytest.raises(ConvscopeError, match="1 names and 2 classes"):
        photo_scenes(["coffee"], [1, 2], 3)
    with pytest.raises(ConvscopeError, match="cannot place squares of sides"):
        photo_scenes(["coffee", "chelsea"], [1, 2], 1, size=(120, 120), sides=(100, 110))


def test_the_pointing_figure_marks_each_maximum_and_whether_it_hits():
    """The markers sit at the maxima of plain-autograd gradient maps (float64, as the figure's
    digit scorer runs), filled for a hit and hollow for a miss, judged by hand."""
    net = cs.load_model("digits")
    scorer = cs.sliding_classifier(net)
    scenes = cs.localisation_scenes(3, seed=5)
    figure = cs.show_pointing(scorer, scenes, ["gradient"], tolerance=0, count=3)
    exact = copy.deepcopy(scorer).double()
    for axes, scene in zip(figure.axes, scenes):
        data = exact.preprocess(scene.image[None].double()).requires_grad_()
        exact(data)[0, int(scene.classes[0])].backward()
        heat = data.grad[0].abs().amax(0)
        row, column = divmod(int(heat.flatten().argmax()), heat.shape[1])
        centre, marker = axes.lines
        assert (centre.get_xdata()[0], centre.get_ydata()[0]) == (32, 16)  # 64 wide, 32 high
        assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (column, row)
        boxes = target_boxes(scene, int(scene.classes[0])).tolist()
        hit = any(t <= row < b and x <= column < r for t, x, b, r in boxes)
        assert (marker.get_markerfacecolor() != "none") == hit


def test_the_suggested_scene_count_fits_its_budget():
    """SCENE_MACS over (4 methods × MACs per pass), at least 10; 200 scenes of digits."""
    for name, count in (("efficientnet_lite0", 50), ("alexnet", 27), ("vgg16", 10)):
        assert cs.suggested_scene_count(cs.load_shapes_only(name)) == count
    assert cs.suggested_scene_count(cs.load_model("digits")) == 200
