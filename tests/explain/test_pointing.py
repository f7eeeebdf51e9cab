"""The pointing game and box IoU, on hand-made maps and on scenes with known boxes."""

from __future__ import annotations

import torch

import convscope as cs
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
        ((15, 15), 0, True), ((20, 15), 0, False), ((21, 15), 2, True),
        ((22, 15), 2, False), ((8, 8), 2, True), ((7, 8), 2, False),
    ]:  # fmt: skip
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


def test_the_table_scores_every_method_and_the_centre_baseline_by_hand():
    net = cs.load_model("digits")
    scorer = cs.sliding_classifier(net)
    images, labels = cs.load_digits("heldout")
    # the centre (32, 32) of the first scene lies on its digit; the second has two digits
    scenes = [
        cs.compose_scene(images, labels, (64, 64), positions=[(18, 18)], sources=[7]),
        cs.compose_scene(images, labels, (64, 64), positions=[(0, 0), (36, 36)],
                         sources=[450, 920]),
    ]  # fmt: skip
    table = localisation_table(scorer, scenes, ["gradient"], tolerance=1)
    assert table.column("method") == ["gradient", "centre baseline"]
    centre_hits = [
        any(t - 1 <= 32 < b + 1 and x - 1 <= 32 < r + 1 for t, x, b, r in boxes.tolist())
        for boxes in (target_boxes(s, int(s.classes[0])) for s in scenes)
    ]
    assert table.rows[1][1] == sum(centre_hits) / 2 and centre_hits[0]
    hits = []
    for scene in scenes:  # the gradient's maximum, by plain autograd on the sliding scorer
        data = scorer.preprocess(scene.image[None]).requires_grad_()
        scorer(data)[0, int(scene.classes[0])].backward()
        heat = data.grad[0].abs().amax(0)
        hits.append(points_at(heat, target_boxes(scene, int(scene.classes[0])), 1))
    assert table.rows[0][1] == sum(hits) / 2
