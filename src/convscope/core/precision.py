"""Numbers that hold on every CPU: float64 where it is cheap, and ties settled by one rule.

CPUs of different kinds (AVX-512, AVX2, SSE, ARM) and different thread counts add in different
orders, so a float32 result differs from machine to machine in its last bits (float32's eps
is 1.2e-7). Most printed numbers cannot see that. Three kinds of computation amplify it:

- many steps that feed on their own result (a class model's 400 steps of gradient ascent
  moved a printed score from 671.26 to 671.10 between two CPU settings of one machine);
- an argmax or a threshold over a map whose values nearly tie (the pointing game);
- counts over many scenes, where one flipped decision moves the count.

On the CPU, for nets with small inputs (the digits; bench/bench_precision.py measures the
cost: 400 class-model steps take 0.76 times as long in float64, lesson 07's 200 scenes × 8
methods 2.65 times, 10.9 s against 4.1 s on two threads), such computations run on a float64
copy of the model (`float64_where_cheap`), whose rounding (eps 2.2e-16) is
1e9 times smaller. Before an argmax or a threshold, `settled` rounds a map onto a grid far
coarser than that rounding and far finer than any difference a figure or a table can show, so
values that differ only by rounding become equal, and equal values go to the first in row
order. That makes a different answer very unlikely, not impossible: a value that lies within
rounding of a grid step's midpoint can still go either way (for float64 maps, about one
value in a million; `scripts/measure_spread.py` measures what the lessons print).
ImageNet-size nets and GPUs stay in float32 (float64 would double minutes of work); their
maps are settled on a coarser grid (`SETTLE_BITS_FLOAT32`), their outputs are not committed,
and what they print is rounded to what they can hold.
"""

from __future__ import annotations

import copy

import torch

from convscope.core.devices import device_of
from convscope.core.meta import has_large_input
from convscope.core.net import LayeredModel

# A map is settled on a grid of 2**-bits of its largest magnitude. float64: 2**-30 ≈ 9.3e-10,
# a thousand times float64's rounding of a sum of a few thousand terms (~1e-12), and a
# million times finer than the 3 decimals a table prints. float32: 2**-16 ≈ 1.5e-5, over ten
# times the rounding a float32 map carries through a net (a few 1e-7 of its maximum), still
# 60 times finer than 3 decimals.
SETTLE_BITS = 30
SETTLE_BITS_FLOAT32 = 16


def float64_where_cheap(model: LayeredModel) -> LayeredModel:
    """A float64 copy of `model` when it runs on the CPU and takes small inputs (the digits),
    else `model` itself. The model is never changed; the copy shares nothing with it.

    Every analysis function moves its input to the model's device and dtype
    (`core.devices.to_model`), so it runs in float64 on the copy.
    """
    if device_of(model).type != "cpu" or has_large_input(model):
        return model
    return copy.deepcopy(model).double()


def settled(values: torch.Tensor, bits: int | None = None) -> torch.Tensor:
    """`values` (any shape) in float64, rounded to multiples of max|values| / 2**bits: results
    that differ only by rounding become equal, so an argmax (first of equals) or a threshold
    on them gives the same answer on every CPU but in rare cases (see the module's text).
    `bits` defaults by dtype: `SETTLE_BITS` for float64, `SETTLE_BITS_FLOAT32` otherwise. An
    all-zero tensor stays zero."""
    if bits is None:
        bits = SETTLE_BITS if values.dtype == torch.float64 else SETTLE_BITS_FLOAT32
    values = values.detach().to(torch.float64)
    scale = values.abs().max()
    if scale == 0 or not torch.isfinite(scale):
        return values
    grid = scale / 2**bits
    return torch.round(values / grid) * grid
