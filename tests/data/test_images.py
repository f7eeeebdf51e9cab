"""Loading images of every PIL mode into `(C, H, W)` tensors in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import convscope as cs
from convscope.core.errors import ImageError, UnknownNameError

PIXELS = np.array([[0, 64], [128, 255]], dtype=np.uint8)


def test_rgb_file(tmp_path):
    rgb = np.stack([PIXELS, 255 - PIXELS, np.full_like(PIXELS, 10)], axis=2)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    image = cs.load_image(tmp_path / "rgb.png")
    assert image.shape == (3, 2, 2) and image.dtype == torch.float32
    # values in [0, 1], rounded once to float32: within 2**-24 ≈ 6e-8
    np.testing.assert_allclose(image.numpy(), rgb.transpose(2, 0, 1) / 255.0, rtol=0, atol=2**-24)


def test_gray_file_as_gray_and_as_rgb(tmp_path):
    Image.fromarray(PIXELS, mode="L").save(tmp_path / "gray.png")
    gray = cs.load_image(tmp_path / "gray.png", gray=True)
    rgb = cs.load_image(tmp_path / "gray.png")
    np.testing.assert_allclose(gray[0].numpy(), PIXELS / 255.0, rtol=0, atol=2**-24)  # one rounding
    assert rgb.shape == (3, 2, 2) and torch.equal(rgb[0], rgb[2])


def test_sixteen_bit_gray_keeps_its_range(tmp_path):
    deep = np.array([[0, 1000], [32768, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    image = cs.load_image(tmp_path / "deep.png", gray=True)
    np.testing.assert_allclose(image[0].numpy(), deep / 65535.0, rtol=2**-24, atol=0)  # 1 rounding


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    image = cs.load_image(tmp_path / "rgba.png")
    assert image[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert image[:, 0, 1].tolist() == [1.0, 1.0, 1.0]


def test_palette_image(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    palette.putdata([0, 1])
    palette.save(tmp_path / "palette.png")
    image = cs.load_image(tmp_path / "palette.png")
    assert image[:, 0, 0].tolist() == [0.0, 0.0, 1.0] and image[:, 0, 1].tolist() == [0, 1, 0]


def test_exif_orientation_is_applied(tmp_path):
    wide = np.zeros((2, 4, 3), dtype=np.uint8)
    wide[0, 0] = 255  # a white top-left pixel
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(wide).save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    image = cs.load_image(tmp_path / "rotated.jpg")
    assert image.shape == (3, 4, 2)  # upright: taller than wide
    assert image[0, 0, -1] > 0.5  # the white pixel ends up top-right


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ImageError, match="nothere.png"):
        cs.load_image(tmp_path / "nothere.png")


def test_unreadable_file_names_the_path(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="broken.png"):
        cs.load_image(tmp_path / "broken.png")


def test_shipped_cat_photo():
    cat = cs.load_photo("chelsea", gray=True)
    assert cat.shape == (1, 300, 451)
    with pytest.raises(UnknownNameError, match="chelsea"):
        cs.load_photo("dog")
