"""The loader options are declared once, in SplitLoaders, and every datamodule still offers them with their help."""

import inspect

import pytest
from docstring_parser import parse
from jsonargparse import ArgumentParser

from bam_lightning import data
from bam_lightning.data.base import SplitLoaders

LOADER = inspect.signature(SplitLoaders).parameters
HELP = {param.arg_name: param.description for param in parse(SplitLoaders.__doc__).params}
# The defaults a datamodule declares again, its own; every other option has SplitLoaders' default.
OWN_DEFAULTS = {
    data.ImageNetDataModule: {"batch_size": 64, "num_workers": 8},
    data.SyntheticDataModule: {"num_workers": 0, "pin_memory": False},
    data.COCODataModule: {"batch_size": 2},
    data.VOCDataModule: {"batch_size": 32},
    data.ImageNetCDataModule: {"batch_size": 64, "num_workers": 8},
}
DATAMODULES = [
    data.CIFAR10DataModule,
    data.CIFAR100DataModule,
    data.DigitsDataModule,
    data.CIFAR10CDataModule,
    data.CIFAR100CDataModule,
    data.DigitsCDataModule,
    *OWN_DEFAULTS,
]


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("datamodule", DATAMODULES, ids=lambda cls: cls.__name__)
def test_every_datamodule_offers_the_loader_options_with_their_default_and_help(datamodule):
    parser = ArgumentParser()
    parser.add_class_arguments(datamodule, "data")  # as LightningCLI reads it: following super().__init__(**kwargs)
    defaults = parser.get_defaults()["data"]
    expected = {name: option.default for name, option in LOADER.items()} | OWN_DEFAULTS.get(datamodule, {})
    assert {name: defaults[name] for name in LOADER} == expected
    own = {param.arg_name: param.description for param in parse(datamodule.__doc__).params}
    shown = words(parser.format_help())
    for name in LOADER:
        assert words(own.get(name, HELP[name])) in shown, name


def test_the_loader_options_are_refused_by_position():
    """Through **kwargs a position would mean another parameter in each datamodule."""
    with pytest.raises(TypeError):
        data.CIFAR100DataModule("data")
