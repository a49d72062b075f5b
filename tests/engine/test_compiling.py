"""What ImageClassifier(compile=...) compiles: nothing, each attention block, or the network; and a machine that cannot."""

import pytest
import torch
from torch import nn

from bam_lightning.engine.compiling import compile_model
from bam_lightning.errors import InputError
from bam_lightning.models import create_model
from bam_lightning.nn import BAM, SqueezeExcite, attention_blocks

CPU = torch.device("cpu")


@pytest.fixture
def compiled(monkeypatch):
    """The modules ``nn.Module.compile`` is called on, with its options (nothing is compiled)."""
    calls = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kwargs: calls.append((self, kwargs)))
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)  # the compiler check passes
    return calls


def tiny(attention):
    return create_model("wrn", 4, attention, depth=10, widen_factor=1)


def test_attention_compiles_each_attention_block_and_nothing_else(compiled):
    model = tiny("bam")
    compile_model(model, "attention", CPU)
    bams = [m for m in model.modules() if isinstance(m, BAM)]
    assert len(bams) == 2 and [module for module, _ in compiled] == bams
    assert all(options == {"dynamic": True} for _, options in compiled)
    se = tiny("se")
    assert [block for _, block in attention_blocks(se)] == [m for m in se.modules() if isinstance(m, SqueezeExcite)] != []


def test_network_compiles_the_whole_network_and_false_nothing(compiled):
    model = tiny("bam")
    compile_model(model, "network", CPU)
    assert compiled == [(model, {})]
    compile_model(tiny("bam"), False, CPU)
    compile_model(tiny(None), "attention", CPU)  # a baseline: no block to compile
    assert len(compiled) == 1


def test_a_machine_that_cannot_compile_is_refused_before_the_first_step(monkeypatch):
    def broken(fn, **kwargs):
        def fail(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore lines")

        return fail

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(InputError) as error:
        compile_model(tiny("bam"), "attention", CPU)
    assert str(error.value) == (
        "torch.compile does not work here (InvalidCxxCompiler: No working C++ compiler found): set --model.compile false"
    )


def test_true_is_refused_for_not_saying_what_to_compile(compiled):
    with pytest.raises(InputError, match="model.compile true does not say what to compile: give attention or network"):
        compile_model(tiny("bam"), True, CPU)
    assert compiled == []
