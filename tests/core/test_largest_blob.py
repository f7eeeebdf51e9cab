"""The largest blob is measured once per model, architecture and image shape."""

from __future__ import annotations

import torch
from torch import nn

import convscope as cs
from convscope.core.meta import BATCH_BYTES, images_per_batch, largest_blob


def measured(net: nn.Module, shape: tuple[int, ...]) -> int:
    """The largest output of any layer in a real forward pass of one image (hooks on every
    leaf module), not the meta-device pass the package uses."""
    sizes = [shape[0] * shape[1] * shape[2]]
    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(lambda m, i, o: sizes.append(o[0].numel())) for m in leaves]
    try:
        with torch.no_grad():
            net(torch.rand(1, *shape))
    finally:
        for handle in handles:
            handle.remove()
    return max(sizes)


def test_the_largest_blob_is_measured_again_when_a_layer_changes_in_place():
    net = cs.load_model("digits", weights="random")
    assert largest_blob(net, (1, 28, 28)) == measured(net, (1, 28, 28)) > 28 * 28
    sliding = cs.sliding_classifier(net)
    assert largest_blob(sliding, (1, 28, 28)) == measured(sliding, (1, 28, 28))
    assert largest_blob(sliding, (1, 56, 56)) == measured(sliding, (1, 56, 56))  # measured anew
    assert measured(sliding, (1, 56, 56)) > measured(sliding, (1, 28, 28))
    before = largest_blob(net, (1, 28, 28))
    net.conv1 = nn.Conv2d(1, 48, 5)  # surgery in place: the kept value no longer holds
    net.relu1, net.conv2 = nn.ReLU(), nn.Conv2d(48, 64, 5)
    assert largest_blob(net, (1, 28, 28)) == measured(net, (1, 28, 28)) > before
    # the batch holds its largest blob three times over, in float32, within the budget
    count = images_per_batch(net, (1, 28, 28), 10**9)
    blob_bytes = 3 * 4 * measured(net, (1, 28, 28))
    assert count * blob_bytes <= BATCH_BYTES < (count + 1) * blob_bytes
