"""Scenes: several real digits on a larger black canvas, with per-pixel labels and ink boxes.

Scenes feed three lessons: running a fully convolutional classifier densely, training a small
FCN for segmentation, and scoring weakly supervised localisation boxes. Label convention:
per-pixel labels 0..9 are the digit classes and 10 (`BACKGROUND_LABEL`) is background.
A pixel is "ink" where its digit's value is >= `ink_threshold`; labels and boxes both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from convscope.core.errors import ConvscopeError

NUM_SEGMENT_CLASSES = 11
BACKGROUND_LABEL = 10
SEGMENT_CLASS_NAMES = [str(digit) for digit in range(10)] + ["background"]
# Random layouts that reach a dead end are redrawn this many times before giving up.
_RESTARTS = 100


@dataclass
class Scene:
    """One composed scene of K digits on an H x W canvas.

    Attributes:
        image: `(1, H, W)` float in [0, 1], white digits on black.
        labels: `(H, W)` int64: the digit's class on its ink, `BACKGROUND_LABEL` elsewhere.
        boxes: `(K, 4)` int64 tight ink boxes (top, left, bottom, right), bottom/right exclusive.
        classes: `(K,)` int64 class of each placed digit.
        sources: `(K,)` int64 index of each placed digit in the digit set.
        positions: `(K, 2)` int64 top-left corner (row, column) of each digit's footprint.
    """

    image: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    classes: torch.Tensor
    sources: torch.Tensor
    positions: torch.Tensor


def _apart(a: tuple[int, int], b: tuple[int, int], footprint: tuple[int, int], gap: int) -> bool:
    # Two footprints are apart when a gap-wide strip separates them in rows or in columns.
    return abs(a[0] - b[0]) >= footprint[0] + gap or abs(a[1] - b[1]) >= footprint[1] + gap


def _check_layout(layout, count: int, size, footprint: tuple[int, int], gap: int) -> None:
    (height, width), (h, w) = size, footprint
    if len(layout) != count:
        raise ConvscopeError(f"{len(layout)} positions but {count} sources; give one per digit")
    for k, corner in enumerate(layout):
        if not (0 <= corner[0] <= height - h and 0 <= corner[1] <= width - w):
            raise ConvscopeError(
                f"position {corner} puts a {h}x{w} digit outside the {height}x{width} canvas; "
                f"top must be in 0..{height - h} and left in 0..{width - w}"
            )
        for other in layout[:k]:
            if not _apart(corner, other, footprint, gap):
                raise ConvscopeError(
                    f"positions {other} and {corner} put {h}x{w} digits closer than "
                    f"min_gap={gap}; move them apart or lower min_gap"
                )


def _free_corners(layout, size, footprint: tuple[int, int], gap: int) -> torch.Tensor:
    (height, width), (h, w) = size, footprint
    free = torch.ones(height - h + 1, width - w + 1, dtype=torch.bool)
    for top, left in layout:
        # A corner nearer than a footprint plus the gap in both rows and columns would collide.
        rows = slice(max(0, top - h - gap + 1), top + h + gap)
        free[rows, max(0, left - w - gap + 1) : left + w + gap] = False
    return free.nonzero()


def _random_layout(count: int, size, footprint, gap: int, generator) -> list[tuple[int, int]]:
    # Each digit goes to a uniformly drawn free corner; a dead end starts a fresh layout.
    if size[0] >= footprint[0] and size[1] >= footprint[1]:
        for _ in range(_RESTARTS):
            layout: list[tuple[int, int]] = []
            while len(layout) < count:
                free = _free_corners(layout, size, footprint, gap)
                if len(free) == 0:
                    break
                pick = int(torch.randint(len(free), (1,), generator=generator))
                layout.append((int(free[pick, 0]), int(free[pick, 1])))
            if len(layout) == count:
                return layout
    raise ConvscopeError(
        f"cannot fit count={count} digits of {footprint[0]}x{footprint[1]} with min_gap={gap} "
        f"on a canvas of size={tuple(size)} (no fit in {_RESTARTS} random layouts); choose a "
        "larger size, a smaller count or a smaller min_gap, or pass positions"
    )


def _ink_box(ink: torch.Tensor, source: int, threshold: float) -> tuple[int, int, int, int]:
    rows, cols = ink.any(dim=1).nonzero().flatten(), ink.any(dim=0).nonzero().flatten()
    if len(rows) == 0:
        raise ConvscopeError(f"digit {source} has no pixel >= ink_threshold={threshold}")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _pick_sources(images, count: int, positions, sources, generator) -> torch.Tensor:
    if sources is None:
        wanted = count if positions is None else len(positions)
        if not 0 <= wanted <= len(images):
            raise ConvscopeError(f"count={wanted} must be in 0..{len(images)} (the digit set)")
        return torch.randperm(len(images), generator=generator)[:wanted]
    sources = torch.as_tensor(sources, dtype=torch.int64).reshape(-1)
    if len(sources) and not (0 <= int(sources.min()) and int(sources.max()) < len(images)):
        raise ConvscopeError(f"sources {sources.tolist()} must be in 0..{len(images) - 1}")
    return sources


def _paint(images, labels, sources: torch.Tensor, layout, size, threshold: float) -> Scene:
    h, w = images.shape[-2:]
    image = torch.zeros((1, *size), dtype=images.dtype)
    label_map = torch.full(tuple(size), BACKGROUND_LABEL, dtype=torch.int64)
    boxes = []
    for source, (top, left) in zip(sources.tolist(), layout):
        window = (slice(top, top + h), slice(left, left + w))
        image[0][window] = images[source, 0]
        ink = images[source, 0] >= threshold
        label_map[window][ink] = labels[source]
        box = _ink_box(ink, source, threshold)
        boxes.append((top + box[0], left + box[1], top + box[2], left + box[3]))
    return Scene(
        image=image,
        labels=label_map,
        boxes=torch.tensor(boxes, dtype=torch.int64).reshape(-1, 4),
        classes=labels[sources].to(torch.int64),
        sources=sources,
        positions=torch.tensor(layout, dtype=torch.int64).reshape(-1, 2),
    )


def compose_scene(
    images: torch.Tensor,
    labels: torch.Tensor,
    size: tuple[int, int] = (96, 96),
    count: int = 3,
    generator: torch.Generator | None = None,
    min_gap: int = 2,
    positions: Sequence[tuple[int, int]] | None = None,
    sources: Sequence[int] | None = None,
    ink_threshold: float = 0.5,
) -> Scene:
    """Place digits on a black canvas without overlapping footprints.

    Args:
        images: digit set `(N, 1, h, w)` in [0, 1]; labels: its classes `(N,)` int64.
        size: canvas `(H, W)`.
        count: how many digits; ignored when `positions` or `sources` fixes the number.
        generator: drives the random digits and corners (torch's global one when None).
        min_gap: empty pixels kept between any two `h x w` footprints.
        positions: `(K, 2)` top-left corners (row, column) to use instead of random ones.
        sources: `K` indices into `images` to use instead of random distinct ones.
        ink_threshold: a digit pixel >= this gets the digit's label and counts for its box.

    Returns:
        A `Scene`; raises `ConvscopeError` when the digits cannot fit (after a fixed number of
        random layouts, so the outcome is deterministic for a seeded generator).
    """
    footprint = (images.shape[-2], images.shape[-1])
    sources = _pick_sources(images, count, positions, sources, generator)
    if positions is None:
        layout = _random_layout(len(sources), size, footprint, min_gap, generator)
    else:
        layout = [(int(top), int(left)) for top, left in positions]
        _check_layout(layout, len(sources), size, footprint, min_gap)
    return _paint(images, labels, sources, layout, size, ink_threshold)


def compose_scenes(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int,
    size: tuple[int, int] = (96, 96),
    count: int = 3,
    seed: int = 0,
    min_gap: int = 2,
) -> tuple[torch.Tensor, torch.Tensor, list[Scene]]:
    """A batch of `n` random scenes, the same for the same `seed` (own `torch.Generator`).

    Args:
        images, labels, size, count, min_gap: as for `compose_scene`.
        n: number of scenes; seed: seeds the batch's private generator.

    Returns:
        images `(n, 1, H, W)`, label maps `(n, H, W)` int64, and the list of `Scene`s.
    """
    generator = torch.Generator().manual_seed(seed)
    scenes = [compose_scene(images, labels, size, count, generator, min_gap) for _ in range(n)]
    batch = torch.zeros((n, 1, *size), dtype=images.dtype)
    label_maps = torch.full((n, *size), BACKGROUND_LABEL, dtype=torch.int64)
    for index, scene in enumerate(scenes):
        batch[index], label_maps[index] = scene.image, scene.labels
    return batch, label_maps, scenes


def scene_of_seed(
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    size: tuple[int, int] = (96, 128),
    count: int = 4,
) -> Scene:
    """The scene that `seed` picks: `compose_scene` with its own generator, so the same seed
    always gives the same scene (what a scene slider shows).

    Args:
        images, labels: the digits to compose from, `(N, 1, 28, 28)` and `(N,)`.
        seed: the scene's number; size: canvas `(H, W)`; count: digits on it.
    """
    generator = torch.Generator().manual_seed(seed)
    return compose_scene(images, labels, size=size, count=count, generator=generator)
