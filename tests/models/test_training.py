"""Training the digit classifier: augmentation and a short, real run through the CLI."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import convscope as cs
from convscope.__main__ import main
from convscope.models.training import jitter, train_permuted_digits


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
    images, _ = cs.load_digits("train")
    generator = torch.Generator().manual_seed(0)
    same = jitter(images[:8], generator, max_angle=0, max_scale=0, max_shift=0)
    # float32 sampling positions are off by at most a few 2**-24 of 28 px (5e-6 px); pixel
    # values in [0, 1] change by at most that times the largest step between neighbours, 1
    torch.testing.assert_close(same, images[:8], atol=1e-5, rtol=0)


def test_jitter_moves_each_image_by_its_own_bounded_motion():
    """Against an independent affine_grid built from the same draws, in the same order."""
    images, _ = cs.load_digits("train")
    moved = jitter(images[:8], torch.Generator().manual_seed(3))
    draws = torch.Generator().manual_seed(3)
    angle = (torch.rand(8, generator=draws) - 0.5) * math.pi / 9  # ±10°
    scale = 1 + (torch.rand(8, generator=draws) - 0.5) * 0.2  # ±10%
    shift = (torch.rand(8, 2, generator=draws) - 0.5) * 2 * 2 / 14  # ±2 of 14 half-width px
    rows = [
        [
            [math.cos(a) / s, -math.sin(a) / s, float(x)],
            [math.sin(a) / s, math.cos(a) / s, float(y)],
        ]
        for a, s, (x, y) in zip(angle.tolist(), scale.tolist(), shift)
    ]
    grid = F.affine_grid(torch.tensor(rows), [8, 1, 28, 28], align_corners=False)
    expected = F.grid_sample(images[:8], grid, align_corners=False)
    # the same draws; the affine rows computed in float64 here, in float32 there: positions
    # differ by a few 2**-24 of 28 px, values in [0, 1] by at most that (steps of at most 1)
    torch.testing.assert_close(moved, expected, atol=1e-5, rtol=0)
    assert all(not torch.equal(m, i) for m, i in zip(moved, images[:8]))


def test_train_command_writes_loadable_weights(tmp_path, capsys):
    out = tmp_path / "digits.pt"
    assert main(["train", "digits", "--epochs", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    reported = float(printed.split("held-out accuracy: ")[1].split("%")[0]) / 100
    model = cs.load_model("digits", weights=out)
    # printed as a percentage with two decimals: within half of 0.01% of the true ratio
    assert abs(cs.accuracy(model, *cs.load_digits("heldout")) - reported) <= 5e-5 + 2**-24
    assert reported > 0.5  # four short epochs already lift it far above chance (0.1)


def test_the_permuted_label_command_writes_weights_that_score_as_it_reports(tmp_path, capsys):
    out = tmp_path / "permuted.pt"
    assert main(["train", "digits-permuted", "--epochs", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    reported = float(printed.split("held-out accuracy on the true labels: ")[1].split("%")[0])
    model = cs.load_model("digits-permuted", weights=out)
    # printed as a percentage with two decimals: within half of 0.01% of the true ratio
    assert abs(cs.accuracy(model, *cs.load_digits("heldout")) - reported / 100) <= 5e-5 + 2**-24
    assert reported < 25  # permuted labels teach nothing about the true ones (chance: 10%)


def test_permuted_training_is_the_same_for_the_same_seed():
    first, _, _ = train_permuted_digits(epochs=1, count=64, progress=False)
    second, _, _ = train_permuted_digits(epochs=1, count=64, progress=False)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_zero_epochs_is_refused_by_the_command_line(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "digits", "--epochs", "0"])
    assert stopped.value.code == 2
    assert "argument --epochs: must be at least 1; got 0" in capsys.readouterr().err
