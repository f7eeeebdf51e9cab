"""Bilinear upsampling as a transposed convolution, as FCN initialises its `upscore` layers.

A transposed convolution with stride `s` and kernel `k` maps `(N, C, H, W)` to
`(N, C', (H - 1) * s + k - 2p, (W - 1) * s + k - 2p)` for padding `p`. Filled with the bilinear
kernel (`bilinear.bilinear_kernel`, FCN's `surgery.upsample_filt`), it interpolates; how
exactly it relates to `F.interpolate` is worked out in `interpolate_equivalent`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from convscope.core.arguments import positive
from convscope.core.bilinear import bilinear_all_pairs_, bilinear_diagonal_, bilinear_kernel
from convscope.core.errors import ConvscopeError
from convscope.core.plotting import show_panels


def bilinear_grouped(
    channels: int, kernel_size: int, stride: int, padding: int = 0
) -> nn.ConvTranspose2d:
    """The grouped form, what Caffe's bilinear filler gives a `Deconvolution` with `group: C`.

    Args:
        channels: `C`; the layer has `groups=C`, weight `(C, 1, k, k)`, one filter per channel.
        kernel_size: `k`; stride: `s`; padding: `p`.

    Returns:
        An `nn.ConvTranspose2d` without bias mapping `(N, C, H, W)` to
        `(N, C, (H - 1) * s + k - 2p, (W - 1) * s + k - 2p)`; equal to `bilinear_diagonal_`.
    """
    channels, stride = positive("channels", channels), positive("stride", stride)
    kernel = bilinear_kernel(kernel_size)
    layer = nn.ConvTranspose2d(
        channels, channels, kernel_size, stride, padding, groups=channels, bias=False
    )
    with torch.no_grad():
        layer.weight.copy_(kernel.expand_as(layer.weight))
    return layer


def _grouped_upsample(x: torch.Tensor, factor: int, kernel_size: int, padding: int) -> torch.Tensor:
    """The grouped bilinear transposed convolution of `x` `(N, C, H, W)`, stride `factor`."""
    if x.dim() != 4:
        raise ConvscopeError(f"expected an (N, C, H, W) tensor; got shape {tuple(x.shape)}")
    kernel = bilinear_kernel(kernel_size, x.dtype).to(x.device)
    weight = kernel.expand(x.shape[1], 1, kernel_size, kernel_size)
    return F.conv_transpose2d(x, weight, stride=factor, padding=padding, groups=x.shape[1])


def upsample_bilinear(x: torch.Tensor, factor: int) -> torch.Tensor:
    """FCN's layout: kernel `2 * factor`, stride `factor`, no padding (FCN crops afterwards).

    Args:
        x: `(N, C, H, W)`.
        factor: integer upsampling factor `s` >= 1.

    Returns:
        `(N, C, (H + 1) * s, (W + 1) * s)`, i.e. `(H - 1) * s + 2s` with no padding. For even
        `s`, cropping `s // 2` from each side gives the values of `interpolate_equivalent(x, s)`;
        for odd `s` the grid is half a pixel off and no crop matches `F.interpolate`.
    """
    positive("upsampling factor", factor)
    return _grouped_upsample(x, factor, 2 * factor, padding=0)


def interpolate_equivalent(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The transposed convolution that reproduces `F.interpolate(..., align_corners=False)`.

    Kernel `2s - s % 2`, stride `s`, padding `s // 2` give `(N, C, H * s, W * s)`, and the result
    equals `F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)` (up to float
    rounding) everywhere except the outer `s // 2` rows and columns. There the source coordinate
    `(o + 0.5) / s - 0.5` falls outside `[0, H - 1]`: `F.interpolate` clamps it to the edge pixel,
    the convolution weighs in the zeros beyond the edge and fades the border. Precisely, the
    result everywhere equals `F.interpolate` of `x` zero-padded by one pixel, with `s` rows and
    columns cropped from each side. For `s = 1` it is the identity.

    Args:
        x: `(N, C, H, W)`.
        factor: integer upsampling factor `s` >= 1.

    Returns:
        `(N, C, H * s, W * s)`.
    """
    positive("upsampling factor", factor)
    return _grouped_upsample(x, factor, 2 * factor - factor % 2, padding=factor // 2)


def show_upsampling_forms(x: torch.Tensor, factor: int) -> Figure:
    """Each channel of `x` `(1, C, H, W)` upsampled three ways, one row per form.

    Rows: the diagonal (FCN's surgery) and grouped forms keep channel i in output channel i;
    the all-pairs pitfall makes every output channel the same upsampled sum of all channels.
    """
    channels = x.shape[1]
    forms = {
        "diagonal": bilinear_diagonal_(
            nn.ConvTranspose2d(channels, channels, 2 * factor, factor, bias=False)
        ),
        "grouped": bilinear_grouped(channels, 2 * factor, factor),
        "all pairs": bilinear_all_pairs_(
            nn.ConvTranspose2d(channels, channels, 2 * factor, factor, bias=False)
        ),
    }
    panels = [("input " + str(c), x[0, c]) for c in range(channels)]
    with torch.no_grad():
        for name, layer in forms.items():
            out = layer(x)[0]
            panels += [(f"{name}: out {c}", out[c]) for c in range(channels)]
    return show_panels(panels, columns=channels, size=1.9)
