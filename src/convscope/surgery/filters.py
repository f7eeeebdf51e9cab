"""Designer filters: a one-layer convolutional net whose kernels we write by hand."""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from convscope.core.arguments import image_for, integer
from convscope.core.blur import gaussian_weights
from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.inspection import conv_layers
from convscope.core.net import LayeredModel, Net
from convscope.core.plotting import Heat, show_panels
from convscope.core.transforms import PassThrough

# Responds to horizontal edges: it is the derivative along y (rows), smoothed along x.
SOBEL_Y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))
KERNEL_KINDS = ("gaussian", "sobel_y", "sobel_x", "typed")


def gaussian_kernel(size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    """A normalised 2-D Gaussian `(size, size)` centred on the middle pixel; sums to 1."""
    one_d = gaussian_weights(size, sigma)
    return torch.outer(one_d, one_d)


def sobel_kernel(axis: str = "y") -> torch.Tensor:
    """The 3x3 Sobel derivative along `"y"` (finds horizontal edges) or `"x"` (vertical ones)."""
    kernel = torch.tensor(SOBEL_Y)
    if axis not in ("x", "y"):
        raise unknown_name("Sobel axis", axis, ("x", "y"))
    return kernel if axis == "y" else kernel.T.contiguous()


def embed_kernel(kernel: torch.Tensor, size: int = 5) -> torch.Tensor:
    """Place a `(k, k)` kernel in the centre of a zero `(size, size)` one (k odd, k <= size)."""
    k = kernel.shape[-1]
    if kernel.dim() != 2 or kernel.shape[0] != k or k % 2 == 0 or k > size:
        raise ConvscopeError(
            f"a kernel must be square with an odd side of at most {size}; got {tuple(kernel.shape)}"
        )
    margin = (size - k) // 2
    return F.pad(kernel, (margin, margin, margin, margin))


def parse_kernel(text: str) -> torch.Tensor:
    """Read a kernel typed as numbers: rows separated by `;` or new lines, values by spaces.

    Example: `"1 0 -1; 2 0 -2; 1 0 -1"` gives a `(3, 3)` tensor.
    """
    rows = [row for row in re.split(r"[;\n]", text) if row.strip()]
    try:
        values = [[float(v) for v in re.split(r"[,\s]+", row.strip())] for row in rows]
    except ValueError as error:
        raise ConvscopeError(f"cannot read kernel {text!r}: {error}") from error
    if not values or any(len(row) != len(values) for row in values):
        raise ConvscopeError(
            f"kernel {text!r} is not square: write k rows of k numbers, e.g. '0 1 0; 1 -4 1; 0 1 0'"
        )
    return torch.tensor(values, dtype=torch.float32)


def designer_kernel(kind: str, sigma: float = 1.0, text: str = "", size: int = 5) -> torch.Tensor:
    """A `(size, size)` kernel of one of `KERNEL_KINDS`, smaller ones centred in zeros.

    Args:
        kind: `gaussian` (normalised, std `sigma`), `sobel_y`, `sobel_x`, or `typed` (`text`).
    """
    if kind == "gaussian":
        return gaussian_kernel(size, sigma)
    if kind in ("sobel_y", "sobel_x"):
        return embed_kernel(sobel_kernel(kind[-1]), size)
    if kind == "typed":
        return embed_kernel(parse_kernel(text), size)
    raise unknown_name("kernel kind", kind, KERNEL_KINDS)


def designer_net(num_filters: int = 3, kernel_size: int = 5, std: float = 0.01) -> Net:
    """One convolution layer `conv` on a gray image, weights ~ N(0, std²), biases 0.

    It mirrors the `conv.prototxt` of Caffe's net-surgery example: input `(N, 1, H, W)`,
    output `(N, num_filters, H - kernel_size + 1, W - kernel_size + 1)` (no padding).
    """
    conv = nn.Conv2d(1, num_filters, kernel_size)
    nn.init.normal_(conv.weight, std=std)
    nn.init.zeros_(conv.bias)
    return Net(
        OrderedDict(conv=conv),
        name="designer",
        input_size=(1, kernel_size, kernel_size),
        class_names=[],
        preprocess=PassThrough(),
    ).eval()


@torch.no_grad()
def filter_outputs(net: Net, image: torch.Tensor) -> torch.Tensor:
    """The maps of a one-layer net for a gray image `(1, H, W)` -> `(F, H', W')`."""
    return net(image.unsqueeze(0))[0]


def show_filter_outputs(
    net: Net, image: torch.Tensor, names: Sequence[str] = (), crop: int | None = None
) -> Figure:
    """The input and each filter's output, each output with its own colour bar.

    Args:
        net: a one-layer net (`designer_net`); image: a gray image `(1, H, W)`.
        names: what each filter is (default "filter i").
        crop: show only a `crop`×`crop` square at the centre of each output, and the input
            pixels it is centred on, magnified (a blur of a pixel or two is visible there).
    """
    maps = filter_outputs(net, image)
    names = list(names) or [f"filter {i}" for i in range(len(maps))]
    if len(names) != len(maps):
        raise ConvscopeError(f"names must name each of the {len(maps)} filters; got {names!r}")
    shown, title = image, None
    if crop is not None:
        crop = integer("crop", crop, 1, min(maps.shape[1:]), plural="crop sizes")
        offset = (image.shape[-1] - maps.shape[-1]) // 2  # an output pixel's input centre
        top, left = (maps.shape[1] - crop) // 2, (maps.shape[2] - crop) // 2
        maps = maps[:, top : top + crop, left : left + crop]
        shown = image[:, top + offset : top + offset + crop, left + offset : left + offset + crop]
        title = f"the central {crop}×{crop} pixels, magnified"
    panels = [
        (f"{name} output", Heat(output, "output", cmap="gray")) for name, output in zip(names, maps)
    ]
    return show_panels(
        [("input", shown), *panels], size=2.0 if crop else 1.8, title=title, title_size=10
    )


def show_filter_response(image: torch.Tensor, kernel: torch.Tensor, bias: float = 0.0) -> Figure:
    """One kernel applied to a gray image `(1, H, W)`: the kernel, the input, the output.

    The output's mean is in its title, so moving the bias shows the mean move with it.
    """
    output = F.conv2d(image.unsqueeze(0), kernel[None, None], torch.tensor([float(bias)]))[0, 0]
    return show_panels(
        [
            ("kernel", Heat(kernel, "weight", cmap="gray")),
            ("input", image),
            (f"output (mean {output.mean().item():.3f})", Heat(output, "output", cmap="gray")),
        ]
    )


def designer_kernels(size: int, sigma: float = 1.0) -> torch.Tensor:
    """The lesson's three kernels at `size`: Gaussian (σ `sigma`), Sobel y, Sobel x -> `(3, k, k)`.

    A Sobel kernel is centred in zeros; at `size` 1 only the Gaussian (a 1) is meaningful, so a
    first layer must have kernels of at least 3×3.
    """
    if size < 3:
        raise ConvscopeError(f"designer kernels need a kernel of at least 3×3; got {size}×{size}")
    return torch.stack([designer_kernel(kind, sigma, size=size) for kind in KERNEL_KINDS[:3]])


def with_designer_filters(model: LayeredModel, layer: str, sigma: float = 1.0) -> LayeredModel:
    """A copy of `model` whose filters 0, 1, 2 of conv `layer` are the designer kernels.

    Each kernel is spread evenly over the input channels (`kernel / C` on each), so on a colour
    input it acts on the channel mean; the three biases become 0. Other filters are untouched.

    Args:
        model: any net; `layer` a `Conv2d` of it, e.g. its first, `(F, C, k, k)` with F ≥ 3.
    """
    conv = model.layer(layer)
    square = isinstance(conv, nn.Conv2d) and conv.kernel_size[0] == conv.kernel_size[1]
    if not square or conv.groups != 1 or conv.out_channels < 3:
        raise ConvscopeError(
            f"{layer!r} of {model.name} is not an ungrouped convolution with square kernels "
            f"and at least 3 filters; "
            f"choose one of {conv_layers(model)}"
        )
    edited = copy.deepcopy(model)
    channels, size = conv.in_channels, conv.kernel_size[0]
    with torch.no_grad():
        weight, bias = edited.params[layer]
        weight[:3] = designer_kernels(size, sigma)[:, None] / channels
        bias[:3] = 0.0
    return edited


@torch.no_grad()
def first_layer_maps(model: LayeredModel, image: torch.Tensor, count: int = 3) -> torch.Tensor:
    """Filters 0..count-1 of the model's first convolution on one RGB/gray `(C, H, W)` image.

    The image goes through the model's own preprocessing, then the first convolution alone
    (it reads the input directly, so the rest of the net need not fit the photo's size).
    Returns `(count, H', W')`.
    """
    image_for(model, image)
    conv = model.layer(conv_layers(model)[0])
    count = integer("count", count, 1, conv.out_channels, plural="filter counts")
    return to_cpu(conv(to_model(model, model.preprocess(image[None])))[0, :count])


def show_first_layer(
    model: LayeredModel, image: torch.Tensor, names: Sequence[str] = KERNEL_KINDS[:3]
) -> Figure:
    """The image `(C, H, W)` and the maps of the first convolution's filters 0, 1, ….

    Args:
        names: what each filter is, one per filter shown (default: the designer kernels).
    """
    layer = conv_layers(model)[0]
    maps = first_layer_maps(model, image, len(names))
    panels = [
        (f"{layer} filter {i}: {name}", Heat(maps[i], "output", cmap="gray"))
        for i, name in enumerate(names)
    ]
    return show_panels([("input", image), *panels], size=1.8)
