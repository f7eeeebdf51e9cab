"""Interactive figures: each widget is a thin wrapper over a plain, tested figure function.

Each function returns the `ipywidgets.interactive` object; display it as a cell's last line.
Tests drive the same objects headlessly by setting their controls' values.
"""

from __future__ import annotations

import ipywidgets as widgets
import torch

from .filters import KERNEL_KINDS, designer_kernel, show_filter_response
from .inspection import show_layer, spatial_layers
from .net import Net


def designer_filter_widget(image: torch.Tensor) -> widgets.interactive:
    """Choose a kernel (Gaussian with σ, Sobel y/x, or typed numbers) and a bias for `image`.

    Args:
        image: gray `(1, H, W)` in [0, 1].
    """

    def update(kind: str, sigma: float, typed: str, bias: float):
        return show_filter_response(image, designer_kernel(kind, sigma, typed), bias)

    return widgets.interactive(
        update,
        kind=widgets.Dropdown(options=KERNEL_KINDS, value="gaussian", description="kernel"),
        sigma=widgets.FloatSlider(value=1.0, min=0.3, max=3.0, step=0.1, description="σ"),
        typed=widgets.Text(
            value="0 1 0; 1 -4 1; 0 1 0", description="typed", continuous_update=False
        ),
        bias=widgets.FloatSlider(value=0.0, min=-1.0, max=1.0, step=0.1, description="bias"),
    )


def layer_widget(model: Net, images: torch.Tensor, layer: str = "conv1") -> widgets.interactive:
    """Choose a layer and an image: the layer's filters and that image's activation maps.

    Args:
        model: a `Net`.
        images: `(N, C, H, W)` in [0, 1] to choose from.
        layer: the layer shown first.
    """

    def update(layer: str, index: int):
        return show_layer(model, images[index], layer)

    return widgets.interactive(
        update,
        layer=widgets.Dropdown(options=spatial_layers(model), value=layer, description="layer"),
        index=widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image"),
    )
