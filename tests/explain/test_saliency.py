"""Saliency maps and class models against plain autograd."""

from __future__ import annotations

import pytest
import torch
from bounds import NET_FLOAT64, assert_within
from scipy import ndimage

import convscope as cs
from convscope.core.errors import ConvscopeError, UnknownNameError
from convscope.explain.class_models import ClassModels, suggested_iterations
from convscope.explain.saliency import (
    all_class_saliency,
    class_model,
    class_saliency,
    softmax_saliency,
)


@pytest.fixture(scope="module")
def exact():
    """The digit net and held-out digits in float64: the package's saliency and plain autograd
    take different code paths, and agree to `NET_FLOAT64` (tests/bounds.py)."""
    images, labels = cs.load_digits("heldout")
    return cs.load_model("digits").double(), images.double(), labels


def plain_saliency(model, image, index):
    """Independent: autograd on the preprocessed image, max over channels of |gradient|."""
    data = model.preprocess(image[None]).clone().requires_grad_(True)
    model(data)[0, index].backward()
    return data.grad[0].abs().max(dim=0).values


def test_digit_saliency_is_the_score_gradient(exact):
    net, images, _ = exact
    for index in (0, 7):
        expected = plain_saliency(net, images[3], index)
        assert_within(class_saliency(net, images[3], index), expected, NET_FLOAT64)


def test_rgb_saliency_takes_the_max_over_channels():
    model = cs.load_model("alexnet", weights="random").double()
    image = torch.rand(3, 224, 224, dtype=torch.float64)
    saliency = class_saliency(model, image, 281)
    assert saliency.shape == (224, 224)
    assert_within(saliency, plain_saliency(model, image, 281), NET_FLOAT64)


def test_all_classes_in_one_pass_equal_one_backward_each(exact):
    net, images, _ = exact
    together = all_class_saliency(net, images[120])
    each = torch.stack([plain_saliency(net, images[120], c) for c in range(10)])
    assert_within(together, each, NET_FLOAT64)
    # a batch of 2 gradients against a batch of 10: MKL's float64 products round by shape
    assert_within(all_class_saliency(net, images[120], [3, 5]), together[[3, 5]], NET_FLOAT64)


def test_softmax_map_follows_the_softmax_formula(heldout):
    net = cs.load_model("digits").double()  # both sides in float64 (tests/bounds.py)
    image = heldout[0][500].double()
    data = net.preprocess(image[None]).clone().requires_grad_(True)
    probabilities = net(data).softmax(1)[0]
    gradients = torch.stack([torch.autograd.grad(net(data)[0, k], data)[0][0] for k in range(10)])
    c = 4
    expected = probabilities[c] * (
        gradients[c] - (probabilities[:, None, None, None] * gradients).sum(0)
    )
    assert_within(softmax_saliency(net, image, c), expected.abs().amax(0).detach(), NET_FLOAT64)


def test_flip_averaging(exact):
    net, images, _ = exact
    image = images[42]
    flipped = plain_saliency(net, image.flip(-1), 4).flip(-1)
    expected = (plain_saliency(net, image, 4) + flipped) / 2
    assert_within(class_saliency(net, image, 4, augment="flip"), expected, NET_FLOAT64)
    ten = class_saliency(net, image, 4, augment="crops_and_flips")
    # ten views average to another map: it differs by far more than rounding
    assert ten.shape == (28, 28) and (ten - expected).abs().max() > 0.01 * expected.abs().max()


def test_class_model_raises_the_score(digits_net):
    image, score = class_model(digits_net, 3, l2=0.01, step=0.2, iterations=150)
    assert image.shape == (1, 28, 28) and image.min() >= 0 and image.max() <= 1
    start = digits_net(torch.zeros(1, 1, 28, 28))[0, 3].item()
    assert score > start + 10


def test_class_model_l2_shrinks_the_image(digits_net):
    """A larger λ gives a smaller optimum (checked on the network input, before display)."""
    weak, _ = class_model(digits_net, 8, l2=0.01, iterations=100)
    strong, _ = class_model(digits_net, 8, l2=1.0, iterations=100)
    mean = digits_net.preprocess.deprocess(torch.zeros(1, 1, 28, 28))[0]
    assert (strong - mean).abs().sum() < (weak - mean).abs().sum()


def test_bad_inputs_name_the_valid_range(digits_net):
    with pytest.raises(UnknownNameError, match="0..9"):
        class_saliency(digits_net, torch.rand(1, 28, 28), 10)
    with pytest.raises(ConvscopeError, match="exactly"):
        class_saliency(digits_net, torch.rand(1, 30, 30), 1)
    with pytest.raises(ConvscopeError, match="C=1"):
        class_saliency(digits_net, torch.rand(3, 28, 28), 1)
    with pytest.raises(UnknownNameError, match="none, flip, crops_and_flips"):
        class_saliency(digits_net, torch.rand(1, 28, 28), 1, augment="rotate")


def test_class_models_are_computed_once_per_parameter_set_and_bounded(digits_net):
    cache = ClassModels(digits_net, keep=2)
    first = cache.get("3", 0.01, 0.2, 15)
    again = cache.get(3, 0.01, 0.2, 15)  # a name or an index: the same key
    assert cache.computed == 1 and again[0] is first[0]
    direct = class_model(digits_net, 3, l2=0.01, step=0.2, iterations=15)
    assert torch.equal(first[0], direct[0])  # the same float64 steps in the same order
    cache.get("4", 0.01, 0.2, 15)
    cache.get("5", 0.01, 0.2, 15)  # the third pushes out the oldest
    assert cache.cached("3", 0.01, 0.2, 15) is None and cache.computed == 3
    assert cache.cached("5", 0.01, 0.2, 15) is not None


def test_the_class_model_reports_each_step(digits_net):
    seen = []
    class_model(digits_net, 2, iterations=7, progress=seen.append)
    assert seen == list(range(1, 8))


def test_the_lesson_suggests_fewer_steps_for_imagenet_size_nets(digits_net):
    assert suggested_iterations(digits_net) == 400
    assert suggested_iterations(cs.load_shapes_only("vgg16")) == 80


def test_many_images_saliency_in_batches_equals_one_by_one(digits_net, exact):
    net, images, labels = exact
    images, classes = images[:7], [int(label) for label in labels[:7]]
    together = cs.saliency_of_images(net, images, classes)
    for image, label, saliency in zip(images, classes, together):
        assert_within(saliency, plain_saliency(net, image, label), NET_FLOAT64)
    with pytest.raises(ConvscopeError, match="one class per image"):
        cs.saliency_of_images(digits_net, images, classes[:3])


def test_a_blurred_class_model_step_is_the_blurred_gradient_step(digits64):
    """One step from I = 0 with a blur after it: the step is `step` × ∂S_c/∂I at 0 (the L2
    term's gradient is 0 there), then blurred. The reference takes the gradient by plain
    autograd and blurs with SciPy; both in float64 (NET_FLOAT64, tests/bounds.py)."""
    data = torch.zeros(1, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    digits64(data)[0, 6].backward()
    stepped = (0.2 * data.grad).numpy()
    blurred = ndimage.gaussian_filter(stepped, sigma=(0, 0, 0.5, 0.5), mode="mirror", truncate=3.0)
    expected = digits64.preprocess.deprocess(torch.from_numpy(blurred))[0]
    image, _ = class_model(digits64, 6, l2=0.01, step=0.2, iterations=1, blur=0.5, blur_every=1)
    assert_within(image, expected, NET_FLOAT64, "blurred step")
    plain, _ = class_model(digits64, 6, l2=0.01, step=0.2, iterations=1)
    assert (plain - image).abs().max() > 1e-3  # the blur changed the image


def test_blurring_removes_the_fine_texture_of_a_class_model(digits_net):
    """The regulariser's point: the mean jump between neighbouring pixels falls."""

    def roughness(image):
        down = (image[:, 1:] - image[:, :-1]).abs().mean()
        return down + (image[:, :, 1:] - image[:, :, :-1]).abs().mean()

    plain, _ = class_model(digits_net, 4, l2=0.01, step=0.2, iterations=100)
    smooth, _ = class_model(digits_net, 4, l2=0.01, step=0.2, iterations=100, blur=1.0)
    assert roughness(smooth) < 0.7 * roughness(plain)


def test_bad_blur_settings_are_named(digits_net):
    with pytest.raises(ConvscopeError, match="blur must be a σ >= 0 in pixels .*; got -1"):
        class_model(digits_net, 1, iterations=2, blur=-1)
    with pytest.raises(ConvscopeError, match="blur_every"):
        class_model(digits_net, 1, iterations=2, blur=0.5, blur_every=0)


def test_the_regularised_figure_shows_both_class_models_from_the_cache(digits_net):
    cache = ClassModels(digits_net)
    figure = cs.show_regularised_class_models(digits_net, "7", 0.01, 0.2, 20, 0.5, cache=cache)
    titles = [axes.get_title() for axes in figure.axes]
    assert cache.computed == 2
    for blur, title in zip((0.0, 0.5), titles):
        _, score = cache.cached("7", 0.01, 0.2, 20, blur)
        assert f"S = {score:.0f}" in title
    assert titles[0].startswith("L2 only") and titles[1].startswith("L2 + blur σ = 0.5 px")


def test_stretching_maps_the_percentiles_to_black_and_white():
    image = torch.arange(1001, dtype=torch.float64).view(1, 1, 1001) / 1000  # 0, 0.001, ..., 1
    shown = cs.stretched(image, 99.5)
    # the 0.5th and 99.5th percentiles of 0..1 in steps of 0.001 are 0.005 and 0.995
    assert shown[0, 0, 5].item() == pytest.approx(0.0, abs=1e-12)
    assert shown[0, 0, 500].item() == pytest.approx(0.5, abs=1e-12)
    assert shown[0, 0, 995].item() == pytest.approx(1.0, abs=1e-12)
    assert shown.min() == 0 and shown.max() == 1
    assert torch.equal(cs.stretched(torch.ones(3, 4, 4)), torch.zeros(3, 4, 4))
