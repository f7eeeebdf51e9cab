"""Collages of shipped photos: scenes whose objects sit at known boxes, for pointing games.

Each scene puts every object photo (its central square, resized to a random side) at a random
place on a plain grey canvas, no two overlapping, each flipped left-right at random. The boxes
are the pasted squares. Objects are given in turn as each scene's first object (the one a
pointing game asks about), so every object is the target equally often.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from convscope.core.arguments import integer
from convscope.core.errors import ConvscopeError
from convscope.data.images import square_photo

CANVAS_GREY = 0.5  # about the middle of every channel: ImageNet nets read it as plain ground
PLACEMENT_TRIES = 1000  # random positions drawn per scene before giving up


@dataclass
class PhotoScene:
    """One collage.

    Attributes:
        image: `(3, H, W)` float in [0, 1].
        boxes: `(K, 4)` int64 (top, left, bottom, right), bottom/right exclusive.
        classes: `(K,)` int64: the class given for each object (the first is the target).
        names: the photo of each object.
    """

    image: torch.Tensor
    boxes: torch.Tensor
    classes: torch.Tensor
    names: list[str]


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place(sides: list[int], size: tuple[int, int], generator) -> list[tuple[int, int, int, int]]:
    for _ in range(PLACEMENT_TRIES):
        boxes: list[tuple[int, int, int, int]] = []
        for side in sides:
            top = int(torch.randint(size[0] - side + 1, (1,), generator=generator))
            left = int(torch.randint(size[1] - side + 1, (1,), generator=generator))
            boxes.append((top, left, top + side, left + side))
        if not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]):
            return boxes
    raise ConvscopeError(
        f"cannot place squares of sides {sides} apart on a canvas of size={tuple(size)} in "
        f"{PLACEMENT_TRIES} tries: choose a larger canvas or smaller sides"
    )


def photo_scenes(
    names: Sequence[str],
    classes: Sequence[int],
    count: int,
    size: tuple[int, int] = (224, 224),
    sides: tuple[int, int] = (80, 112),
    seed: int = 0,
) -> list[PhotoScene]:
    """`count` collages of the shipped photos `names` (the same for the same seed).

    Args:
        names: the object photos, at least one; classes: a class for each (opaque here).
        size: the canvas `(H, W)`; sides: the least and greatest side of a pasted square.
        seed: the layout's, sizes' and flips' random seed.

    Returns:
        Scene i has object `i % len(names)` first: the target of a pointing game.
    """
    count = integer("count", count, 1, 10_000)
    if not names or len(classes) != len(names):
        raise ConvscopeError(
            f"names and classes must be non-empty and of one length; got {len(names)} names "
            f"and {len(classes)} classes"
        )
    low, high = (integer("sides", side, 8, min(size)) for side in sides)
    if low > high:
        raise ConvscopeError(f"sides must be (least, greatest); got {tuple(sides)}")
    photos = [square_photo(name, high) for name in names]
    generator = torch.Generator().manual_seed(seed)
    scenes = []
    for index in range(count):
        order = [(index + k) % len(names) for k in range(len(names))]
        drawn = [int(torch.randint(low, high + 1, (1,), generator=generator)) for _ in order]
        flips = [bool(torch.randint(2, (1,), generator=generator)) for _ in order]
        boxes = _place(drawn, size, generator)
        canvas = torch.full((3, *size), CANVAS_GREY)
        for k, side, flip, (top, left, bottom, right) in zip(order, drawn, flips, boxes):
            pasted = F.interpolate(
                photos[k][None], size=(side, side), mode="bilinear", antialias=True
            )[0]
            canvas[:, top:bottom, left:right] = (pasted.flip(-1) if flip else pasted).clamp(0, 1)
        given = torch.tensor([classes[k] for k in order])
        scenes.append(PhotoScene(canvas, torch.tensor(boxes), given, [names[k] for k in order]))
    return scenes
