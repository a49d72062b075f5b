"""`make sweep`: configs (ablation deltas included) over seeds, then the results table.

One seed (1, not the default 0), two rows: each run is a fresh interpreter (seconds of imports). Several seeds per row
run in tests/tools/test_sweep_launchers.py (the SLURM sweep: 2 rows x 2 seeds; the local sweep's dry run plans them);
the table's means, stds and differences over several seeds are tests/tools/test_compare.py's.
"""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.datasets import write_cifar100

ROOT = Path(__file__).parents[2]
TINY = {
    "--data.root": None,  # filled per test
    "--data.verify_md5": "false",
    "--data.num_workers": "0",
    "--data.batch_size": "16",
    "--data.pin_memory": "false",
    "--model.backbone": "wrn",
    "--model.backbone_kwargs": "{depth: 10, widen_factor: 1}",
    "--trainer.max_epochs": "1",
    "--trainer.accelerator": "cpu",
    "--model.compile": "false",
    "--trainer.enable_progress_bar": "false",
}


@pytest.mark.long
def test_sweep_runs_every_config_and_seed_and_tabulates_them(tmp_path):
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    args = " ".join(f"{key} {shlex.quote(value or str(tmp_path / 'data'))}" for key, value in TINY.items())
    configs = "configs/cifar100_wrn_baseline.yaml configs/cifar100_wrn.yaml+configs/ablations/table1b_max.yaml"
    result = subprocess.run(
        ["make", "-s", "sweep", f"CONFIGS={configs}", "SEEDS=1", f"SWEEP_DIR={tmp_path / 'sweep'}", f"ARGS={args}",
         f"BIN={Path(sys.executable).parent}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.relative_to(tmp_path / "sweep").parts[:2] for p in (tmp_path / "sweep").rglob("config.yaml"))
    assert runs == [("cifar100_wrn_baseline", "seed1"), ("table1b_max", "seed1")]
    config = next((tmp_path / "sweep" / "table1b_max" / "seed1").rglob("config.yaml")).read_text()
    assert "combine: max" in config and "seed_everything: 1" in config
    table = [line for line in result.stdout.splitlines() if line.startswith("| CIFAR100")]
    assert len(table) == 3, result.stdout  # baseline, BAM with MAX, and their difference
    assert "| none | 1 |" in table[0] and "| bam (combine=max) | 1 |" in table[1] and "− none" in table[2]
