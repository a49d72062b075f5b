"""``make gpu-check``: what one GPU run must answer, from one prepared command, in under 8 minutes.

1. **Correctness on CUDA**: the ``cuda``-marked tests (``pytest -m cuda``), skipped on CPU so CI stays green.
2. **The main config's training speed**, through the real ``bam fit``: ``configs/cifar100_wrn.yaml`` with
   ``configs/speed/gpu.yaml`` on in-memory data (``SyntheticDataModule``), and its baseline twin: the first steps
   (compiling included), steady images/s in training and evaluation, peak memory, BAM's time overhead beside its
   MAC overhead, and the projected wall time of the 200-epoch recipe (50,000 training and 10,000 test images an epoch).
3. **The data keeps up**: the CIFAR-100 DataModule's training images/s with the GPU config's workers, on CIFAR
   files written on the spot, beside what ``bam fit`` trains per second.
4. **ResNet-50 + BAM at 224 px**, batch 256, bf16 autocast, channels_last, fused SGD: images/s, peak memory and the
   projected 90 ImageNet epochs (1,281,167 images) on 8 such GPUs, assuming linear scaling.
5. **``bam fit`` against a bare PyTorch loop** on the same network, data and optimizer (``benchmarks.loop``).

Without CUDA it says so in one line and exits 2. ``--device cpu`` runs the same with tiny networks and batches,
eager and in float32: the suite's check of the plumbing, not a measurement.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.nn import functional as F

from bam_lightning.data import CIFAR100DataModule
from bam_lightning.data.cifar_pickles import write_cifar100
from bam_lightning.models import count_macs, create_model

from . import loop
from .common import mib, synchronize, synthetic_fit, table

ROOT = Path(__file__).parents[1]
RECIPE_EPOCHS, CIFAR_TRAIN, CIFAR_TEST = 200, 50_000, 10_000
TINY = ["--model.backbone_kwargs", "{depth: 10, widen_factor: 1}", "--model.compile", "false"]  # the shrunk CPU check
IMAGENET_EPOCHS, IMAGENET_TRAIN, IMAGENET_GPUS = 90, 1_281_167, 8


def correctness(device: torch.device) -> dict[str, object]:
    """``pytest -m cuda``: its summary line (on a CPU every one of them is skipped). Only the test files that mark a test
    ``cuda`` are collected: importing the whole suite's modules would cost more than the tests."""
    marked = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py") if "mark.cuda" in p.read_text())
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", *marked]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
    return {"check": "cuda-marked tests", "result": summary.strip("= "), "ok": done.returncode == 0}


def fit_speed(device: torch.device, config: str, warmup: int, steps: int, batch: int, extra: list[str]) -> dict[str, Any]:
    """One ``bam fit`` of ``config`` (+ ``speed/gpu.yaml``) on in-memory data: ``warmup + steps`` steps, then one validation."""
    val_batches = max(1, steps // 2)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as root:
        configs = [ROOT / config, ROOT / "configs" / "speed" / "gpu.yaml"]
        options = ["--data.val_size", str(batch * val_batches), "--trainer.logger", "false"]
        options += ["--trainer.num_sanity_val_steps", "0", *extra]
        cli, t = synthetic_fit(device, configs, batch, batch * (warmup + steps), warmup + steps, warmup, root, options)
    macs = count_macs(cli.model.model.to("cpu").float(), cli.datamodule.image_size)
    return {
        "first steps s": t["warm"] - t["start"],
        "train img/s": batch * steps / (t["trained"] - t["warm"]),
        "eval img/s": batch * val_batches / (t["validated"] - t["validating"]),
        "peak": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "MMACs": macs / 1e6,
    }


def main_config(device: torch.device, shrink: bool) -> list[dict[str, object]]:
    """The paper's WRN-28-8 + BAM CIFAR-100 row and its baseline, as ``bam fit`` trains them with the GPU switches."""
    warmup, steps, batch = (1, 2, 8) if shrink else (15, 60, 128)
    extra = ["--model.backbone", "wrn", *TINY, "--trainer.precision", "32", "--trainer.benchmark", "false"] if shrink else []
    names = ("cifar100_wrn", "cifar100_wrn_baseline")
    runs = {name: fit_speed(device, f"configs/{name}.yaml", warmup, steps, batch, extra) for name in names}
    bam, base = runs["cifar100_wrn"], runs["cifar100_wrn_baseline"]
    rows = []
    for name, run in runs.items():
        epoch = CIFAR_TRAIN / run["train img/s"] + CIFAR_TEST / run["eval img/s"]
        rows.append({
            "check": f"bam fit {name}", "first steps s": f"{run['first steps s']:.1f}",
            "train img/s": f"{run['train img/s']:.0f}", "eval img/s": f"{run['eval img/s']:.0f}",
            "peak MiB": mib(run["peak"]), "recipe h": f"{(RECIPE_EPOCHS * epoch + run['first steps s']) / 3600:.2f}",
        })  # fmt: skip
    time_overhead = base["train img/s"] / bam["train img/s"] - 1
    mac_overhead = bam["MMACs"] / base["MMACs"] - 1
    rows.append({
        "check": "BAM overhead (train)", "result": f"time +{time_overhead * 100:.1f} %, MACs +{mac_overhead * 100:.2f} %,"
        f" {time_overhead / mac_overhead:.1f}x its MAC share",
    })  # fmt: skip
    return rows


def data_rate(device: torch.device, shrink: bool, train_ips: float) -> dict[str, object]:
    """The CIFAR-100 DataModule's training images/s with the GPU config's loader settings, on CIFAR files written here.

    Beside the training images/s of ``bam fit``: under 1x, the GPU waits for the loaders.
    """
    speed = yaml.safe_load((ROOT / "configs" / "speed" / "gpu.yaml").read_text())["data"]["init_args"]
    workers, n, batch = (1, 512, 64) if shrink else (speed["num_workers"], CIFAR_TRAIN, 128)
    data = np.random.default_rng(0).integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
    labels = (np.arange(n) % 100).tolist()
    with tempfile.TemporaryDirectory() as root:
        write_cifar100(Path(root) / "cifar-100-python", {"train": (labels, data), "test": (labels[:batch], data[:batch])})
        module = CIFAR100DataModule(
            root=root, download=False, verify_md5=False, batch_size=batch, num_workers=workers, pin_memory=device.type == "cuda"
        )
        module.setup("fit")
        batches = iter(module.train_dataloader())
        next(batches)  # the workers' start
        start, seen = time.perf_counter(), 0
        for images, _ in batches:
            seen += len(images)
        ips = seen / (time.perf_counter() - start)
    return {
        "check": f"CIFAR loader, {workers} workers", "train img/s": f"{ips:.0f}",
        "result": f"{ips / train_ips:.1f}x what bam fit trains" + (" (the GPU would wait)" if ips < train_ips else ""),
    }  # fmt: skip


def imagenet_row(device: torch.device, shrink: bool) -> dict[str, object]:
    """ResNet-50 + BAM training steps at the ImageNet recipe's size and batch, as the GPU config runs them."""
    size, batch, warmup, steps = (64, 2, 1, 2) if shrink else (224, 256, 5, 20)
    model = create_model("resnet50", 1000, "bam").to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    dtype = torch.float32 if shrink else torch.bfloat16
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup + steps):
        if i == warmup:
            synchronize(device)
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=not shrink):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    synchronize(device)
    ips = batch * steps / (time.perf_counter() - start)
    hours = IMAGENET_EPOCHS * IMAGENET_TRAIN / (ips * IMAGENET_GPUS) / 3600
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "check": f"resnet50 + BAM {size}px, batch {batch}", "train img/s": f"{ips:.0f}", "peak MiB": mib(peak),
        "result": f"{IMAGENET_EPOCHS} epochs on {IMAGENET_GPUS} GPUs: {hours:.1f} h",
    }  # fmt: skip


def framework_cost(device: torch.device, shrink: bool) -> dict[str, object]:
    steps, warmup, setting = (2, 1, ("wrn", 8)) if shrink else (30, 5, None)
    row = loop.run(device, steps, warmup, rounds=1, setting=setting, extra=TINY if shrink else None)[0]
    result = f"bare loop {row['bare loop img/s']} img/s; bam fit {float(row['bam fit overhead %']):+.1f} % time"
    return {"check": "bam fit vs a bare loop", "train img/s": row["bam fit img/s"], "result": result}


COLUMNS = ["check", "first steps s", "train img/s", "eval img/s", "peak MiB", "recipe h", "result"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="make gpu-check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: the same, shrunk, to test the plumbing")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/cuda-<gpu name>.json)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: error: no CUDA GPU here (torch.cuda.is_available() is False): run it on a GPU machine,"
              " or DEVICE=cpu for the shrunk check of its plumbing", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    device, shrink = torch.device(args.device), args.device == "cpu"
    name = torch.cuda.get_device_name(device).replace(" ", "-") if device.type == "cuda" else "cpu"
    start = time.perf_counter()
    rows = [correctness(device), *main_config(device, shrink)]
    rows.append(data_rate(device, shrink, float(rows[1]["train img/s"])))
    rows += [imagenet_row(device, shrink), framework_cost(device, shrink)]
    results = {"device": name, "torch": torch.__version__, "minutes": (time.perf_counter() - start) / 60, "rows": rows}
    out = args.out or ROOT / "benchmarks" / "results" / f"{device.type}-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{name}, torch {torch.__version__}, {results['minutes']:.1f} min\n\n{table(rows, COLUMNS)}\n\nwritten: {out}")
    if not rows[0]["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
