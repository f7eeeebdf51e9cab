"""ReLU6 (EfficientNet-Lite's rectifier) under the modified backward rules, against a
hand-written autograd reference, and every analysis of lesson 07 on the trained photo net."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from bounds import NET_FLOAT64, assert_within
from torch import nn

import convscope as cs


def tiny_relu6_net() -> cs.Net:
    """Conv → ReLU6 → conv → ReLU6 → linear, in float64, with inputs that reach past 6."""
    torch.manual_seed(5)
    layers = OrderedDict(
        conv1=nn.Conv2d(1, 4, 3),
        relu1=nn.ReLU6(),
        conv2=nn.Conv2d(4, 4, 3),
        relu2=nn.ReLU6(),
        flatten=nn.Flatten(),
        fc=nn.Linear(4 * 4 * 4, 3),
    )
    net = cs.Net(
        layers,
        name="tiny",
        input_size=(1, 8, 8),
        class_names=["a", "b", "c"],
        preprocess=lambda x: x,
    )
    with torch.no_grad():
        net.conv1.weight.mul_(8)  # pre-activations well beyond 6, so the cap matters
    return net.double().eval()


def hooked_gradient(net: cs.Net, data: torch.Tensor, index: int, rule: str) -> torch.Tensor:
    """The rule written with full backward hooks on each ReLU6: the deconvnet sends back
    max(g, 0); guided backpropagation max(g, 0) where 0 < x < 6, and 0 elsewhere."""
    inputs = {}

    def keep(module, args, out):
        inputs[module] = args[0].detach()

    def modify(module, grad_input, grad_output):
        rectified = grad_output[0].clamp(min=0)
        if rule == "guided":
            x = inputs[module]
            rectified = rectified * ((x > 0) & (x < 6))
        return (rectified,)

    relus = [m for m in net.modules() if isinstance(m, nn.ReLU6)]
    handles = [m.register_forward_hook(keep) for m in relus]
    handles += [m.register_full_backward_hook(modify) for m in relus]
    try:
        x = data.clone().requires_grad_(True)
        net(x)[0, index].backward()
    finally:
        for handle in handles:
            handle.remove()
    return x.grad[0]


def test_guided_backprop_and_the_deconvnet_rule_through_relu6():
    net = tiny_relu6_net()
    image = torch.rand(1, 8, 8, dtype=torch.float64)
    data = image[None]
    with torch.no_grad():
        capped = net.conv1(data)
    assert (capped > 6).any() and (capped < 0).any()  # both ends of the ReLU6 are exercised
    for method, rule in (("guided_backprop", "guided"), ("deconvnet", "deconvnet")):
        ours = cs.explain(net, image, 1, method).attribution
        assert_within(ours, hooked_gradient(net, data, 1, rule), NET_FLOAT64, method)
    # the true gradient stops where ReLU6 is flat (x > 6), guided backprop with it
    gradient = cs.explain(net, image, 1, "gradient").attribution
    guided = cs.explain(net, image, 1, "guided_backprop").attribution
    assert not torch.equal(gradient, guided)


def test_every_method_of_lesson_07_runs_on_the_trained_photo_net():
    net = cs.load_model("efficientnet_lite0", device="cpu")
    assert cs.cam_layer(net) == "head_relu"
    photo = cs.load_photo("coffee")
    image = F.interpolate(
        photo[None, :, :, 100:500], size=(224, 224), mode="bilinear", antialias=True
    )[0]
    espresso = net.class_names.index("espresso")
    light = {"samples": 2, "steps": 2, "window": 56, "stride": 56}
    maps = {}
    for method in cs.METHODS:
        result = cs.explain(net, image, espresso, method, **light)
        assert result.map.shape == (224, 224) and torch.isfinite(result.map).all(), method
        assert result.map.max() > 0, method
        maps[method] = result.map
    assert not torch.equal(maps["gradient"], maps["guided_backprop"])  # the ReLU6 rules apply
    picture, score = cs.class_model(net, espresso, iterations=2)
    assert picture.shape == (3, 224, 224) and torch.isfinite(torch.tensor(score))
    curves = cs.randomisation_curves(net, image[None], [espresso], "cascading", ["grad_cam"])
    assert curves.states[:3] == ["trained", "classifier", "head"] and len(curves.states) == 11
