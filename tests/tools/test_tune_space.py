"""bam tune's space file, read and checked in this process, and the config delta a trial's values make."""

from pathlib import Path

import pytest
import yaml

from bam_lightning.errors import InputError
from bam_lightning.tools.tune_space import as_config, corners, distributions, read_space, write_delta

SPACES = sorted((Path(__file__).parents[2] / "configs" / "tune").glob("*.yaml"))  # shipped, with the demo's
GOOD = """\
model.optimizer.init_args.lr: {type: float, low: 0.01, high: 0.3, log: true}
trainer.max_epochs: {type: int, low: 2, high: 8, step: 2}
model.attention_kwargs.reduction: {type: categorical, choices: [4, 8, 16]}
"""


def test_a_space_reads_as_optunas_distributions_and_its_ends(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(GOOD)
    space = read_space(str(path))
    made = distributions(space)
    assert made["model.optimizer.init_args.lr"].log and made["trainer.max_epochs"].step == 2
    assert made["model.attention_kwargs.reduction"].choices == (4, 8, 16)
    assert corners(space) == [
        {"model.optimizer.init_args.lr": 0.01, "trainer.max_epochs": 2, "model.attention_kwargs.reduction": 4},
        {"model.optimizer.init_args.lr": 0.3, "trainer.max_epochs": 8, "model.attention_kwargs.reduction": 16},
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a.b: {type: float, low: 0.3, high: 0.01}", "--space S: a.b: low 0.3 is above high 0.01: give low <= high"),
        ("a.b: {type: float, low: 0.0, high: 1, log: true}",
         "--space S: a.b: log: true with low 0.0: a log scale needs bounds above 0"),
        ("a.b: {type: categorical, choices: []}", "--space S: a.b: choices []: give a non-empty list, e.g. choices: [4, 8, 16]"),
        ("a.b: {type: flaot, low: 0, high: 1}",
         "--space S: a.b: type 'flaot' is not one of float, int, categorical (did you mean 'float'?)"),
        ("a.b: {type: int, low: 0.5, high: 2}", "--space S: a.b: low 0.5: give a finite integer"),
        ("a.b: {type: int, low: 1, high: 4, stpe: 2}",
         "--space S: a.b: type int takes no 'stpe' (did you mean 'step'?): it takes low, high, log, step"),
        ("a.b: {type: float, low: 1, high: 2, step: 0}", "--space S: a.b: step 0: give a number above 0"),
        ("[1, 2]", "--space S: no distribution in it: map dotted bam fit keys to {type: float|int|categorical, ...}"),
        ("a..b: {type: categorical, choices: [1]}",
         "--space S: key 'a..b': give a dotted bam fit key, e.g. model.optimizer.init_args.lr"),
    ],
)  # fmt: skip
def test_a_distribution_that_cannot_be_sampled_is_refused_naming_its_key(tmp_path, text, says):
    path = tmp_path / "S"
    path.write_text(text)
    with pytest.raises(InputError) as refused:
        read_space(str(path))
    assert str(refused.value).replace(str(path), "S") == says


def test_values_are_a_nested_config_delta(tmp_path):
    values = {"model.optimizer.init_args.lr": 0.05, "model.attention_kwargs.reduction": 8, "trainer.max_epochs": 4}
    assert as_config(values) == {
        "model": {"optimizer": {"init_args": {"lr": 0.05}}, "attention_kwargs": {"reduction": 8}},
        "trainer": {"max_epochs": 4},
    }
    write_delta(tmp_path / "best.yaml", values, "trial 3")
    text = (tmp_path / "best.yaml").read_text()
    assert text.startswith("# trial 3\n") and yaml.safe_load(text) == as_config(values)
    assert [path.name for path in tmp_path.iterdir()] == ["best.yaml"]  # nothing left beside it


@pytest.mark.parametrize("path", SPACES, ids=lambda path: path.name)
def test_the_shipped_spaces_read(path):
    assert distributions(read_space(str(path)))
