"""Lessons 06 and 07 against their budgets (issue 21), measured side by side in one run.

Run: `.venv/bin/python bench/bench_lessons.py` (two threads, as on a two-core machine).

1. Widget updates, after one figure has been drawn (as in a notebook): lesson 07's
   explanation widget on the digits and on the photo net, for every method a new method and
   a new image (each computes a map) and a move back (a kept figure); lesson 06's saliency
   widget, an image move. Budgets: 100 ms on the digits, 1 s on the photo net, per update.
2. Notebooks 06 and 07 end to end with their defaults (`python -m convscope run`, papermill,
   one fresh kernel each): wall time against 60 s.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import torch
from timing import quietly

import convscope as cs

ROOT = Path(__file__).resolve().parent.parent
WIDGET_BUDGET = {"digits": 0.1, "efficientnet_lite0": 1.0}  # seconds per update
NOTEBOOK_BUDGET = 60.0  # seconds, end to end with the defaults


def timed(action) -> float:
    start = time.perf_counter()
    quietly(action)()
    return time.perf_counter() - start


def widget_updates(name: str) -> None:
    cs.seed_everything(0)
    net = cs.load_model(name, device="cpu")
    images, labels = cs.lesson_images(net)
    # a notebook has drawn figures before it reaches its widget: matplotlib's first figure in
    # a process sets up fonts and tick markers (about 0.15 s), which a student never waits for
    cs.show_panels([("warm-up", images[0])]).savefig(io.BytesIO(), format="png")
    targets = labels if labels is not None else cs.predicted_classes(net, images)
    budget = WIDGET_BUDGET[name]
    widget = quietly(lambda: cs.explain_widget(net, images, targets, "gradient", 0))()
    menu = next(c for c in widget.children if getattr(c, "description", "") == "method")
    slider = next(c for c in widget.children if getattr(c, "description", "") == "image")
    print(f"\n{name}: lesson 07's explanation widget, one update each (budget {budget:g} s)")
    worst = 0.0
    for method in cs.METHODS:
        first = timed(lambda method=method: setattr(menu, "value", method))
        moved = timed(lambda: setattr(slider, "value", 1 - slider.value))
        back = timed(lambda: setattr(slider, "value", 1 - slider.value))
        worst = max(worst, first, moved)
        print(
            f"  {method:22s} new method {first * 1000:7.1f} ms, new image {moved * 1000:7.1f} "
            f"ms, back (kept) {back * 1000:6.1f} ms"
        )
    saliency = quietly(
        lambda: cs.saliency_widget(net, images, net.class_names[int(targets[0])], 0)
    )()
    image = next(c for c in saliency.children if getattr(c, "description", "") == "image")
    moved = timed(lambda: setattr(image, "value", 2))
    worst = max(worst, moved)
    print(f"  lesson 06's saliency widget, image move {moved * 1000:7.1f} ms")
    print(
        f"  slowest update {worst * 1000:.0f} ms: {'within' if worst <= budget else 'OVER'} budget"
    )


def notebook_runs() -> None:
    print(f"\nnotebooks end to end with their defaults (budget {NOTEBOOK_BUDGET:g} s)")
    for notebook in ("06", "07"):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "convscope", "run", notebook, "--out", "build/bench"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        wall = time.perf_counter() - start
        status = "ok" if result.returncode == 0 else "FAILED"
        within = "within" if wall <= NOTEBOOK_BUDGET else "OVER"
        print(f"  {notebook}: {wall:5.1f} s  {status}  {within} budget", flush=True)
        if result.returncode:
            print(result.stderr[-1500:])


def main() -> None:
    print(f"torch threads: {torch.get_num_threads()}")
    for name in WIDGET_BUDGET:
        widget_updates(name)
    notebook_runs()


if __name__ == "__main__":
    main()
