"""`Net`: a sequential network whose layers answer to Caffe's names.

Every convscope model is a (possibly nested) `nn.Sequential`: its forward pass applies its leaf
layers in registration order. That one rule lets the inspection, surgery and visualisation code
walk any model layer by layer, the way Caffe's `net.blobs` and `net.params` did.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from .errors import UnknownNameError, unknown_name


class Net(nn.Sequential):
    """A sequential model that carries its layer names, input size, classes and preprocessing.

    Args:
        layers: the modules, in forward order; nested `nn.Sequential` blocks are allowed, so
            torchvision layouts (`features`, `avgpool`, `classifier`) keep their parameter names.
        name: the model's name in the registry, e.g. `"digits"`.
        input_size: `(C, H, W)` of the input the classifier was trained on.
        class_names: one name per output class, in index order.
        preprocess: maps an image `(C, H, W)` or batch `(N, C, H, W)` with values in [0, 1] to
            the network's input; its `deprocess` maps back for display.
        caffe_names: module path -> Caffe layer name (`"features.0" -> "conv1"`), for layers
            whose path is not already their Caffe name.
    """

    def __init__(
        self,
        layers: OrderedDict[str, nn.Module],
        *,
        name: str,
        input_size: tuple[int, int, int],
        class_names: Sequence[str],
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        caffe_names: dict[str, str] | None = None,
    ) -> None:
        super().__init__(layers)
        self.name = name
        self.input_size = tuple(input_size)
        self.class_names = list(class_names)
        self.preprocess = preprocess
        self._caffe_names = dict(caffe_names or {})

    def named_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """Yield `(caffe_name, module)` for every leaf layer, in forward order."""
        for path, module in self.named_modules():
            if path and not list(module.children()):
                yield self._caffe_names.get(path, path), module

    @property
    def layer_names(self) -> list[str]:
        """Caffe names of all leaf layers in forward order: `conv1, relu1, pool1, ...`."""
        return [name for name, _ in self.named_layers()]

    def layer(self, name: str) -> nn.Module:
        """The layer called `name`; an unknown name raises an error listing the valid ones."""
        for layer_name, module in self.named_layers():
            if layer_name == name:
                return module
        raise unknown_name("layer", name, self.layer_names)

    @property
    def params(self) -> OrderedDict[str, list[nn.Parameter]]:
        """Caffe's `net.params`: layer name -> `[weight, bias]` for every layer with parameters."""
        return OrderedDict(
            (name, list(module.parameters(recurse=False)))
            for name, module in self.named_layers()
            if list(module.parameters(recurse=False))
        )

    def class_index(self, class_name: str | int) -> int:
        """The output index of a class given by name or index; errors list the valid range."""
        if isinstance(class_name, int) and not isinstance(class_name, bool):
            if 0 <= class_name < len(self.class_names):
                return class_name
            raise UnknownNameError(
                f"class index {class_name} is out of range; valid indices are "
                f"0..{len(self.class_names) - 1}"
            )
        if class_name in self.class_names:
            return self.class_names.index(class_name)
        shown = self.class_names if len(self.class_names) <= 20 else self.class_names[:20] + ["..."]
        raise unknown_name("class", class_name, shown)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_size={self.input_size}"
