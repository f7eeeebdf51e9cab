"""Saliency maps and deconvnet projections against a forward pass and against Captum.

Run: `.venv/bin/python bench/bench_saliency.py` (Captum is a dev dependency). On AlexNet at
224×224, the median of 31 interleaved runs: one forward pass; our `class_saliency`; Captum's
`Saliency`; a naive `.backward()` that also computes every weight gradient; our deconvnet
projection from
pool5 (recorded forward pass + projection); Captum's `Deconvolution`. Then the digit model's
channel-slider update (a projection reusing the recorded pass). Targets (issue 4): saliency
and projection each at most 2.2× a forward pass and no slower than Captum; a slider update
under 100 ms.
"""

from __future__ import annotations

import torch
from captum.attr import Deconvolution, Saliency
from timing import interleaved_medians, median_seconds

import convscope as cs
from convscope.explain.deconvnet import Deconvnet
from convscope.explain.saliency import class_saliency


def naive_backward(model, data, target):
    data = data.clone().requires_grad_(True)
    model.zero_grad()
    model(data)[0, target].backward()  # computes every weight gradient too
    return data.grad


def main() -> None:
    cs.seed_everything(0)
    model = cs.load_model("alexnet", weights="random")
    image = torch.rand(3, 224, 224)
    data = model.preprocess(image[None])
    target = 281

    def forward_pass():
        with torch.no_grad():
            return model(data)

    rows = interleaved_medians(
        {
            "forward pass": forward_pass,
            "class_saliency (ours)": lambda: class_saliency(model, image, target),
            # the same map from Captum: preprocessing, |gradient|, max over channels included
            "Captum Saliency": lambda: (
                Saliency(model).attribute(model.preprocess(image[None]), target=target).amax(dim=1)
            ),
            "naive .backward() with weight gradients": lambda: naive_backward(model, data, target),
            "deconvnet: record + project pool5 (ours)": lambda: Deconvnet(model, data).project(
                "pool5", 7
            ),
            "Captum Deconvolution": lambda: Deconvolution(model).attribute(data, target=target),
        }
    )
    forward = rows["forward pass"]
    print("AlexNet, 224x224, 2 threads" if torch.get_num_threads() == 2 else "AlexNet, 224x224")
    for name, seconds in rows.items():
        print(f"  {name:42s} {seconds * 1000:7.1f} ms  {seconds / forward:5.2f}x forward")
    ours, captum = rows["class_saliency (ours)"], rows["Captum Saliency"]
    projection, captum_deconv = (
        rows["deconvnet: record + project pool5 (ours)"],
        rows["Captum Deconvolution"],
    )
    for name, seconds, reference in (
        ("saliency", ours, captum),
        ("projection", projection, captum_deconv),
    ):
        met = seconds <= 2.2 * forward and seconds <= reference
        print(f"  {name} <= 2.2x forward and <= Captum: {'met' if met else 'MISSED'}")

    digits = cs.load_model("digits")
    deconvnet = Deconvnet(digits, digits.preprocess(cs.load_digits()[0][:1]))
    update = median_seconds(lambda: deconvnet.project("conv3", 11), repeats=20)
    print(
        f"digit model, channel-slider update (projection only): {update * 1000:.2f} ms "
        f"(target < 100 ms: {'met' if update < 0.1 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
