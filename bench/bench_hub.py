"""A class of ten on one JupyterHub on this machine: does every student get a kernel, run
lesson 01 and see the widget answer within a second?

Run: `.venv/bin/python bench/bench_hub.py [--students N] [--pauses 0,1]`. For each pause, a
new hub (`python -m convscope hub --accounts rehearsal`, its proxy from npm) and N students
who at the same moment start their servers, pull the course by its nbgitpuller link (this
repository, its current branch), start a kernel on lesson 01, run its code cells, then move
the designer filter's σ slider eight times, looking at each new figure for `pause` seconds
(0: every student drags without stopping, the worst case). Printed: the median and largest
time of each step, the moves' median, 95th percentile and largest time until the new figure
arrived, the memory of the hub and its proxy, and that of each student's server and kernel
(USS: private to the student, what one more student adds; PSS: shared pages split among
their users). Target (issue 24):
ten students on two cores, every kernel started, every notebook run, the moves' p95 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
from pathlib import Path

import psutil

from convscope.course.hub import install_proxy, running_hub
from convscope.course.rehearsal import rehearse

ROOT = Path(__file__).resolve().parents[1]
MOVES = [1.5, 2.0, 2.5, 3.0, 0.5, 0.8, 1.2]  # then back to 1.0: eight moves


def p95(values: list[float]) -> float:
    """The 95th percentile, interpolated between the nearest ranks."""
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--pauses", default="1,0", help="seconds between moves, comma-separated")
    args = parser.parse_args()
    branch = subprocess.run(
        ["git", "-C", str(ROOT), "branch", "--show-current"], capture_output=True, text=True
    ).stdout.strip()
    proxy = install_proxy(ROOT / "build" / "hub-proxy")
    cores, memory = os.cpu_count(), psutil.virtual_memory().total
    print(f"{args.students} students, {cores} cores, {memory / 2**30:.0f} GiB; lesson 01, σ slider")
    for pause in (float(text) for text in args.pauses.split(",")):
        folder = ROOT / "build" / "bench-hub"
        shutil.rmtree(folder, ignore_errors=True)
        with running_hub(folder, proxy) as hub:
            own = psutil.Process(hub.process.pid)  # the hub and its proxy, before any student
            hub_pss = sum(p.memory_full_info().pss for p in [own, *own.children(recursive=True)])
            rehearsal = rehearse(
                hub,
                args.students,
                ROOT.as_uri(),
                branch,
                "01_designer_filters.ipynb",
                "σ",
                MOVES,
                pause,
            )
        seen = rehearsal.attendances
        print(f"\nlooking at each figure for {pause:g} s before the next move:")
        for step in ("server", "pull", "kernel", "execution"):
            times = [getattr(one, step) for one in seen]
            print(
                f"  {step:10s} median {statistics.median(times):6.1f} s, "
                f"largest {max(times):6.1f} s"
            )
        errors = [f"{one.name}: {one.errors}" for one in seen if one.errors]
        print(f"  cells run: {sum(one.cells for one in seen)}; errors: {errors or 'none'}")
        moves = [took for one in seen for took in one.moves]
        print(
            f"  widget moves ({len(moves)}): median {statistics.median(moves):.2f} s, "
            f"p95 {p95(moves):.2f} s, largest {max(moves):.2f} s"
        )
        print(f"  the hub and its proxy (pss): {hub_pss / 2**20:.0f} MiB")
        for kind in ("uss", "pss", "rss"):
            per_student = [held[kind] / 2**20 for held in rehearsal.memory.values()]
            print(
                f"  memory per student ({kind}): median {statistics.median(per_student):5.0f} MiB"
            )


if __name__ == "__main__":
    main()
