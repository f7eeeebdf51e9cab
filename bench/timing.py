"""The timer every benchmark uses: the median of repeated runs after one warm-up."""

from __future__ import annotations

import contextlib
import io
import random
import statistics
import time
from collections.abc import Callable


def quietly(action: Callable[[], object]) -> Callable[[], object]:
    """`action` with its stdout swallowed: outside a kernel a widget's Output prints its
    figures' reprs, which are noise here."""

    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            return action()

    return run


def median_seconds(action: Callable[[], object], repeats: int = 31) -> float:
    """Median wall time of `action` over `repeats` runs (medians resist the machine's noise
    better than minima when two methods differ by a few percent)."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(actions: dict[str, Callable[[], object]], repeats: int = 31) -> dict:
    """Median seconds of each action, every action once a round, so that a slow moment of the
    machine costs every action alike. Each round runs them in a new order (shuffled, seeded):
    in a fixed order an action always follows the same one, whose leftovers in the caches and
    thread pool it pays for. Measured here: a fixed order moved SmoothGrad on the digits from
    0.89x to 1.20x Captum depending only on which of the two ran first."""
    for action in actions.values():
        action()
    times: dict[str, list[float]] = {name: [] for name in actions}
    order, shuffle = list(actions), random.Random(0).shuffle
    for _ in range(repeats):
        shuffle(order)
        for name in order:
            start = time.perf_counter()
            actions[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
