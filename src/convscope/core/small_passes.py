"""Small passes on the CPU run without oneDNN.

PyTorch sends most CPU convolutions to oneDNN, whose set-up per call outweighs the work when
the input is one digit or a few: a saliency map of one 28×28 digit (forward and backward
pass) took 1.3 ms through oneDNN and 0.85 ms through PyTorch's own convolutions (im2col and a
matrix product), measured on a two-core Xeon with two threads. From about two 64×64 inputs
upwards oneDNN is the faster (16,384 values: 9.5 against 11.3 ms; AlexNet at 224×224: 35
against 41 ms). `small_pass` therefore switches oneDNN off for a pass whose input holds at
most `SMALL_PASS_VALUES` numbers on the CPU, and restores the switch after.
Both paths compute the same convolutions; they differ in float32 rounding only (tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

# the measured crossover above: eight to twelve digits, or one 64×128 scene, still gain
SMALL_PASS_VALUES = 8192


@contextmanager
def small_pass(data: torch.Tensor) -> Iterator[bool]:
    """Within the block, PyTorch's own convolutions replace oneDNN's when `data` (the pass's
    input on the model's device, any shape) is on the CPU and holds at most
    `SMALL_PASS_VALUES` numbers.

    Yields whether it switched oneDNN off. The switch is PyTorch's global one
    (`torch.backends.mkldnn.enabled`): a forward and backward pass inside the block both
    follow it; it is restored on leaving, even after an error.
    """
    before = torch.backends.mkldnn.enabled
    switch = before and data.device.type == "cpu" and data.numel() <= SMALL_PASS_VALUES
    if not switch:
        yield False
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield True
    finally:
        torch.backends.mkldnn.enabled = before
