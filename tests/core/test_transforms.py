"""Caffe-style and torchvision-style preprocessing, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convscope.core.transforms import CaffeTransformer, Normalize


def test_caffe_transformer_matches_a_numpy_computation():
    rgb = torch.rand(3, 4, 5)
    transformer = CaffeTransformer(mean=(104.0, 117.0, 123.0), raw_scale=255.0)
    expected = rgb.numpy()[::-1] * 255.0 - np.array([104.0, 117.0, 123.0])[:, None, None]
    # float32 against float64: x·255 and the subtraction are two roundings of values under
    # 255, so at most 2 × 255 × 2**-24 ≈ 3e-5
    np.testing.assert_allclose(transformer(rgb).numpy(), expected, rtol=0, atol=2 * 255 * 2**-24)


def test_caffe_transformer_inverts_on_batches():
    batch = torch.rand(2, 3, 4, 4)
    transformer = CaffeTransformer()
    # ×255, −mean, +mean, ÷255 in float32 on values under 255: four roundings of 255 × 2**-24,
    # then ÷255: within 4 × 2**-24 of the original in [0, 1]
    torch.testing.assert_close(
        transformer.deprocess(transformer(batch)), batch, rtol=0, atol=4 * 2**-24
    )


def test_normalize_and_inverse():
    image = torch.rand(3, 2, 2)
    normalize = Normalize(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    expected = (image - torch.tensor([0.5, 0.4, 0.3])[:, None, None]) / torch.tensor(
        [0.2, 0.25, 0.5]
    )[:, None, None]
    assert torch.equal(normalize(image), expected)  # the same two float32 operations
    # there and back: four roundings of values under 5 (÷0.2), back in [0, 1]
    torch.testing.assert_close(
        normalize.deprocess(normalize(image)), image, rtol=0, atol=4 * 5 * 2**-24
    )


def test_wrong_channel_count_is_named():
    with pytest.raises(ValueError, match=r"C=3.*\(1, 4, 4\)"):
        CaffeTransformer()(torch.zeros(1, 4, 4))


def test_channel_swap_must_be_a_permutation():
    with pytest.raises(ValueError, match="permutation"):
        CaffeTransformer(channel_swap=(0, 0, 1))


def test_caffe_transformer_takes_caffe_style_hwc_arrays():
    """caffe.io.load_image gives (H, W, C) floats; the transformer transposes to (C, H, W)."""
    hwc = np.random.rand(4, 5, 3).astype(np.float32)
    transformer = CaffeTransformer()
    expected = transformer(torch.from_numpy(hwc.transpose(2, 0, 1).copy()))
    assert torch.equal(transformer(hwc), expected)  # the same values through the same operations
    assert transformer(hwc).shape == (3, 4, 5)
