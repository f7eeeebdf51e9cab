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


# normalisation: what the deconvnet passes back unchanged (lesson 05's walk and this rule alike)
NORMALISATION = (nn.LocalResponseNorm, nn.BatchNorm2d)
RECTIFIERS = (nn.ReLU, nn.ReLU6)  # the layers whose backward step a rule replaces


def _rectify_incoming(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
    """A rectifier's forward hook under guided backpropagation: the gradient arriving at its
    output is rectified, then the layer's own backward step masks it by `0 < x < top`
    (ReLU: x > 0; ReLU6's step also zeroes x >= 6): max(g, 0) · [0 < x < top], Springenberg
    et al.'s rule, without a second forward computation or a Python backward per layer."""
    if out.requires_grad:
        out.register_hook(_rectified)


def _rectified(gradient: torch.Tensor) -> torch.Tensor:
    return gradient.clamp(min=0)


class PassedBack(torch.autograd.Function):
    """Forward: a layer's output `out` as computed (no copy: autograd returns a view of it);
    backward: the gradient arriving there sent straight to the layer's input `x`, as if the
    layer were the identity, rectified (max(g, 0)) when `rectified` is true."""

    @staticmethod
    def forward(ctx, x, out, rectified):
        ctx.rectified = rectified
        return out

    @staticmethod
    def backward(ctx, gradient):
        return (gradient.clamp(min=0) if ctx.rectified else gradient), None, None


def _passed_back(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    """A normalisation layer's forward hook: its output, sending the signal back unchanged."""
    return PassedBack.apply(args[0], out.detach(), False)


def _rectify_passed(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    """A rectifier's forward hook under the deconvnet: its output, with the gradient arriving
    there rectified and sent straight to the input, whatever the forward pass did: max(g, 0),
    Zeiler & Fergus's rule (ReLU6 alike: its cap is ignored, as the mask is)."""
    return PassedBack.apply(args[0], out.detach(), True)


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
    rectifier_hook = _rectify_incoming if rule == "guided" else _rectify_passed
    hooks = []  # one walk over the modules (entering costs ~0.04 ms, 2% of a digit's map)
    for module in model.modules():
        if isinstance(module, RECTIFIERS):
            # guided: the ReLU's own backward masks, only its incoming gradient changes;
            # deconvnet: the ReLU's own backward step is bypassed
            hooks.append((module, rectifier_hook))
        elif rule == "deconvnet" and isinstance(module, NORMALISATION):
            hooks.append((module, _passed_back))
    relus = [module for module, hook in hooks if hook is rectifier_hook]
    flags = [relu.inplace for relu in relus]
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
