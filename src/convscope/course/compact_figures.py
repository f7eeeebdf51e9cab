"""Figures stored small: a committed notebook's PNGs as 8-bit palette images where that loses
nothing a student could see.

matplotlib writes 32-bit RGBA, and a heat map beside a photo holds tens of thousands of
colours, so the lessons' figures cost 100-370 kB each at 100 dpi. Most of them are a few
colour maps, gray text and white paper: 256 colours drawn from the figure itself hold them.
The rule for each figure:

- at most 256 colours: an exact palette (lossless);
- more: a 256-colour palette (Pillow's fast octree, trimmed to the entries it uses), kept
  only if the mean change per channel is at most `MAX_MEAN_CHANGE` levels of 255; otherwise
  the lossless RGB image.

Applied to its own result, the rule changes nothing: that result has at most 256 colours.

The stated resolution (the PNG's pHYs chunk) is kept, and a figure that would not shrink is
left as it was. `make outputs` and `make describe` apply it to every committed notebook; a
figure drawn live in class is matplotlib's own.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

PNG = "image/png"
PALETTE_SIZE = 256
# A mean change of 6 levels (2.4 % of full scale) is under the step between two neighbouring
# entries of a 256-entry colour map stretched over a bar a few hundred pixels tall; the
# lessons' figures measured 1.9-4.8 with the octree palette.
MAX_MEAN_CHANGE = 6.0


def _encode(image: Image.Image, dpi) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True, **({"dpi": dpi} if dpi else {}))
    return buffer.getvalue()


def mean_change(before: Image.Image, after: Image.Image) -> float:
    """Mean absolute difference per RGB channel, in levels of 255, of two same-size images."""
    first = np.asarray(before.convert("RGB"), dtype=np.int16)
    second = np.asarray(after.convert("RGB"), dtype=np.int16)
    return float(np.abs(first - second).mean())


def _exact_palette(rgb: Image.Image) -> Image.Image | None:
    """`rgb` as a palette image of exactly its own colours, or None when it has over 256."""
    if rgb.getcolors(PALETTE_SIZE) is None:
        return None
    palette = rgb.quantize(PALETTE_SIZE, method=Image.Quantize.MEDIANCUT)
    # median cut keeps every colour when there are at most 256; checked, not assumed
    return palette if mean_change(rgb, palette) == 0.0 else None


def compact_png(data: bytes) -> bytes:
    """`data` (a PNG) as the smallest of: itself, a palette image by the module's rule, its
    lossless RGB. Images with transparency are returned unchanged."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        image = opened
    dpi = image.info.get("dpi")
    if image.mode not in ("RGB", "RGBA", "L", "P"):
        return data
    if image.mode == "RGBA":
        if image.getchannel("A").getextrema()[0] < 255:
            return data  # transparent pixels: their colour is not what is seen
    rgb = image.convert("RGB")
    candidate = _exact_palette(rgb)
    if candidate is None:
        octree = rgb.quantize(PALETTE_SIZE, method=Image.Quantize.FASTOCTREE)
        if mean_change(rgb, octree) <= MAX_MEAN_CHANGE:
            # the octree's palette has 256 entries, used or not: keep only the used ones
            candidate = _exact_palette(octree.convert("RGB"))
    encoded = _encode(rgb if candidate is None else candidate, dpi)
    return encoded if len(encoded) < len(data) else data


def with_compact_figures(notebook: dict) -> dict:
    """`notebook` (nbformat JSON) with every stored figure passed through `compact_png`."""
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).get(PNG)
            if figure is None:
                continue
            data = base64.b64decode(figure)
            smaller = compact_png(data)
            if smaller is not data:
                output["data"][PNG] = base64.b64encode(smaller).decode("ascii")
    return notebook
