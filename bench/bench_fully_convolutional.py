"""Dense map vs. sliding windows: the cost of CaffeNet's and AlexNet's 451×451 cast (CPU).

Run: `.venv/bin/python bench/bench_fully_convolutional.py`. For each net: MACs of one
classifier pass, of the dense 8×8 map and of 64 windows; then the best of several runs of one
pass, the dense map, and the 64 windows looped and batched. Targets (issue 3): the dense map
costs at most the MAC ratio in time, and is at least 6× faster than the 64 windows batched.
Random weights; denormals are flushed (`seed_everything`).
"""

from __future__ import annotations

import convscope as cs
from convscope.fully_conv.dense import time_dense_against_crops


def main() -> None:
    cs.seed_everything(0)
    for name, window, large in (("caffenet", 227, 451), ("alexnet", 224, 448)):
        model = cs.load_model(name, weights="random")
        cast = cs.fully_convolutional(model)
        one = cs.total_macs(model, (1, 3, window, window))
        dense = cs.total_macs(cast, (1, 3, large, large))
        table = time_dense_against_crops(model, cast, (large, large), stride=32, repeats=5)
        times = dict(zip(table.column("run"), table.column("seconds")))
        single, map_time, *_, batched = times.values()
        print(f"\n{name}: {large}x{large} -> 8x8 map")
        print(
            f"  MACs: one pass {one / 1e9:.2f} G, dense map {dense / 1e9:.2f} G "
            f"= {dense / one:.1f}x, 64 windows = {64 * one / dense:.1f}x the map"
        )
        print("  " + str(table).replace("\n", "\n  "))
        print(
            f"  dense map = {map_time / single:.1f}x one pass (target <= {dense / one:.1f}x): "
            f"{'met' if map_time / single <= dense / one else 'MISSED'}"
        )
        print(
            f"  64 windows batched / dense map = {batched / map_time:.1f}x (target >= 6x): "
            f"{'met' if batched / map_time >= 6 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
