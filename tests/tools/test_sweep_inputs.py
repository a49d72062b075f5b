"""`bam sweep`'s input mistakes, each refused in one line (exit status 2) through the real command, before anything runs."""

from pathlib import Path

import pytest

from command import bam, refusal

DEMO = str(Path(__file__).parents[2] / "configs" / "demo_digits.yaml")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--configs", f"{DEMO}+broken.yaml"], "--configs row 'broken': broken.yaml is not valid YAML ("),
        (["--configs", "absent.yaml"], "--configs row 'absent': absent.yaml: No such file or directory: give a config"),
        (["--configs", f"{DEMO}+empty.yaml"], "--configs row 'empty': empty.yaml is empty, not a config"),
        (["--configs", DEMO, DEMO], "--configs: rows named demo_digits twice: each row is named after its last file"),
        (["--configs", DEMO, "--seeds"], "--seeds: the seed list is empty: give one seed or more, e.g. --seeds 0 1 2"),
        (["--configs", DEMO, "--seeds", "0", "0"], "--seeds 0 0: a seed given twice: give each seed once"),
        (["--configs", DEMO, "--seeds", "x"], "bam sweep: argument --seeds: invalid int value: 'x'"),
        (["--configs", DEMO, "--out", "a_file"], "--out a_file is a file, not a folder: give a folder"),
        (["--configs", DEMO, "--args", "--a 'b"], '--args "--a \'b": No closing quotation: quote as a shell does'),
        (["--configs", DEMO, "--launcher", "slrum"], "bam sweep: argument --launcher: invalid choice: 'slrum'"),
        (["--configs", DEMO, "--local.parallel", "0"], "--local.parallel 0: give 1 or more"),
        (["--configs", DEMO, "--launcher", "slurm", "--slurm.partitoin", "gpu"], "(did you mean 'slurm.partition'?)"),
        (["--configs", DEMO, "--launcher", "slurm", "--slurm.time", "0"], "--slurm.time 0: give 1 or more"),
        (["--configs", DEMO, "--launcher", "slurm", "--slurm.gpus_per_node", "-1"], "--slurm.gpus_per_node -1: give 0 or more"),
        (
            ["--configs", DEMO, "--launcher", "slurm", "--slurm.time", "2", "--slurm.signal_delay", "120"],
            "--slurm.signal_delay 120 s is not shorter than --slurm.time 2 min",
        ),
        (
            ["--configs", DEMO, "--launcher", "slurm", "--slurm.sbatch", "two words"],
            "--slurm.sbatch 'two words': give one sbatch option, as KEY=VALUE or --KEY=VALUE",
        ),
        (
            ["--configs", DEMO, "--launcher", "slurm", "--slurm.gpus_per_node", "3"],
            "--configs row 'demo_digits' on 3 GPUs: its config has batch size 64, not a multiple of it: set data.batch_size",
        ),
        ([], "bam sweep: give --configs A.yaml [B.yaml+delta.yaml ...] (or --status OUT)"),
        (["--status", "absent"], "--status absent: no such folder: give the --out of a bam sweep"),
        (["--status", "."], "--status .: no run of bam sweep under it (OUT/<row>/seed<k>/sweep.json)"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_a_mistake_is_one_line_before_anything_runs(tmp_path, args, message):
    (tmp_path / "broken.yaml").write_text("model: [1, 2\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "a_file").write_text("")
    line = refusal(bam("sweep", *args, cwd=tmp_path, check=False))
    assert message in line, line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file", "broken.yaml", "empty.yaml"]  # nothing made


def test_launcher_slurm_without_sbatch_is_one_line(tmp_path):
    result = bam("sweep", "--configs", DEMO, "--launcher", "slurm", cwd=tmp_path, check=False, env={"PATH": str(tmp_path)})
    assert refusal(result) == (
        "bam: error: --launcher slurm: sbatch, srun, squeue, scontrol not found on PATH: run bam sweep where SLURM's "
        "commands are (a login node), or use --launcher local"
    )
