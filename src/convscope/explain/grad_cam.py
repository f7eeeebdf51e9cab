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

from convscope.core.class_scores import chosen_scores
from convscope.core.conv_kernels import small_pass
from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import ConvscopeError
from convscope.core.inspection import feature_map_module, feature_map_modules, forward_hooks
from convscope.core.net import LayeredModel
from convscope.explain.backward_rules import RECTIFIERS


def cam_layer(model: LayeredModel) -> str:
    """The layer Grad-CAM looks at when none is chosen: the last ReLU (or ReLU6) among the
    layers with feature maps (`relu3` of the digit net, `relu5` of AlexNet, `relu5_3` of
    VGG16, `head_relu` of EfficientNet-Lite0: 7×7 at 224×224), that is the last
    convolution's rectified output.

    Raises:
        ConvscopeError: the model has no ReLU among its layers with feature maps.
    """
    relus = [name for name, module in feature_map_modules(model) if isinstance(module, RECTIFIERS)]
    if not relus:
        raise ConvscopeError(f"{model.name} has no ReLU layer with feature maps for Grad-CAM")
    return relus[-1]


def layer_cam(
    model: LayeredModel, data: torch.Tensor, indices: torch.Tensor, layer: str
) -> torch.Tensor:
    """Grad-CAM's maps at the layer's own resolution, one per image.

    Args:
        data: preprocessed inputs `(N, C, H, W)`; indices: the class of each `(N,)`.
        layer: one of `feature_map_layers(model)`.

    Returns:
        `(N, h, w)`: ReLU(Σ_k α_k A^k) per image, not yet upsampled. Each image's score
        depends on its own input only (eval mode), so one backward pass serves them all; only
        the chosen classes' scores are computed (`chosen_scores`); a small batch runs without
        oneDNN (`small_pass`).
    """
    kept = {}

    def graph_from_here(module, args, out):
        """The maps become the graph's leaf: no layer below them needs a gradient, so the
        pass up to here builds no graph (unlike a gradient to the input)."""
        torch.set_grad_enabled(True)  # undone by the `no_grad` block around the pass
        kept["maps"] = out.detach().requires_grad_(True)
        return kept["maps"]

    data = to_model(model, data)
    with forward_hooks(model, [(feature_map_module(model, layer), graph_from_here)]):
        with small_pass(data), torch.enable_grad():
            with torch.no_grad():
                scores, seed = chosen_scores(model, data, indices)
            (gradient,) = torch.autograd.grad(scores, kept["maps"], seed)
    weights = gradient.mean(dim=(2, 3))  # α_k of each image
    return to_cpu((weights[:, :, None, None] * kept["maps"].detach()).sum(1).clamp(min=0))


def upsampled(cams: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Maps `(N, h, w)` resized bilinearly to `size` `(H, W)` (half-pixel centres)."""
    return F.interpolate(cams[:, None], size=tuple(size), mode="bilinear")[:, 0]
