"""convscope: the Caffe-era lessons on looking inside convolutional networks, in PyTorch.

The notebooks call these functions; each lives in one module, with docstrings giving shapes.
"""

from .cast import fully_convolutional
from .checkpoints import load_weights, save_weights
from .datasets import load_digits
from .errors import ConvscopeError
from .images import load_image, load_photo
from .inspection import (
    blob_table,
    feature_map_layers,
    param_table,
    recording,
    suggested_layer,
)
from .metrics import accuracy, predict
from .models import available_models, load_model
from .net import Net
from .records import record
from .seeding import seed_everything
from .shapes import layer_table, total_macs
from .surgery import transplant

__all__ = [
    "ConvscopeError",
    "Net",
    "accuracy",
    "available_models",
    "blob_table",
    "feature_map_layers",
    "fully_convolutional",
    "load_digits",
    "load_image",
    "load_model",
    "load_photo",
    "layer_table",
    "load_weights",
    "param_table",
    "predict",
    "record",
    "recording",
    "save_weights",
    "seed_everything",
    "suggested_layer",
    "total_macs",
    "transplant",
]
