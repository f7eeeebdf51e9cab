"""FCN-32s, FCN-16s and FCN-8s on VGG16 with Caffe's semantics (fcn.berkeleyvision.org).

`conv1_1` pads by 100 so that even small inputs leave a score map to crop; pooling rounds up
(Caffe); fc6 is a 7×7 convolution and fc7 a 1×1; `score_fr` scores the classes; transposed
convolutions without bias upsample (`upscore2`, `upscore_pool4`: kernel 4, stride 2;
`upscore8`: kernel 16, stride 8); `score_pool4` and `score_pool3` score the skip layers, which
are cropped and summed in; a final crop returns the input's size. Every crop offset is derived
from the coordinate maps (`shapes.derive_crop_offsets`), not typed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from convscope.core.bilinear import bilinear_diagonal_
from convscope.core.errors import unknown_name
from convscope.core.geometry import derive_crop_offsets
from convscope.core.net import Crop, GraphNet, LayeredModel, Sum
from convscope.core.transforms import CaffeTransformer
from convscope.core.transplant import transplant
from convscope.data.scenes import BACKGROUND_LABEL, SEGMENT_CLASS_NAMES

VARIANTS = ("32s", "16s", "8s")  # in order: the index is the number of skips used
VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
FCN_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)  # fcn.berkeleyvision.org's infer.py

Layer = tuple[str, nn.Module, tuple[str, ...]]


def _vgg16_trunk(first_pad: int = 100) -> list[Layer]:
    """conv1_1 ... pool5 with Caffe's names; conv1_1 pads by `first_pad`, pools round up."""
    layers: list[Layer] = []
    bottom, channels = "data", 3
    for block, (width, depth) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for index in range(1, depth + 1):
            pad = first_pad if (block, index) == (1, 1) else 1
            conv, relu = f"conv{block}_{index}", f"relu{block}_{index}"
            layers += [
                (conv, nn.Conv2d(channels, width, 3, padding=pad), (bottom,)),
                (relu, nn.ReLU(), (conv,)),
            ]
            bottom, channels = relu, width
        layers.append((f"pool{block}", nn.MaxPool2d(2, 2, ceil_mode=True), (bottom,)))
        bottom = f"pool{block}"
    return layers


def _scoring_head(
    bottom: str, channels: int, kernel: int, hidden: int, classes: int
) -> list[Layer]:
    """The cast classifier, fc6 (a `kernel`×`kernel` convolution) -> fc7 (1×1) -> score_fr."""
    return [
        ("fc6", nn.Conv2d(channels, hidden, kernel), (bottom,)),
        ("relu6", nn.ReLU(), ("fc6",)),
        ("drop6", nn.Dropout(0.5), ("relu6",)),
        ("fc7", nn.Conv2d(hidden, hidden, 1), ("drop6",)),
        ("relu7", nn.ReLU(), ("fc7",)),
        ("drop7", nn.Dropout(0.5), ("relu7",)),
        ("score_fr", nn.Conv2d(hidden, classes, 1), ("drop7",)),
    ]


def _upsample(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A transposed convolution without bias, kernel 2·factor, stride factor (FCN's upscore)."""
    return nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, bias=False)


@dataclass(frozen=True)
class Skip:
    """A finer blob whose class scores are fused into the upsampled coarse scores.

    Args:
        blob: the blob scored, e.g. `pool4`.
        channels: its channel count.
        crop_skip: FCN's way, crop the skip's scores to the upsampled map; `False` crops the
            upsampled map to the skip's scores instead (when the upsampled map is the larger).
    """

    blob: str
    channels: int
    crop_skip: bool = True


def fcn_layers(
    trunk: list[Layer],
    head: list[Layer],
    skips: Sequence[Skip],
    variant: str,
    num_classes: int,
    final: dict[str, tuple[str, int]],
) -> list[Layer]:
    """Add FCN's scoring, upsampling, cropping and skip fusion to a trunk and fc head.

    Args:
        trunk: convolution and pooling layers (ending at the last pool).
        head: the fully convolutional classifier layers ending in `score_fr`.
        skips: from coarse to fine, e.g. pool4 then pool3.
        variant: `"32s"` (no skip), `"16s"` (first skip) or `"8s"` (both skips).
        num_classes: classes scored per pixel.
        final: per variant, the last upsampling layer's name and factor, e.g.
            `{"8s": ("upscore8", 8), ...}`.
    """
    if variant not in VARIANTS:
        raise unknown_name("FCN variant", variant, VARIANTS)
    layers = trunk + head
    coarse, up = "score_fr", "upscore2"
    for skip in skips[: VARIANTS.index(variant)]:
        score = f"score_{skip.blob}"
        layers += [
            (up, _upsample(num_classes, 2), (coarse,)),
            (score, nn.Conv2d(skip.channels, num_classes, 1), (skip.blob,)),
        ]
        if skip.crop_skip:
            layers += [
                (f"{score}c", Crop(), (score, up)),
                (f"fuse_{skip.blob}", Sum(), (up, f"{score}c")),
            ]
        else:
            layers += [
                (f"{up}c", Crop(), (up, score)),
                (f"fuse_{skip.blob}", Sum(), (f"{up}c", score)),
            ]
        coarse, up = f"fuse_{skip.blob}", f"upscore_{skip.blob}"
    last, factor = final[variant]
    return layers + [
        (last, _upsample(num_classes, factor), (coarse,)),
        ("score", Crop(), (last, "data")),
    ]


def vgg16_fcn(
    variant: str = "8s",
    class_names: Sequence[str] = VOC_CLASSES,
    preprocess: Callable | None = None,
    first_pad: int = 100,
) -> GraphNet:
    """FCN-32s, FCN-16s or FCN-8s on VGG16 for PASCAL VOC's 21 classes.

    Args:
        variant: `"32s"`, `"16s"` or `"8s"`.
        class_names: the classes scored per pixel.
        preprocess: defaults to Caffe's BGR, 0-255, mean-subtracted input.
        first_pad: conv1_1's padding (FCN's 100; try 1 to see why).

    Returns:
        A `GraphNet` mapping `(N, 3, H, W)` to scores `(N, classes, H, W)`.
    """
    classes = len(class_names)
    head = _scoring_head("pool5", 512, 7, 4096, classes)
    skips = [Skip("pool4", 512), Skip("pool3", 256)]
    final = {"32s": ("upscore", 32), "16s": ("upscore16", 16), "8s": ("upscore8", 8)}
    layers = fcn_layers(_vgg16_trunk(first_pad), head, skips, variant, classes, final)
    net = GraphNet(
        layers,
        output="score",
        name=f"fcn{variant}",
        input_size=(3, 500, 500),
        class_names=class_names,
        preprocess=preprocess or CaffeTransformer(mean=FCN_MEAN_BGR),
    )
    derive_crop_offsets(net)
    return net


DIGIT_FCN_PAD = 16  # conv1's padding: the digit net's counterpart of VGG-FCN's 100


def digit_fcn(variant: str, preprocess: Callable) -> GraphNet:
    """The digit classifier as FCN-32s/16s/8s for 11-class digit segmentation.

    The same trunk as the `digits` classifier (conv1 pads by `DIGIT_FCN_PAD` so small scenes
    still leave a score map, pools round up as Caffe's), fc6 and fc7 as 1×1 convolutions,
    `score_fr` over 10 digits + background. Its strides are 8, 4 and 2 — a quarter of VGG's
    32, 16, 8 — so `"32s"` upsamples ×8 from `score_fr`, `"16s"` fuses pool2 then upsamples
    ×4, `"8s"` also fuses pool1 then upsamples ×2. Names follow FCN's.

    One difference from VGG-FCN: fc6 covers one cell here (7×7 there), so the upsampled
    scores overhang pool2's map by a pixel and are cropped to it, not the other way round.
    """
    trunk: list[Layer] = []
    bottom, channels = "data", 1
    for index, (width, kernel, pad) in enumerate([(32, 5, DIGIT_FCN_PAD), (64, 5, 0), (64, 3, 0)]):
        conv, relu, pool = (f"{kind}{index + 1}" for kind in ("conv", "relu", "pool"))
        trunk += [
            (conv, nn.Conv2d(channels, width, kernel, padding=pad), (bottom,)),
            (relu, nn.ReLU(), (conv,)),
            (pool, nn.MaxPool2d(2, 2, ceil_mode=True), (relu,)),
        ]
        bottom, channels = pool, width
    classes = len(SEGMENT_CLASS_NAMES)
    head = _scoring_head("pool3", 64, 1, 256, classes)
    skips = [Skip("pool2", 64, crop_skip=False), Skip("pool1", 32)]
    final = {"32s": ("upscore", 8), "16s": ("upscore", 4), "8s": ("upscore", 2)}
    net = GraphNet(
        fcn_layers(trunk, head, skips, variant, classes, final),
        output="score",
        name=f"digit-fcn{variant}",
        input_size=(1, 64, 64),
        class_names=SEGMENT_CLASS_NAMES,
        preprocess=preprocess,
    )
    derive_crop_offsets(net)
    return net


def init_digit_fcn(variant: str, source: LayeredModel) -> GraphNet:
    """A digit FCN initialised by net surgery, FCN's way.

    From the `digits` classifier (for `"32s"`): its conv and fc weights, fc6 and fc7 copied
    flat into their 1×1 convolutions, and fc8's ten class rows as `score_fr`'s digit rows
    (the background row starts at zero). From a trained coarser FCN (`"16s"` from `"32s"`,
    `"8s"` from `"16s"`): every layer the two share. New skip scores start at zero; every
    upsampling starts bilinear. Returned in eval mode, like `load_model`'s nets.

    Args:
        variant: `"32s"`, `"16s"` or `"8s"`.
        source: the `digits` classifier, or the trained FCN one step coarser.
    """
    net = digit_fcn(variant, source.preprocess)
    shared = [
        name
        for name in net.params
        if name in source.params and name != "upscore"  # "upscore" changes its factor
    ]
    transplant(source, net, shared)
    with torch.no_grad():
        if "fc8" in source.params:
            weight, bias = source.params["fc8"]
            net.score_fr.weight.zero_()
            net.score_fr.bias.zero_()
            digits = [i for i in range(len(SEGMENT_CLASS_NAMES)) if i != BACKGROUND_LABEL]
            net.score_fr.weight[digits] = weight.reshape(len(digits), -1, 1, 1)
            net.score_fr.bias[digits] = bias
        for name, module in net.named_layers():
            if name in shared:
                continue
            if name.startswith("score_pool") and isinstance(module, nn.Conv2d):
                module.weight.zero_()
                module.bias.zero_()
            if isinstance(module, nn.ConvTranspose2d):
                bilinear_diagonal_(module)
    return net.eval()
