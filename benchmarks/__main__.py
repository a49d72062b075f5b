"""``python -m benchmarks``: run the suites, print their tables, write them all to one JSON file.

The default suites take minutes on a CPU; ``detection`` (training steps of the paper's detectors at
their image sizes) is opt-in, ``--suites detection``: 12.5 minutes on a busy 2-core CPU with
``--detection-steps 1``, about twice that at the default steps.
"""

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import bam_module, detection, loop, network
from .common import table

DEFAULT_SUITES = ["module", "network", "loop"]
META = ("machine", "date", "dates")


def machine(device: torch.device) -> dict[str, object]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"device": str(device), "name": name, "torch": torch.__version__, "threads": torch.get_num_threads()}


def merge(results: dict[str, object], out: Path) -> dict[str, object]:
    """``results`` over those ``out`` holds from the same machine: a run of some suites keeps the others' rows.

    ``dates`` says when each suite was measured; a file from another machine is replaced whole.
    """
    earlier = json.loads(out.read_text()) if out.exists() else {}
    if earlier.get("machine") != results["machine"]:
        earlier = {}
    dates = earlier.get("dates") or {suite: earlier["date"] for suite in earlier if suite not in META}
    dates |= {suite: results["date"] for suite in results if suite not in META}
    return {**earlier, **results, "dates": dates}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument(
        "--suites",
        nargs="+",
        default=DEFAULT_SUITES,
        choices=[*DEFAULT_SUITES, "detection"],
        help=f"default: {' '.join(DEFAULT_SUITES)}; detection is opt-in (tens of minutes on a 2-core CPU)",
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per variant (module, network)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (loop)")
    parser.add_argument(
        "--detection-steps",
        type=int,
        help="timed training steps per detector (detection; default 20 on CUDA, on CPU 3 (ResNet, VGG) or 5 (MobileNet))",
    )
    parser.add_argument("--compile", action="store_true", help="also time the networks under torch.compile")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/results/<device>.json)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    results: dict[str, object] = {"machine": machine(device), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    tables = []
    if "module" in args.suites:
        rows = results["module"] = bam_module.run(device, args.repeats)
        columns = bam_module.COLUMNS + (bam_module.CUDA_COLUMNS if device.type == "cuda" else [])
        tables.append(("BAM alone, forward+backward", table(rows, columns)))
    if "network" in args.suites:
        for compiled in (False, True) if args.compile else (False,):
            rows = results["network" + (" compiled" if compiled else "")] = network.run(device, args.repeats, compiled)
            columns = network.COLUMNS + (network.CUDA_COLUMNS if device.type == "cuda" else [])
            tables.append((f"Training step{' (torch.compile)' if compiled else ''}, with and without BAM", table(rows, columns)))
    if "loop" in args.suites:
        rows = results["loop"] = loop.run(device, args.steps)
        tables.append(("bam fit vs a bare PyTorch loop", table(rows, loop.COLUMNS)))
    if "detection" in args.suites:
        rows = results["detection"] = detection.run(device, args.detection_steps)
        title = "Detector training steps at the recipes' image sizes, with and without BAM (img/s: median of `steps` steps)"
        tables.append((title, table(rows, detection.COLUMNS)))
    out = args.out or Path(__file__).parent / "results" / f"{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merge(results, out), indent=2) + "\n")
    print(f"\n{results['machine']}")
    for title, text in tables:
        print(f"\n### {title}\n\n{text}")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
