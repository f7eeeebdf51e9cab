"""Lesson 07's methods side by side: each against a forward pass, and each against Captum.

Run: `.venv/bin/python bench/bench_methods.py [--quick]`. For one held-out digit and for a
random AlexNet at 224×224, the median of interleaved runs (every action once a round, in a
new shuffled order each round: `timing.interleaved_medians`) of every `cs.explain` method and
of Captum's implementation of the same method with the same settings (the tests check that
they agree to 1e-5), as multiples of one forward pass. Then the lesson's widget update (one method
on one new digit) and the cost of the meta-device shape pass that `images_per_batch` now makes
once per model and shape. Both sides start from the image in [0, 1] and preprocess it. Targets
(issue 23): every method at most 1.00x Captum's time on both nets, the gradient at most 2.2
forward passes; a widget update on the digits under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import torch
import torch.nn.functional as F
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
from timing import interleaved_medians

import convscope as cs
from convscope.core.meta import blob_shapes, largest_blob


def captum_methods(net, index, layer, samples, steps, window, stride, example):
    """Captum's counterpart of each method, set as the tests set it: each a function of the
    preprocessed input `(1, C, H, W)` (`example` gives its shape and SmoothGrad's range)."""
    channels, size = example.shape[1], tuple(example.shape[2:])
    sigma = 0.15 * (example.max() - example.min()).item()

    def grad_cam(data):
        cam = LayerGradCam(net, net.layer(layer)).attribute(
            data, target=index, relu_attributions=True
        )
        return LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear")

    return {
        "gradient": lambda data: Saliency(net).attribute(data, target=index, abs=False),
        "deconvnet": lambda data: Deconvolution(net).attribute(data, target=index),
        "guided_backprop": lambda data: GuidedBackprop(net).attribute(data, target=index),
        "grad_cam": grad_cam,
        "guided_grad_cam": lambda data: GuidedGradCam(net, net.layer(layer)).attribute(
            data, target=index, interpolate_mode="bilinear"
        ),
        "occlusion": lambda data: Occlusion(net).attribute(
            data,
            sliding_window_shapes=(channels, window, window),
            strides=(channels, stride, stride),
            baselines=0.0,
            target=index,
        ),
        "smoothgrad": lambda data: NoiseTunnel(Saliency(net)).attribute(
            data, nt_type="smoothgrad", nt_samples=samples, stdevs=sigma, target=index, abs=False
        ),
        "integrated_gradients": lambda data: IntegratedGradients(net).attribute(
            data, baselines=0.0, target=index, n_steps=steps, method="riemann_right"
        ),
    }


def compare(title: str, net, image, index: int, repeats: int) -> None:
    data = net.preprocess(image[None])
    layer = cs.cam_layer(net)
    samples, steps = cs.suggested_counts(net)
    window, stride = cs.occlusion_windows(image.shape[-1])
    # Both sides start from the image in [0, 1]: `cs.explain` preprocesses it, so Captum's side
    # does too (a tensor made once and reused would stay in the cache: ~0.1 ms on the digits)
    theirs = {
        method: (lambda run=run: run(net.preprocess(image[None])))
        for method, run in captum_methods(
            net, index, layer, samples, steps, window, stride, data
        ).items()
    }

    def forward():
        with torch.no_grad():
            return net(data)

    actions = {"forward pass": forward}
    for method in cs.METHODS:
        actions[method] = lambda m=method: cs.explain(net, image, index, m)
        actions[f"Captum {method}"] = theirs[method]
    medians = interleaved_medians(actions, repeats)
    once = medians["forward pass"]
    print(
        f"{title}: SmoothGrad {samples} samples, integrated gradients {steps} steps, "
        f"occlusion {window}-pixel squares {stride} apart; one forward pass {once * 1000:.2f} ms"
    )
    print(f"  {'method':22s} {'ours':>10s} {'Captum':>10s} {'ours/Captum':>12s} {'x forward':>10s}")
    for method in cs.METHODS:
        ours, captum = medians[method], medians[f"Captum {method}"]
        print(
            f"  {method:22s} {ours * 1000:8.1f}ms {captum * 1000:8.1f}ms {ours / captum:11.2f}x "
            f"{ours / once:9.1f}x"
        )


def main() -> None:
    warnings.filterwarnings("ignore", module="captum")  # its notes on requires_grad and hooks
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats, digits only")
    args = parser.parse_args()
    cs.seed_everything(0)
    digits, labels = cs.load_digits("heldout")
    net = cs.load_model("digits")
    compare("digits, 28x28", net, digits[3], int(labels[3]), 5 if args.quick else 21)
    if not args.quick:
        alexnet = cs.load_model("alexnet", weights="random")
        photo = F.interpolate(cs.load_photo("chelsea")[None], size=(224, 224))[0]
        compare("random AlexNet, 224x224", alexnet, photo, 281, 9)

    with contextlib.redirect_stdout(io.StringIO()):
        widget = cs.explain_widget(net, digits[:50], labels[:50], "gradient", 0)
    controls = {child.description: child for child in widget.children[:-1]}
    print("explain widget on the digits: a new method, then a new image (each computed anew)")
    for method in cs.METHODS:
        with contextlib.redirect_stdout(io.StringIO()):  # the figure's text form, outside Jupyter
            start = time.perf_counter()
            controls["method"].value = method
            middle = time.perf_counter()
            controls["image"].value = (controls["image"].value + 1) % 50
            end = time.perf_counter()
        print(f"  {method:22s} {(middle - start) * 1000:7.1f} ms, {(end - middle) * 1000:7.1f} ms")

    scorer = cs.sliding_classifier(net)
    start = time.perf_counter()
    blob_shapes(scorer, (1, 1, 32, 64))
    pass_time = time.perf_counter() - start
    largest_blob(scorer, (1, 32, 64))
    start = time.perf_counter()
    largest_blob(scorer, (1, 32, 64))
    kept = time.perf_counter() - start
    print(
        f"meta-device shape pass {pass_time * 1000:.1f} ms; kept largest blob "
        f"{kept * 1000:.3f} ms ({pass_time / kept:.0f}x less for every explanation of a scene)"
    )


if __name__ == "__main__":
    main()
