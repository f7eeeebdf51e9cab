"""The largest blob is measured once per model, architecture and image shape."""

from __future__ import annotations

from torch import nn

import convscope as cs
from convscope.core.meta import BATCH_BYTES, images_per_batch, largest_blob


def test_the_largest_blob_is_measured_again_when_a_layer_changes_in_place():
    net = cs.load_model("digits", weights="random")
    assert largest_blob(net, (1, 28, 28)) == 32 * 24 * 24  # conv1's (32, 24, 24)
    sliding = cs.sliding_classifier(net)
    assert largest_blob(sliding, (1, 28, 28)) == 32 * 24 * 24
    assert largest_blob(sliding, (1, 56, 56)) == 32 * 52 * 52  # another shape, measured anew
    net.conv1 = nn.Conv2d(1, 48, 5)  # surgery in place: the kept value no longer holds
    net.relu1, net.conv2 = nn.ReLU(), nn.Conv2d(48, 64, 5)
    assert largest_blob(net, (1, 28, 28)) == 48 * 24 * 24
    assert images_per_batch(net, (1, 28, 28), 10**9) == BATCH_BYTES // (3 * 4 * 48 * 24 * 24)
