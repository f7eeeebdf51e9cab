"""Every figure function of the package meets the lessons' figure standard
(`cs.figure_problems`: at least 100 dpi, no text under 8 pt, a colour bar beside every heat map),
called as the lessons call it, on the shipped digit net (and the photo net for photo figures).
"""

from __future__ import annotations

import pytest
import torch

import convscope as cs
from convscope.explain.deconvnet import Deconvnet


def _figures(net, images, labels):
    """name -> a function making that figure, as a lesson would."""
    image, label = images[0], int(labels[0])
    cast = cs.fully_convolutional(net)
    scene = cs.compose_scene(
        images, labels, size=(60, 76), count=2, generator=torch.Generator().manual_seed(0)
    )
    gray = cs.load_photo("chelsea", gray=True)[:, 100:160, 200:280]
    designer = cs.designer_net(3, 5, 0.01)
    curves = cs.randomisation_curves(
        net, images[:2], labels[:2].tolist(), "cascading", ["gradient"]
    )
    deconvnet = Deconvnet(net, net.preprocess(image[None]))
    top = cs.top_activations(net, images[:20], "conv2")
    table = cs.layer_table(cs.load_shapes_only("fcn32s"), (1, 3, 100, 100))
    cat_scene = cs.localisation_scenes(1, seed=5)
    return {
        "show_filter_outputs": lambda: cs.show_filter_outputs(designer, gray, crop=20),
        "show_filter_response": lambda: cs.show_filter_response(gray, torch.ones(3, 3), 0.5),
        "show_first_layer": lambda: cs.show_first_layer(
            cs.with_designer_filters(net, "conv1"), image
        ),
        "show_layer": lambda: cs.show_layer(net, image, "conv1"),
        "show_class_maps": lambda: cs.show_class_maps(
            cast, scene.image, cs.class_maps(cast, scene.image), "7", scene
        ),
        "show_blob_sizes": lambda: cs.show_blob_sizes(table, cs.key_blobs(table)),
        "show_upsampling_forms": lambda: cs.show_upsampling_forms(torch.rand(1, 2, 3, 3), 2),
        "show_label_maps": lambda: cs.show_label_maps(
            [("image", scene.image), ("labels", scene.labels.clamp(max=10))],
            [*net.class_names, "background"],
        ),
        "show_projections": lambda: cs.show_projections(net, image, deconvnet, ["conv1", "conv2"]),
        "show_top_activations": lambda: cs.show_top_activations(net, images[:20], top, [0, 1]),
        "show_channel": lambda: cs.show_channel(net, images[:20], deconvnet, image, top, 0),
        "show_occlusion": lambda: cs.show_occlusion(
            image, cs.occlusion(net, image, label, "conv2", 7, 3), net.class_names
        ),
        "show_saliency": lambda: cs.show_saliency(net, image, label),
        "show_class_models": lambda: cs.show_class_models(net, [0, 1], iterations=2),
        "show_regularised_class_models": lambda: cs.show_regularised_class_models(
            net, 1, 0.01, 0.2, 4, 0.5
        ),
        "show_localization": lambda: cs.show_localization(
            scene.image, cs.localize(net, scene.image[:, :28, :28], label)
        ),
        "show_explanation": lambda: cs.show_explanation(net, image, label, "gradient"),
        "show_explanations": lambda: cs.show_explanations(
            net, image, label, ["gradient", "grad_cam"]
        ),
        "show_randomisation": lambda: cs.show_randomisation(curves, image),
        "show_similarity_curves": lambda: cs.show_similarity_curves(curves),
        "show_pointing": lambda: cs.show_pointing(
            cs.sliding_classifier(net), cat_scene, ["gradient"], 15, count=1
        ),
        "show_panels": lambda: cs.show_panels(
            [("image", image), ("map", cs.Heat(image[0], "value", over=image))]
        ),
    }


FIGURES = sorted(name for name in cs.__all__ if name.startswith("show_"))
PHOTO_FIGURES = {"show_photo_saliency"}


@pytest.fixture(scope="module")
def figures(digits_net, heldout):
    return _figures(digits_net, *[part[:40] for part in heldout])


def test_every_figure_function_is_checked(figures):
    assert set(figures) | PHOTO_FIGURES == set(FIGURES)


@pytest.mark.parametrize("name", sorted(set(FIGURES) - PHOTO_FIGURES))
def test_figure_meets_the_standard(name, figures):
    assert cs.figure_problems(figures[name]()) == []


def test_photo_figure_meets_the_standard():
    net = cs.load_model("efficientnet_lite0")
    figure = cs.show_photo_saliency(net, cs.photo_saliency(net, ["coffee"]))
    assert cs.figure_problems(figure) == []
