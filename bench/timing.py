"""The timer every benchmark uses: the median of repeated runs after one warm-up."""

from __future__ import annotations

import contextlib
import io
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
    """Median seconds of each action, run in turn (a, b, c, a, b, c, ...) so that a slow
    moment of the machine costs every action alike."""
    for action in actions.values():
        action()
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
