"""Net surgery's one move: copying parameters between nets by layer name, all or nothing."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from convscope.core.errors import SurgeryError, unknown_name
from convscope.core.net import Net
from convscope.core.tables import Table

_PARAM_KINDS = ("weight", "bias")


def _copy_mode(name: str, kind: str, source: torch.Tensor, target: torch.Tensor) -> str:
    """`"copy"` for equal shapes, `"flat"` for a row-major reshape, else a `SurgeryError`.

    A flat copy keeps each output unit's values together: the leading (output) dimension must
    agree and so must the element count, e.g. an InnerProduct `(4096, 9216)` and a
    convolution `(4096, 256, 6, 6)` (CaffeNet's fc6), whose memory layouts are identical.
    """
    if source.shape == target.shape:
        return "copy"
    if source.numel() == target.numel() and source.shape[:1] == target.shape[:1]:
        return "flat"
    raise SurgeryError(
        f"cannot transplant {name}.{kind}: source shape {tuple(source.shape)} does not fit "
        f"target shape {tuple(target.shape)} ({source.numel()} vs {target.numel()} values); "
        "nothing was copied"
    )


def transplant(source: Net, target: Net, layers: Iterable[str] | None = None) -> Table:
    """Copy parameters from `source` into `target`, layer by layer, matched by name.

    Every layer is checked before anything is copied, so an error leaves `target` untouched.

    Args:
        source: the net to copy from.
        target: the net to copy into (changed in place).
        layers: layer names to copy; default all layers with parameters in both nets.

    Returns:
        A `Table` of what was copied: layer, param, source shape, target shape, mode
        (`copy` for equal shapes, `flat` for a reshape of the same values).
    """
    source_params, target_params = source.params, target.params
    names = list(layers) if layers is not None else [n for n in target_params if n in source_params]
    plan = []
    for name in names:
        if name not in source_params:
            raise unknown_name("source layer", name, list(source_params))
        if name not in target_params:
            raise unknown_name("target layer", name, list(target_params))
        pairs = list(zip(_PARAM_KINDS, source_params[name], target_params[name]))
        if len(source_params[name]) != len(target_params[name]):
            raise SurgeryError(
                f"cannot transplant {name}: the source has {len(source_params[name])} parameter "
                f"tensors, the target {len(target_params[name])}; nothing was copied"
            )
        plan += [(name, kind, s, t, _copy_mode(name, kind, s, t)) for kind, s, t in pairs]
    with torch.no_grad():
        for _, _, source_tensor, target_tensor, _ in plan:
            target_tensor.copy_(source_tensor.reshape(target_tensor.shape))
    rows = [(name, kind, tuple(s.shape), tuple(t.shape), mode) for name, kind, s, t, mode in plan]
    return Table(["layer", "param", "source", "target", "mode"], rows)
