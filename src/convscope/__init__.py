"""convscope: the Caffe-era lessons on looking inside convolutional networks, in PyTorch.

The notebooks call everything as `cs.<name>` (`import convscope as cs`); this file is the
whole public face. Inside, the package is a stack of subpackages, each importing only from
those below it (a test over the import graph checks it):

- `core`: what every lesson stands on: `Net` and `GraphNet`, tables, transforms, plotting,
  errors, paths, seeding, inspection (`recording`, blob and parameter tables), the meta-device
  pass (`blob_shapes`, `layer_table`), receptive-field geometry, metrics, map similarity
  (Spearman, SSIM), precision (float64 where cheap, `settled` maps), checkpoints, the
  bilinear kernel and `transplant` (FCN's definitions and the cast need both, so they cannot
  live in a lesson);
- `data`: the shipped digits and photos, the lessons' image sets, digit scenes;
- `caffe`: reading prototxt and caffemodel files, Caffe's layers, the net builder, weights;
- `models`: the registry (`load_model`), the architectures, FCN's definitions, training;
- one package per family of lessons, side by side, none importing another: `surgery` (01-02),
  `fully_conv` (03-04: the cast, dense maps, shape tables, upsampling), `explain` (05-07:
  deconvnet, top activations, occlusion, saliency, localisation; lesson 07's eight methods in
  one form, the sanity checks and the pointing game, which reuse 05 and 06's code);
- `ui`: the widgets, each a thin wrapper over a plain figure function of a lesson;
- `course`: the command line's tools (batch runs, parameter checks, the headless engine, the
  gallery); only `python -m convscope` imports them, never a lesson.
"""

from convscope.core.bilinear import bilinear_kernel
from convscope.core.checkpoints import load_weights, save_weights
from convscope.core.devices import available_devices, resolve_device
from convscope.core.errors import ConvscopeError, UnknownNameError
from convscope.core.geometry import (
    conv_output_size,
    crop_offset,
    derive_crop_offsets,
    geometries,
    transposed_output_size,
)
from convscope.core.inspection import (
    blob_table,
    conv_layers,
    feature_map_layers,
    param_table,
    recording,
    show_layer,
    suggested_layer,
)
from convscope.core.meta import Shape, blob_shapes, layer_table, smallest_input_size, total_macs
from convscope.core.metrics import (
    accuracy,
    box_iou,
    class_scores,
    predicted_classes,
    segmentation_scores,
    wilson_interval,
)
from convscope.core.net import GraphNet, Net
from convscope.core.plotting import Heat, figure_problems, show_label_maps, show_panels
from convscope.core.precision import float64_where_cheap, settled
from convscope.core.records import record
from convscope.core.seeding import seed_everything
from convscope.core.similarity import rank_correlation, structural_similarity
from convscope.core.tables import Table
from convscope.core.transplant import transplant
from convscope.data.datasets import answer_key, lesson_images, load_digits
from convscope.data.images import load_image, load_photo, square_photo
from convscope.data.scenes import SEGMENT_CLASS_NAMES, compose_scene, compose_scenes
from convscope.explain.backward_rules import projection_by_rule
from convscope.explain.class_models import (
    ClassModels,
    show_class_models,
    show_regularised_class_models,
    stretched,
    suggested_iterations,
)
from convscope.explain.deconvnet import (
    Deconvnet,
    RecordedPass,
    project_units,
    record_passes,
    rectified_gradient,
    unpool,
)
from convscope.explain.grad_cam import cam_layer
from convscope.explain.localization import localize, show_localization
from convscope.explain.methods import (
    METHODS,
    Explanation,
    backward_pass_table,
    explain,
    explain_many,
    show_explanation,
    show_explanations,
    suggested_counts,
)
from convscope.explain.occlusion import occlusion, occlusion_windows, show_occlusion
from convscope.explain.photo_saliency import photo_saliency, show_photo_saliency
from convscope.explain.pointing import (
    TORCHRAY_POINTING,
    localisation_scenes,
    localisation_table,
    photo_localisation_scenes,
    show_pointing,
    suggested_scene_count,
)
from convscope.explain.projection_figures import as_picture, show_projections
from convscope.explain.saliency import (
    all_class_saliency,
    class_model,
    class_saliency,
    saliency_of_images,
    show_saliency,
    softmax_saliency,
)
from convscope.explain.sanity import (
    data_randomisation,
    randomisation_curves,
    randomisation_stages,
    show_randomisation,
    show_similarity_curves,
    suggested_sanity_check,
)
from convscope.explain.top_activations import (
    RecordedPasses,
    show_channel,
    show_top_activations,
    top_activations,
    top_activations_of_layers,
)
from convscope.explain.verdict import trust_table
from convscope.fully_conv.cast import fully_convolutional, sliding_classifier
from convscope.fully_conv.dense import (
    class_maps,
    empty_windows,
    show_class_maps,
    time_dense_against_crops,
    window_cells,
    window_difference,
)
from convscope.fully_conv.shapes import crop_table, key_blobs, model_for_shapes, show_blob_sizes
from convscope.fully_conv.upsampling import interpolate_equivalent, show_upsampling_forms
from convscope.models.fcn import vgg16_fcn
from convscope.models.registry import available_models, load_model, load_shapes_only
from convscope.models.training import heldout_scenes
from convscope.surgery.ablation import filter_ablation, suggested_trials, with_outputs
from convscope.surgery.filters import (
    designer_kernel,
    designer_net,
    filter_outputs,
    gaussian_kernel,
    show_filter_outputs,
    show_filter_response,
    show_first_layer,
    sobel_kernel,
    with_designer_filters,
)
from convscope.ui.widgets import (
    class_map_widget,
    class_model_widget,
    deconvnet_widget,
    designer_filter_widget,
    explain_widget,
    fcn_shape_widget,
    layer_widget,
    randomisation_widget,
    saliency_widget,
)

__all__ = [
    "suggested_scene_count",
    "show_pointing",
    "wilson_interval",
    "randomisation_stages",
    "trust_table",
    "photo_localisation_scenes",
    "TORCHRAY_POINTING",
    "explain_many",
    "as_picture",
    "projection_by_rule",
    "rank_correlation",
    "structural_similarity",
    "localisation_scenes",
    "suggested_sanity_check",
    "data_randomisation",
    "explain_widget",
    "localisation_table",
    "randomisation_curves",
    "randomisation_widget",
    "show_explanation",
    "show_explanations",
    "show_randomisation",
    "show_similarity_curves",
    "backward_pass_table",
    "cam_layer",
    "explain",
    "Explanation",
    "METHODS",
    "occlusion_windows",
    "suggested_counts",
    "accuracy",
    "all_class_saliency",
    "available_devices",
    "float64_where_cheap",
    "settled",
    "resolve_device",
    "answer_key",
    "available_models",
    "bilinear_kernel",
    "blob_shapes",
    "blob_table",
    "box_iou",
    "class_map_widget",
    "class_maps",
    "class_model",
    "ClassModels",
    "suggested_iterations",
    "class_model_widget",
    "class_saliency",
    "saliency_of_images",
    "compose_scene",
    "compose_scenes",
    "conv_layers",
    "conv_output_size",
    "ConvscopeError",
    "crop_offset",
    "crop_table",
    "Deconvnet",
    "RecordedPass",
    "deconvnet_widget",
    "derive_crop_offsets",
    "designer_filter_widget",
    "designer_kernel",
    "designer_net",
    "fcn_shape_widget",
    "feature_map_layers",
    "filter_ablation",
    "filter_outputs",
    "fully_convolutional",
    "gaussian_kernel",
    "geometries",
    "GraphNet",
    "Heat",
    "figure_problems",
    "heldout_scenes",
    "interpolate_equivalent",
    "key_blobs",
    "layer_table",
    "layer_widget",
    "lesson_images",
    "load_digits",
    "load_image",
    "load_model",
    "load_photo",
    "square_photo",
    "photo_saliency",
    "show_photo_saliency",
    "load_shapes_only",
    "load_weights",
    "localize",
    "model_for_shapes",
    "Net",
    "RecordedPasses",
    "occlusion",
    "param_table",
    "class_scores",
    "predicted_classes",
    "project_units",
    "record",
    "recording",
    "record_passes",
    "rectified_gradient",
    "saliency_widget",
    "save_weights",
    "seed_everything",
    "SEGMENT_CLASS_NAMES",
    "segmentation_scores",
    "Shape",
    "show_blob_sizes",
    "show_channel",
    "show_class_maps",
    "empty_windows",
    "window_cells",
    "show_class_models",
    "show_regularised_class_models",
    "stretched",
    "show_filter_outputs",
    "show_filter_response",
    "show_first_layer",
    "show_label_maps",
    "show_layer",
    "show_localization",
    "show_occlusion",
    "show_panels",
    "show_projections",
    "show_saliency",
    "show_top_activations",
    "show_upsampling_forms",
    "sliding_classifier",
    "smallest_input_size",
    "sobel_kernel",
    "softmax_saliency",
    "suggested_layer",
    "suggested_trials",
    "Table",
    "time_dense_against_crops",
    "top_activations",
    "top_activations_of_layers",
    "total_macs",
    "transplant",
    "transposed_output_size",
    "UnknownNameError",
    "unpool",
    "vgg16_fcn",
    "window_difference",
    "with_designer_filters",
    "with_outputs",
]
