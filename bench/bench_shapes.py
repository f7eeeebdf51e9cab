"""How long `layer_table` takes for FCN-8s on VGG16 (meta device: no weights, no memory).

Run: `.venv/bin/python bench/bench_shapes.py`. Target (issue 3): under a second. The first
meta-device pass in a process pays a one-time start-up cost, reported separately.
"""

from __future__ import annotations

import resource
import time

import convscope as cs


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    baseline = _peak_mb()
    start = time.perf_counter()
    cs.layer_table(cs.load_shapes_only("fcn8s"), (1, 3, 500, 334))
    first = time.perf_counter() - start
    times = []
    for _ in range(5):
        start = time.perf_counter()
        cs.layer_table(cs.load_shapes_only("fcn8s"), (1, 3, 500, 334))
        times.append(time.perf_counter() - start)
    grown = _peak_mb() - baseline
    print(f"FCN-8s layer table, 500x334: first call {first:.2f} s, then best {min(times):.3f} s")
    print(f"peak memory grew by {grown:.0f} MB over the imports (FCN-8s's weights: 538 MB)")
    print(f"target < 1 s: {'met' if max(first, *times) < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
