"""The deconvnet's projections as pictures: the figures of lesson 05, apart from the algorithm
(`explain.deconvnet`)."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from convscope.core.net import LayeredModel
from convscope.core.plotting import show_panels
from convscope.explain.deconvnet import Deconvnet


def as_picture(model: LayeredModel, signal: torch.Tensor) -> torch.Tensor:
    """A projection `(C, H, W)` in input space as a picture in [0, 1]: channels back in RGB
    order (Caffe nets read BGR), values stretched to the full range, zero mid-grey."""
    swap = getattr(model.preprocess, "channel_swap", None)
    if swap is not None and len(swap) == signal.shape[0]:
        signal = signal[[list(swap).index(i) for i in range(len(swap))]]
    scale = signal.abs().max().clamp(min=1e-12)
    return (signal / scale + 1) / 2


def show_projections(
    model: LayeredModel, image: torch.Tensor, deconvnet: Deconvnet, layers: list[str]
) -> Figure:
    """The image, then for each layer the projection of its strongest activation (the map
    holding the largest activation, the paper's choice)."""
    panels = [("input", image)]
    for layer in layers:
        channel = deconvnet.strongest_channel(layer)
        picture = as_picture(model, deconvnet.project(layer, channel))
        panels.append((f"{layer} map {channel}", picture))
    return show_panels(panels, size=2.0, columns=min(len(panels), 4))
