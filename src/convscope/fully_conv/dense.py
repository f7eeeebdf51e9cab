"""Dense classification with a fully convolutional net: score maps, figures and timings."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from matplotlib.figure import Figure

from convscope.core.arguments import image_for, positive
from convscope.core.devices import device_of, synchronize, to_cpu, to_model
from convscope.core.geometry import geometries
from convscope.core.meta import images_per_batch
from convscope.core.net import LayeredModel
from convscope.core.plotting import Heat, Labels, show_panels
from convscope.core.tables import Table
from convscope.data.scenes import Scene


@torch.no_grad()
def class_maps(cast: LayeredModel, image: torch.Tensor) -> torch.Tensor:
    """Class probabilities at every cell of a fully convolutional net's output.

    Args:
        cast: a fully convolutional net (`fully_convolutional(...)`).
        image: `(C, H, W)` in [0, 1], at least the training size.

    Returns:
        `(classes, H', W')`: softmax over classes at each cell.
    """
    image_for(cast, image)
    return to_cpu(cast(to_model(cast, cast.preprocess(image.unsqueeze(0))))[0].softmax(dim=0))


def _output_geometry(cast: LayeredModel):
    """The field, jump and start of `cast`'s output along the rows and along the columns."""
    output = cast.layer_names[-1]
    return geometries(cast, 0)[output], geometries(cast, 1)[output]


def window_cells(cast: LayeredModel, maps: torch.Tensor) -> tuple[float, float, float, float]:
    """Where the cells of `maps` `(classes, H', W')` sit on the input: `(left, right, bottom,
    top)` in pixel coordinates, each cell a `jump`×`jump` block centred on its window's centre
    (the output's `start` and `jump`, `geometries`), as `imshow`'s `extent` wants them."""
    rows, columns = _output_geometry(cast)
    top, left = rows.start - rows.jump / 2, columns.start - columns.jump / 2
    return (left, left + maps.shape[2] * columns.jump, top + maps.shape[1] * rows.jump, top)


def empty_windows(cast: LayeredModel, maps: torch.Tensor, scene: Scene) -> torch.Tensor:
    """`(H', W')` bool: the windows of `maps` that touch no digit's ink box in `scene`."""
    rows, columns = _output_geometry(cast)
    tops = rows.start - (rows.field - 1) / 2 + rows.jump * torch.arange(maps.shape[1])
    lefts = columns.start - (columns.field - 1) / 2 + columns.jump * torch.arange(maps.shape[2])
    empty = torch.ones(maps.shape[1:], dtype=torch.bool)
    for top, left, bottom, right in scene.boxes.tolist():
        down = (tops < bottom) & (tops + rows.field > top)
        across = (lefts < right) & (lefts + columns.field > left)
        empty &= ~(down[:, None] & across[None, :])
    return empty


def show_class_maps(
    cast: LayeredModel,
    image: torch.Tensor,
    maps: torch.Tensor,
    class_name: str,
    scene: Scene | None = None,
) -> Figure:
    """The image, one class's probability per window, and the most probable class per window.

    Each cell is drawn at its window's centre (`window_cells`), on the probability scale 0..1.
    With `scene`, the windows that touch no digit are grey in the last panel: the classifier
    has no "nothing here" class, so what it says there is not an answer.

    Args:
        cast: the fully convolutional net that made `maps`.
        image: `(C, H, W)` in [0, 1].
        maps: `(classes, H', W')` from `class_maps`.
        class_name: the class whose map is shown.
        scene: the `Scene` that `image` is, if it is one.
    """
    index = cast.class_index(class_name)
    title = f"P({class_name}) per window"
    if scene is not None and index not in scene.classes.tolist():
        title += f": no {class_name} in the scene"
    short = max(len(name) for name in cast.class_names) <= 2
    empty = empty_windows(cast, maps, scene) if scene is not None else None
    return show_panels(
        [
            ("input", image),
            (
                title,
                Heat(
                    maps[index],
                    f"P({class_name})",
                    over=image,
                    cmap="viridis",
                    limits=(0.0, 1.0),
                    alpha=0.7,
                    extent=window_cells(cast, maps),
                ),
            ),
            (
                "most probable class per window",
                Labels(
                    maps.argmax(dim=0),
                    cast.class_names,
                    in_cells=short,
                    unknown=empty,
                    unknown_name="window touches no digit",
                    over=image,
                    extent=window_cells(cast, maps),
                ),
            ),
        ],
        size=2.6,
    )


def crops(image: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """Every window of `size` at multiples of `stride` inside a batch `(1, C, H, W)`.

    Returns:
        `(rows * columns, C, h, w)`, row by row: the inputs of the sliding-window classifier.
    """
    windows = image.unfold(2, size[0], stride).unfold(3, size[1], stride)
    channels = image.shape[1]
    return windows[0].permute(1, 2, 0, 3, 4).reshape(-1, channels, *size)


def _seconds(action: Callable[[], object], repeats: int, device: torch.device) -> float:
    """The best of `repeats` timed runs of `action`, after one untimed run: a first call also
    pays for kernel selection and allocation, which is not the work being timed."""
    action()
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        action()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def time_dense_against_crops(
    model: LayeredModel, cast: LayeredModel, large: tuple[int, int], stride: int, repeats: int = 3
) -> Table:
    """Time the dense map on a large input against the classifier on its windows.

    Args:
        model: the classifier; cast: its fully convolutional twin.
        large: `(H, W)` of the large input.
        stride: the net's total stride (the windows' spacing).
        repeats: each time is the best of this many runs.

    Returns:
        A `Table`: what was run, seconds, and the time relative to one classifier pass.
    """
    channels, height, width = model.input_size
    device = device_of(model)
    data = torch.randn(1, channels, *large, device=device)
    windows = crops(data, (height, width), stride)
    single = _seconds(lambda: model(windows[:1]), repeats, device)
    # 64 VGG16 windows in one batch would hold 2.5 GB of activations
    batch = images_per_batch(model, windows.shape[1:], len(windows))
    batched = "one batch" if batch == len(windows) else f"batches of {batch}"
    rows = [
        ("one window (classifier)", single),
        (
            f"dense map, {tuple(cast(data).shape[2:])} cells (cast)",
            _seconds(lambda: cast(data), repeats, device),
        ),
        (
            f"{len(windows)} windows, one by one",
            _seconds(lambda: [model(w[None]) for w in windows], 1, device),
        ),
        (
            f"{len(windows)} windows, {batched}",
            _seconds(
                lambda: [model(windows[i : i + batch]) for i in range(0, len(windows), batch)],
                1,
                device,
            ),
        ),
    ]
    return Table(
        ["run", "seconds", "× one window"],
        [(name, round(s, 4), round(s / single, 1)) for name, s in rows],
    )


@torch.no_grad()
def window_difference(
    model: LayeredModel, cast: LayeredModel, image: torch.Tensor, stride: int
) -> float:
    """Largest |dense cell - classifier on its window| over every cell and class.

    Args:
        model: the classifier; cast: its fully convolutional twin (same dtype).
        image: `(C, H, W)` in [0, 1], larger than the training size.
        stride: the net's total stride.
    """
    image_for(model, image)
    stride = positive("stride", stride)
    data = to_model(model, model.preprocess(image.unsqueeze(0)))
    dense = cast(data)
    windows = crops(data, model.input_size[1:], stride)
    one_by_one = model(windows).T.reshape(dense.shape)
    return (dense - one_by_one).abs().max().item()
