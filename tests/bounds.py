"""The rounding arithmetic behind the tests' numeric bounds, written once.

A floating-point sum of n terms errs by at most n·u times the sum of the terms' magnitudes,
where u is the unit roundoff: 2**-24 ≈ 6.0e-8 in float32, 2**-53 ≈ 1.1e-16 in float64. The
nets in these tests sum at most 9,216 products into one output (AlexNet's fc6; the digit net's
largest sum is 800 products, in conv2), through at most 20 layers forward and back.

Where two computations of the same quantity take different code paths (the package's and a
plain-torch reference), the tests run both in float64: each is within 9,216 × 1.1e-16 ≈ 1e-12
of the flowing magnitudes per layer, 2e-11 over 20 layers, so the two differ by at most 4e-11
of them; the magnitudes that flow stay within 50 times the largest compared value (measured
on these nets: under 40), so `NET_FLOAT64` = 1e-9 of that value holds with a margin of 25
in the worst case (rounding errors of long sums mostly cancel, so far more in practice),
while any real difference (a rule, a layer, a sign) moves values by percents.
"""

from __future__ import annotations

import torch

U32 = 2.0**-24  # float32's unit roundoff: one rounding moves a value by at most this fraction
U64 = 2.0**-53
NET_FLOAT64 = 1e-9


def assert_within(got: torch.Tensor, expected: torch.Tensor, bound: float, what: str = "") -> None:
    """|got − expected| <= bound × max|expected|, against a reference that is not all zero."""
    scale = expected.abs().max().item()
    assert scale > 0, f"{what}: the reference is all zero, so the comparison would prove nothing"
    error = (got.double() - expected.double()).abs().max().item()
    assert error <= bound * scale, f"{what}: error {error:.3g} > {bound:g} × {scale:.3g}"
