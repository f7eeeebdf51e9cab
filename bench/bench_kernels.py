"""What each saving of `input_gradients` is worth, side by side in one run.

Run: `.venv/bin/python bench/bench_kernels.py [--quick]`. For each net and batch, the median
of interleaved rounds (`timing.interleaved_medians`) of three ways to compute ∂S_c/∂input for
preprocessed inputs, each image for its own class:

- every score: the forward pass computes all the classes' scores and a one-hot gradient is
  sent back, every step on the kernels PyTorch picks (oneDNN for large passes);
- chosen rows: only each image's own class row of the last linear layer
  (`class_scores.chosen_scores`);
- rows, first step own: `input_gradients` itself, whose last backward step, through the
  first convolution, runs on PyTorch's own kernels (`conv_kernels.input_gradient`).

The ratios to "every score" are what the README states; every net has random weights except
the photo net (EfficientNet-Lite0, its trained weights from the pinned package).
"""

from __future__ import annotations

import argparse

import torch
from timing import interleaved_medians

import convscope as cs
from convscope.core.class_scores import chosen_scores
from convscope.explain.saliency import input_gradients


def every_score(net, data, indices):
    data = data.detach().requires_grad_(True)
    with torch.enable_grad():
        scores = net(data)
        seed = torch.zeros_like(scores).scatter_(1, indices[:, None], 1.0)
        (gradient,) = torch.autograd.grad(scores, data, seed)
    return gradient


def chosen_rows(net, data, indices):
    data = data.detach().requires_grad_(True)
    with torch.enable_grad():
        scores, seed = chosen_scores(net, data, indices)
        (gradient,) = torch.autograd.grad(scores, data, seed)
    return gradient


def compare(name: str, batch: int, rounds: int) -> None:
    cs.seed_everything(0)
    net = (
        cs.load_model(name)
        if name == "efficientnet_lite0"
        else cs.load_model(name, weights="random")
    )
    data = torch.randn(batch, *net.input_size)
    indices = torch.arange(batch) % len(net.class_names)
    reference = every_score(net, data, indices)
    for way in (chosen_rows, input_gradients):  # the same gradient, to float32 rounding
        error = (way(net, data, indices) - reference).abs().max() / reference.abs().max()
        assert error < 1e-5, f"{name}: {way.__name__} differs by {error:.2e} of the largest value"
    medians = interleaved_medians(
        {
            "every score": lambda: every_score(net, data, indices),
            "chosen rows": lambda: chosen_rows(net, data, indices),
            "first step own": lambda: input_gradients(net, data, indices),
        },
        rounds,
    )
    base = medians["every score"]
    print(
        f"  {name:20s} {batch:3d}  {base * 1000:9.1f} ms  "
        f"{medians['chosen rows'] / base:11.2f}x  {medians['first step own'] / base:14.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="AlexNet and the digits only")
    args = parser.parse_args()
    columns = ("every score", "chosen rows", "first step own")
    print(f"  {'net':20s} {'N':>3s}  {columns[0]:>12s}  {columns[1]:>11s}  {columns[2]:>14s}")
    cases = [("digits", 20, 41), ("alexnet", 1, 31), ("alexnet", 10, 9)]
    if not args.quick:
        cases += [("vgg16", 1, 7), ("efficientnet_lite0", 1, 21), ("efficientnet_lite0", 10, 7)]
    for name, batch, rounds in cases:
        compare(name, batch, rounds)


if __name__ == "__main__":
    main()
