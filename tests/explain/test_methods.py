"""Each method of `cs.explain` against Captum's implementation of the same paper.

Captum is independent code (hooks on the ReLU modules, its own layer hooks, its own
occlusion and path sums). Where the paper and Captum's defaults differ, Captum is told the
paper's choice: bilinear upsampling for Guided Grad-CAM, the right Riemann sum for
integrated gradients, the raw (not absolute) gradient inside SmoothGrad.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    GuidedGradCam,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)

import convscope as cs
from convscope.explain.methods import ATTRIBUTIONS, BACKWARD_PASSES, METHODS

# Both sides run in float64 (eps 2.2e-16), so the bound is about the algorithm, not about which
# CPU kernel added in which order. Every number compared is made of sums of at most 9,216
# products per layer (AlexNet's fc6; 3,456 in its largest convolution) through at most 8
# layers forward and 8 back. Summation's worst case is n·eps of the sum of the terms'
# magnitudes per layer: 9,216 × 1.1e-16 ≈ 1e-12, 16 layers ≈ 2e-11 of the magnitudes that
# flow, twice that between two computations. Those magnitudes are within 40× of the largest
# compared value here (measured), so the two sides differ by at most about 2e-9 of it: 1e-7
# holds with a margin of 50, while any difference of method (a ReLU rule, an upsampling, a
# sum rule) moves values by percents.
TOLERANCE = 1e-7


@pytest.fixture(scope="module", params=["digits", "alexnet"])
def case(request):
    """(model, image, class index) for the trained digit net and a random AlexNet, in float64."""
    cs.seed_everything(0)
    if request.param == "digits":
        net = cs.load_model("digits").double()
        images, labels = cs.load_digits("heldout")
        return net, images[3].double(), int(labels[3])
    net = cs.load_model("alexnet", weights="random").double()
    photo = torch.nn.functional.interpolate(cs.load_photo("chelsea")[None], size=(224, 224))[0]
    return net, photo.double(), 281


def close(ours: torch.Tensor, theirs: torch.Tensor, scale: float | None = None) -> None:
    """Within `TOLERANCE` of `scale`: by default the largest magnitude Captum returns (a random
    AlexNet's gradients are of order 1e-5 themselves, so an absolute bound would say nothing)."""
    scale = theirs.abs().max().item() if scale is None else scale
    assert ours.dtype == theirs.dtype == torch.float64
    assert ours.shape == theirs.shape and scale > 0
    assert (ours - theirs).abs().max().item() <= TOLERANCE * scale


def data_of(net, image):
    return net.preprocess(image[None])


def test_gradient_deconvnet_and_guided_backprop_equal_captum(case):
    net, image, index = case
    data = data_of(net, image)
    for method, captum in (
        ("gradient", Saliency(net)),
        ("deconvnet", Deconvolution(net)),
        ("guided_backprop", GuidedBackprop(net)),
    ):
        kwargs = {"abs": False} if method == "gradient" else {}
        theirs = captum.attribute(data.clone().requires_grad_(), target=index, **kwargs)[0]
        ours = cs.explain(net, image, index, method)
        close(ours.attribution, theirs.detach())
        close(ours.map, theirs.detach().abs().amax(0))


def test_grad_cam_and_guided_grad_cam_equal_captum(case):
    net, image, index = case
    layer = cs.cam_layer(net)
    data = data_of(net, image)
    cam = LayerGradCam(net, net.layer(layer)).attribute(data, target=index, relu_attributions=True)
    cam = LayerAttribution.interpolate(cam, tuple(image.shape[1:]), interpolate_mode="bilinear")
    ours = cs.explain(net, image, index, "grad_cam")
    assert ours.layer == layer
    close(ours.map, cam[0, 0].detach())
    guided = GuidedGradCam(net, net.layer(layer)).attribute(
        data.clone().requires_grad_(), target=index, interpolate_mode="bilinear"
    )
    close(cs.explain(net, image, index, "guided_grad_cam").attribution, guided[0].detach())


def test_occlusion_equals_captum(case):
    """With the default squares, which tile the image, and with a stride one larger, which
    does not: then the last square of each row and column is cut at the edge, as in Captum,
    and every pixel still gets an attribution."""
    net, image, index = case
    channels, side = image.shape[0], image.shape[1]
    size, stride = cs.occlusion_windows(side)
    assert (side - size) % stride == 0 and (side - size) % (stride + 1) != 0
    for step in (stride, stride + 1):
        theirs = (
            Occlusion(net)
            .attribute(
                data_of(net, image),
                sliding_window_shapes=(channels, size, size),
                strides=(channels, step, step),
                baselines=0.0,
                target=index,
            )[0]
            .double()
        )  # Captum's last step divides in float32: at most 2**-24 ≈ 6e-8 of each value
        # Each attribution is a difference of two class scores: its rounding scales with the
        # scores, not with the difference, which can be 1e3 times smaller (random AlexNet).
        with torch.no_grad():
            scores = net(data_of(net, image))[0, index].abs().item()
        scale = max(scores, theirs.abs().max().item())
        ours = cs.explain(net, image, index, "occlusion", window=size, stride=step)
        close(ours.attribution, theirs, scale)


def test_integrated_gradients_equal_captum(case):
    net, image, index = case
    steps = 12
    theirs = IntegratedGradients(net).attribute(
        data_of(net, image), baselines=0.0, target=index, n_steps=steps, method="riemann_right"
    )[0]
    close(cs.explain(net, image, index, "integrated_gradients", steps=steps).attribution, theirs)


def test_smoothgrad_equals_captum_with_the_same_seed(case):
    net, image, index = case
    data, samples, noise = data_of(net, image), 6, 0.15
    sigma = noise * (data.max() - data.min()).item()
    torch.manual_seed(7)
    theirs = NoiseTunnel(Saliency(net)).attribute(
        data.clone().requires_grad_(),
        nt_type="smoothgrad",
        nt_samples=samples,
        stdevs=sigma,
        target=index,
        abs=False,
    )[0]
    ours = cs.explain(net, image, index, "smoothgrad", samples=samples, noise=noise, seed=7)
    close(ours.attribution, theirs.detach())


def test_integrated_gradients_are_complete():
    """Sundararajan et al.'s completeness: the attributions sum to S_c(x) − S_c(baseline)."""
    net = cs.load_model("digits")
    images, labels = cs.load_digits("heldout")
    image, index = images[0], int(labels[0])
    data = net.preprocess(image[None])
    with torch.no_grad():
        gap = (net(data) - net(torch.zeros_like(data)))[0, index].item()
    total = cs.explain(net, image, index, "integrated_gradients", steps=400).attribution.sum()
    assert abs(total.item() - gap) < 0.02 * abs(gap)


def test_every_method_gives_a_finite_non_negative_map_and_leaves_the_model_as_it_was():
    net = cs.load_model("digits")
    images, _ = cs.load_digits("heldout")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hooks = sum(len(m._forward_hooks) for m in net.modules())
    for method in METHODS:
        result = cs.explain(net, images[1], "7", method, samples=4, steps=4)
        assert result.map.shape == (28, 28) and result.attribution.shape == (1, 28, 28)
        assert (result.map >= 0).all() and torch.isfinite(result.map).all()
        assert result.class_index == 7
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert sum(len(m._forward_hooks) for m in net.modules()) == hooks
    # the true gradient is back: plain autograd agrees with the "gradient" method (float64)
    net, image = net.double(), images[1].double()
    data = net.preprocess(image[None]).requires_grad_()
    net(data)[0, 7].backward()
    gradient = cs.explain(net, image, 7, "gradient").attribution
    assert (gradient - data.grad[0]).abs().max() <= TOLERANCE * data.grad[0].abs().max()


def test_bad_arguments_are_named():
    net = cs.load_model("digits")
    images, _ = cs.load_digits("heldout")
    with pytest.raises(cs.ConvscopeError, match="unknown method 'lrp'.*gradient, deconvnet"):
        cs.explain(net, images[0], 0, "lrp")
    with pytest.raises(cs.ConvscopeError, match="layer with feature maps 'fc7'"):
        cs.explain(net, images[0], 0, "grad_cam", layer="fc7")
    with pytest.raises(cs.ConvscopeError, match="samples -1 is out of range"):
        cs.explain(net, images[0], 0, "smoothgrad", samples=-1)
    with pytest.raises(cs.ConvscopeError, match="exactly"):
        cs.explain(net, torch.zeros(1, 30, 30), 0, "gradient")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_map_that_is_not_finite_is_refused(bad):
    # a first-layer weight set to NaN or infinity after loading (the loader refuses them)
    # reaches every later blob, so each method's map; it must be refused, not drawn
    net = cs.load_model("digits")
    images, _ = cs.load_digits("heldout")
    with torch.no_grad():
        net.layer("conv1").weight[0, 0, 2, 2] = bad
    for method in ("gradient", "grad_cam", "occlusion"):
        with pytest.raises(cs.ConvscopeError, match=f"{method} gave a map that is not finite"):
            cs.explain(net, images[1], 7, method)


def test_a_bad_grad_cam_layer_is_refused_before_any_pass():
    net = cs.load_model("digits")
    images, _ = cs.load_digits("heldout")
    passes = []
    net.register_forward_hook(lambda *args: passes.append(1))
    for method in ("grad_cam", "guided_grad_cam"):
        with pytest.raises(cs.ConvscopeError, match="layer with feature maps 'fc7'"):
            cs.explain(net, images[0], 0, method, layer="fc7")
    assert passes == []


def test_many_images_at_once_equal_one_at_a_time():
    net = cs.load_model("digits")
    images, labels = cs.load_digits("heldout")
    chosen = [5, 400, 777]
    for method in METHODS:
        together = cs.explain_many(
            net, images[chosen], labels[chosen].tolist(), method, samples=5, steps=5, seed=3
        )
        for result, i in zip(together, chosen):
            alone = cs.explain(net, images[i], int(labels[i]), method, samples=5, steps=5, seed=3)
            assert result.class_index == alone.class_index
            assert torch.allclose(result.attribution, alone.attribution, atol=1e-6), method
            assert torch.allclose(result.map, alone.map, atol=1e-6), method


def test_occlusion_squares_follow_the_image_size():
    """A quarter of the side and half of that on small images; on 128 px or more a multiple
    of 32 at 5 positions a side where that tiles the image, as the docstring states."""
    assert cs.occlusion_windows(28) == (7, 3)
    assert cs.occlusion_windows(224) == (64, 40)  # (224 − 64) / 40 = 4: 5 positions a side
    assert cs.occlusion_windows(256) == (64, 48)
    assert cs.occlusion_windows(227) == (64, 32)  # 163 is not a multiple of 4: half the square


def test_one_attribution_function_and_one_backward_row_per_method():
    assert tuple(ATTRIBUTIONS) == cs.METHODS == tuple(BACKWARD_PASSES)


def test_targets_give_one_class_per_image_in_one_wording():
    net = cs.load_model("digits")
    images, _ = cs.load_digits("heldout")
    for call in (
        lambda: cs.explain_many(net, images[:3], [1, 2], "gradient"),
        lambda: cs.randomisation_curves(net, images[:3], [1, 2], "cascading", ["gradient"]),
        lambda: cs.explain_widget(net, images[:3], [1, 2]),
    ):
        with pytest.raises(
            cs.ConvscopeError, match=r"targets must give one class per image \(3\); got 2"
        ):
            call()
    with pytest.raises(cs.ConvscopeError, match="unknown setting 'sample'; choose one of: samples"):
        cs.explain(net, images[0], 1, "smoothgrad", sample=3)
