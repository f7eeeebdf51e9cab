"""Checking a notebook run's parameters before anything executes.

Each notebook declares its parameters in its `parameters` cell (names, defaults, so types).
A run is checked whole: the declared defaults with the overrides applied, so a default that
no longer fits (a layer of another model) is caught as surely as a typed value. Rules go by
parameter name, the same in every notebook: `layer` is a layer with feature maps of the
chosen model, `channel` one of that layer's maps (or -1: the strongest), `iterations` a
bounded positive count.
Where a model is needed, it is built on the meta device, so checking costs no weights, no
memory and about a second at most.
"""

from __future__ import annotations

import ast
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from convscope.core.devices import resolve_device
from convscope.core.errors import ConvscopeError, UnknownNameError, unknown_name
from convscope.core.inspection import conv_layers, feature_map_layers
from convscope.core.meta import blob_shapes, layer_table
from convscope.core.net import LayeredModel
from convscope.data.datasets import digit_class_names, imagenet_class_names, lesson_image_count
from convscope.data.images import photo_names
from convscope.explain.methods import METHODS
from convscope.fully_conv.shapes import model_for_shapes
from convscope.models.registry import (
    CAFFE_SPEC,
    CLASSIFIER,
    available_models,
    default_weights_source,
    fetch_weights,
    load_shapes_only,
    model_kind,
    suggested_defaults,
)

SEEDS = range(2**32)  # what numpy and torch both accept
LISTED = 40  # choices named in an error; 1,000 ImageNet classes would bury the message


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


@dataclass
class Run:
    """The whole parameter set of one run, and the model it names (on the meta device).

    Attributes:
        notebook: the notebook's stem, for messages.
        values: every parameter, declared defaults with the overrides applied.
        declared: the declared defaults.
    """

    notebook: str
    values: dict[str, object]
    declared: dict[str, object] = field(default_factory=dict)

    @cached_property
    def model(self) -> LayeredModel:
        """The chosen model for its shapes only (no weights read, no memory)."""
        return load_shapes_only(str(self.values["model"]))

    @cached_property
    def layer(self) -> str:
        """The chosen `layer`, or the model's suggested one when it is empty."""
        return str(self.values.get("layer") or suggested_defaults(self.model)["layer"])

    def refuse(self, name: str, valid: str) -> ConvscopeError:
        """The error for parameter `name`'s value; `valid` says what would be."""
        return UnknownNameError(
            f"{name}={self.values[name]!r} is not valid in {self.notebook}; {valid}"
        )


@dataclass(frozen=True)
class Bounds:
    """A number parameter's valid range; `above` makes the low end exclusive (`sigma > 0`)."""

    low: float
    high: float
    above: bool = False

    def admits(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def __str__(self) -> str:
        return f"{'>' if self.above else '>='} {self.low:g} and <= {self.high:g}"


# The bounds keep every run finite: counts, sizes and iterations are positive and capped.
BOUNDS: dict[str, Bounds] = {
    "seed": Bounds(0, SEEDS.stop - 1),
    "scene_seed": Bounds(0, SEEDS.stop - 1),
    "sigma": Bounds(0, 10, above=True),
    "new_bias": Bounds(-100, 100),
    "scale": Bounds(-100, 100),
    "digit_count": Bounds(1, 6),
    "height": Bounds(1, 2000),
    "width": Bounds(1, 2000),
    "scene_index": Bounds(0, 199),
    "upsample_factor": Bounds(1, 16),
    "l2": Bounds(0, 10),
    "step": Bounds(0, 100, above=True),
    "iterations": Bounds(0, 5000),  # 0: the suggested count (`suggested_iterations`)
    "photo_iterations": Bounds(1, 2000),
    "blur": Bounds(0, 10),
    "scene_count": Bounds(1, 1000),
    "pointing_scenes": Bounds(0, 1000),  # 0: the suggested count (`suggested_scene_count`)
    "sanity_images": Bounds(0, 64),  # 0: the suggested count (`suggested_sanity_check`)
    "tolerance": Bounds(0, 16),
}


def _one_of(run: Run, name: str, choices: Sequence[object]) -> None:
    if run.values[name] not in choices:
        if isinstance(choices, range):
            raise run.refuse(name, f"choose one of: {choices.start}..{choices.stop - 1}")
        shown = ", ".join(map(repr, choices[:LISTED]))
        more = f", ... ({len(choices)} in all)" if len(choices) > LISTED else ""
        raise run.refuse(name, f"choose one of: {shown}{more}")


def _check_model(run: Run, name: str) -> None:
    spec = str(run.values[name])
    if spec.startswith("caffe:"):
        for part in spec.split(":")[1:3]:
            _readable_file(run, name, part)
        return
    kinds = {CLASSIFIER, model_kind(str(run.declared.get(name, spec)))}
    valid = [m for kind in sorted(kinds) for m in available_models(kind)]
    if spec not in valid:
        raise unknown_name("model", spec, [*valid, CAFFE_SPEC])


def _readable_file(run: Run, name: str, path: str) -> None:
    if not path or not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ConvscopeError(
            f"{name}={run.values[name]!r}: {path!r} is not a readable file "
            f"(working folder {os.getcwd()})"
        )


def _check_weights(run: Run, name: str) -> None:
    weights, spec = str(run.values[name]), str(run.values.get("model", ""))
    if weights == "random":
        return
    if weights != "default":
        _readable_file(run, name, weights)
        return
    if spec.startswith("caffe:") or not spec:
        return
    # the file the run would load first: fetched now (downloaded when missing and allowed),
    # so a missing one fails the check with instructions, not the run half-way
    fetch_weights(default_weights_source(spec))


def _check_layer(run: Run, name: str) -> None:
    if run.values[name]:
        _one_of(run, name, feature_map_layers(run.model))


def _check_scaled_layer(run: Run, name: str) -> None:
    if run.values[name]:
        _one_of(run, name, list(run.model.params))


def _check_channel(run: Run, name: str) -> None:
    model = run.model
    channels = blob_shapes(model, (1, *model.input_size))[run.layer][1]
    _one_of(run, name, range(-1, channels))  # -1: the strongest map in the chosen image


def _first_filters(run: Run) -> int:
    return run.model.layer(conv_layers(run.model)[0]).out_channels


def _check_input_size(run: Run, name: str) -> None:
    model = model_for_shapes(str(run.values["model"]))
    try:
        layer_table(model, (1, model.input_size[0], run.values["height"], run.values["width"]))
    except ConvscopeError as error:
        raise ConvscopeError(f"{name}={run.values[name]!r}: {error}") from error


def _check_device(run: Run, name: str) -> None:
    try:
        resolve_device(run.values[name])
    except ConvscopeError as error:
        raise run.refuse(name, str(error)) from error


RULES: dict[str, Callable[[Run, str], None]] = {
    "model": _check_model,
    "device": _check_device,
    "weights": _check_weights,
    "layer": _check_layer,
    "scaled_layer": _check_scaled_layer,
    "channel": _check_channel,
    "image_index": lambda run, n: _one_of(run, n, range(lesson_image_count(run.model))),
    "zeroed_filter": lambda run, n: _one_of(run, n, range(_first_filters(run))),
    # ablated_filters 0: the suggested count (`suggested_trials`)
    "ablated_filters": lambda run, n: _one_of(run, n, range(_first_filters(run) + 1)),
    "class_name": lambda run, n: _one_of(run, n, ["", *run.model.class_names]),
    "digit_class": lambda run, n: _one_of(run, n, digit_class_names()),
    "photo": lambda run, n: _one_of(run, n, photo_names()),
    "photo_class": lambda run, n: _one_of(run, n, imagenet_class_names()),
    "method": lambda run, n: _one_of(run, n, list(METHODS)),
    "height": _check_input_size,
}
FIRST = ("model", "weights")  # every other rule may build the model


def check_values(notebook: str, values: dict[str, object], declared: dict[str, object]) -> None:
    """Check every parameter of a run against its rule: bounds, then choices.

    Raises:
        ConvscopeError: the first bad value; the message names it and the valid ones.
    """
    run = Run(notebook, values, declared)
    for name, value in values.items():
        bounds = BOUNDS.get(name)
        if bounds and isinstance(value, (int, float)) and not bounds.admits(value):
            raise run.refuse(name, f"it must be a number {bounds}")
    order = [n for n in FIRST if n in values] + [n for n in values if n not in FIRST]
    for name in order:
        if name in RULES:
            RULES[name](run, name)


def check_run(notebook: Path, overrides: dict[str, object]) -> dict[str, object]:
    """The overrides of one run, checked and converted to the declared types.

    The whole parameter set is checked (declared defaults with the overrides applied), so a
    run that would fail on a default fails here, before anything executes.

    Raises:
        ConvscopeError: an unknown name, a wrong type or a value outside its bounds or
            choices; the message lists the valid ones.
    """
    declared = declared_parameters(notebook)
    checked = {}
    for name, value in overrides.items():
        if name not in declared:
            raise unknown_name(f"parameter of {notebook.stem}", name, list(declared))
        checked[name] = coerce(name, value, declared[name])
    check_values(notebook.stem, {**declared, **checked}, declared)
    return checked
