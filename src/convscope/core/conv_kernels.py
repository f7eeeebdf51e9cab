"""Which kernels compute a convolution on the CPU: oneDNN's or PyTorch's own.

PyTorch sends most CPU convolutions to oneDNN. Two kinds of step run faster on PyTorch's own
kernels (im2col and a matrix product), measured on a two-core Xeon (AVX-512) with two threads:

- A small pass, where oneDNN's set-up per call outweighs the work. One 28×28 digit's
  saliency map (forward and backward pass) took 1.3 ms through oneDNN and 0.85 ms without
  it. From about two 64×64 inputs upwards oneDNN is the faster (16,384 values: 9.5 against
  11.3 ms; AlexNet at 224×224: 35 against 41 ms). `small_pass` switches oneDNN off for a
  pass whose input holds at most `SMALL_PASS_VALUES` numbers, and restores the switch after.
- The gradient with respect to an image through the first convolution, whose input has one
  or three channels. oneDNN computes that step (its "backward data") 1.5 to 6 times slower
  than PyTorch's own kernels: AlexNet's conv1 took 3.1 ms against 2.0 ms for one image and
  35 ms against 12 ms for ten; VGG16's conv1_1 4.8 against 1.7 ms for one image and 79
  against 14 ms for ten; EfficientNet-Lite0's stem 8.3 against 2.6 ms for ten. Its forward
  step and every other convolution's steps are faster on oneDNN. `input_gradient` therefore
  switches oneDNN off for the backward pass's last step alone, from a hook on the first
  convolution's output. Splitting the pass in two there instead (two calls of autograd)
  cost more than it saved: the second call found none of the first one's memory to reuse.

Both kernels compute the same sums; they differ in float32 rounding only (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from convscope.core.inspection import forward_hooks
from convscope.core.net import LayeredModel

# the measured crossover above: eight to twelve digits, or one 64×128 scene, still gain
SMALL_PASS_VALUES = 8192
# the first convolutions measured above read 1 (the digits) or 3 (photos) channels
FEW_CHANNELS = 4


@contextmanager
def switch_kept() -> Iterator[None]:
    """On leaving the block, oneDNN's switch (`torch.backends.mkldnn.enabled`, PyTorch's
    global one) is back as it was on entering, even after an error."""
    before = torch.backends.mkldnn.enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


@contextmanager
def own_kernels() -> Iterator[None]:
    """Within the block, convolutions run on PyTorch's own kernels, not oneDNN's: the switch
    is read when each step runs (a backward step too) and restored on leaving."""
    with switch_kept():
        torch.backends.mkldnn.enabled = False
        yield


def on_onednn(data: torch.Tensor) -> bool:
    """Whether a convolution of `data` would run on oneDNN: on the CPU, with the switch on."""
    return data.device.type == "cpu" and torch.backends.mkldnn.enabled


@contextmanager
def small_pass(data: torch.Tensor) -> Iterator[bool]:
    """Within the block, PyTorch's own convolutions replace oneDNN's when `data` (the pass's
    input on the model's device, any shape) is on the CPU and holds at most
    `SMALL_PASS_VALUES` numbers.

    Yields whether it switched oneDNN off. A forward and backward pass inside the block both
    follow the switch; it is restored on leaving, even after an error.
    """
    if not (on_onednn(data) and data.numel() <= SMALL_PASS_VALUES):
        yield False
        return
    with own_kernels():
        yield True


def first_convolution(model: LayeredModel) -> nn.Conv2d | None:
    """The convolution that reads the model's input, when it is the only layer that does and
    its input has at most `FEW_CHANNELS` channels (an image's); otherwise None."""
    readers = model.input_modules
    if len(readers) != 1 or not isinstance(readers[0], nn.Conv2d):
        return None
    return readers[0] if readers[0].in_channels <= FEW_CHANNELS else None


Outputs = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def input_gradient(model: LayeredModel, data: torch.Tensor, outputs: Outputs) -> torch.Tensor:
    """The gradient that `outputs` send back to x = `data`, on the faster kernels each step.

    Args:
        model: the network `outputs` runs.
        data: its input `(N, C, H, W)` on the model's device.
        outputs: runs `model`'s forward pass on its argument and returns `(values, seed)`:
            the gradient is `torch.autograd.grad(values, x, seed)`
            (`class_scores.chosen_scores` of each image's own class).

    Returns:
        `(N, C, H, W)`, on the model's device. A small pass runs without oneDNN
        (`small_pass`); otherwise, when the model starts with a convolution of an image
        (`first_convolution`), its backward step runs on PyTorch's own kernels and every
        other convolution step on oneDNN. One backward pass either way; oneDNN's switch is restored.
    """
    data = data.detach().requires_grad_(True)
    with small_pass(data) as small, torch.enable_grad(), switch_kept():
        first = None if small or not on_onednn(data) else first_convolution(model)
        with forward_hooks(model, [] if first is None else [(first, _own_kernels_below)]):
            values, seed = outputs(data)
        (gradient,) = torch.autograd.grad(values, data, seed)
    return gradient


def _own_kernels_below(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
    """The first convolution's forward hook: once the gradient reaching its output is
    complete (everything above has sent its part back, and only the convolution's own step
    and what lies below it remain), oneDNN is switched off for the rest of the pass."""
    if out.requires_grad:
        out.register_hook(_switch_off)


def _switch_off(gradient: torch.Tensor) -> None:
    torch.backends.mkldnn.enabled = False
