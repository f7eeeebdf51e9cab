"""Real models in class: the same work done the old way and the new way, side by side.

Run: `.venv/bin/python bench/bench_imagenet.py` (about 20 minutes on two CPU cores), or with
`--quick` for the side-by-side part only. Random weights of the real size; the 24 photo crops
of lessons 05 and 06.

1. Side by side in one run (interleaved where repeated), each gain a ratio:
   - top activations of every conv layer: one streaming pass per layer (old) against one pass
     for all layers (`top_activations_of_layers`);
   - one channel's nine top units from the same recorded passes: each walked back over the
     whole image (old) against `project_units` (on the CPU each unit walks back on its
     receptive field only; on a GPU the units walk back together in one batch);
   - the class models of notebook 06: the old notebook optimised each one three times (its
     two cells and its widget, 400 steps each at 224 x 224); now once, kept, 80 steps. The old
     way is extrapolated from the measured time per step (1,200 steps would take 10 minutes);
   - widget updates: the deconvnet widget's channel move, the saliency widget's move, the
     class-model widget's slider move (which no longer computes anything).
2. Every notebook end to end with papermill, its defaults for the model, `weights=random`,
   its worked solutions included (`convscope run` executes every cell): wall time and the
   peak memory of the run (papermill and its kernel), each against its budget.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from timing import median_seconds, quietly

import convscope as cs
from convscope.explain.top_activations import RecordedPasses, top_activations
from convscope.ui.widgets import class_model_widget, deconvnet_widget, saliency_widget

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01", "02", "03", "04", "05", "06", "07"]
BUDGET_SECONDS = {"alexnet": 60, "vgg16": 180}
MEMORY_LIMIT_GB = 4.0


def seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def side_by_side(name: str) -> None:
    cs.seed_everything(0)
    net = cs.load_model(name, weights="random", device="cpu")
    images, _ = cs.lesson_images(net)
    convs = [layer for layer in cs.feature_map_layers(net) if layer.startswith("conv")]
    print(f"\n{name}: {len(images)} images of {tuple(images.shape[1:])}, {len(convs)} conv layers")

    old = seconds(lambda: [top_activations(net, images, layer) for layer in convs])
    new = seconds(lambda: cs.top_activations_of_layers(net, images, convs))
    print(
        f"  top activations, every conv layer: {old:6.1f} s one pass per layer, "
        f"{new:6.1f} s one pass for all  ({old / new:4.1f}x)"
    )

    layer = cs.suggested_layer(net)
    top = top_activations(net, images, layer)
    passes = RecordedPasses(net, images)
    units = list(zip(top.images[0].tolist(), top.positions[0].tolist()))
    recorded = [passes.deconvnet(index) for index, _ in units]
    whole = median_seconds(
        lambda: [
            p.project_unit(layer, 0, tuple(pos), crop=False) for p, (_, pos) in zip(recorded, units)
        ],
        3,
    )
    together = median_seconds(
        lambda: cs.project_units(recorded, layer, 0, [tuple(pos) for _, pos in units]), 3
    )
    print(
        f"  nine projections from {layer}: {whole:6.2f} s walking the whole image each, "
        f"{together:6.2f} s with project_units (receptive fields)  "
        f"({whole / together:4.1f}x)"
    )

    per_step = seconds(lambda: cs.class_model(net, 3, iterations=5)) / 5
    steps = cs.suggested_iterations(net)
    old_total = 3 * 400 * per_step
    measured = seconds(lambda: cs.class_model(net, 3, iterations=steps))
    print(
        f"  class models of notebook 06: {old_total:6.1f} s then (3 x 400 steps, "
        f"extrapolated from {per_step:.2f} s per step), {measured:6.1f} s now (once, "
        f"{steps} steps, measured)  ({old_total / measured:4.1f}x)"
    )

    widget_updates(net, images, layer, net.class_names[3], steps)


def widget_updates(net, images, layer: str, class_name: str, steps: int) -> None:
    """The three widgets' updates: deconvnet (created, first visit of a channel, revisits),
    saliency (an image move), class model (a slider move, which computes nothing)."""
    start = time.perf_counter()
    widget = quietly(lambda: deconvnet_widget(net, images, layer, channel=0, index=0))()
    created = time.perf_counter() - start  # the streaming pass and the named images' switches
    slider = next(c for c in widget.children if getattr(c, "description", "") == "channel")
    first = seconds(quietly(lambda: setattr(slider, "value", 1)))
    move = median_seconds(quietly(lambda: setattr(slider, "value", 3 - slider.value)), 5)
    print(
        f"  deconvnet widget: created in {created:5.1f} s; channel move {first * 1000:5.0f} ms "
        f"(first visit), {move * 1000:5.0f} ms (median of 5)"
    )
    widget = quietly(lambda: saliency_widget(net, images, class_name, 0))()
    slider = next(c for c in widget.children if getattr(c, "description", "") == "image")
    move = median_seconds(quietly(lambda: setattr(slider, "value", 1 - slider.value)), 5)
    print(f"  saliency widget, image move: {move * 1000:7.1f} ms")
    widget = quietly(lambda: class_model_widget(net, class_name, 0.01, steps))()
    slider = widget.controls["iterations"]
    move = median_seconds(
        quietly(lambda: setattr(slider, "value", 30 if slider.value != 30 else 40)), 5
    )
    print(f"  class-model widget, slider move (computes nothing): {move * 1000:7.1f} ms")


def digit_widgets() -> None:
    cs.seed_everything(0)
    net = cs.load_model("digits", device="cpu")
    images, _ = cs.lesson_images(net)
    print("\ndigits: widget updates")
    widget_updates(net, images, "conv2", "3", cs.suggested_iterations(net))


RUN_ONE = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest process
print(peak, result.returncode)
sys.stderr.write(result.stderr[-2000:] if result.returncode else "")
"""


def notebook_runs(models: list[str], notebooks: list[str]) -> list[dict]:
    rows = []
    for name in models:
        for notebook in notebooks:
            overrides = ["-p", "model", name, "-p", "weights", "random"]
            out = ROOT / "build" / "bench" / name
            command = [
                sys.executable,
                "-m",
                "convscope",
                "run",
                notebook,
                *overrides,
                "--out",
                str(out),
            ]
            start = time.perf_counter()
            wrapped = subprocess.run(
                [sys.executable, "-c", RUN_ONE, *command], capture_output=True, text=True, cwd=ROOT
            )
            wall = time.perf_counter() - start
            peak_kib, code = (int(v) for v in wrapped.stdout.split()[-2:])
            status = "ok" if code == 0 else "FAILED"
            peak = peak_kib / 2**20
            within = wall <= BUDGET_SECONDS[name] and peak <= MEMORY_LIMIT_GB
            print(
                f"  {name:8s} {notebook}: {wall:6.1f} s, peak {peak:4.2f} GB  {status}"
                f"  {'within' if within else 'OVER'} budget ({BUDGET_SECONDS[name]} s, "
                f"{MEMORY_LIMIT_GB:g} GB)",
                flush=True,
            )
            if code:
                print(wrapped.stderr[-1500:])
            rows.append(
                {
                    "model": name,
                    "notebook": notebook,
                    "seconds": round(wall, 1),
                    "peak_gb": round(peak, 2),
                    "status": status,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the side-by-side part only")
    parser.add_argument("--models", default="alexnet,vgg16")
    parser.add_argument("--notebooks", default=",".join(NOTEBOOKS), help="e.g. 02,05")
    parser.add_argument("--no-side-by-side", action="store_true", help="the notebooks only")
    arguments = parser.parse_args()
    models = arguments.models.split(",")
    print(f"torch threads: {torch.get_num_threads()}")
    if not arguments.no_side_by_side:
        digit_widgets()
        for name in models:
            side_by_side(name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak memory of this process: {peak:.2f} GB")
    if not arguments.quick:
        print("\nnotebooks end to end (papermill, weights=random, defaults for the model)")
        rows = notebook_runs(models, arguments.notebooks.split(","))
        target = ROOT / "build" / "bench" / "notebooks.json"
        target.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
