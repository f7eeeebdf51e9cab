"""Bad arguments to the analysis functions: refused up front, by name, with the valid range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import convscope as cs
from convscope.core.arguments import integer
from convscope.core.errors import ConvscopeError, UnknownNameError
from convscope.explain.localization import segment_from_saliency
from convscope.explain.occlusion import occluded_images
from convscope.explain.top_activations import receptive_patch, top_grids
from convscope.surgery.filters import first_layer_maps


@pytest.fixture(scope="module")
def deconvnet(digits_net, heldout):
    return cs.Deconvnet(digits_net, digits_net.preprocess(heldout[0][:1]))


def test_integers_of_every_kind_are_accepted_and_bools_and_floats_refused():
    assert integer("k", np.int64(3), 0, 9) == 3 and integer("k", torch.tensor(4), 0, 9) == 4
    for bad in (True, 2.0, "3", None, torch.tensor(1.0)):
        with pytest.raises(ConvscopeError, match=r"k must be an integer; got"):
            integer("k", bad)
    with pytest.raises(ConvscopeError, match="k 10 is out of range; valid ks are 0..9"):
        integer("k", 10, 0, 9)


def test_a_negative_position_does_not_wrap(deconvnet):
    with pytest.raises(ConvscopeError, match=r"position \(-1, 0\): row -1 is out of range for "):
        deconvnet.project_unit("conv2", 0, (-1, 0))
    with pytest.raises(ConvscopeError, match="position must be"):
        deconvnet.project_unit("conv2", 0, 3)


def test_true_is_not_channel_one(deconvnet):
    with pytest.raises(ConvscopeError, match="channel must be an integer for conv1; got True"):
        deconvnet.project("conv1", True)
    with pytest.raises(ConvscopeError, match="channel must be an integer"):
        deconvnet.project("conv1", 1.0)


def test_numpy_integers_are_classes_and_bools_are_not(digits_net):
    assert digits_net.class_index(np.int64(3)) == 3
    with pytest.raises(UnknownNameError, match="class index must be an integer"):
        digits_net.class_index(True)


@pytest.mark.parametrize(("argument", "value"), [("size", 0), ("stride", -2), ("batch_size", 0)])
def test_occlusion_sizes_and_strides_must_be_positive(digits_net, heldout, argument, value):
    with pytest.raises(ConvscopeError, match=f"{argument} {value} is out of range"):
        cs.occlusion(digits_net, heldout[0][0], 3, "conv2", **{argument: value})


def test_an_image_of_the_wrong_channels_is_named(digits_net):
    with pytest.raises(ConvscopeError, match=r"image must be \(C, H, W\) with C=1 for digits"):
        cs.occlusion(digits_net, torch.rand(3, 28, 28), 3, "conv2")
    with pytest.raises(ConvscopeError, match="image must be a floating tensor"):
        cs.class_saliency(digits_net, torch.zeros(1, 28, 28, dtype=torch.uint8), 3)


def test_top_activations_counts_must_be_positive_and_bounded(digits_net, heldout):
    images = heldout[0][:20]
    with pytest.raises(ConvscopeError, match="k 0 is out of range; valid ks are 1..20"):
        cs.top_activations(digits_net, images, "conv2", k=0)
    with pytest.raises(ConvscopeError, match="k 21 is out of range"):
        cs.top_activations(digits_net, images, "conv2", k=21)
    with pytest.raises(ConvscopeError, match="batch_size 0 is out of range"):
        cs.top_activations(digits_net, images, "conv2", batch_size=0)


def test_class_models_need_positive_iterations_and_steps(digits_net):
    with pytest.raises(ConvscopeError, match="iterations 0 is out of range"):
        cs.class_model(digits_net, 3, iterations=0)
    with pytest.raises(ConvscopeError, match="step > 0"):
        cs.class_model(digits_net, 3, step=0.0, iterations=1)


def test_occluded_images_check_the_image_size_stride_and_fill():
    image = torch.rand(3, 8, 8)
    copies, grid = occluded_images(image, 4, 2, torch.zeros(3))
    assert grid == (3, 3) and copies.shape == (9, 3, 8, 8)
    with pytest.raises(ConvscopeError, match="size 9 is out of range; valid square sizes are 1..8"):
        occluded_images(image, 9, 2, torch.zeros(3))
    with pytest.raises(ConvscopeError, match="stride 0 is out of range; it must be at least 1"):
        occluded_images(image, 4, 0, torch.zeros(3))
    with pytest.raises(ConvscopeError, match=r"fill must be a tensor \(3,\).*got \(1,\)"):
        occluded_images(image, 4, 2, torch.zeros(1))
    with pytest.raises(ConvscopeError, match=r"image must be \(C, H, W\); got shape \(8, 8\)"):
        occluded_images(image[0], 4, 2, torch.zeros(3))


def test_saliency_classes_are_checked_one_by_one(digits_net, heldout):
    image = heldout[0][0]
    by_name = cs.all_class_saliency(digits_net, image, ["3", 5])
    assert torch.equal(by_name, cs.all_class_saliency(digits_net, image, [3, 5]))  # same call
    with pytest.raises(UnknownNameError, match="10"):
        cs.all_class_saliency(digits_net, image, [3, 10])
    with pytest.raises(ConvscopeError, match="classes must name at least one class"):
        cs.all_class_saliency(digits_net, image, [])
    with pytest.raises(ConvscopeError, match="classes must be a list of classes; got 3"):
        cs.all_class_saliency(digits_net, image, 3)


def test_receptive_patches_need_a_map_layer_and_a_position_inside(digits_net, heldout):
    image = heldout[0][0]
    assert receptive_patch(digits_net, image, "conv2", (0, 0)).shape[0] == 1
    with pytest.raises(ConvscopeError, match="row -1 is out of range; it must be at least 0"):
        receptive_patch(digits_net, image, "conv2", (-1, 0))
    with pytest.raises(ConvscopeError, match="column must be an integer; got 1.5"):
        receptive_patch(digits_net, image, "conv2", (0, 1.5))
    with pytest.raises(ConvscopeError, match=r"receptive field lies outside the 28x28 image"):
        receptive_patch(digits_net, image, "conv2", (0, 40))
    with pytest.raises(ConvscopeError, match="fc6"):
        receptive_patch(digits_net, image, "fc6", (0, 0))


def test_top_grids_refuse_a_channel_the_layer_does_not_have(digits_net, heldout):
    images = heldout[0][:12]
    top = cs.top_activations(digits_net, images, "conv1", k=4)
    channels = len(top.values)
    with pytest.raises(ConvscopeError, match=f"valid channels are 0..{channels - 1}"):
        top_grids(digits_net, images, top, channels)
    with pytest.raises(ConvscopeError, match=r"images must be \(N, C, H, W\) with C=1 for digits"):
        top_grids(digits_net, images[0], top, 0)


def test_the_lessons_other_functions_check_their_images_and_counts(digits_net, heldout):
    image = heldout[0][0]
    with pytest.raises(ConvscopeError, match=r"saliency must be \(H, W\) = \(28, 28\)"):
        segment_from_saliency(image, torch.rand(14, 14))
    with pytest.raises(ConvscopeError, match="iterations 0 is out of range"):
        segment_from_saliency(image, torch.rand(28, 28), iterations=0)
    with pytest.raises(ConvscopeError, match=r"image must be \(C, H, W\) with C=1 for digits"):
        cs.class_maps(cs.fully_convolutional(digits_net), torch.rand(3, 40, 40))
    with pytest.raises(ConvscopeError, match="count 0 is out of range; valid filter counts"):
        first_layer_maps(digits_net, image, count=0)
