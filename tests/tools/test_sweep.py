"""`make sweep`: the Makefile hands its configs (ablation deltas included), seeds, folder and run options to `bam sweep`.

A dry run: `bam sweep` prints each run's `bam fit` command and starts none. The sweep itself runs end to end in
tests/tools/test_sweep_launchers.py (locally: runs, a stopped run resumed, the table; on a real SLURM: 2 rows x 2 seeds);
the table's means, intervals and differences are tests/tools/test_compare.py's.
"""

import shlex
import subprocess
import sys
from pathlib import Path

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


def test_make_sweep_hands_configs_seeds_folder_and_run_options_to_bam_sweep(tmp_path):
    args = " ".join(f"{key} {shlex.quote(value or str(tmp_path / 'data'))}" for key, value in TINY.items())
    configs = "configs/cifar100_wrn_baseline.yaml configs/cifar100_wrn.yaml+configs/ablations/table1b_max.yaml"
    result = subprocess.run(
        ["make", "-s", "sweep", f"CONFIGS={configs}", "SEEDS=1 2", f"SWEEP_DIR={tmp_path / 'sweep'}", f"ARGS={args}",
         "SWEEP_ARGS=--dry_run", f"BIN={Path(sys.executable).parent}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    plan = result.stdout
    assert "bam sweep: 4 runs (2 rows x 2 seeds)" in plan, plan
    configs = {  # each row's configs, as bam sweep resolves them (cifar100_wrn*.yaml link into configs/cifar100/)
        "cifar100_wrn_baseline": [ROOT / "configs/cifar100/wrn28_8_baseline.yaml"],
        "table1b_max": [ROOT / "configs/cifar100/wrn28_8_bam.yaml", ROOT / "configs/ablations/table1b_max.yaml"],
    }
    for row, files in configs.items():
        for seed in (1, 2):
            command = next(line.strip() for line in plan.splitlines() if line.strip().startswith(f"{row}/seed{seed}: bam fit"))
            assert command.startswith(f"{row}/seed{seed}: bam fit {' '.join(f'--config {f}' for f in files)} --data.root "), (
                command
            )
            assert "--model.backbone_kwargs '{depth: 10, widen_factor: 1}'" in command, command  # quoted as given
            assert command.endswith(
                f"--seed_everything {seed} --trainer.default_root_dir {tmp_path / 'sweep' / row / f'seed{seed}'} --ckpt_path last"
            )
    assert "bam sweep: dry run: 4 runs would be submitted; nothing submitted" in plan
    assert not (tmp_path / "sweep").exists()
