"""Preprocessing between an image in [0, 1] and a network's input, and back for display.

Two conventions coexist in the lessons:

* Caffe's `caffe.io.Transformer`: RGB -> BGR (`channel_swap`), [0, 1] -> [0, 255]
  (`raw_scale`), then subtract a per-channel mean given in the network's (BGR) order.
* torchvision's normalisation: subtract a per-channel mean and divide by a standard deviation,
  both given for RGB in [0, 1].

Both work on `(C, H, W)` images and `(N, C, H, W)` batches; HWC -> CHW happens in `images`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

IMAGENET_MEAN_BGR = (104.0, 117.0, 123.0)  # Caffe's ilsvrc_2012_mean.npy, averaged per channel
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)  # torchvision's normalisation
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def _per_channel(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """Shape a per-channel vector to broadcast over `(C, H, W)` or `(N, C, H, W)`."""
    vector = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return vector.view(-1, 1, 1)


def _check_channels(image: torch.Tensor, channels: int, what: str) -> None:
    if image.dim() not in (3, 4) or image.shape[-3] != channels:
        raise ValueError(
            f"{what} expects an image (C, H, W) or batch (N, C, H, W) with C={channels}; "
            f"got shape {tuple(image.shape)}"
        )


class CaffeTransformer:
    """Caffe-style preprocessing: channel swap, raw scale, mean subtraction.

    Args:
        mean: per-channel mean, in the order of the network's channels (after the swap).
        raw_scale: the range the network expects, 255 for CaffeNet.
        channel_swap: the permutation from RGB to the network's order, `(2, 1, 0)` for BGR.
    """

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN_BGR,
        raw_scale: float = 255.0,
        channel_swap: Sequence[int] = (2, 1, 0),
    ) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.raw_scale = float(raw_scale)
        self.channel_swap = tuple(channel_swap)
        if sorted(self.channel_swap) != list(range(len(self.mean))):
            raise ValueError(
                f"channel_swap {self.channel_swap} is not a permutation of "
                f"0..{len(self.mean) - 1}, one index per mean value"
            )
        self._inverse_swap = tuple(self.channel_swap.index(i) for i in range(len(self.mean)))
        # one channel, or channels already in order: no copy (a digit's map is 2% faster)
        self._no_swap = self.channel_swap == tuple(range(len(self.mean)))

    def __call__(self, image: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Map RGB in [0, 1] to the network's input.

        Args:
            image: a tensor `(C, H, W)` or `(N, C, H, W)`, or an `(H, W, C)` NumPy array as
                `caffe.io.load_image` returned (transposed to `(C, H, W)`, Caffe's
                `set_transpose((2, 0, 1))`).

        Returns:
            `(C, H, W)` or `(N, C, H, W)` in the network's channel order and range.
        """
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
        _check_channels(image, len(self.mean), "CaffeTransformer")
        swapped = image if self._no_swap else image[..., list(self.channel_swap), :, :]
        return swapped * self.raw_scale - _per_channel(self.mean, image)

    def deprocess(self, data: torch.Tensor) -> torch.Tensor:
        """Invert `__call__`: network input -> RGB in [0, 1] (clipped), same shape."""
        _check_channels(data, len(self.mean), "CaffeTransformer.deprocess")
        unscaled = (data + _per_channel(self.mean, data)) / self.raw_scale
        return unscaled[..., list(self._inverse_swap), :, :].clamp(0.0, 1.0)

    def __repr__(self) -> str:
        return (
            f"CaffeTransformer(mean={self.mean}, raw_scale={self.raw_scale}, "
            f"channel_swap={self.channel_swap})"
        )


class Normalize:
    """torchvision-style normalisation `(x - mean) / std`, per channel, on [0, 1] input.

    Args:
        mean: per-channel mean.
        std: per-channel standard deviation.
    """

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN_RGB,
        std: Sequence[float] = IMAGENET_STD_RGB,
    ) -> None:
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} values but std has {len(std)}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Map `(C, H, W)` or `(N, C, H, W)` in [0, 1] to the network's input."""
        _check_channels(image, len(self.mean), "Normalize")
        return (image - _per_channel(self.mean, image)) / _per_channel(self.std, image)

    def deprocess(self, data: torch.Tensor) -> torch.Tensor:
        """Invert `__call__`: network input -> [0, 1] (clipped), same shape."""
        _check_channels(data, len(self.mean), "Normalize.deprocess")
        return (data * _per_channel(self.std, data) + _per_channel(self.mean, data)).clamp(0, 1)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class PassThrough:
    """No preprocessing: the image in [0, 1] is the network's input (the designer net)."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def deprocess(self, data: torch.Tensor) -> torch.Tensor:
        return data

    def __repr__(self) -> str:
        return "PassThrough()"
