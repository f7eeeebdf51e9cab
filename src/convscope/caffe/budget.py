"""The memory budget of a Caffe net: parameters plus one forward pass, checked on the meta
device before anything is allocated."""

from __future__ import annotations

import os

from convscope.caffe.schema import CaffeFormatError
from convscope.core.meta import meta_blobs
from convscope.core.net import LayeredModel

# The largest net built, parameters plus one forward pass's blobs at the prototxt's input
# shape, in bytes (4 GiB: VGG16 needs 0.6 GB, FCN-8s at 500x500 about 2 GB); change it with
# the environment variable CONVSCOPE_MAX_NET_BYTES.
MAX_NET_BYTES = 4 * 1024**3


def max_net_bytes() -> int:
    """The memory budget in force: `$CONVSCOPE_MAX_NET_BYTES`, else `MAX_NET_BYTES`."""
    return int(os.environ.get("CONVSCOPE_MAX_NET_BYTES", MAX_NET_BYTES))


def net_bytes(model: LayeredModel, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Bytes of each layer's parameters plus its output blob, for one pass of `input_shape`
    `(N, C, H, W)`, computed on the meta device (nothing is allocated). `"data"` is the input."""
    blobs = meta_blobs(model, input_shape)
    found = {}
    for blob, tensor in blobs.items():
        module = dict(model.named_layers()).get(blob)
        weights = [*module.parameters(), *module.buffers()] if module is not None else []
        found[blob] = tensor.numel() * tensor.element_size() + sum(
            p.numel() * p.element_size() for p in weights
        )
    return found


def check_memory(model: LayeredModel, input_shape: tuple[int, ...]) -> None:
    """Refuse a net whose parameters and blobs need more than `max_net_bytes()`.

    Raises:
        CaffeFormatError: naming the total, the limit and the layer that needs the most.
    """
    needed = net_bytes(model, input_shape)
    total, limit = sum(needed.values()), max_net_bytes()
    if total > limit:
        largest = max(needed, key=needed.get)
        raise CaffeFormatError(
            f"the net needs {total:,} bytes for its parameters and one pass at {input_shape}, "
            f"over the limit of {limit:,} (CONVSCOPE_MAX_NET_BYTES); layer {largest!r} alone "
            f"needs {needed[largest]:,}"
        )
