"""Modified backward passes: the ReLU rules of the deconvnet and of guided backpropagation.

Both keep the forward pass and change only what a ReLU sends back. With x the ReLU's input
and g the gradient arriving from above:

- gradient (the true one): g · [x > 0], the forward pass's mask;
- deconvnet (Zeiler & Fergus 2014): max(g, 0), the signal coming back rectified;
- guided backpropagation (Springenberg et al. 2015): max(g, 0) · [x > 0], both at once.

Max-pooling and convolutions keep their true backward passes: the switches, the transposed
filters. `modified_backward` swaps the rule in for every ReLU of a model, for a `Net` and a
`GraphNet` alike, and restores the model on leaving.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from convscope.core.errors import unknown_name

RULES = ("gradient", "deconvnet", "guided")


class RectifiedReLU(torch.autograd.Function):
    """ReLU forward; the backward pass applies a ReLU to the incoming gradient (deconvnet)."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, gradient):
        return gradient.clamp(min=0)


class GuidedReLU(torch.autograd.Function):
    """ReLU forward; backward: the incoming gradient rectified and masked by `x > 0`."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, gradient):
        (x,) = ctx.saved_tensors
        return gradient.clamp(min=0) * (x > 0)


class Transparent(torch.autograd.Function):
    """A normalisation layer forward; the backward pass lets the gradient through."""

    @staticmethod
    def forward(ctx, x, module):
        return module(x)

    @staticmethod
    def backward(ctx, gradient):
        return gradient, None


_FUNCTIONS = {"deconvnet": RectifiedReLU, "guided": GuidedReLU}


@contextmanager
def modified_backward(model: nn.Module, rule: str) -> Iterator[nn.Module]:
    """Within the block every `nn.ReLU` of `model` sends back by `rule` (one of `RULES`).

    The forward values are unchanged. In-place ReLUs run out of place meanwhile (an in-place
    ReLU would leave its own true backward step in the graph); hooks and flags are restored on
    leaving, even after an error.
    """
    if rule not in RULES:
        raise unknown_name("rule", rule, RULES)
    if rule == "gradient":
        yield model
        return
    function = _FUNCTIONS[rule]
    relus = [module for module in model.modules() if isinstance(module, nn.ReLU)]
    flags = [relu.inplace for relu in relus]
    handles = []
    try:
        for relu in relus:
            relu.inplace = False
            handles.append(relu.register_forward_hook(lambda m, args, out: function.apply(args[0])))
        yield model
    finally:
        for handle in handles:
            handle.remove()
        for relu, flag in zip(relus, flags):
            relu.inplace = flag
