"""Top activations, occlusion and localisation, against brute-force computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bounds import NET_FLOAT64, assert_within

import convscope as cs
from convscope.core.errors import ConvscopeError, UnknownNameError
from convscope.core.metrics import box_iou
from convscope.data.scenes import compose_scene
from convscope.explain.localization import (
    Localization,
    bounding_box,
    largest_component,
    localize,
    segment_from_saliency,
)
from convscope.explain.occlusion import occluded_images, occlusion
from convscope.explain.saliency import class_saliency
from convscope.explain.top_activations import receptive_patch, top_activations
from convscope.fully_conv.cast import sliding_classifier


def hook_count(net) -> int:
    return sum(len(m._forward_hooks) for m in net.modules())


def test_top_activations_match_a_full_pass(digits64, heldout64):
    digits_net, images = digits64, heldout64[0][:300]
    top = top_activations(digits_net, images, "conv2", k=9, batch_size=64)  # several batches
    with cs.recording(digits_net, ["conv2"]) as blobs:
        digits_net(digits_net.preprocess(images))
    per_image = blobs["conv2"].flatten(2).max(dim=2)
    for channel in (0, 13, 63):
        values, order = per_image.values[:, channel].topk(9)
        assert_within(top.values[channel], values, NET_FLOAT64)
        assert top.images[channel].tolist() == order.tolist()
        flat = per_image.indices[order, channel]
        assert top.positions[channel].tolist() == [[int(f) // 8, int(f) % 8] for f in flat]
    assert hook_count(digits_net) == 0


def test_receptive_patch_is_the_window_of_the_unit(digits_net, heldout):
    image = heldout[0][0]
    # pool1 units: field 6, jump 2, start 2.5 -> unit (3, 4) covers rows 6..11, columns 8..13
    patch = receptive_patch(digits_net, image, "pool1", (3, 4))
    assert torch.equal(patch, image[:, 6:12, 8:14])
    corner = receptive_patch(digits_net, image, "conv3", (0, 0))  # field 24 from (0, 0)
    assert torch.equal(corner, image[:, 0:24, 0:24])


def test_occlusion_matches_one_forward_per_square(heldout):
    digits_net = cs.load_model("digits").double()  # both sides in float64 (tests/bounds.py)
    image, label = heldout[0][250].double(), int(heldout[1][250])
    maps = occlusion(digits_net, image, label, "conv3", size=8, stride=4)
    assert maps.probability.shape == (6, 6)
    grey = digits_net.preprocess.deprocess(torch.zeros(1, 1, 1, 1, dtype=torch.float64)).item()
    covered = image.clone()
    covered[:, 8:16, 12:20] = grey  # row 2, column 3
    scores = digits_net(digits_net.preprocess(covered[None]))
    assert maps.probability[2, 3].item() == pytest.approx(  # a probability, at most 1
        scores.softmax(1)[0, label].item(), abs=NET_FLOAT64
    )
    assert maps.top_class[2, 3].item() == scores.argmax().item()
    with cs.recording(digits_net, ["conv3"]) as blobs:
        digits_net(digits_net.preprocess(covered[None]))
    feature = blobs["conv3"][0, maps.channel].sum().item()
    assert maps.feature[2, 3].item() == pytest.approx(feature, rel=NET_FLOAT64)
    assert hook_count(digits_net) == 0


def test_occlusion_bad_input(digits_net):
    with pytest.raises(ConvscopeError, match="1..28"):
        occluded_images(torch.rand(1, 28, 28), 40, 2, torch.zeros(1))
    with pytest.raises(UnknownNameError, match="pool3"):
        occlusion(digits_net, torch.rand(1, 28, 28), 0, "fc7")


def test_bounding_box_and_segmentation_of_a_clear_square():
    image = torch.zeros(1, 40, 40)
    image[:, 10:20, 15:30] = 1.0
    saliency = torch.rand(40, 40) * 0.1
    saliency[10:20, 15:30] += 0.5  # the object is somewhat salient...
    saliency[12:18, 18:27] += 1.0  # ...its core most (the foreground seeds)
    mask = segment_from_saliency(image, saliency)
    assert bounding_box(mask) == (10, 15, 20, 30)
    assert bounding_box(torch.zeros(3, 3, dtype=torch.bool)) == (0, 0, 0, 0)


def test_localize_a_digit_in_a_scene(digits_net, heldout):
    scorer = sliding_classifier(digits_net)
    scene = compose_scene(*heldout, size=(56, 56), count=1, positions=[(20, 4)], sources=[5])
    result = localize(scorer, scene.image, int(scene.classes[0]))
    assert box_iou(result.box, scene.boxes[0]) > 0.3
    assert result.mask.shape == (56, 56) and result.saliency.shape == (56, 56)
    averaged = localize(scorer, scene.image, int(scene.classes[0]), augment="flip")
    expected = class_saliency(scorer, scene.image, int(scene.classes[0]), augment="flip")
    assert torch.equal(averaged.saliency, expected)  # the augmented map is the one segmented


def test_sliding_classifier_is_the_best_window(digits64, heldout):
    digits_net = digits64
    scorer = sliding_classifier(digits_net)
    scene = compose_scene(*heldout, size=(44, 52), count=1, positions=[(8, 16)], sources=[700])
    data = digits_net.preprocess(scene.image[None].double())
    windows = cs.fully_convolutional(digits_net)(data)
    assert_within(scorer(data), windows.amax(dim=(2, 3)), NET_FLOAT64)


def test_the_localisation_figure_names_its_boxes():
    image = torch.zeros(3, 32, 32)
    image[:, 8:20, 10:24] = 1.0
    saliency = torch.zeros(32, 32)
    saliency[8:20, 10:24] = 1.0
    found = Localization((8, 10, 20, 24), saliency > 0, saliency)
    figure = cs.show_localization(image, found, truth=(6, 8, 22, 26))
    legend = figure.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["found box", "true box"]
    boxes = [patch for patch in figure.axes[0].patches]
    assert [(p.get_x(), p.get_y(), p.get_width(), p.get_height()) for p in boxes] == [
        (9.5, 7.5, 14, 12),
        (7.5, 5.5, 18, 16),
    ]
    assert [p.get_linestyle() for p in boxes] == ["-", "--"]


def test_a_constant_saliency_map_is_refused_before_grabcut():
    """GrabCut needs foreground and background seeds; a blank image's constant map has none
    above its background quantile (OpenCV would stop on an assertion)."""
    for value in (0.0, 1.0):
        with pytest.raises(ConvscopeError, match=rf"saliency is constant \({value:g}\): no pixel"):
            segment_from_saliency(torch.zeros(1, 28, 28), torch.full((28, 28), value))
    one_bright = torch.zeros(28, 28)
    one_bright[3, 4] = 1.0  # a single seed is enough
    assert segment_from_saliency(torch.zeros(1, 28, 28), one_bright).any()


def test_occlusion_refuses_an_image_the_classifier_cannot_read(digits_net):
    with pytest.raises(ConvscopeError, match="40x40 does not fit digits: .* exactly 28x28"):
        occlusion(digits_net, torch.rand(1, 40, 40), 3, "conv2")
    with pytest.raises(ConvscopeError, match="10x10 is too small for digits"):
        occlusion(digits_net, torch.rand(1, 10, 10), 3, "conv2")


def flood_fill_components(mask: np.ndarray) -> list[set[tuple[int, int]]]:
    """8-connected regions of a bool mask, by a plain flood fill (independent of OpenCV)."""
    seen, regions = set(), []
    for start in zip(*np.nonzero(mask)):
        if start in seen:
            continue
        region, todo = set(), [start]
        seen.add(start)
        while todo:
            row, column = todo.pop()
            region.add((row, column))
            for down in (-1, 0, 1):
                for across in (-1, 0, 1):
                    near = (row + down, column + across)
                    inside = 0 <= near[0] < mask.shape[0] and 0 <= near[1] < mask.shape[1]
                    if inside and mask[near] and near not in seen:
                        seen.add(near)
                        todo.append(near)
        regions.append(region)
    return regions


def test_the_largest_component_is_the_largest_flood_filled_region():
    generator = np.random.default_rng(3)
    for _ in range(20):
        mask = generator.random((24, 31)) < 0.3
        regions = flood_fill_components(mask)
        sizes = sorted(len(region) for region in regions)
        if len(sizes) > 1 and sizes[-1] == sizes[-2]:
            continue  # a tie: either region is right
        largest = max(regions, key=len)
        found = largest_component(mask)
        assert set(zip(*np.nonzero(found))) == largest
    assert not largest_component(np.zeros((4, 4), dtype=bool)).any()
