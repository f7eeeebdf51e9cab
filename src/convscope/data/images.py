"""Loading any PIL-readable image file into a float tensor `(C, H, W)` in [0, 1]."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from convscope.core.arguments import integer
from convscope.core.errors import ImageError, unknown_name
from convscope.core.files import readable_file
from convscope.core.paths import data_path

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
# The largest image decoded, in pixels (50 million: a 10000x5000 photo, about 0.6 GB as the
# float tensors here); read from the file's header before anything is decoded. Change it
# with the environment variable CONVSCOPE_MAX_IMAGE_PIXELS.
MAX_IMAGE_PIXELS = 50_000_000


def max_image_pixels() -> int:
    """The pixel limit in force: `$CONVSCOPE_MAX_IMAGE_PIXELS`, else `MAX_IMAGE_PIXELS`."""
    return int(os.environ.get("CONVSCOPE_MAX_IMAGE_PIXELS", MAX_IMAGE_PIXELS))


def _to_float_array(image: Image.Image, gray: bool) -> np.ndarray:
    """Decode a PIL image to `(H, W)` (gray) or `(H, W, 3)` floats in [0, 1]."""
    if image.mode in _SIXTEEN_BIT_MODES:
        # 16-bit grayscale: PIL's 8-bit conversion would clip, so scale by the format's range.
        values = np.asarray(image, dtype=np.float64) / 65535.0
        values = np.clip(values, 0.0, 1.0)
        return values if gray else np.repeat(values[..., None], 3, axis=2)
    if image.mode == "F":  # 32-bit floats: taken as they are, so they must lie in [0, 1]
        values = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(values).all()
        if not finite or values.min() < 0 or values.max() > 1:
            raise ValueError(
                f"its 32-bit float values run from {np.nanmin(values):.4g} to "
                f"{np.nanmax(values):.4g}{'' if finite else ', with NaN or infinity'}; float "
                f"images must lie in [0, 1] (divide 8-bit levels by 255 first)"
            )
        return values if gray else np.repeat(values[..., None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        # Transparent pixels are shown on white, as an image viewer would.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    image = image.convert("L" if gray else "RGB")
    return np.asarray(image, dtype=np.float64) / 255.0


def load_image(path: str | Path, gray: bool = False) -> torch.Tensor:
    """Read an image file into a float32 tensor.

    Handles grayscale, RGB, RGBA and palette images (transparency composited on white),
    16-bit grayscale, and EXIF orientation (the image is turned upright).

    Args:
        path: any file PIL can read.
        gray: return one luminance channel instead of RGB.

    Returns:
        `(1, H, W)` if `gray` else `(3, H, W)`, float32 in [0, 1].

    Raises:
        ImageError: the file is missing, is not a readable image, or has more pixels than
            `max_image_pixels()` (read from its header, before decoding); the message names
            the path.
    """
    path = readable_file("image", path, ImageError)
    try:
        with Image.open(path) as opened:
            width, height = opened.size  # from the header: nothing decoded yet
            if width * height > max_image_pixels():
                raise ImageError(
                    f"image {path} is {width}x{height} = {width * height:,} pixels, over the "
                    f"limit of {max_image_pixels():,} (CONVSCOPE_MAX_IMAGE_PIXELS)"
                )
            opened.load()
            upright = ImageOps.exif_transpose(opened)
            array = _to_float_array(upright, gray)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ) as error:
        raise ImageError(f"cannot read image {path}: {error}") from error
    tensor = torch.from_numpy(array.astype(np.float32))
    return tensor.unsqueeze(0) if gray else tensor.permute(2, 0, 1).contiguous()


def photo_names() -> list[str]:
    """The photos shipped in `data/images/`, by file stem: `astronaut`, `chelsea`, `coffee`."""
    return sorted(path.stem for path in data_path("images").iterdir())


def load_photo(name: str, gray: bool = False) -> torch.Tensor:
    """A photo shipped in `data/images/`, e.g. `load_photo("chelsea")` for the cat.

    Args:
        name: file stem in `data/images/` (`chelsea`, `coffee`, `astronaut`, ...).
        gray: return one luminance channel.

    Returns:
        `(1, H, W)` or `(3, H, W)` float32 in [0, 1].
    """
    folder = data_path("images")
    matches = sorted(folder.glob(f"{name}.*"))
    if not matches:
        raise unknown_name("photo", name, photo_names())
    return load_image(matches[0], gray=gray)


def square_photo(name: str, size: int = 224) -> torch.Tensor:
    """A shipped photo's central square, resized to `size` × `size` (bilinear, antialiased):
    what an ImageNet classifier of that input size reads.

    Returns:
        `(3, size, size)` float32 in [0, 1].
    """
    size = integer("size", size, 1, 4096)
    photo = load_photo(name)
    _, height, width = photo.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = photo[None, :, top : top + side, left : left + side]
    resized = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True)[0]
    return resized.clamp(0, 1)  # antialiasing can overshoot [0, 1] by a rounding
