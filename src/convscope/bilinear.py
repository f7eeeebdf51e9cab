"""The bilinear kernel: the one that Caffe's filler, FCN's surgery and the lessons all use.

With `f = ceil(k / 2)` and centre `c = (k - 1) / 2`, entry `(y, x)` of the `k`×`k` kernel is
`(1 - |x - c| / f) * (1 - |y - c| / f)`. This is Caffe's `BilinearFiller` (filler.hpp writes it
as `1 - |x / f - (k - 1) / (2f)|`) and FCN's `surgery.upsample_filt` (which writes the centre as
`f - 1` for odd `k` and `f - 0.5` for even `k`, the same number), for every size `k`.
"""

from __future__ import annotations

import torch

from .errors import ConvscopeError


def bilinear_kernel(size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The bilinear kernel of side `size`: two 1-D tents multiplied, peak at the centre.

    Args:
        size: side `k` of the kernel, at least 1; `2 * s - s % 2` upsamples by a factor `s`.
        dtype: the floating dtype of the result (the values are computed in float64).

    Returns:
        A `(size, size)` tensor, e.g. the 1-D profile 0.25, 0.75, 0.75, 0.25 for size 4 and
        0.5, 1, 0.5 for size 3.

    Raises:
        ConvscopeError: `size` is not an integer >= 1.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConvscopeError(f"kernel size must be an integer >= 1; got {size!r}")
    factor = (size + 1) // 2  # ceil(size / 2)
    center = (size - 1) / 2
    tent = 1 - (torch.arange(size, dtype=torch.float64) - center).abs() / factor
    return torch.outer(tent, tent).to(dtype)
