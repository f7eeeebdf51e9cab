"""Interactive figures: each widget is a thin wrapper over a plain, tested figure function.

Each function returns the `ipywidgets.interactive` object; display it as a cell's last line.
Tests drive the same objects headlessly by setting their controls' values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ipywidgets as widgets
import torch
from IPython.display import display as display_figure

from convscope.core.arguments import integer
from convscope.core.errors import ConvscopeError
from convscope.core.inspection import feature_map_layers, show_layer
from convscope.core.meta import layer_table
from convscope.core.net import LayeredModel, Net
from convscope.data.scenes import scene_of_seed
from convscope.explain.class_models import ClassModels, show_class_models
from convscope.explain.methods import METHODS, show_explanation
from convscope.explain.saliency import show_saliency
from convscope.explain.sanity import SanityCurves, show_randomisation
from convscope.explain.top_activations import RecordedPasses, show_channel
from convscope.fully_conv.dense import class_maps, show_class_maps
from convscope.fully_conv.shapes import key_blob_rows, key_blobs, show_blob_sizes
from convscope.surgery.filters import KERNEL_KINDS, designer_kernel, show_filter_response


def wraps_figure(figure: Callable) -> Callable[[Callable], Callable]:
    """Mark a widget function with the plain figure function it wraps (`figure_function`),
    which a notebook calls in a cell before the widget's (the tests check that it does)."""

    def mark(widget_function: Callable) -> Callable:
        widget_function.figure_function = figure
        return widget_function

    return mark


def _interactive(update, **controls: widgets.ValueWidget) -> widgets.interactive:
    """`ipywidgets.interactive` that shows `update`'s returned figure in its output area.

    Plain `interactive` only calls `update`: a `Figure` built without pyplot, as every figure
    here is, would never reach the page (`interact` displays results, `interactive` does not).
    """
    return widgets.interactive(update, {"auto_display": True}, **controls)


@wraps_figure(show_filter_response)
def designer_filter_widget(image: torch.Tensor) -> widgets.interactive:
    """Choose a kernel (Gaussian with σ, Sobel y/x, or typed numbers) and a bias for `image`.

    Args:
        image: gray `(1, H, W)` in [0, 1].
    """

    def update(kind: str, sigma: float, typed: str, bias: float):
        return show_filter_response(image, designer_kernel(kind, sigma, typed), bias)

    return _interactive(
        update,
        kind=widgets.Dropdown(options=KERNEL_KINDS, value="gaussian", description="kernel"),
        sigma=widgets.FloatSlider(value=1.0, min=0.3, max=3.0, step=0.1, description="σ"),
        typed=widgets.Text(
            value="0 1 0; 1 -4 1; 0 1 0", description="typed", continuous_update=False
        ),
        bias=widgets.FloatSlider(value=0.0, min=-1.0, max=1.0, step=0.1, description="bias"),
    )


@wraps_figure(show_layer)
def layer_widget(
    model: Net, images: torch.Tensor, layer: str = "conv1", image_index: int = 0
) -> widgets.interactive:
    """Choose a layer and an image: the layer's filters and that image's activation maps.

    Args:
        model: a `Net`.
        images: `(N, C, H, W)` in [0, 1] to choose from.
        layer, image_index: the layer and the image shown first.
    """

    def update(layer: str, index: int):
        return show_layer(model, images[index], layer)

    return _interactive(
        update,
        layer=widgets.Dropdown(options=feature_map_layers(model), value=layer, description="layer"),
        index=widgets.IntSlider(
            value=integer("image_index", image_index, 0, len(images) - 1),
            min=0,
            max=len(images) - 1,
            description="image",
        ),
    )


@wraps_figure(show_class_maps)
def class_map_widget(
    cast: LayeredModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_name: str,
    scene_seed: int = 0,
    count: int = 4,
    size: tuple[int, int] = (96, 128),
) -> widgets.interactive:
    """Choose a class and a scene seed: `show_class_maps` on a freshly composed scene.

    Args:
        cast: a fully convolutional digit net.
        images, labels: the digits scenes are composed from, `(N, 1, 28, 28)` and `(N,)`.
        class_name: the class shown first; scene_seed: the scene shown first.
        count, size: digits per scene and canvas `(H, W)`.
    """

    def update(class_name: str, scene_seed: int):
        scene = scene_of_seed(images, labels, scene_seed, size, count)
        return show_class_maps(cast, scene.image, class_maps(cast, scene.image), class_name, scene)

    return _interactive(
        update,
        class_name=widgets.Dropdown(
            options=cast.class_names, value=class_name, description="class"
        ),
        scene_seed=widgets.IntSlider(value=scene_seed, min=0, max=99, description="scene"),
    )


@wraps_figure(show_blob_sizes)
def fcn_shape_widget(
    nets: Mapping[str, LayeredModel], net: str, height: int, width: int
) -> widgets.interactive:
    """Net menu, height and width sliders: the key blobs' rows of the layer table and their sizes.

    Args:
        nets: the nets to choose from by name (ideally built on the meta device: no memory).
        net, height, width: the choice shown first.

    An input too small for the chosen net prints the error, which names the smallest size.
    """

    def update(net: str, height: int, width: int):
        model = nets[net]
        try:
            table = layer_table(model, (1, model.input_size[0], height, width))
        except ConvscopeError as error:
            print(error)
            return None
        print(key_blob_rows(table))
        return show_blob_sizes(table, key_blobs(table))

    return _interactive(
        update,
        net=widgets.Dropdown(options=list(nets), value=net, description="net"),
        height=widgets.IntSlider(value=height, min=1, max=800, description="height"),
        width=widgets.IntSlider(value=width, min=1, max=800, description="width"),
    )


@wraps_figure(show_channel)
def deconvnet_widget(
    model: LayeredModel,
    images: torch.Tensor,
    layer: str,
    channel: int = 0,
    index: int = 0,
    passes: RecordedPasses | None = None,
) -> widgets.interactive:
    """Layer dropdown, channel slider and image chooser: `show_channel`.

    A new image costs one recorded forward pass; the first layer one streaming pass over the
    set for every layer; a new channel only projections: every image's recorded pass is kept,
    so the nine top images' projections repeat no forward pass either. Pass the lesson's
    `RecordedPasses` (`passes`) to start from what its cells recorded.
    """
    passes = passes or RecordedPasses(model, images)
    layers = passes.deconvnet(index).layers
    top_channel = passes.deconvnet(index).channels(layer) - 1
    channel_slider = widgets.IntSlider(value=channel, min=0, max=top_channel, description="channel")
    layer_menu = widgets.Dropdown(options=layers, value=layer, description="layer")

    def follow_layer(change):
        channel_slider.max = passes.deconvnet(index).channels(change["new"]) - 1

    layer_menu.observe(follow_layer, names="value")

    return _interactive(
        passes.show,
        layer=layer_menu,
        channel=channel_slider,
        index=widgets.IntSlider(value=index, min=0, max=len(images) - 1, description="image"),
    )


@wraps_figure(show_saliency)
def saliency_widget(
    model: LayeredModel, images: torch.Tensor, class_name: str, index: int = 0
) -> widgets.interactive:
    """Class selector (by name) and image chooser: `show_saliency`."""
    return _interactive(
        lambda class_name, index: show_saliency(model, images[index], class_name),
        class_name=widgets.Dropdown(
            options=model.class_names, value=class_name, description="class"
        ),
        index=widgets.IntSlider(value=index, min=0, max=len(images) - 1, description="image"),
    )


@wraps_figure(show_class_models)
def class_model_widget(
    model: LayeredModel,
    class_name: str,
    l2: float,
    iterations: int,
    step: float = 0.2,
    cache: ClassModels | None = None,
) -> widgets.VBox:
    """Class, λ and iterations, a button and a progress bar: `show_class_models` for one class.

    Moving a control only shows a kept result (`cache.cached`) or says that none is kept;
    the optimisation runs when the button is pressed, with the progress bar following it,
    and its result is kept for those parameters. Pass the `ClassModels` the lesson's cells
    used, so that their results show at once. `result` is the figure shown (None while
    nothing is kept for the controls' values).
    """
    cache = cache or ClassModels(model)
    menu = widgets.Dropdown(options=model.class_names, value=class_name, description="class")
    strength = widgets.FloatLogSlider(value=l2, base=10, min=-4, max=0, description="λ")
    steps = widgets.IntSlider(value=iterations, min=10, max=1000, step=10, description="iterations")
    button = widgets.Button(description="compute", tooltip="run the gradient ascent")
    bar = widgets.IntProgress(value=0, min=0, max=iterations, description="steps")
    output = widgets.Output()

    def choice() -> tuple:
        return menu.value, strength.value, step, steps.value

    def draw(change=None) -> None:
        kept = cache.cached(*choice())
        box.result = (
            None
            if kept is None
            else show_class_models(model, [menu.value], strength.value, step, steps.value, cache)
        )
        output.clear_output(wait=True)
        with output:
            if box.result is None:
                print(f"not computed yet for these values: press 'compute' ({steps.value} steps)")
            else:
                display_figure(box.result)
        bar.max, bar.value = steps.value, steps.value if kept is not None else 0

    def compute(clicked=None) -> None:
        button.disabled = True
        try:
            cache.get(*choice(), progress=lambda done: setattr(bar, "value", done))
        finally:
            button.disabled = False
        draw()

    for control in (menu, strength, steps):
        control.observe(draw, names="value")
    button.on_click(compute)
    box = widgets.VBox([menu, strength, steps, widgets.HBox([button, bar]), output])
    box.compute, box.button, box.progress = compute, button, bar
    box.controls = {"class": menu, "λ": strength, "iterations": steps}
    draw()
    return box


@wraps_figure(show_explanation)
def explain_widget(
    model: LayeredModel,
    images: torch.Tensor,
    targets,
    method: str = "gradient",
    index: int = 0,
    layer: str = "",
    **settings,
) -> widgets.interactive:
    """Method dropdown and image chooser: `show_explanation` of each image's own class
    (`targets`, one per image). Each figure is computed once and kept (the last 32)."""
    model.class_indices(targets, len(images))
    kept: dict[tuple[str, int], object] = {}

    def update(method: str, index: int):
        key = (method, index)
        if key not in kept:
            if len(kept) >= 32:
                kept.pop(next(iter(kept)))
            kept[key] = show_explanation(
                model, images[index], int(targets[index]), method, layer, **settings
            )
        return kept[key]

    return _interactive(
        update,
        method=widgets.Dropdown(options=METHODS, value=method, description="method"),
        index=widgets.IntSlider(value=index, min=0, max=len(images) - 1, description="image"),
    )


@wraps_figure(show_randomisation)
def randomisation_widget(
    curves: SanityCurves, images: torch.Tensor, layer: str = "", index: int = 0
) -> widgets.interactive:
    """A "randomise from layer" slider over the cascade (top layer first) and an image
    chooser: every method's map for the trained net beside the net randomised from the top
    down to that layer. The maps are those `curves` holds, so a move computes nothing.

    Args:
        curves: cascading `SanityCurves`; images: the `(N, C, H, W)` images they explain.
    """
    layers = curves.states[1:]
    if len(images) != curves.maps.shape[2]:
        raise ConvscopeError(
            f"images must be the {curves.maps.shape[2]} images the curves explain; "
            f"got {len(images)}"
        )
    return _interactive(
        lambda layer, index: show_randomisation(curves, images[index], index, ["trained", layer]),
        layer=widgets.SelectionSlider(
            options=layers, value=layer or layers[0], description="randomise from"
        ),
        index=widgets.IntSlider(value=index, min=0, max=len(images) - 1, description="image"),
    )
