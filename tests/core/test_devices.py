"""Devices: `auto` picks CUDA, then MPS, then the CPU; the analysis functions follow the model.

The GPU tests run each analysis function on the GPU and compare it with the CPU; on a machine
without one they are skipped, and pytest prints the reason (`-rs` in pyproject.toml).
"""

from __future__ import annotations

import pytest
import torch
from bounds import NET_FLOAT64, assert_within

import convscope as cs
from convscope.core.devices import available_devices, device_of, resolve_device, to_model
from convscope.core.errors import ConvscopeError
from convscope.core.inspection import blobs
from convscope.course.parameters import check_run
from convscope.course.runner import select_notebooks

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def test_auto_prefers_cuda_then_mps_then_the_cpu(monkeypatch):
    monkeypatch.delenv("CONVSCOPE_DEVICE", raising=False)
    expected = "cuda" if HAS_CUDA else "mps" if HAS_MPS else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert available_devices()[0] == "cpu"


def test_convscope_device_decides_what_auto_means(monkeypatch):
    monkeypatch.setenv("CONVSCOPE_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert device_of(cs.load_model("digits")) == torch.device("cpu")
    monkeypatch.setenv("CONVSCOPE_DEVICE", "cuda:99")  # named, then checked like any device
    with pytest.raises(ConvscopeError, match=r"follows CONVSCOPE_DEVICE='cuda:99'.*not available"):
        resolve_device("auto")
    monkeypatch.setenv("CONVSCOPE_DEVICE", "auto")
    with pytest.raises(ConvscopeError, match=r"CONVSCOPE_DEVICE='auto' would loop"):
        resolve_device("auto")
    assert resolve_device("cpu") == torch.device("cpu")  # an explicit device ignores it


def test_to_model_follows_the_device_and_the_floating_dtype():
    net = cs.load_model("digits", device="cpu").double()
    assert to_model(net, torch.zeros(2, dtype=torch.float32)).dtype == torch.float64
    assert to_model(net, torch.zeros(2, dtype=torch.int64)).dtype == torch.int64


@pytest.mark.parametrize("bad", ["gpu", "tpu", "", "cuda:x"])
def test_an_unknown_device_lists_the_choices(bad):
    with pytest.raises(ConvscopeError, match=r"not one of auto, cpu, cuda, cuda:N, mps"):
        resolve_device(bad)


def test_a_device_this_machine_lacks_is_named_with_what_it_has():
    missing = "cuda:99"
    with pytest.raises(ConvscopeError, match=rf"device '{missing}' is not available.*cpu"):
        resolve_device(missing)
    if not HAS_MPS:
        with pytest.raises(ConvscopeError, match="device 'mps' is not available"):
            resolve_device("mps")
    with pytest.raises(ConvscopeError, match="device must be a string"):
        resolve_device(3)


def test_load_model_puts_the_model_on_the_device_and_checks_it_first(tmp_path):
    net = cs.load_model("digits", device="cpu")
    assert {p.device.type for p in net.parameters()} == {"cpu"}
    assert device_of(net) == torch.device("cpu")
    # the device is checked before the weights file is even looked for
    with pytest.raises(ConvscopeError, match="'gpu' is not one of"):
        cs.load_model("digits", weights=str(tmp_path / "missing.pth"), device="gpu")


def test_the_device_parameter_is_checked_in_every_notebook():
    for notebook in select_notebooks([]):
        assert check_run(notebook, {"device": "cpu"})["device"] == "cpu"
        with pytest.raises(ConvscopeError, match=r"device='tpu' is not valid.*cuda:N"):
            check_run(notebook, {"device": "tpu"})


def test_to_model_moves_nothing_that_is_already_there(digits_net):
    x = torch.rand(1, 1, 28, 28)
    assert to_model(digits_net, x) is x


def _each_analysis(net: cs.Net, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every analysis function of lessons 05 and 06 on `net`, results on the CPU."""
    image = images[0]
    deconvnet = cs.Deconvnet(net, net.preprocess(image[None]))
    return {
        "class_scores": cs.class_scores(net, images),
        "saliency": cs.class_saliency(net, image, 3),
        "all classes": cs.all_class_saliency(net, image, [1, 3]),
        "softmax saliency": cs.softmax_saliency(net, image, 3),
        "projection": deconvnet.project("conv2", 4),
        "unit": deconvnet.project_unit("conv2", 4, (2, 3)),
        "occlusion": cs.occlusion(net, image, 3, "conv2", size=8, stride=4).probability,
        "top": cs.top_activations(net, images, "conv2", k=3).values,
        "class model": cs.class_model(net, 3, iterations=5)[0],
        "blobs": blobs(net, net.preprocess(images[:2]))["pool2"],
    }


@pytest.mark.parametrize(
    "device",
    [
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(
                not HAS_CUDA, reason="needs a CUDA GPU; this machine has none"
            ),
        ),
        pytest.param(
            "mps",
            marks=pytest.mark.skipif(
                not HAS_MPS, reason="needs Apple's MPS; this machine has none"
            ),
        ),
    ],
)
def test_every_analysis_function_follows_the_model_to_the_gpu(heldout, device, monkeypatch):
    """On the GPU in float32 (TF32 off: cuDNN's 10-bit products would be another precision),
    against the CPU. The digit net's sums have at most 800 terms (conv2), so one layer errs by
    at most 800 × 6e-8 ≈ 5e-5 of its terms' magnitudes in float32, on either device; eight
    layers forward and back, and five ascent steps for the class model, stay within 1e-3 of
    each result's largest magnitude. (The class model runs in float64 on the CPU only, so it
    is compared in float64.)"""
    if device == "cuda":
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    images = heldout[0][:16]
    on_cpu = _each_analysis(cs.load_model("digits", device="cpu"), images)
    on_gpu = _each_analysis(cs.load_model("digits", device=device), images)
    for name, expected in on_cpu.items():
        got = on_gpu[name]
        assert got.device.type == "cpu", name  # results come back for the figures
        scale = expected.abs().max().item()
        assert scale > 0, name
        assert (got.double() - expected.double()).abs().max().item() <= 1e-3 * scale, name


def test_the_analysis_functions_on_the_cpu_model_equal_plain_torch(heldout):
    """Each result on the CPU, against the same quantity computed with plain torch ops; both
    in float64, as two code paths meet (tests/bounds.py)."""
    net = cs.load_model("digits", device="cpu").double()
    images = heldout[0][:16].double()
    results = _each_analysis(net, images)
    assert all(r.device.type == "cpu" and torch.isfinite(r).all() for r in results.values())
    data = net.preprocess(images)
    with torch.no_grad():
        scores = net(data)
        conv2 = net.conv2(net.pool1(net.relu1(net.conv1(data))))
        pool2 = net.pool2(net.relu2(conv2))
    one = data[:1].clone().requires_grad_()
    net(one)[0, 3].backward()
    saliency = one.grad[0].abs().amax(0)
    one.grad = None
    net(one).softmax(1)[0, 3].backward()
    softmax_saliency = one.grad[0].abs().amax(0)
    for name, expected in [
        ("class_scores", scores),
        ("blobs", pool2[:2]),
        ("saliency", saliency),
        ("softmax saliency", softmax_saliency),
        ("top", conv2.amax(dim=(2, 3)).topk(3, dim=0).values.T),
    ]:
        assert_within(results[name], expected, NET_FLOAT64, name)
