"""`bam tune`'s refusals, each through the command in this process (they end before anything is started), and its dry
run. The study itself, on SLURM with PostgreSQL, is tests/tools/test_tune_launchers.py's."""

import time
from pathlib import Path

import pytest

from bam_lightning.tools.tune import Driver, _plan, build_parser
from bam_lightning.tools.tune_space import distributions, read_space
from bam_lightning.tools.tune_study import open_study, settings, storage

from helpers.command import one_line_error
from helpers.slurm import free_port

DEMO = str(Path(__file__).parents[2] / "configs" / "demo_digits.yaml")
LR = "model.optimizer.init_args.lr: {type: float, low: 0.01, high: 0.3, log: true}\n"


def tune(tmp_path: Path, space: str, *more: str) -> list[str]:
    (tmp_path / "space.yaml").write_text(space)
    return ["tune", "--config", DEMO, "--space", str(tmp_path / "space.yaml"), "--out", str(tmp_path / "out"), *more]


@pytest.mark.parametrize(
    ("space", "more", "says"),
    [
        ("model.optimizer.init_args.lrr: {type: float, low: 0.01, high: 0.3}\n", [],
         "torch.optim.SGD takes no option 'lrr' (did you mean 'lr'?)"),
        ("model.attention_kwargs.reductoin: {type: categorical, choices: [4, 8]}\n", [],
         "attention bam has no option 'reductoin' (did you mean 'reduction'?)"),
        ("model.attention_kwargs.reduction: {type: int, low: 0, high: 8}\n", [], "reduction must be 1 or more, got 0"),
        ("model.optimizer.init_args.lr: {type: float, low: 0.3, high: 0.01}\n", [],
         "low 0.3 is above high 0.01: give low <= high"),
        ("model.optimizer.init_args.lr: {type: float, low: -1, high: 1, log: true}\n", [],
         "log: true with low -1: a log scale needs bounds above 0"),
        ("model.attention_kwargs.reduction: {type: categorical, choices: []}\n", [], "choices []: give a non-empty list"),
        (LR, ["--parallel", "0"], "--parallel 0: give 1 or more"),
        (LR, ["--trials", "0"], "--trials 0: give 1 or more"),
        (LR, ["--prune_warmup", "-1"], "--prune_warmup -1: give 0 or more"),
        (LR, ["--metric", "val/err"],
         "--metric val/err: not a metric ImageClassifier logs every epoch (did you mean 'val/err1'?)"),
        (LR, ["--args", "--seed_everything 3"], "bam tune sets every trial's seed: give it with --seed"),
        (LR, ["--mode", "least"], "bam tune: mode: 'least' is not one of min, max"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_in_one_line_before_anything_starts(tmp_path, capsys, space, more, says):
    line = one_line_error(tune(tmp_path, space, *more), capsys)
    assert says in line, line
    assert not (tmp_path / "out").exists()


def test_a_storage_that_cannot_be_reached_is_refused_within_seconds(tmp_path, capsys):
    url = f"postgresql+psycopg://bam@127.0.0.1:{free_port()}/nosuch"
    start = time.monotonic()
    line = one_line_error(tune(tmp_path, LR, "--storage", url), capsys)
    assert line.startswith(f"bam: error: --storage {url}: cannot reach it: ") and "Connection refused" in line, line
    assert time.monotonic() - start < 5 and not (tmp_path / "out").exists()


def test_a_study_name_reused_with_another_space_is_refused(tmp_path, capsys):
    (tmp_path / "first.yaml").write_text(LR)
    made = settings(read_space(str(tmp_path / "first.yaml")), "val/err1", "min")
    open_study(storage(None, tmp_path / "out"), "bam-tune", made, None, None)  # an earlier search's study
    line = one_line_error(tune(tmp_path, LR.replace("0.3", "0.5")), capsys)
    assert line == (
        "bam: error: --study bam-tune: it exists in the storage with another space: give another --study name for this "
        "search, or the same --space, --metric and --mode to continue it"
    )
    line = one_line_error(tune(tmp_path, LR, "--metric", "val/acc1_best"), capsys)
    assert "--study bam-tune: it exists in the storage with another metric: " in line, line


def test_dry_run_prints_the_trials_it_would_start_and_starts_nothing(tmp_path, capsys):
    from bam_lightning.cli import main

    main([*tune(tmp_path, LR, "--trials", "3", "--parallel", "2", "--args", "--trainer.max_epochs 2"), "--dry_run"])
    printed = capsys.readouterr().out
    assert "bam tune: 0 trials in study bam-tune; 3 more would be started, 2 at once\n" in printed
    values = tmp_path / "out" / "trial0" / "values.yaml"
    assert f"  trial0: bam fit --config {DEMO} --config {values} --trainer.max_epochs 2 --seed_everything 0" in printed
    assert printed.endswith("bam tune: dry run: nothing started\n") and not (tmp_path / "out").exists()


def test_a_failed_trial_is_retried_once_with_its_values_and_not_counted_twice(tmp_path):
    import optuna

    options = build_parser().parse_args(tune(tmp_path, LR, "--trials", "2")[1:])
    space, store = read_space(options.space), storage(None, tmp_path / "out")
    study = open_study(store, "bam-tune", settings(space, "val/err1", "min"), None, None)
    failed = study.ask(distributions(space))
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    driver = Driver(study, store, space, _plan(options, None), options, None)
    for _ in range(2):  # a second driver's start retries nothing more
        driver.retry_failed()
    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 1
    assert driver.counted() == 1  # the retry is the failed trial's, not one of --trials
    retry = study.ask(distributions(space))  # as the driver asks: the waiting trial first
    assert retry.params == failed.params and retry.user_attrs == {"retry_of": failed.number}
