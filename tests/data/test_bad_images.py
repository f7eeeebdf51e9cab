"""Image files that would cost too much: refused from their header, before decoding."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
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


def test_a_folder_or_a_fifo_is_not_an_image(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match=r"image .* is a folder; give a file in it"):
        cs.load_image(tmp_path)
    with pytest.raises(ImageError, match=r"image .*pipe.png is not a regular file"):
        cs.load_image(fifo)


def test_float_images_must_lie_in_0_to_1_and_are_never_clipped(tmp_path):
    levels = np.linspace(0, 255, 28 * 28, dtype=np.float32).reshape(28, 28)
    Image.fromarray(levels, mode="F").save(tmp_path / "levels.tif")
    with pytest.raises(ImageError, match=r"float values run from 0 to 255; float images must "):
        cs.load_image(tmp_path / "levels.tif", gray=True)
    Image.fromarray(levels / 255, mode="F").save(tmp_path / "unit.tif")
    image = cs.load_image(tmp_path / "unit.tif", gray=True)
    assert torch.equal(image[0], torch.from_numpy(levels / 255))  # float32 in, as it was
