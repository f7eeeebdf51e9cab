"""Grad-CAM and Guided Grad-CAM (Selvaraju et al. 2017).

At a layer with feature maps A^k `(K, h, w)`, each map's weight is the spatial mean of the
class score's gradient, α_k = (1/hw) Σ_ij ∂S_c/∂A^k_ij; the class map is
ReLU(Σ_k α_k A^k), upsampled to the image bilinearly. Guided Grad-CAM multiplies it, pixel
by pixel, with guided backpropagation's picture. The paper takes the last convolutional
layer; `cam_layer` picks its rectified output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import ConvscopeError
from convscope.core.inspection import check_feature_map_layer, feature_map_layers
from convscope.core.net import LayeredModel


def cam_layer(model: LayeredModel) -> str:
    """The layer Grad-CAM looks at when none is chosen: the last ReLU among the layers with
    feature maps (`relu3` of the digit net, `relu5` of AlexNet, `relu5_3` of VGG16), that is
    the last convolution's rectified output.

    Raises:
        ConvscopeError: the model has no ReLU among its layers with feature maps.
    """
    relus = [n for n in feature_map_layers(model) if isinstance(model.layer(n), nn.ReLU)]
    if not relus:
        raise ConvscopeError(f"{model.name} has no ReLU layer with feature maps for Grad-CAM")
    return relus[-1]


def layer_cam(model: LayeredModel, data: torch.Tensor, index: int, layer: str) -> torch.Tensor:
    """Grad-CAM's map at the layer's own resolution.

    Args:
        data: one preprocessed input `(1, C, H, W)`.
        index: the class; layer: one of `feature_map_layers(model)`.

    Returns:
        `(h, w)`: ReLU(Σ_k α_k A^k), not yet upsampled.
    """
    check_feature_map_layer(model, layer)
    kept = {}

    def keep(module, inputs, output):
        kept["maps"] = output

    handle = model.layer(layer).register_forward_hook(keep)
    try:
        with torch.enable_grad():
            scores = model(to_model(model, data).detach().requires_grad_(True))
            maps = kept["maps"]
            (gradient,) = torch.autograd.grad(scores[0, index], maps)
    finally:
        handle.remove()
    weights = gradient[0].mean(dim=(1, 2))  # α_k
    return to_cpu((weights[:, None, None] * maps[0].detach()).sum(0).clamp(min=0))


def upsampled(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A map `(h, w)` resized bilinearly to `size` `(H, W)` (half-pixel centres)."""
    return F.interpolate(cam[None, None], size=tuple(size), mode="bilinear")[0, 0]
