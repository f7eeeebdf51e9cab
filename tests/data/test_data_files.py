"""Checks on the shipped files in data/ (fast, numpy only, no torch).

The table in data/README.md is the manifest. Every file under data/ except
README.md must have a row there, and each row's sha256 must match its file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / "data"

# | `path` | description | source | licence | `sha256` |
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|[^|]*\|[^|]*\|[^|]*\|\s*`([0-9a-f]{64})`\s*\|\s*$")

N_TRAIN, N_HELDOUT = 4000, 1000


def manifest() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in (DATA / "README.md").read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            path, digest = match.groups()
            assert path not in rows, f"{path} listed twice in data/README.md"
            rows[path] = digest
    return rows


def test_manifest_is_parsable():
    assert len(manifest()) >= 7


@pytest.mark.parametrize("path", sorted(manifest()))
def test_listed_file_matches_sha256(path):
    file = DATA / path
    assert file.is_file(), f"data/{path} is listed in data/README.md but missing"
    assert hashlib.sha256(file.read_bytes()).hexdigest() == manifest()[path]


def test_every_data_file_is_listed():
    on_disk = {
        p.relative_to(DATA).as_posix()
        for p in DATA.rglob("*")
        if p.is_file() and p != DATA / "README.md"
    }
    unlisted = sorted(on_disk - set(manifest()))
    assert not unlisted, f"files in data/ missing from the data/README.md table: {unlisted}"


@pytest.fixture(scope="module")
def digits():
    with np.load(DATA / "digits.npz") as npz:
        return {key: npz[key] for key in npz.files}


def test_digits_keys_dtypes_shapes(digits):
    assert set(digits) == {"train_images", "train_labels", "heldout_images", "heldout_labels"}
    for split, n in (("train", N_TRAIN), ("heldout", N_HELDOUT)):
        images, labels = digits[f"{split}_images"], digits[f"{split}_labels"]
        assert images.dtype == np.uint8 and images.shape == (n, 28, 28)
        assert labels.dtype == np.uint8 and labels.shape == (n,)
        assert labels.max() <= 9
        assert images.max() > 200  # raw 0-255 pixels, not rescaled


def test_digits_split_is_stratified(digits):
    assert np.bincount(digits["train_labels"], minlength=10).tolist() == [N_TRAIN // 10] * 10
    assert np.bincount(digits["heldout_labels"], minlength=10).tolist() == [N_HELDOUT // 10] * 10


def test_digits_splits_share_no_image(digits):
    train = {image.tobytes() for image in digits["train_images"]}
    heldout = {image.tobytes() for image in digits["heldout_images"]}
    assert train.isdisjoint(heldout)


def read_lines(name: str) -> list[str]:
    text = (DATA / name).read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text.splitlines()


def test_imagenet_classes():
    names = read_lines("imagenet_classes.txt")
    assert len(names) == 1000
    assert len(set(names)) >= 998 and all(n.strip() == n and n for n in names)
    assert names[281] == "tabby"
    assert names[282] == "tiger cat"
    assert names[283] == "Persian cat"


def test_digit_classes():
    assert read_lines("digit_classes.txt") == [str(d) for d in range(10)]
