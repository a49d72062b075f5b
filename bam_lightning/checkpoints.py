"""Reading checkpoints safely, and saying in one line why one does not fit a model.

Checkpoints are read with ``weights_only=True``: tensors, numbers and strings, never code.
Before a run loads one, its keys and shapes are compared with the model the config
builds, so a checkpoint of another architecture, attention or class count is refused by
name instead of deep inside ``load_state_dict``.

Checkpoints are written whole or not at all (``AtomicCheckpointIO``): a run killed while it
saves leaves the previous ``last.ckpt`` in place, never a part of a new one. A command reads its
``--ckpt_path`` once (``ReadCheckpoint``): the check before the run and the run's restore share it.
"""

import glob
import io
import os
import pickletools
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from torch import Tensor, nn

from .errors import InputError, first_line

_SHOWN = 5


def _listing(keys: set[str]) -> str:
    shown = ", ".join(sorted(keys)[:_SHOWN])
    return shown + (f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def state_mismatch(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> str | None:
    """What keeps ``given`` from loading into a model whose state is ``expected``, or None."""
    missing, unexpected = expected.keys() - given.keys(), given.keys() - expected.keys()
    wrong_shape = {k for k in expected.keys() & given.keys() if expected[k].shape != given[k].shape}
    problems = [
        f"{label} {_listing(keys)}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong_shape))
        if keys
    ]
    return "; ".join(problems) or None


def _as_archive(pickled: bytes) -> io.BytesIO:
    """``pickled`` as the data of a checkpoint in the zip layout ``torch.save`` writes (``archive/data.pkl``)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("archive/data.pkl", pickled)
        zipped.writestr("archive/version", "3\n")
    archive.seek(0)
    return archive


def unsafe_globals(path: str | Path) -> list[str]:
    """The functions and classes the file at ``path`` refers to that ``torch.load(weights_only=True)`` refuses.

    torch names them (``get_unsafe_globals_in_checkpoint``) for a zip checkpoint, what ``torch.save``
    writes since torch 1.6. An older checkpoint is pickles one after another (a magic number, the
    protocol, system info, then the object); each is handed to torch as the data of a zip
    checkpoint. Empty where there are none, or the bytes are too damaged to tell.
    """
    found: set[str] = set()
    try:
        with open(path, "rb") as file:
            if file.read(2) == b"PK":
                return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
            file.seek(0)
            for _ in range(4):
                start = file.tell()
                for _ in pickletools.genops(file):  # reads one pickle, up to its STOP
                    pass
                end = file.tell()
                file.seek(start)
                found.update(torch.serialization.get_unsafe_globals_in_checkpoint(_as_archive(file.read(end - start))))
    except Exception:  # damaged bytes fail as anything; what was found before them stands
        pass
    return sorted(found)


def unreadable(path: str | Path, error: Exception) -> InputError:
    """One line for a file ``torch.load(weights_only=True)`` will not read: code it refuses to run, or no checkpoint.

    torch words both alike ("Weights only load failed"), so it is asked which globals the file
    refers to that it does not allow (``unsafe_globals``): any is code.
    """
    code = unsafe_globals(path)
    if code:
        return InputError(f"{path} is refused: it holds more than tensors and numbers ({', '.join(code)})")
    reason = f"{type(error).__name__}: {first_line(error).split('. ')[0]}"
    return InputError(f"{path} is not a readable checkpoint ({reason}); it may be truncated")


NAMED_CHECKPOINTS = ("last", "best", "hpc")  # --ckpt_path values that are not files


def checkpoint_file(ckpt_path: str | None) -> str | None:
    """``ckpt_path`` where it names a local file for us to read (not last/best/hpc, a registry or a remote URL)."""
    if not ckpt_path or ckpt_path in NAMED_CHECKPOINTS or ckpt_path.startswith("registry") or "://" in ckpt_path:
        return None
    return ckpt_path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, read without running any code it may carry."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no checkpoint file at {path}: give the path of a .ckpt (or --ckpt_path last)")
    try:
        with path.open("rb") as file:
            head = file.read(4)
        # torch.save writes a zip archive ("PK"); before torch 1.6 a pickle (protocol opcode 0x80).
        if head[:2] == b"PK" or head[:1] == b"\x80":
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:  # there, but not for us to read
        raise InputError(f"cannot read {path} ({error.strerror or error})") from None
    except Exception as error:  # damaged bytes fail as anything, even a KeyError or IndexError
        raise unreadable(path, error) from None
    if head[:2] != b"PK" and head[:1] != b"\x80":  # a text file, an image, an empty file
        what = "it is empty" if not head else f"it starts with {head!r}, not as a file torch.save writes"
        raise InputError(f"{path} is not a readable checkpoint ({what}): give the path of a .ckpt")
    if not isinstance(checkpoint, dict):
        raise InputError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint


@dataclass
class ReadCheckpoint:
    """A checkpoint file and what ``read_checkpoint`` found in it, for every later look at the same, unchanged file."""

    path: Path
    stamp: tuple[int, int]  # the file's modification time (ns) and size when it was read
    content: dict[str, Any]

    @classmethod
    def of(cls, path: str | Path) -> "ReadCheckpoint":
        content = read_checkpoint(path)
        return cls(Path(path), _stamp(path), content)

    def holds(self, path: str | Path) -> bool:
        """Whether this is the file at ``path``, unchanged since it was read."""
        try:
            return os.path.abspath(path) == os.path.abspath(self.path) and _stamp(path) == self.stamp
        except OSError:  # gone since: not the file that was read
            return False


def _stamp(path: str | Path) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_mtime_ns, status.st_size


def check_fits(checkpoint: ReadCheckpoint, model: nn.Module) -> None:
    """Refuse, by name, a Lightning checkpoint whose weights do not fit ``model``."""
    trained = checkpoint.content.get("hyper_parameters", {})
    problem = state_mismatch(model.state_dict(), checkpoint.content.get("state_dict", {}))
    if problem:
        keys = ("backbone", "attention", "num_classes", "placement")
        was = ", ".join(f"{k}={trained[k]}" for k in keys if k in trained)
        raise InputError(
            f"{checkpoint.path} does not fit this model (it was trained with {was or 'unknown settings'}): {problem}"
        )


def atomic_save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to ``path`` so that a kill at any moment leaves the old file or the new one, never a part.

    The bytes go to a hidden ``.<name>.<random>.tmp`` beside ``path`` (the same folder, so the
    same filesystem), reach the disk (``fsync``), then replace ``path`` in one ``os.replace``.
    A save killed before the rename leaves only its temporary file, which the next save of
    the same name removes; ``--ckpt_path last`` and Lightning look only at ``*.ckpt`` files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp's file is private (0600); a checkpoint gets the usual mode
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):  # left by saves that were killed
        stale.unlink(missing_ok=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, with ``atomic_save`` for files on a local filesystem.

    Lightning 2.6 saves through an fsspec transaction (``lightning/fabric/utilities/cloud_io.py``,
    ``_atomic_save``) whose temporary file fsspec makes with ``tempfile.mkstemp()`` in ``$TMPDIR``
    and then moves with ``shutil.move``. That is a rename only where ``$TMPDIR`` and the
    checkpoint share a filesystem; elsewhere (a tmpfs ``/tmp``, checkpoints on NFS or Lustre)
    it is a copy into ``last.ckpt`` that a kill can cut short, and every killed save leaves a
    checkpoint-sized file in ``$TMPDIR``. Remote paths (``s3://...``) keep Lightning's writer.

    ``handed``: a checkpoint the command has read already; the run's restore of that file, unchanged,
    takes it instead of reading it again (once: the restore changes the dict it is given).
    """

    def __init__(self, handed: ReadCheckpoint | None = None) -> None:
        super().__init__()
        self._handed = handed

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options=storage_options)
        else:
            atomic_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> dict[str, Any]:
        handed, self._handed = self._handed, None
        if handed is not None and "://" not in str(path) and handed.holds(path):
            return handed.content
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)


def newest_checkpoint(where: pl.Trainer | str | Path) -> Path | None:
    """The checkpoint to go on from: what ``--ckpt_path last`` resumes from and every error names.

    For a trainer, the newest file its checkpoint callbacks wrote in this run, else (nothing
    written yet, or written by other processes under ddp_spawn) the newest ``last.ckpt``
    under its ``default_root_dir``; for a folder, the newest ``last.ckpt`` under it.
    """
    saved: list[Path] = []
    if isinstance(where, (str, Path)):
        root = Path(where)
    else:
        root = Path(where.default_root_dir)
        paths = [p for cb in where.checkpoint_callbacks for p in (cb.last_model_path, cb.best_model_path) if p]
        saved = [Path(p) for p in paths if Path(p).is_file()]
    saved = saved or [path for path in root.rglob("last.ckpt") if path.is_file()]
    return max(saved, key=lambda path: path.stat().st_mtime, default=None)


def best_checkpoint(where: pl.Trainer | str | Path) -> Path | None:
    """The best checkpoint of the newest run (what ``--ckpt_path best`` evaluates), or None.

    A new trainer knows no best model of its own; the newest ``last.ckpt`` (``newest_checkpoint``)
    records the one its monitoring ModelCheckpoint kept, in the callback's state.
    """
    last = newest_checkpoint(where)
    if last is None:
        return None
    states = read_checkpoint(last).get("callbacks", {}).values()
    paths = [Path(state["best_model_path"]) for state in states if state.get("monitor") and state.get("best_model_path")]
    return next((path for path in paths if path.is_file()), None)
