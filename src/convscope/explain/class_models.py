"""Class models computed once per parameter set: the expensive part of lesson 06.

A class model is hundreds of forward and backward passes (about 0.5 s each for VGG16 on two
CPU cores). `ClassModels` keeps every result by its parameters, so the lesson's cells and its
widget share them: the widget shows a kept result at once, and computes a new one only when
asked (its button), never because a slider moved.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import torch
from matplotlib.figure import Figure

from convscope.core.arguments import positive
from convscope.core.meta import has_large_input
from convscope.core.metrics import class_scores
from convscope.core.net import LayeredModel
from convscope.core.plotting import show_panels
from convscope.explain.saliency import class_model

# Iterations of the class model that the lesson suggests: the paper's setting is not stated
# as a count; 400 converge on the digit net in seconds, and 80 keep one VGG16 class model
# under a minute on two CPU cores (0.5 s per iteration at 224 x 224).
SMALL_NET_ITERATIONS = 400
LARGE_NET_ITERATIONS = 80
# A photo net's class model has a few extreme pixels; display maps the 0.5th..99.5th
# percentiles to black..white, so the shapes in between can be seen
STRETCH_PERCENTILE = 99.5


def suggested_iterations(model: LayeredModel) -> int:
    """400 for small inputs (the digit net's 28 x 28), 80 for ImageNet-size inputs."""
    return LARGE_NET_ITERATIONS if has_large_input(model) else SMALL_NET_ITERATIONS


class ClassModelKey(NamedTuple):
    """What a class model depends on: class index, λ, step, iterations and blur σ."""

    index: int
    l2: float
    step: float
    iterations: int
    blur: float = 0.0


class ClassModels:
    """The class models of one net, each computed on request and then kept.

    Args:
        model: a classifier.
        keep: how many results to keep (the oldest goes first); each is one `(C, H, W)` image.
    """

    def __init__(self, model: LayeredModel, keep: int = 64) -> None:
        self.model = model
        self.keep = positive("keep", keep)
        self._kept: OrderedDict[ClassModelKey, tuple[torch.Tensor, float]] = OrderedDict()
        self.computed = 0  # how many optimisations ran (the tests count them)

    def key(
        self, class_name: str | int, l2: float, step: float, iterations: int, blur: float = 0.0
    ) -> ClassModelKey:
        return ClassModelKey(
            self.model.class_index(class_name),
            float(l2),
            float(step),
            positive("iterations", iterations),
            float(blur),
        )

    def cached(
        self, class_name: str | int, l2: float, step: float, iterations: int, blur: float = 0.0
    ) -> tuple[torch.Tensor, float] | None:
        """The kept `(image, score)` for these parameters, or None; never computes."""
        return self._kept.get(self.key(class_name, l2, step, iterations, blur))

    def get(
        self,
        class_name: str | int,
        l2: float = 1e-2,
        step: float = 0.2,
        iterations: int = 400,
        progress: Callable[[int], None] | None = None,
        blur: float = 0.0,
    ) -> tuple[torch.Tensor, float]:
        """`class_model(...)` for these parameters: the kept result, or computed and kept.

        Returns:
            The image `(C, H, W)` in [0, 1] and the final score.
        """
        key = self.key(class_name, l2, step, iterations, blur)
        if key not in self._kept:
            self._kept[key] = class_model(
                self.model, key.index, key.l2, key.step, key.iterations, progress, blur=key.blur
            )
            self.computed += 1
            while len(self._kept) > self.keep:
                self._kept.popitem(last=False)
        self._kept.move_to_end(key)
        return self._kept[key]


def show_class_models(
    model: LayeredModel,
    classes: list[str | int],
    l2: float = 1e-2,
    step: float = 0.2,
    iterations: int = 400,
    cache: ClassModels | None = None,
) -> Figure:
    """Each class's model image (`class_model`), titled with its class and final score;
    taken from `cache` (and kept there) when one is given."""
    cache = cache or ClassModels(model)
    panels = []
    for name in classes:
        image, score = cache.get(name, l2, step, iterations)
        panels.append((f"{model.class_names[model.class_index(name)]} ({score:.0f})", image))
    return show_panels(
        panels,
        size=1.6,
        columns=min(len(panels), 5),
        title=f"λ = {l2}, step {step}, {iterations} iterations",
        title_size=10,
    )


def stretched(image: torch.Tensor, percentile: float = STRETCH_PERCENTILE) -> torch.Tensor:
    """`image` `(C, H, W)` with its values between the `100 - percentile`-th and the
    `percentile`-th percentile (over all channels) mapped to [0, 1], and clipped there."""
    values = image.flatten().double()
    low, high = (torch.quantile(values, q).item() for q in (1 - percentile / 100, percentile / 100))
    if high <= low:
        return torch.zeros_like(image)
    return ((image - low) / (high - low)).clamp(0, 1).to(image.dtype)


def show_regularised_class_models(
    model: LayeredModel,
    class_name: str | int,
    l2: float,
    step: float,
    iterations: int,
    blur: float,
    cache: ClassModels | None = None,
) -> Figure:
    """One class's model twice, with the same λ, step and iterations: the paper's (L2 only)
    and with a Gaussian blur of σ = `blur` every `BLUR_EVERY` steps; each titled with its
    score S_c and its softmax probability, each `stretched` for display."""
    cache = cache or ClassModels(model)
    index = model.class_index(class_name)
    panels = []
    for sigma, name in ((0.0, "L2 only (the paper)"), (blur, f"L2 + blur σ = {blur:g} px")):
        image, score = cache.get(index, l2, step, iterations, blur=sigma)
        probability = class_scores(model, image[None]).softmax(1)[0, index].item()
        panels.append((f"{name}\nS = {score:.0f}, P = {probability:.2f}", stretched(image)))
    title = (
        f'class models of "{model.class_names[index]}": {iterations} steps, λ = {l2:g}, '
        f"step {step:g}; each stretched from its {100 - STRETCH_PERCENTILE:g}th to its "
        f"{STRETCH_PERCENTILE:g}th percentile"
    )
    return show_panels(panels, size=2.6, title=title, title_size=8)  # long: small to fit
