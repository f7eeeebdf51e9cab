"""Sanity checks for explanations (Adebayo et al. 2018): does the map depend on what the
network learned?

- Cascading randomisation: re-initialise the weights from the top layer down, one more layer
  at each step, and compare each method's map with the trained network's.
- Independent randomisation: re-initialise one layer at a time, the others trained.
- Data randomisation: compare with a copy of the network trained on permuted labels.

A method whose maps stay alike while the weights they should depend on are random explains
the image more than the network. Similarity is Spearman's rank correlation and SSIM (maps
scaled to [0, 1] by their maximum), the mean over the images.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.meta import has_large_input, total_macs
from convscope.core.net import LayeredModel
from convscope.core.plotting import FIGURE_DPI, MIN_FONT_PT, Heat, in_colour, show_panels
from convscope.core.precision import float64_where_cheap, settled
from convscope.core.similarity import rank_correlation, structural_similarity
from convscope.explain.methods import METHODS, explain_many

TRAINED = "trained"
SHOWN_STATES = 8  # columns of maps that stay legible across a notebook's width
STATE_CAPTIONS = {
    "cascading": "columns: the net randomised from the top down to the named part; "
    "each map scaled to its maximum",
    "independent": "columns: only the named part randomised; each map scaled to its maximum",
    "data": "rows: the trained net, the net trained on permuted labels; "
    "each map scaled to its maximum",
}
# Forward multiply-accumulates one randomisation test may spend on an ImageNet-size net: 80
# explanations of EfficientNet-Lite0 (0.39 G each), about five seconds on two CPU cores
LARGE_NET_MACS = 32 * 10**9
KINDS = ("cascading", "independent")


@dataclass
class SanityCurves:
    """Each method's maps and similarities over the randomisation states.

    Attributes:
        kind: `"cascading"`, `"independent"` or `"data"`.
        states: `"trained"`, then the layer randomised (cascading: down to that layer).
        methods: the methods compared.
        maps: `(states, methods, N, H, W)`: every map, each scaled to [0, 1].
        rank_correlation, ssim: `(states, methods)`, the mean over the N images of the
            similarity with the trained network's map (1 for `"trained"`), over the images
            whose two maps are both alive; NaN when none is.
        vanished: `(states, methods)`, the fraction of the N images whose map is all zero in
            that state or in the trained one. A vanished map is a failed map, not a map
            unlike the trained one: it is left out of the similarities and counted here.
    """

    kind: str
    states: list[str]
    methods: list[str]
    maps: torch.Tensor
    rank_correlation: torch.Tensor
    ssim: torch.Tensor
    vanished: torch.Tensor


def randomisable_layers(model: LayeredModel) -> list[str]:
    """The layers with weights, top first (fc8, fc7, ..., conv1)."""
    return list(reversed(model.params))


def randomisation_stages(model: LayeredModel) -> list[tuple[str, tuple[str, ...]]]:
    """The model's `stages` top first, each with its layers with weights: the cascade's steps
    (fc8, fc7, ..., conv1 for a chain; classifier, head, block15, ..., stem for
    EfficientNet, as Adebayo et al. randomise Inception v3 block by block)."""
    return [(stage, layers) for stage, layers in reversed(model.stages.items()) if layers]


def randomised(model: LayeredModel, layers: Sequence[str], seed: int = 0) -> LayeredModel:
    """A copy of `model` whose `layers` are re-initialised by their own `reset_parameters`;
    layer i of `randomisable_layers` always gets seed `seed + i`, so a layer is given the same
    random weights in every state. torch's global random state is left as it was.

    Raises:
        UnknownNameError: a layer without weights, listing those with weights.
    """
    order = randomisable_layers(model)
    for layer in layers:
        if layer not in order:
            raise unknown_name("layer with weights", layer, order)
    copied = copy.deepcopy(model)
    for layer in layers:
        _reset(copied, layer, seed + order.index(layer))
    return copied


def _reset(model: LayeredModel, layer: str, seed: int) -> None:
    """Re-initialise one layer in place from `seed`, leaving torch's global stream as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.layer(layer).reset_parameters()


def _scaled(heat: torch.Tensor) -> torch.Tensor:
    """`heat` scaled to a maximum of 1, settled (`core.precision`): pixels equal but for
    rounding rank as ties on every CPU."""
    return settled(heat / heat.max() if heat.max() > 0 else heat)


def explanation_maps(
    model: LayeredModel,
    images: torch.Tensor,
    targets: Sequence[int],
    methods: Sequence[str],
    seed: int = 0,
    **settings,
) -> torch.Tensor:
    """Every method's map of every image, each scaled to [0, 1]: `(methods, N, H, W)`.

    SmoothGrad draws the same noise in every call (a generator seeded with `seed`), so two
    networks are compared on the same noisy copies. `settings` go to `explain`. Rank
    correlations amplify rounding (two near-equal pixels swap ranks), so the maps are made in
    float64 on the CPU for nets with small inputs (`core.precision`).
    """
    model = float64_where_cheap(model)
    rows = []
    for method in methods:
        found = explain_many(
            model, images, [int(t) for t in targets], method, seed=seed, **settings
        )
        rows.append(torch.stack([_scaled(result.map) for result in found]))
    return torch.stack(rows)


def _mean(values: list[float]) -> torch.Tensor:
    """The mean in float64, NaN for no values."""
    if not values:
        return torch.tensor(float("nan"), dtype=torch.float64)
    return torch.tensor(values, dtype=torch.float64).mean()


def similarities(reference: torch.Tensor, maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Mean rank correlation and SSIM of `maps` with `reference`, both `(methods, N, H, W)`,
    over the pairs whose maps are both alive (not all zero), and the fraction of pairs with
    a vanished map: three `(methods,)` tensors (the means are NaN when every pair vanished)."""
    ranked, structural, vanished = [], [], []
    for method_reference, method_maps in zip(reference, maps):
        alive = [
            (a, b)
            for a, b in zip(method_reference, method_maps)
            if a.abs().max() > 0 and b.abs().max() > 0
        ]
        vanished.append(torch.tensor(1 - len(alive) / len(method_maps), dtype=torch.float64))
        ranked.append(_mean([rank_correlation(a, b) for a, b in alive]))
        structural.append(_mean([structural_similarity(a, b) for a, b in alive]))
    return torch.stack(ranked), torch.stack(structural), torch.stack(vanished)


def _check_methods(methods: Sequence[str]) -> list[str]:
    if isinstance(methods, str) or not methods:
        raise ConvscopeError(f"methods must be a non-empty list of {', '.join(METHODS)}")
    for method in methods:
        if method not in METHODS:
            raise unknown_name("method", method, METHODS)
    return list(methods)


def randomisation_curves(
    model: LayeredModel,
    images: torch.Tensor,
    targets: Sequence[int],
    kind: str = "cascading",
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    **settings,
) -> SanityCurves:
    """The model randomisation test, cascading or independent, for every method.

    Args:
        model: a trained classifier; images: `(N, C, H, W)` in [0, 1]; targets: a class per
            image (the same class is explained in every state).
        kind: `"cascading"` (top layer down, cumulative) or `"independent"` (one at a time).
        methods: which of `METHODS`; seed: the re-initialisation's and SmoothGrad's seed.
        settings: passed to `explain` (samples, steps, layer, ...).

    Returns:
        `SanityCurves` with states `"trained"` then each stage of `randomisation_stages`.
    """
    if kind not in KINDS:
        raise unknown_name("kind", kind, KINDS)
    methods = _check_methods(methods)
    model.class_indices(targets, len(images))
    order = randomisable_layers(model)
    stages = randomisation_stages(model)
    reference = explanation_maps(model, images, targets, methods, seed, **settings)
    states, all_maps = [TRAINED], [reference]
    net = copy.deepcopy(model)  # one working copy: each state changes one stage of it
    for position, (stage, layers) in enumerate(stages):
        if kind == "independent" and position:  # the previous stage trained again
            for previous in stages[position - 1][1]:
                net.layer(previous).load_state_dict(model.layer(previous).state_dict())
        for layer in layers:
            _reset(net, layer, seed + order.index(layer))  # the seed `randomised` gives it
        all_maps.append(explanation_maps(net, images, targets, methods, seed, **settings))
        states.append(stage)
    del net
    return _curves(kind, states, methods, all_maps)


def _curves(kind: str, states, methods, all_maps: list[torch.Tensor]) -> SanityCurves:
    scores = [similarities(all_maps[0], maps) for maps in all_maps]
    return SanityCurves(
        kind,
        states,
        methods,
        torch.stack(all_maps),
        torch.stack([ranked for ranked, _, _ in scores]),
        torch.stack([structural for _, structural, _ in scores]),
        torch.stack([vanished for _, _, vanished in scores]),
    )


def data_randomisation(
    model: LayeredModel,
    permuted: LayeredModel,
    images: torch.Tensor,
    targets: Sequence[int],
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    **settings,
) -> SanityCurves:
    """The data randomisation test: each method's maps for the trained net and for `permuted`
    (the same architecture trained on permuted labels), compared as above.

    Returns:
        `SanityCurves` of kind `"data"` with states `["trained", "permuted labels"]`.
    """
    methods = _check_methods(methods)
    reference = explanation_maps(model, images, targets, methods, seed, **settings)
    other = explanation_maps(permuted, images, targets, methods, seed, **settings)
    return _curves("data", [TRAINED, "permuted labels"], methods, [reference, other])


def show_randomisation(
    curves: SanityCurves,
    image: torch.Tensor,
    index: int = 0,
    states: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
) -> Figure:
    """One image's maps: a row per method, a column per state (default: every method, and
    every state up to `SHOWN_STATES`; beyond that the first `SHOWN_STATES - 2` and the last
    two, so that a long cascade stays legible). With fewer states than methods (the data
    test's two nets) the other way round: a row per state, a column per method."""
    chosen = list(states) if states is not None else shown_states(curves.states)
    rows = list(methods) if methods is not None else curves.methods
    for state in chosen:
        if state not in curves.states:
            raise unknown_name("state", state, curves.states)
    for method in rows:
        if method not in curves.methods:
            raise unknown_name("method", method, curves.methods)
    by_state = len(chosen) < len(rows)  # the data test's two nets: a row per net instead
    outer, inner = (chosen, rows) if by_state else (rows, chosen)
    panels = []
    for row, first in enumerate(outer):
        panels.append((f"{first}:" if by_state else first, in_colour(image)))
        for second in inner:
            state, method = (first, second) if by_state else (second, first)
            values = curves.maps[curves.states.index(state), curves.methods.index(method), index]
            title = textwrap.fill(method.replace("_", " "), 11) if by_state else state
            panels.append(
                (title if row == 0 else "", Heat(values, "", limits=(0.0, 1.0), cmap="hot"))
            )
    return show_panels(
        panels,
        columns=len(inner) + 1,
        size=1.15 if by_state else 1.1,
        title=STATE_CAPTIONS[curves.kind],
        title_size=9,
        shared_bar="each map scaled to 0..1",
    )


def shown_states(states: Sequence[str]) -> list[str]:
    """At most `SHOWN_STATES` of `states`: all of them, or the first `SHOWN_STATES - 2`
    (trained and the top of the net) and the last two (the bottom)."""
    if len(states) <= SHOWN_STATES:
        return list(states)
    return list(states[: SHOWN_STATES - 2]) + list(states[-2:])


def show_similarity_curves(*curves: SanityCurves) -> Figure:
    """Rank correlation and SSIM over the states, a line per method: a column per curve set
    (cascading, independent)."""
    figure = Figure(figsize=(4.2 * len(curves), 5.6), dpi=FIGURE_DPI)
    for column, found in enumerate(curves):
        for row, (name, values) in enumerate(
            (("Spearman rank correlation", found.rank_correlation), ("SSIM", found.ssim))
        ):
            axes = figure.add_subplot(2, len(curves), row * len(curves) + column + 1)
            for m, method in enumerate(found.methods):
                axes.plot(
                    range(len(found.states)),
                    values[:, m].numpy(),
                    marker="o",
                    markersize=3,
                    label=method,
                )
            axes.set_xticks(
                range(len(found.states)), found.states, rotation=60, fontsize=MIN_FONT_PT
            )
            axes.set_ylim(-0.6, 1.05)
            axes.set_title(f"{found.kind}: {name}", fontsize=9)
            axes.grid(alpha=0.3)
    figure.legend(
        *figure.axes[0].get_legend_handles_labels(),
        loc="lower center",
        ncol=4,
        fontsize=MIN_FONT_PT,
    )
    figure.subplots_adjust(left=0.08, right=0.98, top=0.95, bottom=0.2, hspace=0.55, wspace=0.2)
    return figure


def suggested_sanity_check(model: LayeredModel) -> tuple[int, list[str]]:
    """How many images and which methods the randomisation tests use when none are chosen.

    The digits: 8 images and every method. ImageNet-size nets: the four methods of Adebayo et
    al.'s verdict (the gradient and Grad-CAM, guided backpropagation and Guided Grad-CAM), on
    as many images as keep one test (every stage of the cascade, every method) within
    `LARGE_NET_MACS` multiply-accumulates of forward passes, and at least one: 2 for
    EfficientNet-Lite0 (0.39 G per pass, 10 stages), 1 for AlexNet (0.71 G, 8 layers with
    weights) and VGG16 (15.5 G, 16)."""
    if not has_large_input(model):
        return 8, list(METHODS)
    methods = ["gradient", "guided_backprop", "grad_cam", "guided_grad_cam"]
    per_image = (
        len(randomisation_stages(model)) * len(methods) * total_macs(model, model.input_size)
    )
    return max(1, LARGE_NET_MACS // per_image), methods
