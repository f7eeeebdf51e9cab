"""The bilinear kernel: the one that Caffe's filler, FCN's surgery and the lessons all use,
and FCN's two ways of writing it into a transposed convolution (one right, one a pitfall).

With `f = ceil(k / 2)` and centre `c = (k - 1) / 2`, entry `(y, x)` of the `k`×`k` kernel is
`(1 - |x - c| / f) * (1 - |y - c| / f)`. This is Caffe's `BilinearFiller` (filler.hpp writes it
as `1 - |x / f - (k - 1) / (2f)|`) and FCN's `surgery.upsample_filt` (which writes the centre as
`f - 1` for odd `k` and `f - 0.5` for even `k`, the same number), for every size `k`.
"""

from __future__ import annotations

import torch
from torch import nn

from convscope.core.arguments import positive
from convscope.core.errors import ConvscopeError


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
    size = positive("kernel size", size)
    factor = (size + 1) // 2  # ceil(size / 2)
    center = (size - 1) / 2
    tent = 1 - (torch.arange(size, dtype=torch.float64) - center).abs() / factor
    return torch.outer(tent, tent).to(dtype)


def _square_kernel_side(layer: nn.ConvTranspose2d, need_equal_channels: bool) -> int:
    """The kernel side of a `groups=1` transposed convolution with a square kernel."""
    if not isinstance(layer, nn.ConvTranspose2d):
        raise ConvscopeError(f"expected an nn.ConvTranspose2d; got {type(layer).__name__}")
    shape = tuple(layer.weight.shape)  # (in_channels, out_channels // groups, k, k)
    if layer.groups != 1 or shape[2] != shape[3]:
        raise ConvscopeError(
            f"bilinear surgery needs groups=1 and a square kernel; got groups={layer.groups}, "
            f"weight shape {shape} (in, out, kH, kW)"
        )
    if need_equal_channels and shape[0] != shape[1]:
        raise ConvscopeError(
            f"diagonal bilinear surgery needs in_channels == out_channels; got weight shape "
            f"{shape} (in, out, kH, kW): use bilinear_grouped for one filter per channel"
        )
    return shape[2]


@torch.no_grad()
def _fill_(layer: nn.ConvTranspose2d, kernel: torch.Tensor, diagonal: bool) -> None:
    """Write `kernel` on the diagonal pairs (i, i) or on every pair (i, j); zero the rest."""
    layer.weight.zero_()
    if diagonal:
        channels = torch.arange(layer.weight.shape[0])
        layer.weight[channels, channels] = kernel.to(layer.weight)
    else:
        layer.weight.copy_(kernel.expand_as(layer.weight))
    if layer.bias is not None:
        layer.bias.zero_()


def bilinear_diagonal_(layer: nn.ConvTranspose2d) -> nn.ConvTranspose2d:
    """FCN's `surgery.interp`: input channel i feeds only output channel i, by bilinear kernel.

    Args:
        layer: a transposed convolution with weight `(C, C, k, k)`, `groups=1`; changed in place.
            Every off-diagonal pair `(i, j)` becomes zero, and so does the bias if there is one.

    Returns:
        The same `layer`, which now upsamples `(N, C, H, W)` channel by channel.
    """
    _fill_(layer, bilinear_kernel(_square_kernel_side(layer, True)), diagonal=True)
    return layer


def bilinear_all_pairs_(layer: nn.ConvTranspose2d) -> nn.ConvTranspose2d:
    """The pitfall: the bilinear kernel in every pair `(i, j)`, not only on the diagonal.

    Every output channel is then the same map: the upsampled sum of all input channels.

    Args:
        layer: a transposed convolution with weight `(C_in, C_out, k, k)`, `groups=1`; changed in
            place, bias (if any) set to zero.

    Returns:
        The same `layer`.
    """
    _fill_(layer, bilinear_kernel(_square_kernel_side(layer, False)), diagonal=False)
    return layer
