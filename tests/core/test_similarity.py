"""Spearman's rank correlation against SciPy, SSIM against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity as skimage_ssim

from convscope.core.errors import ConvscopeError
from convscope.core.similarity import rank_correlation, ranks, structural_similarity


@pytest.mark.parametrize("seed", range(5))
def test_rank_correlation_equals_scipy_with_and_without_ties(seed):
    generator = torch.Generator().manual_seed(seed)
    a = torch.rand(20, 17, generator=generator)
    b = a + 0.5 * torch.rand(20, 17, generator=generator)
    tied = (a * 4).round()  # many ties, given average ranks
    for x, y in ((a, b), (tied, b), (tied, (b * 3).round())):
        expected = spearmanr(x.flatten().numpy(), y.flatten().numpy()).statistic
        # both in float64 over 340 ranks of at most 340: sums of 340 terms under 1.2e5 err
        # by at most 340 × 1.1e-16 of 4e7, relative 1e-12 after the normalisation
        assert rank_correlation(x, y) == pytest.approx(expected, abs=1e-10)


def test_ranks_average_ties_and_a_constant_map_has_no_correlation():
    assert ranks(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert np.isnan(rank_correlation(torch.ones(8, 8), torch.rand(8, 8)))


@pytest.mark.parametrize("shape", [(28, 28), (7, 9), (56, 40)])
def test_ssim_equals_scikit_image(shape):
    generator = torch.Generator().manual_seed(sum(shape))
    a = torch.rand(shape, generator=generator)
    b = (a + 0.3 * torch.rand(shape, generator=generator)).clamp(0, 1)
    expected = skimage_ssim(a.double().numpy(), b.double().numpy(), data_range=1.0)
    # float64 on both sides: local means and variances over 49 pixels in [0, 1], averaged over
    # at most 2,240 windows: sums err by under 2,240 × 1.1e-16, far under 1e-10
    assert structural_similarity(a, b) == pytest.approx(expected, abs=1e-10)
    assert structural_similarity(a, a) == pytest.approx(1.0, abs=1e-10)
    expected = skimage_ssim(a.double().numpy(), (1 - a).double().numpy(), data_range=2.0)
    assert structural_similarity(a, 1 - a, data_range=2.0) == pytest.approx(expected, abs=1e-10)


def test_bad_pairs_are_named():
    with pytest.raises(ConvscopeError, match="one shape; got \\(8, 8\\) and \\(8, 9\\)"):
        rank_correlation(torch.rand(8, 8), torch.rand(8, 9))
    with pytest.raises(ConvscopeError, match="at least 7×7; got shape \\(5, 5\\)"):
        structural_similarity(torch.rand(5, 5), torch.rand(5, 5))
    with pytest.raises(ConvscopeError, match="second must be a floating tensor"):
        structural_similarity(torch.rand(8, 8), torch.ones(8, 8, dtype=torch.int64))
    with pytest.raises(ConvscopeError, match="data_range must be positive"):
        structural_similarity(torch.rand(8, 8), torch.rand(8, 8), data_range=0)
