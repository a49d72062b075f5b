"""config_errors.explain finds a mistake in what the user gave, whatever words jsonargparse used for it.

The tests through the real command (test_faults, test_cli) hold the lines; these hold that the line
does not depend on jsonargparse's message: each is given a message no jsonargparse release writes.
"""

import pytest
from lightning.pytorch import Trainer

from bam_lightning.cli.config_errors import explain
from bam_lightning.cli.given import merged, sources
from bam_lightning.tasks.classification import ImageClassifier

KEYS = ["model", "model.attention", "model.optimizer", "model.optimizer.class_path", "model.optimizer.init_args.lr",
        "trainer", "trainer.max_epochs", "data"]  # fmt: skip
OWNERS = {"model": ImageClassifier, "trainer": Trainer}
REWORDED = "Some future wording\n  of an error jsonargparse found"


@pytest.mark.parametrize(
    "args,facts",
    [
        (["--model.attenton", "se"], ["unknown option 'model.attenton' (did you mean 'model.attention'?)", "command line"]),
        (["--model.attention", "bma"], ["model.attention: 'bma' is not one of bam, bam_official, se, cbam"]),
        (["--trainer.max_epochs", "many"], ["trainer.max_epochs: 'many' is not a valid int or null"]),
        (["--model.optimizer", "torch.optim.SGDD"], ["model.optimizer: cannot import", "(did you mean 'torch.optim.SGD'?)"]),
        (
            ["--model.optimizer", "torch.optim.SGD", "--model.optimizer.init_args.lrr", "1"],
            ["model.optimizer: torch.optim.SGD takes no option 'lrr' (did you mean 'lr'?)"],
        ),
        (["--data", "bam_lightning.data.DigitsDataModule", "--data.batch_size", "0"], ["data.batch_size: 0", "PositiveInt"]),
    ],
    ids=["unknown-key", "literal", "int", "class-path", "init-args", "restricted-number"],
)
def test_the_mistake_is_found_in_the_arguments_not_in_the_message(args, facts):
    line = explain(REWORDED, "fit", KEYS, args, OWNERS)
    assert all(fact in line for fact in facts) and line.endswith("(bam fit --help lists the options)"), line


def test_a_mistake_in_a_config_file_is_named_with_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("model:\n  attention: bam\n  optimiser: {}\n")
    line = explain(REWORDED, "fit", KEYS, ["--config", str(tmp_path / "a.yaml")], OWNERS)
    assert f"unknown option 'model.optimiser' (did you mean 'model.optimizer'?): fix or remove it in {tmp_path}" in line


def test_what_structure_cannot_find_is_jsonargparse_first_line_with_its_key_and_the_value_given():
    message = 'Parser key "trainer.max_epochs":\n  A reason worded by jsonargparse\n  and more lines'
    line = explain(message, "fit", KEYS, ["--trainer.max_epochs", "7"], OWNERS)  # a value structure finds no fault in
    assert line == "trainer.max_epochs 7: A reason worded by jsonargparse (bam fit --help lists the options)"


def test_a_value_that_fits_its_type_is_not_taken_for_the_mistake():
    args = ["--model.attention", "timm/eca", "--trainer.max_epochs", "3", "--model.optimizer.init_args.lr", "1e-3"]
    assert explain('Parser key "data":\n  the real reason', "fit", KEYS, args, OWNERS).startswith("data: the real reason")


def test_the_command_line_and_later_configs_override_and_a_new_class_drops_the_old_ones_options(tmp_path):
    config = "data:\n  class_path: a.CocoData\n  init_args: {train_images: x}\ntrainer: {max_epochs: 2}\n"
    (tmp_path / "a.yaml").write_text(config)
    args = ["--config", str(tmp_path / "a.yaml"), "--trainer.max_epochs=5", "--data", "VocData", "--data.root", "r"]
    assert list(sources(args)) == [f"in {tmp_path / 'a.yaml'}", "on the command line"]
    assert merged(args) == {"data": {"class_path": "VocData", "root": "r"}, "trainer": {"max_epochs": 5}}
