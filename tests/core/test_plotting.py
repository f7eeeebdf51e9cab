"""Tiling and overlays."""

from __future__ import annotations

import numpy as np
import torch

from convscope.core.plotting import heatmap_overlay, normalize, show_panels, tile


def test_tile_places_each_map_in_its_cell():
    maps = torch.arange(5.0).view(5, 1, 1).expand(5, 2, 3)
    grid = tile(maps, padding=1)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1)  # 3 columns, 2 rows, 1-pixel gaps
    assert grid[0, 0] == 0.0 and grid[0, 4] == 0.25 and grid[3, 4] == 1.0
    assert grid[2, 0] == 1.0 and grid[3, 8] == 1.0  # padding and the empty 6th cell are white


def test_tile_colour_maps_and_columns():
    grid = tile(np.random.rand(4, 2, 2, 3), columns=4)
    assert grid.shape == (2, 4 * 3 - 1, 3)


def test_normalize_constant_and_range():
    assert normalize(np.ones((2, 2))).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    values = normalize(torch.tensor([2.0, 4.0, 3.0]))
    assert values.tolist() == [0.0, 1.0, 0.5]


def test_heatmap_overlay_shape_and_blend():
    image = torch.zeros(1, 8, 8)
    heat = torch.zeros(2, 2)
    heat[0, 0] = 1.0
    overlay = heatmap_overlay(image, heat, alpha=1.0, cmap="gray")
    assert overlay.shape == (8, 8, 3)
    assert overlay[0, 0].tolist() == [1.0, 1.0, 1.0] and overlay[7, 7].tolist() == [0, 0, 0]


def test_show_panels_titles_and_layout():
    figure = show_panels([("a", np.zeros((3, 3))), ("b", torch.zeros(3, 4, 4))], columns=1)
    assert [axes.get_title() for axes in figure.axes] == ["a", "b"]
