"""Networks whose layers answer to Caffe's names: `Net` (a chain) and `GraphNet` (a DAG).

Both carry their input size, class names and preprocessing, and both list their layers in
forward order with the blobs each reads (`layer_graph`), so inspection, shape arithmetic,
surgery and visualisation walk any model layer by layer, as Caffe's `net.blobs` and
`net.params` allowed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from convscope.core.arguments import integer
from convscope.core.errors import ConvscopeError, UnknownNameError, unknown_name

INPUT_BLOB = "data"


@dataclass(frozen=True)
class FinalSoftmax:
    """The Softmax that ends a Caffe net, left out of the model but kept in `caffe_blobs`.

    Attributes:
        top: its blob (`prob` in Caffe's deploy files); bottom: the scores it reads;
        axis: the axis it normalises.
    """

    top: str
    bottom: str
    axis: int


class LayeredModel(nn.Module):
    """What every convscope model offers; subclasses define `named_layers` and `layer_graph`.

    Args:
        name: the model's name in the registry, e.g. `"digits"`.
        input_size: `(C, H, W)` of the input the model was trained on.
        class_names: one name per output class, in index order.
        preprocess: maps an image `(C, H, W)` or batch `(N, C, H, W)` with values in [0, 1] to
            the network's input; its `deprocess` maps back for display.
        blob_layers: blob name -> the layer whose output it finally is (Caffe's in-place
            layers share a blob); default: `"data"` and every layer, each its own blob.
        final_softmax: a Softmax that ends the source net, left out of the model (which
            returns scores) but applied when its blobs are read (`caffe_blobs`).
    """

    def _describe(
        self,
        name: str,
        input_size: tuple[int, int, int],
        class_names: Sequence[str],
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        stages: Mapping[str, Sequence[str]] | None = None,
        blob_layers: Mapping[str, str] | None = None,
        final_softmax: FinalSoftmax | None = None,
    ) -> None:
        self.name = name
        self.input_size = tuple(input_size)
        self.class_names = list(class_names)
        self.preprocess = preprocess
        self._stages = (
            None
            if stages is None
            else OrderedDict((stage, tuple(layers)) for stage, layers in stages.items())
        )
        names = self.layer_names
        self.blob_layers = dict(blob_layers or {INPUT_BLOB: INPUT_BLOB, **dict(zip(names, names))})
        self.final_softmax = final_softmax
        if self._stages is not None:
            known = set(self.layer_names)
            for stage, layers in self._stages.items():
                for layer in layers:
                    if layer not in known:
                        raise unknown_name(f"layer of stage {stage!r}", layer, self.layer_names)

    @property
    def stages(self) -> OrderedDict[str, tuple[str, ...]]:
        """The net's parts in forward order, each a name and its layers with weights: the
        steps of a cascading randomisation. Given by the architecture (EfficientNet's stem,
        blocks, head and classifier); otherwise each layer with weights is its own stage."""
        weighted = self.params
        if self._stages is None:
            return OrderedDict((layer, (layer,)) for layer in weighted)
        return OrderedDict(
            (stage, tuple(layer for layer in layers if layer in weighted))
            for stage, layers in self._stages.items()
        )

    def named_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """Yield `(caffe_name, module)` for every layer, in forward order."""
        raise NotImplementedError

    def layer_graph(self) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
        """`(name, module, bottoms)` per layer in forward order; the input blob is `"data"`."""
        raise NotImplementedError

    @property
    def input_modules(self) -> list[nn.Module]:
        """The layers that read the input blob `"data"`, in forward order."""
        return [module for _, module, bottoms in self.layer_graph() if INPUT_BLOB in bottoms]

    @property
    def output_module(self) -> nn.Module | None:
        """The layer whose output the forward pass returns (None: the input itself)."""
        raise NotImplementedError

    @property
    def layer_names(self) -> list[str]:
        """Caffe names of all layers in forward order: `conv1, relu1, pool1, ...`."""
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
        if not isinstance(class_name, str):
            return integer(
                "class index",
                class_name,
                0,
                len(self.class_names) - 1,
                plural="indices",
                error=UnknownNameError,
            )
        if class_name in self.class_names:
            return self.class_names.index(class_name)
        shown = self.class_names if len(self.class_names) <= 20 else self.class_names[:20] + ["..."]
        raise unknown_name("class", class_name, shown)

    def class_indices(self, targets, count: int, name: str = "targets") -> torch.Tensor:
        """`(count,)` output indices: one class (index or name) per image of `count`.

        Raises:
            ConvscopeError: `targets` is not a sequence of `count` classes (named `name`);
            UnknownNameError: a class that does not exist.
        """
        if isinstance(targets, (str, bytes)) or not hasattr(targets, "__len__"):
            raise ConvscopeError(f"{name} must give one class per image ({count}); got {targets!r}")
        if len(targets) != count:
            raise ConvscopeError(
                f"{name} must give one class per image ({count}); got {len(targets)}: {targets!r}"
            )
        return torch.tensor([self.class_index(target) for target in targets], dtype=torch.long)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_size={self.input_size}"


class Net(LayeredModel, nn.Sequential):
    """A chain of layers: the forward pass applies the leaf modules in registration order.

    Args:
        layers: the modules, in forward order; nested `nn.Sequential` blocks are allowed, so
            torchvision layouts (`features`, `avgpool`, `classifier`) keep their parameter names.
        caffe_names: module path -> Caffe layer name (`"features.0" -> "conv1"`), for layers
            whose path is not already their Caffe name.
        name, input_size, class_names, preprocess: as in `LayeredModel`.
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
        blob_layers: Mapping[str, str] | None = None,
        final_softmax: FinalSoftmax | None = None,
    ) -> None:
        nn.Sequential.__init__(self, layers)
        self.caffe_names = dict(caffe_names or {})  # before `_describe`, which reads the names
        self._describe(name, input_size, class_names, preprocess, None, blob_layers, final_softmax)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return nn.Sequential.forward(self, data)

    @property
    def input_modules(self) -> list[nn.Module]:
        return [_leaf(self, first=True)]

    @property
    def output_module(self) -> nn.Module:
        return _leaf(self, first=False)

    def named_layers(self) -> Iterator[tuple[str, nn.Module]]:
        for path, module in self.named_modules():
            if path and next(module.children(), None) is None:  # a leaf
                yield self.caffe_names.get(path, path), module

    def layer_graph(self) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
        graph, bottom = [], INPUT_BLOB
        for name, module in self.named_layers():
            graph.append((name, module, (bottom,)))
            bottom = name
        return graph


def _leaf(module: nn.Module, first: bool) -> nn.Module:
    """A chain's first or last layer: its first or last child's, down to a module with none
    (a layer, as `Net.named_layers` counts them), without walking every module."""
    while True:
        children = list(module.children())
        if not children:
            return module
        module = children[0 if first else -1]


class GraphNet(LayeredModel):
    """A directed acyclic graph of layers, each reading the blobs of earlier ones by name.

    Layers taking several blobs (`Crop`, `Sum`) receive them in the order of their bottoms.

    Args:
        layers: `(name, module, bottoms)` in an order where every bottom comes earlier;
            `"data"` is the input.
        output: the blob the forward pass returns.
        name, input_size, class_names, preprocess: as in `LayeredModel`.
        stages: stage name -> its layers, in forward order (`LayeredModel.stages`); None:
            each layer with weights is a stage.
    """

    def __init__(
        self,
        layers: Sequence[tuple[str, nn.Module, Sequence[str]]],
        *,
        output: str,
        name: str,
        input_size: tuple[int, int, int],
        class_names: Sequence[str],
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        stages: Mapping[str, Sequence[str]] | None = None,
        blob_layers: Mapping[str, str] | None = None,
        final_softmax: FinalSoftmax | None = None,
    ) -> None:
        super().__init__()
        self._bottoms: dict[str, tuple[str, ...]] = {}
        known = {INPUT_BLOB}
        for layer_name, module, bottoms in layers:
            missing = [bottom for bottom in bottoms if bottom not in known]
            if missing:
                raise ConvscopeError(
                    f"layer {layer_name!r} reads {missing}, which no earlier layer produces"
                )
            self.add_module(layer_name, module)
            self._bottoms[layer_name] = tuple(bottoms)
            known.add(layer_name)
        if output not in known:
            raise unknown_name("output blob", output, sorted(known))
        self.output = output
        self._describe(
            name, input_size, class_names, preprocess, stages, blob_layers, final_softmax
        )

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        blobs = {INPUT_BLOB: data}
        for layer_name, module in self.named_children():
            blobs[layer_name] = module(*(blobs[bottom] for bottom in self._bottoms[layer_name]))
        return blobs[self.output]

    @property
    def output_module(self) -> nn.Module | None:
        return None if self.output == INPUT_BLOB else self.get_submodule(self.output)

    def named_layers(self) -> Iterator[tuple[str, nn.Module]]:
        yield from self.named_children()

    def layer_graph(self) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
        return [(name, module, self._bottoms[name]) for name, module in self.named_children()]


class Crop(nn.Module):
    """Caffe's Crop on the spatial axes: cut `x` to `reference`'s height and width.

    The offset is where the reference's first pixel falls in `x`; FCN derives it from the
    coordinate mapping between the two blobs (`shapes.derive_crop_offsets`), never by hand.

    Args:
        offset: rows and columns skipped at the top and left; `None` until derived.
    """

    def __init__(self, offset: int | None = None) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        if self.offset is None:
            raise ConvscopeError("crop offset not derived yet; call shapes.derive_crop_offsets")
        height, width = reference.shape[-2:]
        o = self.offset
        if x.shape[-2] < o + height or x.shape[-1] < o + width:
            raise ConvscopeError(
                f"cannot crop {tuple(x.shape[-2:])} at offset {o} to {(height, width)}: "
                "the input is too small for this net"
            )
        return x[..., o : o + height, o : o + width]

    def extra_repr(self) -> str:
        return f"offset={self.offset}"


class Sum(nn.Module):
    """Caffe's Eltwise SUM: the element-wise sum of its inputs (FCN's skip fusion)."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = inputs[0]
        for other in inputs[1:]:
            total = total + other
        return total
