"""Whole-network training steps with and without BAM: what BAM costs in wall time beside what it costs in MACs.

A step is forward, cross-entropy, backward and an SGD update on one batch of random
images, as in training. BAM runs fused (the default) and in its reference form. The
target compares the relative time overhead with the relative MAC overhead of the paper's
counting (convs and linears of one forward pass).
"""

import torch
from torch.nn import functional as F

from bam_lightning.models import activation_bytes, count_macs, create_model, get_model_entry
from bam_lightning.models.complexity import median_times, sgd_step

from .common import mib, overheads, peak_cuda_bytes

NETWORKS = {"wrn16_8": 100, "resnet50": 1000}  # name: classes (CIFAR-100, ImageNet)
VARIANTS = {"none": (None, {}), "bam": ("bam", {}), "bam reference": ("bam", {"fused": False})}


def batch_size(name: str, device: torch.device) -> int:
    if device.type == "cuda":
        return 128 if name == "wrn16_8" else 64
    return 32 if name == "wrn16_8" else 8


def run(device: torch.device, repeats: int, compile: bool = False) -> list[dict[str, object]]:
    rows = []
    for name, classes in NETWORKS.items():
        size, batch = get_model_entry(name).input_size, batch_size(name, device)
        x = torch.randn(batch, 3, size, size, device=device)
        y = torch.randint(classes, (batch,), device=device)
        models, steps, macs = {}, {}, {}
        for variant, (attention, kwargs) in VARIANTS.items():
            model = create_model(name, classes, attention, kwargs).to(device)
            if attention is not None:  # the same weights everywhere: backbone from "none", BAM from "bam"
                model.load_state_dict(models.get("bam", models["none"]).state_dict(), strict=False)
            macs[variant] = count_macs(model, size)  # before compiling: the counter needs the eager graph
            if compile:
                model.compile()
            models[variant] = model
            steps[variant] = sgd_step(model, lambda model=model, x=x, y=y: F.cross_entropy(model(x), y))
        seconds = median_times(steps, device, repeats)
        for variant, model in models.items():
            act = activation_bytes(lambda m=model, x=x: m(x), exclude=[x, *model.parameters()])
            row = {
                "network": name,
                "batch": batch,
                "attention": variant,
                "GMACs/img": f"{macs[variant] / 1e9:.3f}",
                "ms/step": f"{seconds[variant] * 1e3:.0f}",
                "img/s": f"{batch / seconds[variant]:.1f}",
                "act MiB": mib(act),
                "peak MiB": mib(peak_cuda_bytes(steps[variant], device)),
            }
            if variant != "none":
                row |= overheads(seconds[variant], seconds["none"], macs[variant], macs["none"])
            rows.append(row)
            print(row, flush=True)
    return rows


COLUMNS = ["network", "batch", "attention", "GMACs/img", "ms/step", "img/s", "act MiB"]
COLUMNS += ["time +%", "MACs +%", "time/MACs overhead"]
CUDA_COLUMNS = ["peak MiB"]
