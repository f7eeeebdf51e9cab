"""Checking a notebook run's parameters before anything executes.

Each notebook declares its parameters in its `parameters` cell (names, defaults, so types).
On top, some parameters have a set of valid values that depends on the others — the layer
names of the chosen model, a class range, an FCN variant; `CHOICES` computes them, on the
meta device where a model is needed, so checking costs no weights and no time.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import ConvscopeError, UnknownNameError, unknown_name

CLASSIFIERS = ("digits", "caffenet", "alexnet", "vgg16")


def declared_parameters(notebook: Path) -> dict[str, object]:
    """Name -> default value of the notebook's `parameters` cell, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    declared = {}
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            declared[node.targets[0].id] = ast.literal_eval(node.value)
    return declared


def coerce(name: str, value: object, default: object) -> object:
    """`value` as the type of the declared default (`"3"` for a text parameter, 2 -> 2.0 for a
    float one); an impossible conversion is an error naming both."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        return value if isinstance(value, str) else str(value)
    else:
        return value
    kind = type(default).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    raise ConvscopeError(
        f"parameter {name!r} takes {article} {kind} (default {default!r}); got {value!r}"
    )


def _model_choice(model: str, also: list[str] | None = None) -> None:
    valid = [*CLASSIFIERS, *(also or [])]
    if not model.startswith("caffe:") and model not in valid:
        raise unknown_name("model", model, [*valid, "caffe:deploy.prototxt[:x.caffemodel]"])


def _meta_model(name: str):
    from .models import load_shapes_only

    _model_choice(name)
    return load_shapes_only(name)


def _maps(model, layer: str) -> int:
    from .shapes import layer_table

    table = layer_table(model, (1, *model.input_size))
    return int(dict(zip(table.column("layer"), table.column("output")))[layer].split("×")[0])


def _image_count(model) -> int:
    return 1000 if tuple(model.input_size) == (1, 28, 28) else 24


def _choices_02(p: dict) -> dict:
    from .inspection import conv_layers, spatial_layers

    net = _meta_model(p["model"])
    filters = net.layer(conv_layers(net)[0]).out_channels
    return {"layer": ["", *spatial_layers(net)], "scaled_layer": list(net.params),
            "zeroed_filter": range(filters), "image_index": range(_image_count(net))}  # fmt: skip


def _choices_05(p: dict) -> dict:
    from .inspection import spatial_layers

    net = _meta_model(p["model"])
    layers = [n for n in spatial_layers(net) if not isinstance(net.layer(n), torch.nn.Dropout)]
    found = {"layer": layers, "image_index": range(_image_count(net))}
    if p["layer"] in layers:
        found["channel"] = range(_maps(net, p["layer"]))
    return found


def _choices_06(p: dict) -> dict:
    net = _meta_model(p["model"])
    return {"class_name": ["", *net.class_names], "image_index": range(_image_count(net))}


def _choices_03(p: dict) -> dict:
    from .datasets import digit_class_names

    _model_choice(p["model"])
    return {"class_name": digit_class_names()}


def _choices_01(p: dict) -> dict:
    from .paths import data_path

    _model_choice(p["model"])
    return {"photo": sorted(f.stem for f in data_path("images").iterdir())}


def _choices_04(p: dict) -> dict:
    from .fcn import VARIANTS

    _model_choice(p["model"], [f"fcn{v}" for v in VARIANTS])
    return {"scene_index": range(200)}


CHOICES: dict[str, Callable[[dict], dict]] = {
    "01": _choices_01, "02": _choices_02, "03": _choices_03,
    "04": _choices_04, "05": _choices_05, "06": _choices_06,
}  # fmt: skip


def check_run(notebook: Path, overrides: dict[str, object]) -> dict[str, object]:
    """The overrides of one run, checked and converted to the declared types.

    Raises:
        ConvscopeError: an unknown name, a wrong type or a value outside its choices; the
            message lists the valid ones.
    """
    declared = declared_parameters(notebook)
    checked = {}
    for name, value in overrides.items():
        if name not in declared:
            raise unknown_name(f"parameter of {notebook.stem}", name, list(declared))
        checked[name] = coerce(name, value, declared[name])
    rule = CHOICES.get(notebook.stem[:2])
    choices = rule({**declared, **checked}) if rule else {}
    for name, value in checked.items():
        valid = choices.get(name)
        if valid is not None and value not in valid:
            shown = (
                f"{valid.start}..{valid.stop - 1}"
                if isinstance(valid, range)
                else ", ".join(map(repr, valid))
            )
            raise UnknownNameError(
                f"{name}={value!r} is not valid in {notebook.stem}; choose one of: {shown}"
            )
    return checked
