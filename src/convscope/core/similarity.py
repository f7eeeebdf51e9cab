"""How alike two maps are: Spearman's rank correlation and the structural similarity (SSIM).

Adebayo et al. (2018) compare each explanation of a randomised network with the trained
network's by both. The rank correlation ignores the scale and asks only whether the same
pixels come first; SSIM compares local means, contrasts and structure in 7×7 windows.
`structural_similarity` follows scikit-image's `structural_similarity` with its defaults
(uniform 7×7 window, sample covariance, K1 = 0.01, K2 = 0.03, the mean over the windows that
fit inside the image); the tests compare both functions with scikit-image and SciPy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from convscope.core.errors import ConvscopeError

SSIM_WINDOW = 7


def _check_pair(first: torch.Tensor, second: torch.Tensor, what: str) -> None:
    for name, value in (("first", first), ("second", second)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            kind = getattr(value, "dtype", type(value).__name__)
            raise ConvscopeError(f"{name} must be a floating tensor ({what}); got {kind}")
    if first.shape != second.shape:
        raise ConvscopeError(
            f"first and second must have one shape; got {tuple(first.shape)} and "
            f"{tuple(second.shape)}"
        )


def ranks(values: torch.Tensor) -> torch.Tensor:
    """The ranks 1..n of a flat tensor `(n,)`, ties given their average rank (float64)."""
    unique, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()  # the highest rank each distinct value takes
    average = last - (counts.double() - 1) / 2
    return average[inverse]


def rank_correlation(first: torch.Tensor, second: torch.Tensor) -> float:
    """Spearman's rank correlation of two maps of one shape (any shape, read flat).

    Returns:
        A float in [-1, 1]; NaN when either map is constant (its ranks have no spread), as
        SciPy's `spearmanr` returns.
    """
    _check_pair(first, second, "any shape")
    a, b = ranks(first.flatten().double()), ranks(second.flatten().double())
    a, b = a - a.mean(), b - b.mean()
    spread = (a.square().sum() * b.square().sum()).sqrt()
    return float("nan") if spread == 0 else float((a * b).sum() / spread)


def structural_similarity(
    first: torch.Tensor, second: torch.Tensor, data_range: float = 1.0
) -> float:
    """The mean SSIM of two single-channel maps `(H, W)`, both at least 7×7.

    Args:
        data_range: the span of possible values (1 for maps scaled to [0, 1]).

    Returns:
        A float, 1 for identical maps.
    """
    _check_pair(first, second, "(H, W)")
    if first.dim() != 2 or min(first.shape) < SSIM_WINDOW:
        raise ConvscopeError(
            f"first and second must be maps (H, W) of at least {SSIM_WINDOW}×{SSIM_WINDOW}; "
            f"got shape {tuple(first.shape)}"
        )
    if not data_range > 0:
        raise ConvscopeError(f"data_range must be positive; got {data_range!r}")
    x, y = first.double()[None, None], second.double()[None, None]
    count = SSIM_WINDOW**2

    def mean(z: torch.Tensor) -> torch.Tensor:  # over each window that fits inside the image
        return F.avg_pool2d(z, SSIM_WINDOW, stride=1)

    mx, my = mean(x), mean(y)
    sample = count / (count - 1)  # sample (not population) covariance, as scikit-image
    vx = sample * (mean(x * x) - mx * mx)
    vy = sample * (mean(y * y) - my * my)
    vxy = sample * (mean(x * y) - mx * my)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim.mean())
