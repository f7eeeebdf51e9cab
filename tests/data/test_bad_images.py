"""Image files that would cost too much: refused from their header, before decoding."""

from __future__ import annotations

import pytest
from PIL import Image

import convscope as cs
from convscope.core.errors import ImageError


def test_a_huge_image_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000)).save(path)  # a small file, 100 million pixels
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ImageError, match=r"10000x10000 = 100,000,000 pixels, over the limit"):
        cs.load_image(path)


def test_the_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.new("RGB", (20, 20)).save(path)
    assert cs.load_image(path).shape == (3, 20, 20)
    monkeypatch.setenv("CONVSCOPE_MAX_IMAGE_PIXELS", "399")
    with pytest.raises(ImageError, match="400 pixels, over the limit of 399"):
        cs.load_image(path)
