"""Smoke runs: the notebooks on the model families beside the digit net's.

torchvision's family (AlexNet, a `.pth` state dict) in 02 and 06; Caffe's (the CaffeNet
prototxt with a binary `.caffemodel` of random blobs) in 01 and 05; the FCNs (the FCN-8s
prototxt) in 04; notebook 03 runs CaffeNet's cast by default, so nbval covers it. The files
are written here, in the formats a user would bring. Each run checks what the notebook
prints and records against values computed independently; the facts of every model
(VGG16's too) are tested on the package, on the meta device (tests/models/test_registry.py),
which takes milliseconds, not minutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from caffe_files import CAFFE_FILES

import convscope as cs
from convscope.core.records import read_records
from convscope.course.parameters import check_run
from convscope.course.runner import execute_notebook, select_notebooks
from convscope.data.datasets import imagenet_class_names

CAFFE = CAFFE_FILES
# (first conv layer, its weight shape, input side, the middle conv layer) of each model
MODELS = {
    "alexnet": ("conv1", [64, 3, 11, 11], 224, "conv3"),
    "caffe": ("conv1", [96, 3, 11, 11], 227, "conv3"),  # the CaffeNet prototxt + caffemodel
}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """Model name -> (`model`, `weights`) notebook parameters, all with random weights."""
    from caffe_files import encode_binary, encode_text

    from convscope.caffe.text import read_prototxt

    folder = tmp_path_factory.mktemp("weights")
    found = {}
    for name in ("alexnet",):
        path = folder / f"{name}-random.pth"
        torch.save(cs.load_model(name, weights="random").state_dict(), path)
        found[name] = (name, str(path))
    # Caffe: the CaffeNet deploy prototxt, and a caffemodel of random blobs for it
    net = read_prototxt(CAFFE / "caffenet_deploy.prototxt")
    prototxt = folder / "caffenet_deploy.prototxt"
    prototxt.write_text(encode_text(net))
    rng = np.random.default_rng(0)
    fillers = cs.load_model(f"caffe:{prototxt}", weights="random")
    layers = []
    for layer, params in fillers.params.items():
        arrays = [(rng.standard_normal(tuple(p.shape)) * 0.01).astype(np.float32) for p in params]
        blobs = [{"shape": {"dim": list(a.shape)}, "data": a.ravel()} for a in arrays]
        layers.append({"name": layer, "type": "X", "blobs": blobs})
    caffemodel = folder / "caffenet_random.caffemodel"
    caffemodel.write_bytes(encode_binary({"name": "CaffeNet", "layer": layers}))
    found["caffe"] = (f"caffe:{prototxt}:{caffemodel}", "default")
    found["caffe-fcn8s"] = (f"caffe:{CAFFE / 'fcn8s_deploy.prototxt'}", "random")
    return found


def run(notebook: str, tmp_path: Path, **parameters) -> tuple[dict, str]:
    """As `python -m convscope run` does it: the whole parameter set checked, then executed."""
    path = select_notebooks([notebook])[0]
    out = execute_notebook(path, tmp_path / path.name, check_run(path, parameters))
    return read_records(out), out.read_text(encoding="utf-8")


def expected_input_mean(model: str, photo: str = "chelsea") -> float:
    """The preprocessed photo's mean, from the published constants (not the package's)."""
    rgb = cs.load_photo(photo).double()
    if model == "caffe":  # BGR, 0..255, minus Caffe's ImageNet mean (BGR)
        bgr = rgb.flip(0) * 255 - torch.tensor([104.0, 117.0, 123.0]).view(3, 1, 1).double()
        return bgr.mean().item()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1).double()
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1).double()
    return ((rgb - mean) / std).mean().item()


@pytest.mark.parametrize("name", ["caffe"])
def test_01_first_layer_follows_the_model(tmp_path, model_files, name):
    model, weights = model_files[name]
    records, text = run("01", tmp_path, model=model, weights=weights)
    first, shape, _, _ = MODELS[name]
    assert records["first_layer"] == first and records["first_weight_shape"] == shape
    # the notebook's float32 mean of 406,000 values under 255 in magnitude: pairwise summation
    # errs by about log2(406,000) ≈ 19 roundings of 2**-24 of the sum of magnitudes (mean
    # magnitude ~100): 19 × 6e-8 × 100 ≈ 1.1e-4, under 2e-4
    assert records["input_mean"] == pytest.approx(expected_input_mean(name), abs=2e-4)
    assert "input (3, 300, 451)" in text  # colour photo, its own size


@pytest.mark.parametrize("name", ["alexnet"])
def test_02_surgery_follows_the_model(tmp_path, model_files, name):
    model, weights = model_files[name]
    first, shape, side, _ = MODELS[name]
    records, text = run(
        "02", tmp_path, model=model, weights=weights, ablated_filters=2, zeroed_filter=shape[0] - 1
    )
    assert f"24 images of (3, {side}, {side}); first layer {first}" in text
    assert "agreement with the unedited net before any edit: 100.00%" in text
    assert records["restored_accuracy"] == 1.0  # the transplant restores the same net
    assert records["reloaded_identical"] is True
    assert f"(1000, {4096})" in text and "(5, 4096)" in text  # fc8 and the five-class refusal


@pytest.mark.parametrize("name", ["caffe-fcn8s"])
def test_04_shapes_follow_the_model(tmp_path, model_files, name):
    model, weights = model_files[name]
    records, _ = run("04", tmp_path, model=model, weights=weights, height=240, width=260)
    loaded = cs.load_model(model, weights=weights)  # real tensors: a forward pass, not the table
    real = loaded if "fcn8s" in name else cs.fully_convolutional(loaded)
    with torch.no_grad():
        out = real(torch.zeros(1, 3, 240, 260))
    assert records["output_shape"] == list(out.shape[1:])  # a shape stays data
    assert records["crop_offsets"] == ([5, 9, 31] if "fcn8s" in name else [])


@pytest.mark.parametrize("name", ["caffe"])
def test_05_deconvnet_follows_the_model(tmp_path, model_files, name):
    model, weights = model_files[name]
    _, _, side, middle = MODELS[name]
    records, text = run("05", tmp_path, model=model, weights=weights)  # only the model changes
    # photo crops at the model's size; the default layer follows the model
    assert f": 24 images of (3, {side}, {side}); layer {middle}" in text
    assert records["projection_equals_gradient"] is True


@pytest.mark.parametrize("name", ["alexnet"])
def test_06_saliency_follows_the_model(tmp_path, model_files, name):
    model, weights = model_files[name]
    side = MODELS[name][2]
    records, text = run("06", tmp_path, model=model, weights=weights, iterations=3)
    marker = f": 24 images of (3, {side}, {side}); class '"
    assert marker in text
    assert text.split(marker)[1].split("'")[0] in imagenet_class_names()
    assert records["all_classes_match"] is True


@pytest.mark.parametrize("name", ["caffe"])
def test_07_methods_follow_the_model(tmp_path, model_files, name):
    model, weights = model_files[name]
    side = MODELS[name][2]
    records, text = run("07", tmp_path, model=model, weights=weights)  # only the model changes
    assert f": 24 images of (3, {side}, {side}); Grad-CAM at relu5" in text
    assert records["cam_layer"] == "relu5"  # the last rectified convolution of CaffeNet
    # the cascade runs from the top of the deploy prototxt's weighted layers down
    assert records["cascade"] == [
        "trained",
        "fc8",
        "fc7",
        "fc6",
        "conv5",
        "conv4",
        "conv3",
        "conv2",
        "conv1",
    ]
    # data randomisation always on the digit nets; the pointing game on collages of the
    # photos, sized for this net (CaffeNet: 0.72 G multiply-accumulates a pass)
    assert "held-out accuracy on the true labels: trained 98.8%, permuted labels 11.1%" in text
    scenes = cs.suggested_scene_count(cs.load_model(model, weights=weights))
    assert f"{scenes} scenes; a hit within 15 px of the target's box" in text
    scored = sorted(records["pointing"])
    assert scored == [
        "centre baseline",
        "deconvnet",
        "grad_cam",
        "gradient",
        "guided_backprop",
        "random point",
    ]
