"""What float64 costs where the lessons use it: the digit net in float32 and in float64.

Run: `.venv/bin/python bench/bench_precision.py`. Lessons 06 and 07 run two computations that
amplify rounding in float64 on the CPU (`cs.float64_where_cheap`): the class model's 400
steps of gradient ascent, and lesson 07's explanations of 200 scenes. Each is timed here in
both precisions, interleaved in one run (medians), and printed as a ratio.
"""

from __future__ import annotations

import copy

import torch
from timing import interleaved_medians

import convscope as cs
from convscope.explain.pointing import SCENE_SETTINGS


def ascent(net: cs.Net, steps: int) -> float:
    """The class model's loop (from I = 0, λ = 0.01, step 0.2) in `net`'s precision."""
    dtype = next(net.parameters()).dtype
    data = torch.zeros(1, *net.input_size, dtype=dtype, requires_grad=True)
    for _ in range(steps):
        objective = net(data)[0, 3] - 0.01 * data.pow(2).sum()
        (gradient,) = torch.autograd.grad(objective, data)
        with torch.no_grad():
            data += 0.2 * gradient
    return objective.item()


def report(what: str, times: dict[str, float]) -> None:
    ratio = times["float64"] / times["float32"]
    each = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in times.items())
    print(f"{what}: {each}; float64 / float32 = {ratio:.2f}")


def main() -> None:
    cs.seed_everything(0)
    net = cs.load_model("digits", device="cpu")
    exact = copy.deepcopy(net).double()
    print(f"torch threads: {torch.get_num_threads()}")
    ascent_times = interleaved_medians(
        {"float32": lambda: ascent(net, 400), "float64": lambda: ascent(exact, 400)}, repeats=5
    )
    report("class model, 400 steps", ascent_times)
    scenes = cs.localisation_scenes(200, seed=1)
    images = torch.stack([scene.image for scene in scenes])
    targets = [int(scene.classes[0]) for scene in scenes]
    scorer = cs.sliding_classifier(net)
    scorers = {"float32": scorer, "float64": copy.deepcopy(scorer).double()}

    def explain_all(model):
        for method in cs.METHODS:
            cs.explain_many(model, images, targets, method, layer="relu3", **SCENE_SETTINGS)

    table_times = interleaved_medians(
        {name: (lambda m=m: explain_all(m)) for name, m in scorers.items()}, repeats=3
    )
    report("lesson 07's 200 scenes × 8 methods", table_times)


if __name__ == "__main__":
    main()
