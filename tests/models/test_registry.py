"""Architectures, the model registry, weights files and the shipped digit model."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F
from bounds import NET_FLOAT64, assert_within
from caffe_files import CAFFE_FILES

import convscope as cs
from convscope.core import checkpoints
from convscope.core.errors import CheckpointError, UnknownNameError, WeightsNotFoundError
from convscope.core.transforms import CaffeTransformer, Normalize
from convscope.data.datasets import DIGIT_MEAN
from convscope.models.registry import (
    WeightsSource,
    fetch_weights,
    model_kind,
    suggested_defaults,
)

# Published parameter counts: BVLC CaffeNet, torchvision AlexNet and VGG16.
PARAMETER_COUNTS = {"caffenet": 60_965_224, "alexnet": 61_100_840, "vgg16": 138_357_544}


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PARAMETER_COUNTS))
def test_imagenet_architectures_have_the_published_parameter_counts(name):
    net = cs.load_model(name, weights="random")
    assert count_parameters(net) == PARAMETER_COUNTS[name]
    assert len(net.class_names) == 1000 and net.class_names[281] == "tabby"


@pytest.mark.parametrize(
    ("name", "blob_sizes"),
    [
        ("caffenet", {"conv1": 55, "pool1": 27, "conv2": 27, "pool2": 13, "conv5": 13, "pool5": 6}),
        ("alexnet", {"conv1": 55, "pool1": 27, "pool2": 13, "pool5": 6}),
        ("vgg16", {"conv1_1": 224, "pool1": 112, "pool4": 14, "pool5": 7}),
    ],
)
def test_imagenet_blob_sizes_and_output_shape(name, blob_sizes):
    net = cs.load_model(name, weights="random")
    data = torch.zeros(1, *net.input_size, device="meta")
    table = cs.blob_table(net.to("meta"), data)
    shapes = dict(zip(table.column("blob"), table.column("shape")))
    for blob, size in blob_sizes.items():
        assert shapes[blob][-2:] == (size, size), blob
    assert shapes[net.layer_names[-1]] == (1, 1000)


def test_torchvision_parameter_names():
    alexnet = cs.load_model("alexnet", weights="random")
    vgg = cs.load_model("vgg16", weights="random")
    assert list(alexnet.state_dict())[:2] == ["features.0.weight", "features.0.bias"]
    assert list(alexnet.state_dict())[-1] == "classifier.6.bias"
    assert "features.28.weight" in vgg.state_dict() and "classifier.6.weight" in vgg.state_dict()
    assert alexnet.layer("conv1") is alexnet.features[0]
    assert vgg.layer("fc8") is vgg.classifier[6]


def test_caffenet_local_response_norm_follows_caffe_formula():
    """Caffe: b = a / (1 + alpha/n * sum over n neighbouring channels of a^2) ^ beta."""
    net = cs.load_model("caffenet", weights="random")
    x = torch.randn(1, 96, 5, 5, dtype=torch.float64)
    padded = F.pad(x.pow(2), (0, 0, 0, 0, 2, 2))
    window_sum = sum(padded[:, i : i + 96] for i in range(5))
    expected = x / (1 + 1e-4 / 5 * window_sum) ** 0.75
    # float64: five squares summed, a power and a division per value of order 1: within 1e-12
    torch.testing.assert_close(net.layer("norm1").double()(x), expected, rtol=0, atol=1e-12)


def test_model_carries_its_preprocessing():
    assert isinstance(cs.load_model("caffenet", weights="random").preprocess, CaffeTransformer)
    assert isinstance(cs.load_model("vgg16", weights="random").preprocess, Normalize)
    digits = cs.load_model("digits")
    assert digits.class_names == [str(i) for i in range(10)]
    assert digits.preprocess(torch.zeros(1, 1, 2, 2)).flatten().tolist() == pytest.approx(
        [-DIGIT_MEAN] * 4,
        abs=2**-24,  # the constant, rounded once to float32
    )


def test_digit_mean_is_the_training_split_mean():
    images, _ = cs.load_digits("train")
    # DIGIT_MEAN is stated to 4 decimals (half a unit: 5e-5); the float32 mean of 3.1e6 pixels
    # in [0, 1] adds about log2(3.1e6) ≈ 22 roundings of 6e-8 of 0.13: 2e-7
    assert abs(images.mean().item() - DIGIT_MEAN) < 5e-5 + 1e-6


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="alexnet.*vgg16") as error:
        cs.load_model("resnet50")
    assert "resnet50" in str(error.value)


def test_shipped_digit_model_reaches_98_percent(heldout):
    digits_net = cs.load_model("digits").double()  # float64 on both sides: tests/bounds.py
    images, labels = heldout
    images = images.double()
    # An independent forward pass with plain functional ops, not the module's own.
    p = {name: [t.detach() for t in ts] for name, ts in digits_net.params.items()}
    x = images - DIGIT_MEAN
    for conv in ("conv1", "conv2", "conv3"):
        x = F.max_pool2d(F.relu(F.conv2d(x, *p[conv])), 2)
    x = F.relu(F.linear(x.flatten(1), *p["fc6"]))
    scores = F.linear(F.relu(F.linear(x, *p["fc7"])), *p["fc8"])
    assert_within(cs.class_scores(digits_net, images), scores, NET_FLOAT64)
    independent = (scores.argmax(1) == labels).double().mean().item()
    assert independent >= 0.98
    # the same count of 1,000, the package's ratio rounded once to float32
    assert cs.accuracy(digits_net, images, labels) == pytest.approx(independent, abs=2**-24)


# --- weights files -------------------------------------------------------------------------


def test_checkpoint_roundtrip_for_torchvision_style_file(tmp_path):
    source = cs.load_model("alexnet", weights="random")
    path = tmp_path / "alexnet.pth"
    torch.save(source.state_dict(), path)  # what torchvision's checkpoints hold
    loaded = cs.load_model("alexnet", weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_wrapped_state_dict_is_accepted(tmp_path):
    source = cs.load_model("digits", weights="random")
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, path)
    loaded = cs.load_model("digits", weights=path)
    assert torch.equal(loaded.params["fc8"][0], source.params["fc8"][0])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_checkpoint_gives_clear_error_and_leaves_model_untouched(tmp_path, damage):
    model = cs.load_model("digits", weights="random")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    good = tmp_path / "good.pt"
    checkpoints.save_weights(cs.load_model("digits", weights="random"), good)
    bad = tmp_path / "bad.pt"
    data = good.read_bytes()
    bad.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"\x00junk" * 50, "empty": b""}[damage]
    )
    with pytest.raises(CheckpointError, match="bad.pt"):
        checkpoints.load_weights(model, bad)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_checkpoint_with_code_is_refused(tmp_path):
    """weights_only=True: a pickle that would run code is not loaded."""
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": WeightsSource("x")}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        checkpoints.read_state_dict(path)


def test_mismatched_checkpoint_names_the_key_and_both_shapes(tmp_path):
    model = cs.load_model("digits", weights="random")
    before = model.params["conv1"][0].clone()
    state = cs.load_model("digits", weights="random").state_dict()
    state["fc8.weight"] = torch.zeros(5, 256)
    path = tmp_path / "mismatch.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"fc8.weight has shape \(5, 256\).*\(10, 256\)"):
        checkpoints.load_weights(model, path)
    assert torch.equal(model.params["conv1"][0], before)


def test_save_weights_is_atomic(tmp_path, monkeypatch):
    model = cs.load_model("digits", weights="random")
    path = tmp_path / "w.pt"

    def failing_save(*args, **kwargs):
        raise OSError(28, "No space left on device")  # ENOSPC

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(cs.ConvscopeError, match=r"cannot write .*w.pt: No space left on device"):
        checkpoints.save_weights(model, path)
    assert list(tmp_path.iterdir()) == []


def test_missing_weights_say_which_file_and_where(offline_hub):
    with pytest.raises(WeightsNotFoundError) as error:
        cs.load_model("alexnet", download=False)
    message = str(error.value)
    assert str(offline_hub / "alexnet-owt-7be5be79.pth") in message
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in message
    assert "weights='random'" in message


def test_caffenet_without_weights_explains_the_conversion(offline_hub):
    with pytest.raises(WeightsNotFoundError, match="bvlc_reference_caffenet"):
        cs.load_model("caffenet")


def test_weights_are_taken_from_the_hub_cache(offline_hub):
    offline_hub.mkdir(parents=True)
    source = cs.load_model("vgg16", weights="random")
    torch.save(source.state_dict(), offline_hub / "vgg16-397923af.pth")
    loaded = cs.load_model("vgg16", download=False)
    assert torch.equal(loaded.params["fc8"][1], source.params["fc8"][1])


def _served_file(tmp_path, model_name):
    """A checkpoint 'on a server' (a file:// URL) and its sha256, as torchvision publishes."""
    served = tmp_path / "server" / "weights.pth"
    served.parent.mkdir(parents=True)
    torch.save(cs.load_model(model_name, weights="random").state_dict(), served)
    return served, hashlib.sha256(served.read_bytes()).hexdigest()


def test_download_checks_the_hash(tmp_path, offline_hub):
    served, digest = _served_file(tmp_path, "digits")
    good = WeightsSource(f"digits-{digest[:8]}.pth", url=served.as_uri())
    path = fetch_weights(good)
    assert path == offline_hub / good.filename and path.read_bytes() == served.read_bytes()

    wrong = "0" * 8 if digest[:8] != "0" * 8 else "1" * 8
    bad = WeightsSource(f"digits-{wrong}.pth", url=served.as_uri())
    with pytest.raises(WeightsNotFoundError, match="download failed"):
        fetch_weights(bad)
    assert not (offline_hub / bad.filename).exists()


def test_hash_prefix_follows_torchvision_names():
    assert WeightsSource("alexnet-owt-7be5be79.pth").hash_prefix == "7be5be79"
    assert WeightsSource("bvlc_reference_caffenet.pth").hash_prefix is None


def test_class_lookup(digits_net):
    assert digits_net.class_index("7") == 7 and digits_net.class_index(3) == 3
    with pytest.raises(UnknownNameError, match="0..9"):
        digits_net.class_index(10)
    with pytest.raises(UnknownNameError, match="'seven'"):
        digits_net.class_index("seven")


def test_unknown_layer_lists_the_layers(digits_net):
    with pytest.raises(
        UnknownNameError, match="unknown layer 'conv9'; choose one of: conv1, relu1"
    ):
        digits_net.layer("conv9")


# first conv layer, its weight shape, the input side and the MACs of one pass as published
# (CaffeNet 0.72 G and AlexNet 0.71 G as the Caffe and torchvision model zoos count them,
# VGG16 15.5 G in Simonyan & Zisserman's configuration D)
MODEL_FACTS = {
    "caffenet": ("conv1", (96, 3, 11, 11), 227, 0.72e9),
    "alexnet": ("conv1", (64, 3, 11, 11), 224, 0.71e9),
    "vgg16": ("conv1_1", (64, 3, 3, 3), 224, 15.5e9),
    "caffe": ("conv1", (96, 3, 11, 11), 227, 0.72e9),
}


def meta_model(name: str):
    spec = f"caffe:{CAFFE_FILES / 'caffenet_deploy.prototxt'}" if name == "caffe" else name
    return cs.load_shapes_only(spec)


def published_preprocessing(name: str, rgb: torch.Tensor) -> torch.Tensor:
    """Caffe: BGR, 0..255, minus the ImageNet mean (104, 117, 123); torchvision: standardised."""
    rgb = rgb.double()
    if name in ("caffenet", "caffe"):
        return rgb.flip(0) * 255 - torch.tensor([104.0, 117.0, 123.0]).view(3, 1, 1).double()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1).double()
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1).double()
    return (rgb - mean) / std


@pytest.mark.parametrize("name", list(MODEL_FACTS))
def test_model_facts_on_the_meta_device(name):
    """What the lessons rely on for every model, in milliseconds: no weights, no memory."""
    first, shape, side, macs = MODEL_FACTS[name]
    net = meta_model(name)
    assert cs.conv_layers(net)[0] == first
    assert tuple(net.layer(first).weight.shape) == shape
    assert tuple(net.input_size) == (3, side, side)
    assert len(net.class_names) == 1000 and net.class_names[281] == "tabby"
    # published to two digits (0.71 G: ±0.7%), and the zoos count layers slightly differently
    # (biases, pooling): within 2%
    assert cs.total_macs(net, (1, 3, side, side)) == pytest.approx(macs, rel=0.02)
    photo = cs.load_photo("chelsea")
    ours = net.preprocess(photo[None])[0].double()
    # float32 against float64: two or three roundings of values under 255: 3 × 255 × 2**-24
    torch.testing.assert_close(ours, published_preprocessing(name, photo), atol=5e-5, rtol=0)
    cast = cs.fully_convolutional(net)
    ratio = cs.total_macs(cast, (1, 3, 451, 451)) / cs.total_macs(net, (1, 3, side, side))
    # the dense 451x451 map (8x8 windows) costs a few passes, at least the area ratio, not 64
    assert (451 / side) ** 2 * 0.95 < ratio < 12


def test_the_registry_knows_kinds_and_suggested_defaults(digits_net):
    assert cs.available_models("segmenter") == [
        "fcn32s",
        "fcn16s",
        "fcn8s",
        "digit-fcn32s",
        "digit-fcn16s",
        "digit-fcn8s",
    ]
    assert model_kind("vgg16") == "classifier" and model_kind("caffe:x.prototxt") == "caffe"
    assert suggested_defaults(digits_net) == {"layer": "conv2", "scaled_layer": "fc8"}
    assert suggested_defaults(cs.load_shapes_only("vgg16"))["layer"] == "conv3_3"
