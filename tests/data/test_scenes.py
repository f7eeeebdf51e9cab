"""Scenes of several digits: exact placement, ink labels, tight boxes, and FCN's metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from convscope.core.errors import ConvscopeError
from convscope.core.metrics import box_iou, class_iou, confusion_matrix, mean_iou, pixel_accuracy
from convscope.data.datasets import digit_class_names
from convscope.data.scenes import (
    BACKGROUND_LABEL,
    NUM_SEGMENT_CLASSES,
    SEGMENT_CLASS_NAMES,
    compose_scene,
    compose_scenes,
    scene_of_seed,
)

SIDE = 28  # an MNIST digit's footprint


def _manual_canvas(images, sources, positions, size):
    canvas = np.zeros(size, dtype=np.float32)
    for source, (top, left) in zip(sources, positions):
        canvas[top : top + SIDE, left : left + SIDE] = images[source, 0].numpy()
    return canvas


def _manual_label_map(images, labels, sources, positions, size, threshold):
    label_map = np.full(size, 10, dtype=np.int64)
    for source, (top, left) in zip(sources, positions):
        ink = images[source, 0].numpy() >= threshold
        label_map[top : top + SIDE, left : left + SIDE][ink] = int(labels[source])
    return label_map


def _interval_gap(start_a: int, start_b: int) -> int:
    # Empty pixels between [start_a, start_a + SIDE) and [start_b, start_b + SIDE); < 0 overlaps.
    return max(start_a, start_b) - min(start_a + SIDE, start_b + SIDE)


def test_label_convention():
    assert NUM_SEGMENT_CLASSES == len(SEGMENT_CLASS_NAMES) == 11
    assert SEGMENT_CLASS_NAMES[BACKGROUND_LABEL] == "background"
    assert SEGMENT_CLASS_NAMES[:10] == digit_class_names()


def test_given_positions_reproduce_pixels(heldout):
    images, labels = heldout
    sources, positions, size = [3, 17, 42], [(0, 0), (0, 40), (35, 10)], (70, 80)
    scene = compose_scene(images, labels, size=size, positions=positions, sources=sources)
    expected = _manual_canvas(images, sources, positions, size)
    assert scene.image.shape == (1, *size) and scene.image.dtype == torch.float32
    assert np.array_equal(scene.image[0].numpy(), expected)
    assert scene.classes.tolist() == [int(labels[s]) for s in sources]
    assert scene.sources.tolist() == sources
    assert scene.positions.tolist() == [list(p) for p in positions]


@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_labels_follow_ink_threshold(heldout, threshold):
    images, labels = heldout
    sources, positions, size = [5, 6], [(4, 4), (4, 40)], (40, 72)
    scene = compose_scene(
        images, labels, size, positions=positions, sources=sources, ink_threshold=threshold
    )
    expected = _manual_label_map(images, labels, sources, positions, size, threshold)
    assert scene.labels.dtype == torch.int64
    assert np.array_equal(scene.labels.numpy(), expected)
    # Footprints never overlap, so a pixel is labelled exactly where the canvas reaches the ink.
    assert torch.equal(scene.labels != BACKGROUND_LABEL, scene.image[0] >= threshold)


def test_threshold_changes_labels_only_on_faint_ink(heldout):
    images, labels = heldout
    fixed = dict(size=(32, 32), positions=[(2, 2)], sources=[0])
    loose = compose_scene(images, labels, ink_threshold=0.2, **fixed)
    strict = compose_scene(images, labels, ink_threshold=0.5, **fixed)
    faint = (loose.image[0] >= 0.2) & (loose.image[0] < 0.5)
    assert faint.any()
    assert torch.equal(loose.labels != strict.labels, faint)
    assert torch.equal(loose.image, strict.image)


def test_boxes_are_tight_around_ink(heldout):
    images, labels = heldout
    _, _, scenes = compose_scenes(images, labels, n=30, size=(96, 96), count=3, seed=1)
    for scene in scenes:
        assert scene.boxes.shape == (3, 4) and scene.boxes.dtype == torch.int64
        for box, (top, left) in zip(scene.boxes.tolist(), scene.positions.tolist()):
            # Independently: the ink inside this digit's footprint, read off the canvas.
            window = scene.image[0, top : top + SIDE, left : left + SIDE].numpy() >= 0.5
            rows, cols = np.nonzero(window)
            expected = [top + rows.min(), left + cols.min(), top + rows.max() + 1]
            assert box == [*expected, left + cols.max() + 1]
            inside = scene.image[0, box[0] : box[2], box[1] : box[3]] >= 0.5
            assert inside[0].any() and inside[-1].any()
            assert inside[:, 0].any() and inside[:, -1].any()
            assert int(inside.sum()) == int(window.sum())


def test_no_overlap_across_many_random_scenes(heldout):
    images, labels = heldout
    for min_gap, size, count in [(2, (96, 96), 3), (0, (72, 72), 4), (5, (100, 120), 5)]:
        _, label_maps, scenes = compose_scenes(
            images, labels, n=100, size=size, count=count, seed=7, min_gap=min_gap
        )
        for scene, label_map in zip(scenes, label_maps):
            corners = scene.positions.tolist()
            assert len(corners) == count and len(set(scene.sources.tolist())) == count
            for top, left in corners:
                assert 0 <= top <= size[0] - SIDE and 0 <= left <= size[1] - SIDE
            for (ta, la), (tb, lb) in itertools.combinations(corners, 2):
                assert max(_interval_gap(ta, tb), _interval_gap(la, lb)) >= min_gap
            # Every digit keeps all of its ink label: nothing was painted over.
            for source, cls in zip(scene.sources, scene.classes):
                ink = int((images[source, 0] >= 0.5).sum())
                assert int((label_map == cls).sum()) >= ink
            painted = (label_map != BACKGROUND_LABEL).sum()
            assert int(painted) == int((images[scene.sources, 0] >= 0.5).sum())


def test_batch_matches_its_scenes(heldout):
    images, labels = heldout
    batch, label_maps, scenes = compose_scenes(images, labels, n=4, size=(80, 90), seed=0)
    assert batch.shape == (4, 1, 80, 90) and label_maps.shape == (4, 80, 90)
    assert label_maps.dtype == torch.int64 and len(scenes) == 4
    for index, scene in enumerate(scenes):
        assert torch.equal(batch[index], scene.image)
        assert torch.equal(label_maps[index], scene.labels)
    assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0


def test_seed_repeats_and_different_seeds_differ(heldout):
    images, labels = heldout
    first = compose_scenes(images, labels, n=5, size=(96, 96), seed=3)
    torch.manual_seed(12345)  # the batch helper must not depend on the global generator
    again = compose_scenes(images, labels, n=5, size=(96, 96), seed=3)
    other = compose_scenes(images, labels, n=5, size=(96, 96), seed=4)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert all(torch.equal(a.boxes, b.boxes) for a, b in zip(first[2], again[2]))
    assert not torch.equal(first[0], other[0])
    single = [compose_scene(images, labels, generator=torch.Generator().manual_seed(9))]
    single.append(compose_scene(images, labels, generator=torch.Generator().manual_seed(9)))
    assert torch.equal(single[0].image, single[1].image)


def test_too_many_digits_names_size_and_count(heldout):
    images, labels = heldout
    with pytest.raises(ConvscopeError, match=r"count=5 .*size=\(60, 60\)"):
        compose_scene(images, labels, size=(60, 60), count=5)
    with pytest.raises(ConvscopeError, match=r"count=1 .*size=\(20, 40\)"):
        compose_scene(images, labels, size=(20, 40), count=1)
    with pytest.raises(ConvscopeError, match=r"count=3 must be in 0\.\.2"):
        compose_scene(images[:2], labels[:2], count=3)


def test_given_positions_are_checked(heldout):
    images, labels = heldout
    grid = [(row, col) for row in (0, 28) for col in (0, 28)]  # touching 28 x 28 footprints
    scene = compose_scene(images, labels, (56, 56), positions=grid, min_gap=0)
    assert int((scene.labels != BACKGROUND_LABEL).sum()) > 0 and len(scene.boxes) == 4
    with pytest.raises(ConvscopeError, match=r"\(0, 0\) and \(0, 28\) .*min_gap=2"):
        compose_scene(images, labels, (56, 56), positions=grid, min_gap=2)
    with pytest.raises(ConvscopeError, match=r"position \(0, 30\) .*left in 0\.\.22"):
        compose_scene(images, labels, (50, 50), positions=[(0, 30)])
    with pytest.raises(ConvscopeError, match="2 positions but 1 sources"):
        compose_scene(images, labels, (80, 80), positions=[(0, 0), (40, 40)], sources=[0])
    with pytest.raises(ConvscopeError, match=r"sources \[1000\] must be in 0\.\.999"):
        compose_scene(images, labels, (80, 80), sources=[1000])


def test_confusion_matrix_by_hand():
    target = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 2, 0, 2])
    conf = confusion_matrix(pred, target, num_classes=3)
    assert conf.dtype == torch.int64
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]  # rows = truth, columns = pred
    assert pixel_accuracy(conf) == pytest.approx(5 / 7)
    # IU = diag / (row + col - diag): 1/(2+2-1), 2/(2+3-2), 2/(3+2-2).
    assert class_iou(conf).tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert mean_iou(conf) == pytest.approx(5 / 9)
    # A "void" target (255) is ignored, and 2-D maps count like flat ones.
    with_void = confusion_matrix(
        torch.tensor([[0, 1, 1, 1, 2, 0, 2, 1]]),
        torch.tensor([[0, 0, 1, 1, 2, 2, 2, 255]]),
        num_classes=3,
    )
    assert torch.equal(with_void, conf)


def test_mean_iou_skips_absent_classes_but_counts_false_positives():
    conf = confusion_matrix(
        torch.tensor([0, 1, 1, 1, 2, 0, 2]), torch.tensor([0, 0, 1, 1, 2, 2, 2]), num_classes=4
    )
    assert math.isnan(float(class_iou(conf)[3]))  # class 3 neither present nor predicted
    assert mean_iou(conf) == pytest.approx(5 / 9)
    predicted_only = confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 0]), num_classes=3)
    # IU 0: 1/(2+1-1); IU 1: 0/(0+1-0) counts as a zero; class 2 is NaN and skipped.
    assert mean_iou(predicted_only) == pytest.approx((1 / 2 + 0) / 2)


def test_metrics_match_fcn_score_py_on_random_maps():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 11, size=(4, 20, 20))
    pred = np.where(rng.random(target.shape) < 0.6, target, rng.integers(0, 11, target.shape))
    # FCN's fast_hist and its reported pixel accuracy and mean IU, written in NumPy.
    keep = (target >= 0) & (target < 11)
    hist = np.bincount(11 * target[keep] + pred[keep], minlength=121).reshape(11, 11)
    conf = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target))
    assert np.array_equal(conf.numpy(), hist)
    assert pixel_accuracy(conf) == pytest.approx(np.diag(hist).sum() / hist.sum())
    iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    assert mean_iou(conf) == pytest.approx(np.nanmean(iu))


def test_metric_errors():
    with pytest.raises(ConvscopeError, match=r"pred shape \(2,\) != target \(3,\)"):
        confusion_matrix(torch.zeros(2, dtype=torch.int64), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ConvscopeError, match=r"outside 0\.\.2"):
        confusion_matrix(torch.tensor([3]), torch.tensor([0]), num_classes=3)
    with pytest.raises(ConvscopeError, match="empty"):
        pixel_accuracy(torch.zeros(3, 3, dtype=torch.int64))


def test_box_iou_by_hand():
    # Areas 4*4 = 16 and 4*6 = 24; overlap rows 2..4, columns 2..4 -> 4; union 36.
    assert box_iou((0, 0, 4, 4), (2, 2, 6, 8)) == pytest.approx(4 / 36)
    assert box_iou(torch.tensor([0, 0, 4, 4]), torch.tensor([0, 0, 4, 4])) == 1.0
    assert box_iou((0, 0, 4, 4), (4, 0, 8, 4)) == 0.0  # bottom is exclusive: they only touch
    assert box_iou((0, 0, 2, 3), (0, 0, 4, 3)) == pytest.approx(6 / 12)
    assert box_iou((1, 1, 1, 1), (2, 2, 2, 2)) == 0.0
    with pytest.raises(ConvscopeError, match=r"box \(4, 0, 2, 4\)"):
        box_iou((4, 0, 2, 4), (0, 0, 1, 1))


def test_box_iou_matches_pixel_masks():
    rng = np.random.default_rng(1)
    for _ in range(50):
        boxes = []
        for _ in range(2):
            top, bottom = sorted(rng.integers(0, 20, 2))
            left, right = sorted(rng.integers(0, 20, 2))
            boxes.append((int(top), int(left), int(bottom) + 1, int(right) + 1))
        masks = [np.zeros((21, 21), dtype=bool) for _ in boxes]
        for mask, (top, left, bottom, right) in zip(masks, boxes):
            mask[top:bottom, left:right] = True
        union = (masks[0] | masks[1]).sum()
        assert box_iou(*boxes) == pytest.approx((masks[0] & masks[1]).sum() / union)


def test_scene_of_seed_is_compose_scene_with_its_own_generator(heldout):
    images, labels = heldout
    first = scene_of_seed(images, labels, 7, size=(64, 96), count=3)
    again = scene_of_seed(images, labels, 7, size=(64, 96), count=3)
    direct = compose_scene(
        images, labels, size=(64, 96), count=3, generator=torch.Generator().manual_seed(7)
    )
    assert torch.equal(first.image, again.image) and torch.equal(first.image, direct.image)
    assert not torch.equal(first.image, scene_of_seed(images, labels, 8, (64, 96), 3).image)
