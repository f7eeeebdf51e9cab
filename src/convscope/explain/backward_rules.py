"""Modified backward passes: the ReLU rules of the deconvnet and of guided backpropagation.

Both keep the forward pass and change only what a ReLU sends back. With x the ReLU's input
and g the gradient arriving from above:

- gradient (the true one): g · [x > 0], the forward pass's mask;
- deconvnet (Zeiler & Fergus 2014): max(g, 0), the signal coming back rectified;
- guided backpropagation (Springenberg et al. 2015): max(g, 0) · [x > 0], both at once.

A ReLU6 (EfficientNet-Lite's) is min(max(x, 0), 6): its own gradient's mask is
[0 < x < 6], which guided backpropagation keeps; the deconvnet ignores the forward pass.

Max-pooling and convolutions keep their true backward passes: the switches, the transposed
filters. Under the deconvnet's rule, normalisation layers (LRN, batch norm) pass the signal
back unchanged, as lesson 05's deconvnet does. `modified_backward` swaps the rules in for a
`Net` and a `GraphNet` alike, and restores the model on leaving; `projection_by_rule` walks
back from any layer's output by any rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import unknown_name
from convscope.core.inspection import forward_hooks
from convscope.core.net import LayeredModel

RULES = ("gradient", "deconvnet", "guided")


class RectifiedReLU(torch.autograd.Function):
    """ReLU forward (capped at `top`: ReLU6); the backward pass applies a ReLU to the incoming
    gradient (deconvnet)."""

    @staticmethod
    def forward(ctx, x, top):
        return x.clamp(min=0, max=top)

    @staticmethod
    def backward(ctx, gradient):
        return gradient.clamp(min=0), None


class PassedBack(torch.autograd.Function):
    """Forward: a layer's output `y` as computed; backward: the gradient straight to the
    layer's input `x`, as if the layer were the identity (normalisation under the deconvnet)."""

    @staticmethod
    def forward(ctx, x, y):
        return y.clone()

    @staticmethod
    def backward(ctx, gradient):
        return gradient, None


# normalisation: what the deconvnet passes back unchanged (lesson 05's walk and this rule alike)
NORMALISATION = (nn.LocalResponseNorm, nn.BatchNorm2d)
RECTIFIERS = (nn.ReLU, nn.ReLU6)  # the layers whose backward step a rule replaces


def _top(module: nn.Module) -> float:
    """Where a rectifier caps its output: 6 for ReLU6, never for ReLU."""
    return 6.0 if isinstance(module, nn.ReLU6) else float("inf")


def _rectify_incoming(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
    """A rectifier's forward hook under guided backpropagation: the gradient arriving at its
    output is rectified, then the layer's own backward step masks it by `0 < x < top`
    (ReLU: x > 0; ReLU6's step also zeroes x >= 6): max(g, 0) · [0 < x < top], Springenberg et al.'s
    rule, without a second forward computation or a Python backward per layer."""
    if out.requires_grad:
        out.register_hook(_rectified)


def _rectified(gradient: torch.Tensor) -> torch.Tensor:
    return gradient.clamp(min=0)


def _passed_back(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    """A normalisation layer's forward hook: its output, sending the signal back unchanged."""
    return PassedBack.apply(args[0], out.detach())


@contextmanager
def modified_backward(model: nn.Module, rule: str) -> Iterator[nn.Module]:
    """Within the block every ReLU and ReLU6 of `model` sends back by `rule` (one of `RULES`).

    The forward values are unchanged. In-place ReLUs run out of place meanwhile (an in-place
    ReLU would leave its own true backward step in the graph); hooks and flags are restored on
    leaving, even after an error.
    """
    if rule not in RULES:
        raise unknown_name("rule", rule, RULES)
    if rule == "gradient":
        yield model
        return
    relus = [module for module in model.modules() if isinstance(module, RECTIFIERS)]
    flags = [relu.inplace for relu in relus]
    if rule == "guided":  # the ReLU's own backward masks; only its incoming gradient changes
        hooks = [(relu, _rectify_incoming) for relu in relus]
    else:
        hooks = [
            (relu, lambda m, args, out: RectifiedReLU.apply(args[0], _top(m))) for relu in relus
        ]
    if rule == "deconvnet":
        hooks += [(m, _passed_back) for m in model.modules() if isinstance(m, NORMALISATION)]
    try:
        for relu in relus:
            relu.inplace = False
        with forward_hooks(model, hooks):
            yield model
    finally:
        for relu, flag in zip(relus, flags):
            relu.inplace = flag


def projection_by_rule(
    model: LayeredModel, data: torch.Tensor, layer: str, signal: torch.Tensor, rule: str
) -> torch.Tensor:
    """∂(signal · `layer`'s output)/∂input with every ReLU sending back by `rule`.

    Args:
        data: one preprocessed input `(1, C, H, W)`.
        layer: any layer of the model; signal: a tensor shaped like its output.
        rule: one of `RULES` (`"deconvnet"` is lesson 05's projection, `"gradient"` the
            true gradient, `"guided"` guided backpropagation's).

    Returns:
        `(C, H, W)`, on the CPU.
    """
    module = model.layer(layer)
    kept = {}
    keep = [(module, lambda m, args, out: kept.update(out=out))]
    # registered after the rules' hooks, so a ReLU's output is kept as the rule made it
    with modified_backward(model, rule), forward_hooks(model, keep), torch.enable_grad():
        x = to_model(model, data).detach().requires_grad_(True)
        model(x)
        (gradient,) = torch.autograd.grad(kept["out"], x, grad_outputs=to_model(model, signal))
    return to_cpu(gradient[0])
