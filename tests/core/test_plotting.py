"""Tiling and overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from convscope.core.plotting import Heat, Labels, figure_problems, normalize, show_panels, tile


def test_tile_places_each_map_in_its_cell():
    maps = torch.arange(5.0).view(5, 1, 1).expand(5, 2, 3)
    grid = tile(maps, padding=1)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1)  # 3 columns, 2 rows, 1-pixel gaps
    assert grid[0, 0] == 0.0 and grid[0, 4] == 0.25 and grid[3, 4] == 1.0
    assert grid[2, 0] == 1.0 and grid[3, 8] == 1.0  # padding and the empty 6th cell are white


def test_tile_of_values_keeps_them_and_leaves_the_gaps_out_of_the_scale():
    maps = torch.tensor([-2.0, 0.5, 3.0]).view(3, 1, 1).expand(3, 2, 2)
    grid = tile(maps, columns=2, scale=False, fill=np.nan)
    assert grid[0, 0] == -2.0 and grid[0, 3] == 0.5 and grid[3, 0] == 3.0  # the values
    gaps = np.isnan(grid)
    assert gaps[2].all() and gaps[:, 2].all() and gaps[3:, 3:].all()  # gaps, the empty cell
    assert gaps.sum() == grid.size - 3 * 4  # and nothing else
    figure = show_panels([("maps", Heat(grid, "activation", cmap="gray"))])
    assert figure.axes[0].get_images()[0].get_clim() == (-2.0, 3.0)  # NaN not in the scale


def test_tile_colour_maps_and_columns():
    grid = tile(np.random.rand(4, 2, 2, 3), columns=4)
    assert grid.shape == (2, 4 * 3 - 1, 3)


def test_normalize_constant_and_range():
    assert normalize(np.ones((2, 2))).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    values = normalize(torch.tensor([2.0, 4.0, 3.0]))
    assert values.tolist() == [0.0, 1.0, 0.5]


def test_heat_over_an_image_is_drawn_from_its_values_with_a_colour_bar():
    image = torch.zeros(1, 8, 8)
    heat = torch.tensor([[0.0, 2.0], [1.0, 3.0]])
    figure = show_panels([("map", Heat(heat, "score", over=image))])
    drawn = figure.axes[0].get_images()[-1]
    assert drawn.get_array().shape == (8, 8)  # resized over the image
    assert drawn.get_clim() == (0.0, 3.0)  # the values' own range, not [0, 1]
    assert drawn.colorbar is not None and drawn.colorbar.ax.get_ylabel() == "score"
    assert figure_problems(figure) == []


def test_figure_problems_names_each_break_of_the_standard():
    figure = Figure(figsize=(2, 2), dpi=72)
    axes = figure.add_subplot()
    axes.imshow(np.random.rand(4, 4), cmap="jet")  # a heat map without a colour bar
    axes.text(0, 0, "tiny", fontsize=6)
    axes.imshow(np.random.rand(4, 4), cmap="gray")  # a picture: no bar needed
    problems = figure_problems(figure)
    assert problems[0] == "72 dpi, below 100"
    assert "text 'tiny' at 6 pt" in problems
    assert sum("without a colour bar" in problem for problem in problems) == 1


def test_a_row_of_maps_on_one_scale_may_share_one_colour_bar():
    maps = [Heat(torch.rand(3, 3), "0..1", limits=(0.0, 1.0), bar=last) for last in (0, 0, 1)]
    assert figure_problems(show_panels([(str(i), m) for i, m in enumerate(maps)])) == []
    other = Heat(torch.rand(3, 3), "0..2", limits=(0.0, 2.0), bar=False)  # another scale
    problems = figure_problems(show_panels([("a", maps[2]), ("b", other)]))
    assert problems == ["a heat map without a colour bar in 'b'"]


def test_a_shared_bar_serves_every_map_and_needs_one_scale():
    maps = [
        ("a", Heat(torch.rand(3, 3), "", limits=(0.0, 1.0))),
        ("b", torch.rand(3, 3)),
        ("c", Heat(torch.rand(3, 3), "", limits=(0.0, 1.0))),
    ]
    figure = show_panels(maps, shared_bar="0..1")
    bars = [axes for axes in figure.axes if axes.get_ylabel() == "0..1"]
    assert len(bars) == 1 and figure_problems(figure) == []
    with pytest.raises(ValueError, match="one colour map and fixed limits"):
        show_panels([*maps, ("d", Heat(torch.rand(3, 3), "", limits=(0.0, 2.0)))], shared_bar="x")
    with pytest.raises(ValueError, match="one colour map and fixed limits"):
        show_panels([("e", Heat(torch.rand(3, 3), ""))], shared_bar="x")


def test_labels_name_the_classes_present_and_the_unknown_cells():
    values = torch.tensor([[0, 2], [2, 2]])
    unknown = torch.tensor([[False, False], [False, True]])
    figure = show_panels(
        [
            (
                "labels",
                Labels(
                    values, ["a", "b", "c"], in_cells=True, unknown=unknown, unknown_name="none"
                ),
            )
        ]
    )
    axes = figure.axes[0]
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["c", "a", "none"]  # by count, then the unknown cells; "b" is absent
    assert sorted(text.get_text() for text in axes.texts) == ["a", "c", "c", "c"]
    assert figure_problems(figure) == []  # a label map is not a heat map


def test_show_panels_titles_and_layout():
    figure = show_panels([("a", np.zeros((3, 3))), ("b", torch.zeros(3, 4, 4))], columns=1)
    assert [axes.get_title() for axes in figure.axes] == ["a", "b"]
