"""`bam sweep`'s input mistakes, each refused in one line (exit status 2) through the real command, before anything runs."""

from pathlib import Path

import pytest

from helpers.command import bam, refusal

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
        (["--configs", DEMO, "--seeds", "x"], "bam sweep: seeds: 'x' is not a valid int ("),
        (["--configs", DEMO, "--out", "a_file"], "--out a_file is a file, not a folder: give a folder"),
        (["--configs", DEMO, "--args", "--a 'b"], '--args "--a \'b": No closing quotation: quote as a shell does'),
        (
            ["--configs", DEMO, "--launcher", "slrum"],
            "bam sweep: launcher: 'slrum' is not one of local, slurm (did you mean 'slurm'?)",
        ),
        (["--configs", DEMO, "--local.parallel", "0"], "--local.parallel 0: give 1 or more"),
        (["--configs", DEMO, "--launcher", "slurm", "--slurm.partitoin", "gpu"], "(did you mean 'slurm.partition'?)"),
        (["--configs", DEMO, "--launcher", "slurm", "--slurm.time", "0"], "--slurm.time 0: give 1 or more"),
        (["--configs", DEMO, "--launcher", "slurm", "--slurm.gpus_per_node", "-1"], "--slurm.gpus_per_node -1: give 0 or more"),
        (
            ["--configs", DEMO, "--launcher", "slurm", "--slurm.time", "2", "--slurm.signal_delay", "120"],
            "--slurm.signal_delay 120 s is not shorter than --slurm.time 2 min",
        ),
        (
            ["--configs", DEMO, "--launcher", "slurm", "--slurm.sbatch+", "two words"],
            "--slurm.sbatch 'two words': give one sbatch option, as KEY=VALUE or --KEY=VALUE",
        ),
        (
            ["--configs", DEMO, "--launcher", "slurm", "--slurm.sbatch", "exclusive"],
            "slurm.sbatch: 'exclusive' is not a list: give --slurm.sbatch '[exclusive, ...]', or --slurm.sbatch+ exclusive once",
        ),
        (
            ["--configs", DEMO, "--launcher", "slurm", "--slurm.gpus_per_node", "3"],
            "--configs row 'demo_digits' on 3 GPUs: its config has batch size 64, not a multiple of it: set data.batch_size",
        ),
        (["--configs", f"{DEMO}+"], f"--configs '{DEMO}+': an empty file name in it ('+' at an end or twice)"),
        (["--configs", "+.yaml"], "--configs '+.yaml': an empty file name in it"),
        (["--configs", f"{DEMO}+.yaml"], "its row would be named '.yaml' (after its last file), not a folder --status can list"),
        (["--configs", DEMO, "--seeds", "-1"], "--seeds -1: a seed is a whole number from 0 to 4294967295"),
        (["--configs", DEMO, "--seeds", "0", "4294967296"], "--seeds 4294967296: a seed is a whole number from 0 to 4294967295"),
        (
            ["--configs", DEMO, "--args", "--seed_everything 3"],
            "--args '--seed_everything': the sweep sets each run's seed: give the seeds with --seeds",
        ),
        (
            ["--configs", DEMO, "--args", "--trainer.default_root_dir=x"],
            "--args '--trainer.default_root_dir=x': the sweep sets each run's folder, OUT/<row>/seed<k>: give OUT with --out",
        ),
        (
            ["--configs", DEMO, "--args", "--ckpt_path best"],
            "--args '--ckpt_path': the sweep sets what each run resumes from: its own last.ckpt",
        ),
        (
            ["--configs", DEMO, "--launcher", "slurm", "--slurm.gpus_per_node", "2", "--args", "--data.init_args.batch_size 8"],
            "--args '--data.init_args.batch_size': the sweep sets it for a row on several GPUs: give --slurm.nodes",
        ),
        (
            ["--configs", DEMO, "--args", "--help"],
            "--args '--help': each run would print it and end, done, untrained: run bam fit",
        ),
        (["--configs", DEMO, "--launcher", "slurm", "--slurm.partition", ""], "--slurm.partition '': give a value, or leave"),
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


@pytest.mark.parametrize(
    "content,found",
    [
        ("", "not JSON (Expecting value: line 1 column 1 (char 0))"),
        ('{"state": "runn', "not JSON (Unterminated string starting at: line 1 column 11 (char 10))"),
        ('{"state": "paused"}', "no state of submitted, running, stopped, done, failed"),
        ("[1]", "no state of submitted, running, stopped, done, failed"),
    ],
    ids=["empty", "cut", "unknown", "list"],
)
def test_a_damaged_sweep_json_is_one_line_naming_it_and_nothing_runs(tmp_path, content, found):
    """It may belong to a run still training: neither --status nor the sweep again takes it for a stopped one."""
    state = tmp_path / "out" / "demo_digits" / "seed0" / "sweep.json"
    state.parent.mkdir(parents=True)
    state.write_text(content)
    for args in (["--status", "out"], ["--configs", DEMO, "--seeds", "0", "--out", "out"]):
        line = refusal(bam("sweep", *args, cwd=tmp_path, check=False))
        fix = "if no job of this run still runs (squeue, ps), delete the file: the next bam sweep resumes the run from its last"
        assert line.startswith("bam: error: ") and line.endswith(f"out/demo_digits/seed0/sweep.json: {found}: {fix}.ckpt"), line
    assert [path.name for path in state.parent.iterdir()] == ["sweep.json"] and state.read_text() == content


def test_a_seed_outside_lightnings_range_is_one_line_in_bam_fit(tmp_path):
    for seed in ("-1", "4294967296"):
        result = bam(
            "fit", "--config", DEMO, "--seed_everything", seed, "--trainer.default_root_dir", "out", cwd=tmp_path, check=False
        )
        assert refusal(result) == f"bam: error: seed_everything {seed}: a seed is a whole number from 0 to 4294967295"
    assert not (tmp_path / "out").exists()
