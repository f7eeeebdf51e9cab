"""The one bilinear kernel against Caffe's filler and FCN's `upsample_filt`, transcribed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convscope.core.bilinear import bilinear_kernel
from convscope.core.errors import ConvscopeError

SIZES = [*range(1, 17), 32, 64]


def caffe_filler(k: int) -> np.ndarray:
    """Caffe's BilinearFiller (filler.hpp): f = ceil(k/2), c = (k - 1)/(2f),
    w(x, y) = (1 - |x/f - c|)(1 - |y/f - c|), filled in Caffe's index order."""
    f = math.ceil(k / 2)
    c = (k - 1) / (2.0 * f)
    weights = np.empty(k * k)
    for i in range(k * k):
        x, y = i % k, (i // k) % k
        weights[i] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
    return weights.reshape(k, k)


def fcn_upsample_filt(k: int) -> np.ndarray:
    """FCN's surgery.upsample_filt: factor (k + 1) // 2, centre factor - 1 (odd) or - 0.5."""
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = np.ogrid[:k, :k]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


@pytest.mark.parametrize("k", SIZES)
def test_the_kernel_is_caffes_filler_and_fcns_upsample_filt(k):
    ours = bilinear_kernel(k).double().numpy()
    # a float32 kernel of values at most 1 against float64 formulas: one rounding, 2**-24
    np.testing.assert_allclose(ours, caffe_filler(k), rtol=0, atol=2**-24)
    np.testing.assert_allclose(ours, fcn_upsample_filt(k), rtol=0, atol=2**-24)


def test_the_kernel_is_symmetric_and_peaks_at_the_centre():
    for k in SIZES:
        kernel = bilinear_kernel(k)
        assert kernel.flip(0).equal(kernel) and kernel.t().equal(kernel)
        assert float(kernel.max()) == pytest.approx(  # one float32 rounding of a value <= 1
            1.0 if k % 2 else (1 - 0.5 / ((k + 1) // 2)) ** 2, abs=2**-24
        )


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "4"])
def test_bad_sizes_are_named(bad):
    with pytest.raises(
        ConvscopeError, match=r"kernel size (must be an integer|-?\d+ is out of range)"
    ):
        bilinear_kernel(bad)
