"""Speed of the digit model's everyday operations on this machine (not a test; never timed in CI).

Run: `make bench` (or `.venv/bin/python bench/bench_digits.py`). Prints the median of several
repeats for: a forward pass over the 1,000 held-out digits, one layer-widget update
(`show_layer`, what a slider move costs), the blob table, and one training epoch.
"""

from __future__ import annotations

import torch
from timing import median_seconds

import convscope as cs
from convscope.core.inspection import show_layer
from convscope.models.training import train_digit_classifier


def main() -> None:
    cs.seed_everything(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    net = cs.load_model("digits")
    images, labels = cs.load_digits("heldout")
    rows = [
        (
            "accuracy over 1,000 held-out digits",
            median_seconds(lambda: cs.accuracy(net, images, labels)),
        ),
        (
            "layer widget update (show_layer conv2)",
            median_seconds(lambda: show_layer(net, images[0], "conv2")),
        ),
        ("blob table, one digit", median_seconds(lambda: cs.blob_table(net, images[:1]))),
        (
            "one training epoch (4,000 digits)",
            median_seconds(lambda: train_digit_classifier(epochs=1, progress=False), repeats=2),
        ),
    ]
    for name, seconds in rows:
        print(f"{name:42s} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
