"""The network definitions: a small digit classifier and three ImageNet classics.

`caffenet` follows BVLC's reference model (Caffe's deploy.prototxt); `alexnet` and `vgg16`
follow torchvision's layouts and parameter names, so a torchvision checkpoint loads with
`load_state_dict`. Every model is a `Net` whose forward pass applies its leaf layers in order,
with Caffe's layer names (`conv1`, `relu1`, `pool1`, ..., `fc8`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import nn

from convscope.core.net import Net

DIGIT_INPUT_SIZE = (1, 28, 28)


def _conv_block(
    index: int, in_channels: int, out_channels: int, kernel: int, padding: int, pool: nn.Module
) -> list[tuple[str, nn.Module]]:
    """conv -> ReLU -> max-pool, named `conv{i}`, `relu{i}`, `pool{i}`."""
    return [
        (f"conv{index}", nn.Conv2d(in_channels, out_channels, kernel, padding=padding)),
        (f"relu{index}", nn.ReLU()),
        (f"pool{index}", pool),
    ]


def _classifier_head(
    in_features: int, hidden: int, num_classes: int
) -> list[tuple[str, nn.Module]]:
    """flatten -> fc6 -> relu6 -> drop6 -> fc7 -> relu7 -> drop7 -> fc8, as in CaffeNet."""
    return [
        ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(in_features, hidden)),
        ("relu6", nn.ReLU()),
        ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Linear(hidden, hidden)),
        ("relu7", nn.ReLU()),
        ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(hidden, num_classes)),
    ]


def digit_net(class_names: Sequence[str], preprocess: Callable, num_classes: int = 10) -> Net:
    """A CaffeNet-shaped classifier for 28x28 digits: three conv blocks and three fc layers.

    No convolution pads its input, so the net is exactly a sliding-window classifier once its
    fc layers are cast to convolutions (notebook 03): zero padding would make each window
    depend on what lies around it. Kernels are odd, so unit centres stay on whole pixels and
    FCN's crops align (notebook 04). Blob shapes for one `(1, 1, 28, 28)` input:
    conv1 `(1, 32, 24, 24)`, pool1 `(1, 32, 12, 12)`, conv2 `(1, 64, 8, 8)`,
    pool2 `(1, 64, 4, 4)`, conv3 `(1, 64, 2, 2)`, pool3 `(1, 64, 1, 1)`, fc6 and fc7
    `(1, 256)`, fc8 `(1, 10)`. Total stride 8; pool3's receptive field is all 28x28 pixels.
    """
    layers = OrderedDict(
        _conv_block(1, 1, 32, 5, 0, nn.MaxPool2d(2, 2))
        + _conv_block(2, 32, 64, 5, 0, nn.MaxPool2d(2, 2))
        + _conv_block(3, 64, 64, 3, 0, nn.MaxPool2d(2, 2))
        + _classifier_head(64, 256, num_classes)
    )
    return Net(
        layers,
        name="digits",
        input_size=DIGIT_INPUT_SIZE,
        class_names=class_names,
        preprocess=preprocess,
    )


def caffenet(class_names: Sequence[str], preprocess: Callable) -> Net:
    """BVLC reference CaffeNet (AlexNet as trained in Caffe) for `(N, 3, 227, 227)` BGR input.

    96 11x11 stride-4 filters in conv1, max-pooling *before* local response normalisation,
    grouped conv2/conv4/conv5 (two groups, the two GPUs of the original), ceil-mode pooling
    as Caffe rounds pooled sizes up. pool5 is `(N, 256, 6, 6)`; 60,965,224 parameters.
    """

    def pool() -> nn.Module:
        return nn.MaxPool2d(3, 2, ceil_mode=True)

    def norm() -> nn.Module:
        # Caffe's LRN divides alpha by the window size, exactly as torch's does.
        return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)

    layers = OrderedDict(
        [
            ("conv1", nn.Conv2d(3, 96, 11, stride=4)),
            ("relu1", nn.ReLU()),
            ("pool1", pool()),
            ("norm1", norm()),
            ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=2)),
            ("relu2", nn.ReLU()),
            ("pool2", pool()),
            ("norm2", norm()),
            ("conv3", nn.Conv2d(256, 384, 3, padding=1)),
            ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=2)),
            ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=2)),
            ("relu5", nn.ReLU()),
            ("pool5", pool()),
        ]
        + _classifier_head(256 * 6 * 6, 4096, 1000)
    )
    return Net(
        layers,
        name="caffenet",
        input_size=(3, 227, 227),
        class_names=class_names,
        preprocess=preprocess,
    )


def alexnet(class_names: Sequence[str], preprocess: Callable) -> Net:
    """torchvision's AlexNet (one-GPU variant, 64 conv1 filters) for `(N, 3, 224, 224)`.

    Parameter names match torchvision (`features.0.weight`, ..., `classifier.6.bias`);
    61,100,840 parameters. Layers answer to Caffe's names (`conv1` is `features.0`).
    """
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
    )
    classifier = nn.Sequential(
        nn.Dropout(0.5),
        nn.Linear(256 * 6 * 6, 4096),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, 1000),
    )
    feature_names = [
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
        "conv3",
        "relu3",
        "conv4",
        "relu4",
        "conv5",
        "relu5",
        "pool5",
    ]
    classifier_names = ["drop5", "fc6", "relu6", "drop6", "fc7", "relu7", "fc8"]
    return _torchvision_layout(
        "alexnet",
        features,
        6,
        classifier,
        feature_names,
        classifier_names,
        class_names,
        preprocess,
        input_size=(3, 224, 224),
    )


def vgg16(class_names: Sequence[str], preprocess: Callable) -> Net:
    """torchvision's VGG16 (configuration D, no batch norm) for `(N, 3, 224, 224)`.

    Parameter names match torchvision; 138,357,544 parameters. Layers answer to Caffe's
    names (`conv1_1`, `relu1_1`, ..., `pool5`, `fc6`, ..., `fc8`).
    """
    widths = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    modules: list[nn.Module] = []
    feature_names: list[str] = []
    in_channels = 3
    for block, block_widths in enumerate(widths, start=1):
        for index, width in enumerate(block_widths, start=1):
            modules += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()]
            feature_names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            in_channels = width
        modules.append(nn.MaxPool2d(2, 2))
        feature_names.append(f"pool{block}")
    classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(4096, 1000),
    )
    classifier_names = ["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]
    return _torchvision_layout(
        "vgg16",
        nn.Sequential(*modules),
        7,
        classifier,
        feature_names,
        classifier_names,
        class_names,
        preprocess,
        input_size=(3, 224, 224),
    )


def _torchvision_layout(
    name: str,
    features: nn.Sequential,
    pooled_size: int,
    classifier: nn.Sequential,
    feature_names: list[str],
    classifier_names: list[str],
    class_names: Sequence[str],
    preprocess: Callable,
    input_size: tuple[int, int, int],
) -> Net:
    """Assemble `features -> avgpool -> flatten -> classifier` with Caffe names for each leaf."""
    caffe_names = {f"features.{i}": n for i, n in enumerate(feature_names)}
    caffe_names.update({f"classifier.{i}": n for i, n in enumerate(classifier_names)})
    layers = OrderedDict(
        [
            ("features", features),
            ("avgpool", nn.AdaptiveAvgPool2d((pooled_size, pooled_size))),
            ("flatten", nn.Flatten()),
            ("classifier", classifier),
        ]
    )
    return Net(
        layers,
        name=name,
        input_size=input_size,
        class_names=class_names,
        preprocess=preprocess,
        caffe_names=caffe_names,
    )
