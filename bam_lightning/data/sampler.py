"""Training data as a function of (seed, epoch) alone, and where an epoch stopped: exact resume.

A checkpoint holds no RNG state, so whatever a resumed run must redo exactly is rebuilt
from numbers it does hold: the run's seed, the epoch, and the batches the epoch consumed.

- Order: ``RandomSampler`` draws each epoch's order from the global RNG; ``EpochShuffle``
  draws it from ``seed + epoch``. Lightning calls ``set_epoch`` on it before every epoch; under
  DDP it wraps it in ``DistributedSamplerWrapper``, which forwards ``set_epoch`` and shards
  what it yields.
- Augmentation: torchvision's random transforms draw from the global torch RNG, whose state
  after a resume is not the one the uninterrupted run had (and depends on ``num_workers``).
  ``EpochShuffle`` pairs each index with a seed drawn for that image and epoch, and
  ``SeededSamples`` loads the image under that seed: the same crop and flip in any run, on
  any worker and rank.
- Position: ``ResumableLoader`` tells Lightning how many batches of the epoch it handed out;
  Lightning keeps that in the checkpoint and hands it back before the resumed run's first
  batch, and the loader's ``ResumableBatchSampler`` leaves those batches of indices out, so
  none of their images is loaded. The skip lives in the batch sampler, public DataLoader API,
  because under DDP Lightning rebuilds the batch sampler around its ``DistributedSamplerWrapper``
  (a ``BatchSampler`` subclass is re-created with the same class): what is left out is then
  counted in the rank's own shard.
- Stopping: loader workers leave a scheduler's SIGTERM and a terminal's Ctrl-C to the main
  process (``ignore_stop_signals``), which finishes the batch and saves.
"""

import atexit
import itertools
import multiprocessing.util
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler


class EpochShuffle(Sampler[tuple[int, int]]):
    """A permutation of ``range(size)`` seeded by ``seed + epoch``, each index with its image's seed for the epoch.

    Yields ``(index, image_seed)`` pairs, for ``SeededSamples``. ``seed`` defaults to the run's
    global seed (``seed_everything``). The seeds are drawn after the permutation, so the
    order is the one this sampler gave before it paired indices with seeds.
    """

    def __init__(self, size: int, seed: int | None = None) -> None:
        self.size = size
        self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator)
        image_seeds = torch.randint(2**62, (self.size,), generator=generator)
        return zip(order.tolist(), image_seeds[order].tolist(), strict=True)

    def __len__(self) -> int:
        return self.size


class SeededSamples(Dataset):
    """``dataset[index]`` drawn under the seed that comes with the index: augmentation from (seed, epoch, index) alone.

    Only torch's CPU generator is reseeded (torchvision's transforms draw from it; reseeding
    CUDA's would reach into the training step when loading runs in the main process), and
    inside ``fork_rng``, so the global state is left as it was. A bare index (a sampler other
    than ``EpochShuffle``, e.g. Lightning's for ``--trainer.overfit_batches``) loads as the
    dataset itself would.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        if isinstance(key, int):
            return self.dataset[key]
        index, image_seed = key
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(image_seed)
            return self.dataset[index]


class ResumableBatchSampler(BatchSampler):
    """A ``BatchSampler`` that can leave out the first ``skip`` batches of a pass: those of an interrupted epoch.

    It skips batches of indices, so the loader loads none of their images. It keeps
    ``BatchSampler``'s signature ``(sampler, batch_size, drop_last)``: under DDP Lightning
    re-creates a ``BatchSampler`` subclass with its ``DistributedSamplerWrapper`` as ``sampler``,
    and the batches left out are then the rank's own. ``skip`` is read each time the batch
    sampler is iterated, not consumed: a DataLoader with workers iterates it twice to start its
    first pass. ``ResumableLoader`` sets it at the start of every pass.
    """

    skip = 0  # batches the pass leaves out

    def __iter__(self) -> Iterator[list[Any]]:
        return itertools.islice(super().__iter__(), self.skip, None)


class _OfTheBatchSampler:
    """A DataLoader attribute read from the loader's batch sampler; what DataLoader sets is kept for a loader without one."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loader: Any, owner: type | None = None) -> Any:
        if loader is None:
            return self
        own = loader.__dict__.get(f"_own_{self.name}")
        return getattr(loader.__dict__.get("batch_sampler"), self.name, own)

    def __set__(self, loader: Any, value: Any) -> None:  # DataLoader.__init__ sets it, once
        loader.__dict__[f"_own_{self.name}"] = value


class ResumableLoader(DataLoader):
    """A DataLoader that Lightning can stop and resume mid-epoch, and that starts at the first batch asked for.

    Build it with ``batch_sampler=ResumableBatchSampler(sampler, batch_size, drop_last)``.

    - ``state_dict``/``load_state_dict`` (what Lightning looks for to checkpoint a loader): the
      batches handed out in the current pass. Lightning saves it with the fit loop and loads it
      into the resumed run's loader (the one it re-created for DDP) when that run restarts inside
      an epoch; the next pass then has the batch sampler leave those batches out, after any DDP
      sharding, so none of their images is loaded. A finished pass (an end-of-epoch checkpoint)
      leaves nothing out.
    - ``sampler``, ``batch_size`` and ``drop_last`` are the batch sampler's. Given a
      ``batch_sampler``, DataLoader itself reports ``None``, ``False`` and a ``SequentialSampler``
      of its own making, which no one draws from; under DDP Lightning wraps ``loader.sampler`` for
      each rank, and would wrap that one, losing the order.
    - Lazy start: Lightning creates the first epoch's iterator (``FitLoop.setup_data``) before it
      calls ``set_epoch``, and with workers a DataLoader draws indices as soon as its iterator
      exists: a resumed run would begin with epoch 0's order. ``__iter__`` is a generator, so
      the real iterator is only built at the first ``next``, after ``set_epoch``.
    """

    _handed_out = 0  # batches of the current pass given out (or left out, when resuming)
    _resume_at = 0  # batches the next pass leaves out

    sampler = _OfTheBatchSampler()
    batch_size = _OfTheBatchSampler()
    drop_last = _OfTheBatchSampler()

    def state_dict(self) -> dict[str, int]:
        return {"batches": self._handed_out}

    def load_state_dict(self, state: dict[str, int]) -> None:
        done = int(state.get("batches", 0))
        self._resume_at = done if done < len(self) else 0
        if self._resume_at and not isinstance(self.batch_sampler, ResumableBatchSampler):
            raise TypeError(
                f"{type(self).__name__} resumes mid-epoch only with batch_sampler=ResumableBatchSampler(...),"
                f" not {type(self.batch_sampler).__name__}: it would repeat {done} batches of the epoch"
            )

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        self._handed_out, self._resume_at = self._resume_at, 0
        if isinstance(self.batch_sampler, ResumableBatchSampler):
            self.batch_sampler.skip = self._handed_out  # every pass sets it: 0 but for the resumed one
        for batch in super().__iter__():
            self._handed_out += 1
            yield batch


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a loader worker leaves SIGTERM and SIGINT (Ctrl-C) to the main process.

    Schedulers signal every process of a job (SLURM's preemption and ``scancel``, ``kill --
    -PGID``). A worker killed by that SIGTERM makes the main process fail at once (torch's
    SIGCHLD handler raises "DataLoader worker ... is killed by signal"), before Lightning can
    finish the batch and save. Ignoring it, the worker serves on until the main process shuts
    it down, as Lightning does after every loop; ``_end_workers_at_exit`` ends any left at exit.
    Set on every loader, it takes the place of Lightning's worker seeding, which these
    datasets do not need: ``SeededSamples`` seeds each image. A terminal's Ctrl-C reaches the
    workers too (the whole process group), and the ``bam`` command stops on it as on SIGTERM.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@atexit.register  # after multiprocessing.util registered its exit handler (imported above): runs before it
def _end_workers_at_exit() -> None:
    """End the daemonic children that ignore SIGTERM (loader workers of an iterator never finished) at exit.

    multiprocessing ends daemonic children at exit with SIGTERM and then waits for them: these
    would be waited for forever. Where ``/proc`` cannot tell which ignore it, nothing is done.
    """
    for child in multiprocessing.active_children():
        if child.daemon and _ignores_sigterm(child.pid):
            child.kill()


def _ignores_sigterm(pid: int | None) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = next((line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), "0")
    return bool(int(ignored, 16) >> (signal.SIGTERM - 1) & 1)
