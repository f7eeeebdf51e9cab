"""Training the digit classifier: augmentation and a short, real run through the CLI."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import convscope as cs
from convscope.__main__ import main
from convscope.training import jitter


def test_jitter_moves_digits_but_keeps_them():
    images, _ = cs.load_digits("train")
    batch = images[:64]
    moved = jitter(batch, torch.Generator().manual_seed(0))
    assert moved.shape == batch.shape
    assert not torch.equal(moved, batch)
    # small affine maps keep most of the ink
    ratio = moved.sum((1, 2, 3)) / batch.sum((1, 2, 3))
    assert ratio.min() > 0.7 and ratio.max() < 1.3


def test_jitter_with_no_motion_is_the_identity():
    """Cross-check against affine_grid with the identity matrix (angle 0, scale 1, shift 0)."""
    images, _ = cs.load_digits("train")
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(4, 2, 3)
    grid = F.affine_grid(theta, [4, 1, 28, 28], align_corners=False)
    same = F.grid_sample(images[:4], grid, align_corners=False)
    torch.testing.assert_close(same, images[:4], atol=1e-5, rtol=0)
    assert math.isclose(float(images[:4].sum()), float(same.sum()), rel_tol=1e-5)


def test_train_command_writes_loadable_weights(tmp_path, capsys):
    out = tmp_path / "digits.pt"
    assert main(["train", "digits", "--epochs", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    reported = float(printed.split("held-out accuracy: ")[1].split("%")[0]) / 100
    model = cs.load_model("digits", weights=out)
    assert abs(cs.accuracy(model, *cs.load_digits("heldout")) - reported) < 1e-3
    assert reported > 0.5  # four short epochs already lift it far above chance (0.1)
