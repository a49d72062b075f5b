"""BAM alone, forward+backward: the reference form, the fused refinement (eager) and the fused block under
``torch.compile`` as ``ImageClassifier(compile="attention")`` compiles it; same weights, same input.

Shapes are those BAM sees in the networks of the paper's two settings: after stages 1 and 2
of WRN-16-8 on CIFAR (32 and 16 px) and after stages 1-3 of ResNet-50 on ImageNet (56, 28,
14 px). Both the paper's form (sum) and the public code's (product, its own layers) run.
"""

from collections.abc import Callable

import torch
from torch import nn

from bam_lightning.engine.compiling import compile_model
from bam_lightning.models import activation_bytes
from bam_lightning.models.complexity import median_times
from bam_lightning.nn import BAM, OfficialBAM

from .common import mib, peak_cuda_bytes

FORMS: dict[str, type[nn.Module]] = {"paper (sum)": BAM, "public code (prod)": OfficialBAM}


def shapes(device: torch.device) -> list[tuple[str, tuple[int, int, int, int]]]:
    imagenet_batch = 64 if device.type == "cuda" else 32
    return [
        ("WRN-16-8 stage 1", (128, 128, 32, 32)),
        ("WRN-16-8 stage 1, batch 64", (64, 128, 32, 32)),
        ("WRN-16-8 stage 2", (128, 256, 16, 16)),
        ("ResNet-50 stage 1", (imagenet_batch, 256, 56, 56)),
        ("ResNet-50 stage 2", (imagenet_batch, 512, 28, 28)),
        ("ResNet-50 stage 3", (imagenet_batch, 1024, 14, 14)),
    ]


def training_step(module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).backward(grad)

    return step


def spatial_convs(bam: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """The spatial branch's four convolutions alone, forward+backward: the time no fusion of the rest can remove
    (the public code's form has the same layers), so ``public code / this`` bounds what any form can gain over it."""
    convs = [layer for layer in bam.spatial.body if isinstance(layer, nn.Conv2d)]

    def step() -> None:
        bam.zero_grad(set_to_none=True)
        x.grad = None
        y = x
        for conv in convs:
            y = conv(y)
        y.sum().backward()

    return step


def variants(cls: type[nn.Module], channels: int, device: torch.device) -> dict[str, nn.Module]:
    """The reference form, the fused block (eager) and the fused block compiled, with the same weights."""
    fused = cls(channels).to(device)
    reference = cls(channels, fused=False).to(device)
    reference.load_state_dict(fused.state_dict())
    compiled = cls(channels).to(device)
    compiled.load_state_dict(fused.state_dict())
    compile_model(compiled, "attention", device)
    return {"reference": reference, "fused": fused, "compiled": compiled}


def run(device: torch.device, repeats: int) -> list[dict[str, object]]:
    """Both forms' three variants timed round-robin in one loop per shape, on the same input; ``x public code`` is
    how many times faster each of the paper form's variants is than the public code's reference form (what its
    repository runs)."""
    rows = []
    for where, shape in shapes(device):
        x = torch.randn(shape, device=device, requires_grad=True)
        grad = torch.randn(shape, device=device)
        modules = {(form, name): m for form, cls in FORMS.items() for name, m in variants(cls, shape[1], device).items()}
        steps = {key: training_step(module, x, grad) for key, module in modules.items()}
        steps["convs"] = spatial_convs(modules["paper (sum)", "reference"], x)
        for form in FORMS:
            steps[form, "compiled"]()  # compiling is not timed
        seconds = median_times(steps, device, repeats)
        saved = {key: activation_bytes(lambda m=m, x=x: m(x), exclude=[x, *m.parameters()]) for key, m in modules.items()}
        peak = {key: peak_cuda_bytes(steps[key], device) for key in modules}
        public = seconds["public code (prod)", "reference"]
        for form in FORMS:
            t, act, top = ({v: d[form, v] for v in ("reference", "fused", "compiled")} for d in (seconds, saved, peak))
            row = {"where": where, "shape": "x".join(map(str, shape)), "form": form}
            row |= {f"{v} ms": f"{t[v] * 1e3:.1f}" for v in t}
            row |= {f"{v} speedup": f"{t['reference'] / t[v]:.2f}" for v in ("fused", "compiled")}
            if form == "paper (sum)":
                row |= {f"{v} x public code": f"{public / t[v]:.2f}" for v in t}
                row |= {"convs ms": f"{seconds['convs'] * 1e3:.1f}", "bound x public code": f"{public / seconds['convs']:.2f}"}
            row |= {f"{v} act MiB": mib(act[v]) for v in act}
            row |= {f"{v} act ratio": f"{act[v] / act['reference']:.2f}" for v in ("fused", "compiled")}
            row |= {f"{v} peak MiB": mib(top[v]) for v in top}
            rows.append(row)
            print(row, flush=True)
    return rows


COLUMNS = [
    "where", "shape", "form", "reference ms", "fused ms", "compiled ms", "fused speedup", "compiled speedup",
    "reference x public code", "fused x public code", "compiled x public code", "convs ms", "bound x public code",
    "reference act MiB", "fused act MiB", "compiled act MiB", "fused act ratio", "compiled act ratio",
]  # fmt: skip
CUDA_COLUMNS = ["reference peak MiB", "fused peak MiB", "compiled peak MiB"]
