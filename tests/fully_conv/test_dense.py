"""Dense maps: windows, class maps, the window check, timing tables, figures."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

import convscope as cs
from convscope.core.plotting import show_label_maps
from convscope.fully_conv import dense
from convscope.fully_conv.dense import (
    class_maps,
    crops,
    empty_windows,
    show_class_maps,
    time_dense_against_crops,
    window_cells,
    window_difference,
)
from convscope.fully_conv.shapes import show_blob_sizes


def test_crops_are_the_windows_row_by_row():
    image = torch.arange(2 * 10 * 12.0).view(1, 2, 10, 12)
    windows = crops(image, (4, 4), stride=3)
    assert windows.shape == (3 * 3, 2, 4, 4)
    assert torch.equal(windows[0], image[0, :, 0:4, 0:4])
    assert torch.equal(windows[1], image[0, :, 0:4, 3:7])  # next column first
    assert torch.equal(windows[3], image[0, :, 3:7, 0:4])


def test_class_maps_are_probabilities(digits_net):
    cast = cs.fully_convolutional(digits_net)
    maps = class_maps(cast, torch.rand(1, 44, 52))
    assert maps.shape == (10, 3, 4)
    # float32 softmax: each probability carries the roundings of its exp, of the normaliser's
    # ten-term sum and of the division (about 12 × 2**-24 of itself), and summing the ten adds
    # 10 × 2**-24 of 1: within 32 × 2**-24 of 1
    torch.testing.assert_close(maps.sum(0), torch.ones(3, 4), rtol=0, atol=32 * 2**-24)


def test_window_difference_detects_a_changed_weight():
    model = cs.load_model("digits").double()
    cast = cs.fully_convolutional(model)
    image = torch.rand(1, 44, 44, dtype=torch.float64)
    assert window_difference(model, cast, image, 8) < 1e-9
    with torch.no_grad():
        cast.params["fc8"][1][3] += 0.01  # one class's bias, in the cast only
    assert abs(window_difference(model, cast, image, 8) - 0.01) < 1e-9


class Clock:
    """A clock that moves only when a `Pause` layer runs: the table's times become exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Pause(nn.Module):
    """A layer that costs `seconds` of `clock` time per call, whatever the batch."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        if data.device.type != "meta":  # the batch-size pass on the meta device is not a run
            self.clock.now += self.seconds
        return data


def _pausing(net: cs.Net, pause: Pause) -> cs.Net:
    layers = OrderedDict([("pause", pause), *net.named_children()])
    return cs.Net(
        layers,
        name=net.name,
        input_size=net.input_size,
        class_names=net.class_names,
        preprocess=net.preprocess,
    )


def test_the_timing_table_times_what_each_row_says(digits_net, monkeypatch):
    """Every call costs 0.25 s of a fake clock: a window is one call, the dense map one, nine
    windows one by one nine, nine in one batch one; each ratio is its time over a window's."""
    clock = Clock()
    monkeypatch.setattr(dense, "time", clock)
    model = _pausing(digits_net, Pause(clock, 0.25))
    cast = _pausing(cs.fully_convolutional(digits_net), Pause(clock, 0.25))
    table = time_dense_against_crops(model, cast, (44, 44), 8, repeats=2)
    assert table.rows == [
        ("one window (classifier)", 0.25, 1.0),
        ("dense map, (3, 3) cells (cast)", 0.25, 1.0),
        ("9 windows, one by one", 2.25, 9.0),
        ("9 windows, one batch", 0.25, 1.0),
    ]


def test_class_map_cells_sit_on_their_windows_centres(digits_net, heldout):
    """The digit cast reads 28-pixel windows 8 pixels apart (three pools of stride 2): window
    (i, j) spans rows 8i..8i+27, centred on 8i + 13.5, so its 8-pixel cell spans 8i + 9.5 to
    8i + 17.5 (imshow's extent: left, right, bottom, top)."""
    cast = cs.fully_convolutional(digits_net)
    scene = cs.compose_scene(*heldout, size=(60, 76), positions=[(4, 40)], sources=[0])
    maps = class_maps(cast, scene.image)
    assert tuple(maps.shape[1:]) == (5, 7)  # (60 − 28) / 8 + 1, (76 − 28) / 8 + 1
    assert window_cells(cast, maps) == (9.5, 9.5 + 7 * 8, 9.5 + 5 * 8, 9.5)
    top, left, bottom, right = scene.boxes[0].tolist()
    down = [8 * i < bottom and 8 * i + 28 > top for i in range(5)]
    across = [8 * j < right and 8 * j + 28 > left for j in range(7)]
    touches = torch.tensor([[d and a for a in across] for d in down])
    assert torch.equal(empty_windows(cast, maps, scene), ~touches)
    assert 0 < int(touches.sum()) < touches.numel()


def test_figures(digits_net, heldout):
    cast = cs.fully_convolutional(digits_net)
    scene = cs.compose_scene(*heldout, size=(44, 52), positions=[(8, 12)], sources=[0])
    maps = class_maps(cast, scene.image)
    shown = digits_net.class_names[int(heldout[1][0])]
    absent = next(name for name in digits_net.class_names if name != shown)
    figure = show_class_maps(cast, scene.image, maps, shown, scene)
    titled = {axes.get_title(): axes for axes in figure.axes}
    assert f"P({shown}) per window" in titled
    assert len(titled["most probable class per window"].texts) == maps[0].numel()  # per cell
    figure = show_class_maps(cast, scene.image, maps, absent, scene)
    assert f"P({absent}) per window: no {absent} in the scene" in [
        a.get_title() for a in figure.axes
    ]
    labels = torch.randint(0, 11, (8, 8))
    figure = show_label_maps(
        [("a", torch.rand(1, 8, 8)), ("b", labels)], [str(i) for i in range(11)]
    )
    assert [a.get_title() for a in figure.axes] == ["a", "b"]
    table = cs.layer_table(cs.load_shapes_only("fcn32s"), (3, 100, 120))
    assert len(show_blob_sizes(table, ["data", "pool5", "score"]).axes[0].patches) == 3
