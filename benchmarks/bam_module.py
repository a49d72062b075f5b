"""BAM alone, forward+backward: the reference form, the fused refinement (eager) and the fused block under
``torch.compile`` as ``ImageClassifier(compile="attention")`` compiles it; same weights, same input.

Shapes are those BAM sees in the networks of the paper's two settings: after stages 1 and 2
of WRN-16-8 on CIFAR (32 and 16 px) and after stages 1-3 of ResNet-50 on ImageNet (56, 28,
14 px). Both the paper's form (sum) and the public code's (product, its own layers) run.
"""

from collections.abc import Callable

import torch
from torch import nn

from bam_lightning.compiling import compile_model
from bam_lightning.models import activation_bytes
from bam_lightning.nn import BAM, OfficialBAM

from .common import median_times, mib, peak_cuda_bytes

FORMS: dict[str, type[nn.Module]] = {"paper (sum)": BAM, "public code (prod)": OfficialBAM}


def shapes(device: torch.device) -> list[tuple[str, tuple[int, int, int, int]]]:
    imagenet_batch = 64 if device.type == "cuda" else 32
    return [
        ("WRN-16-8 stage 1", (128, 128, 32, 32)),
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


def run(device: torch.device, repeats: int) -> list[dict[str, object]]:
    rows = []
    for where, shape in shapes(device):
        x = torch.randn(shape, device=device, requires_grad=True)
        grad = torch.randn(shape, device=device)
        for form, cls in FORMS.items():
            fused = cls(shape[1]).to(device)
            reference = cls(shape[1], fused=False).to(device)
            reference.load_state_dict(fused.state_dict())
            compiled = cls(shape[1]).to(device)
            compiled.load_state_dict(fused.state_dict())
            compile_model(compiled, "attention", device)
            modules = {"reference": reference, "fused": fused, "compiled": compiled}
            steps = {name: training_step(module, x, grad) for name, module in modules.items()}
            steps["compiled"]()  # compiling is not timed
            seconds = median_times(steps, device, repeats)
            saved = {
                name: activation_bytes(lambda m=module, x=x: m(x), exclude=[x, *module.parameters()])
                for name, module in modules.items()
            }
            peak = {name: peak_cuda_bytes(step, device) for name, step in steps.items()}
            rows.append(
                {
                    "where": where,
                    "shape": "x".join(map(str, shape)),
                    "form": form,
                    "reference ms": f"{seconds['reference'] * 1e3:.1f}",
                    "fused ms": f"{seconds['fused'] * 1e3:.1f}",
                    "compiled ms": f"{seconds['compiled'] * 1e3:.1f}",
                    "fused speedup": f"{seconds['reference'] / seconds['fused']:.2f}",
                    "compiled speedup": f"{seconds['reference'] / seconds['compiled']:.2f}",
                    "reference act MiB": mib(saved["reference"]),
                    "fused act MiB": mib(saved["fused"]),
                    "compiled act MiB": mib(saved["compiled"]),
                    "fused act ratio": f"{saved['fused'] / saved['reference']:.2f}",
                    "compiled act ratio": f"{saved['compiled'] / saved['reference']:.2f}",
                    "reference peak MiB": mib(peak["reference"]),
                    "fused peak MiB": mib(peak["fused"]),
                    "compiled peak MiB": mib(peak["compiled"]),
                }
            )
            print(rows[-1], flush=True)
    return rows


COLUMNS = [
    "where", "shape", "form", "reference ms", "fused ms", "compiled ms", "fused speedup", "compiled speedup",
    "reference act MiB", "fused act MiB", "compiled act MiB", "fused act ratio", "compiled act ratio",
]  # fmt: skip
CUDA_COLUMNS = ["reference peak MiB", "fused peak MiB", "compiled peak MiB"]
