"""Checkpoints: written whole or not at all, read without running code, refused by name when they do not fit."""

import os
import pickle
import stat
from pathlib import Path

import pytest
import torch

from bam_lightning.checkpoints import AtomicCheckpointIO, ReadCheckpoint, atomic_save, check_fits, read_checkpoint
from bam_lightning.errors import InputError
from bam_lightning.tasks.classification import ImageClassifier

TINY = {"backbone_kwargs": {"depth": 10, "widen_factor": 1}}


class Killed(BaseException):
    """Stands for SIGKILL at a chosen point of a save: nothing after it runs (no cleanup either)."""


@pytest.mark.parametrize("where", ["os.fsync", "os.replace"])
def test_a_save_killed_midway_leaves_the_old_checkpoint_whole(tmp_path, monkeypatch, where):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1, "w": torch.ones(1000)}, path)
    moves = []
    real_replace = os.replace
    monkeypatch.setattr("os.replace", lambda src, dst: moves.append((src, dst)) or real_replace(src, dst))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "elsewhere"))  # $TMPDIR, maybe another filesystem

    def kill(*args):
        raise Killed

    monkeypatch.setattr(where, kill)
    with pytest.raises(Killed):
        AtomicCheckpointIO().save_checkpoint({"step": 2, "w": torch.zeros(1000)}, path)
    assert read_checkpoint(path)["step"] == 1  # the old file, whole
    monkeypatch.undo()
    assert not (tmp_path / "elsewhere").exists()  # nothing goes through $TMPDIR
    # Lightning's writer would leave its temporary file in $TMPDIR; a real kill leaves ours beside the target.
    (path.parent / ".last.ckpt.killed.tmp").write_bytes(b"half a checkpoint")
    AtomicCheckpointIO().save_checkpoint({"step": 3}, path)
    assert read_checkpoint(path)["step"] == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # the leftover is gone


def test_the_file_is_moved_into_place_from_its_own_folder(tmp_path, monkeypatch):
    """A rename within one folder is atomic; Lightning's move from $TMPDIR is a copy across filesystems."""
    moves = []
    real_replace = os.replace
    monkeypatch.setattr("os.replace", lambda src, dst: moves.append((src, dst)) or real_replace(src, dst))
    atomic_save({"w": torch.ones(3)}, tmp_path / "a" / "best.ckpt")
    [(src, dst)] = moves
    assert os.path.dirname(src) == str(tmp_path / "a") and os.path.basename(src).startswith(".best.ckpt.")
    assert str(dst) == str(tmp_path / "a" / "best.ckpt")
    mode = stat.S_IMODE((tmp_path / "a" / "best.ckpt").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # as any file the user writes, not mkstemp's private 0600


@pytest.mark.parametrize(
    "content,message",
    [
        (b"epoch: 3\n", "is not a readable checkpoint (it starts with b'epoc', not as a file torch.save writes)"),
        (b"hello world\n", "is not a readable checkpoint (it starts with b'hell'"),
        (b"", "is not a readable checkpoint (it is empty)"),
        (b"PK\x03\x04 and garbage", "is not a readable checkpoint (RuntimeError: PytorchStreamReader failed"),
        (b"\x80\x02 and garbage", "is not a readable checkpoint ("),
    ],
)
def test_files_that_are_not_checkpoints_are_refused_in_one_line(tmp_path, content, message):
    """Text fails torch.load as a KeyError ('hello') or an IndexError ('epoch: 3'), not as an UnpicklingError."""
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_checkpoint(path)
    assert str(caught.value).startswith(f"{path} ") and message in str(caught.value) and "\n" not in str(caught.value)


def touch(path: str) -> None:
    Path(path).touch()


class Payload:
    """Unpickling this calls ``touch``: what a malicious checkpoint would do, harmlessly."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)  # a str, so that the only global is touch

    def __reduce__(self):
        return (touch, (self.target,))


WRITERS = {
    "torch.save": torch.save,
    "torch.save before 1.6": lambda obj, path: torch.save(obj, path, _use_new_zipfile_serialization=False),
    "a bare pickle": lambda obj, path: path.write_bytes(pickle.dumps(obj, protocol=2)),
}


@pytest.mark.parametrize("writer", WRITERS.values(), ids=WRITERS.keys())
def test_a_checkpoint_that_carries_code_is_refused_naming_it_and_never_run(tmp_path, writer):
    path = tmp_path / "code.ckpt"
    writer({"epoch": 3, "payload": Payload(tmp_path / "pwned")}, path)  # a tensor, pickled bare, is code too
    with pytest.raises(InputError) as caught:
        read_checkpoint(path)
    assert str(caught.value) == f"{path} is refused: it holds more than tensors and numbers ({__name__}.touch)"
    assert not (tmp_path / "pwned").exists()


def test_a_truncated_checkpoint_is_not_taken_for_code(tmp_path):
    path = tmp_path / "cut.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InputError, match=r"cut\.ckpt is not a readable checkpoint \(RuntimeError: .*\); it may be truncated$"):
        read_checkpoint(path)


def test_a_checkpoint_of_another_attention_is_refused_naming_the_first_keys(tmp_path):
    path = tmp_path / "bam.ckpt"
    trained = ImageClassifier("wrn", 10, attention="bam", **TINY)
    torch.save({"state_dict": trained.state_dict(), "hyper_parameters": dict(trained.hparams)}, path)
    check_fits(ReadCheckpoint.of(path), ImageClassifier("wrn", 10, attention="bam", **TINY))
    with pytest.raises(InputError) as caught:
        check_fits(ReadCheckpoint.of(path), ImageClassifier("wrn", 10, attention="se", **TINY))
    message = str(caught.value)
    assert "does not fit this model (it was trained with backbone=wrn, attention=bam, num_classes=10" in message
    assert "missing keys model.layer1.attn." in message and "unexpected keys model.layer1.attn." in message
    assert "(+" in message and "more)" in message  # the first five of each, and how many besides


def test_the_restore_of_a_checkpoint_the_command_read_takes_that_read_while_the_file_is_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "a.ckpt"
    torch.save({"step": 1}, path)
    read = ReadCheckpoint.of(path)
    loads = []
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: loads.append(args) or {"step": 2})
    assert AtomicCheckpointIO(handed=read).load_checkpoint(str(path)) is read.content and not loads
    io = AtomicCheckpointIO(handed=read)
    os.utime(path, ns=(0, 0))  # changed since it was read: read again
    assert io.load_checkpoint(path) == {"step": 2} and len(loads) == 1
