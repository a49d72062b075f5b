"""Training data as a function of (seed, epoch), resumable mid-epoch: a resumed run sees what the run that never stopped saw."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from torch.utils.data import Dataset

from bam_lightning.cli import build_cli
from bam_lightning.data.base import ImageDataModule
from bam_lightning.data.sampler import EpochShuffle, ResumableBatchSampler, ResumableLoader, SeededSamples, ignore_stop_signals

from helpers.datasets import write_cifar100


def order(sampler: EpochShuffle) -> list[int]:
    return [index for index, _ in sampler]


def test_each_epoch_is_a_permutation_fixed_by_seed_and_epoch():
    sampler = EpochShuffle(50, seed=3)
    orders = []
    for epoch in (0, 1, 0):
        sampler.set_epoch(epoch)
        orders.append(order(sampler))
    assert sorted(orders[0]) == list(range(50)) and len(sampler) == 50
    assert orders[0] == orders[2] != orders[1]
    assert order(EpochShuffle(50, seed=4)) != orders[0]
    assert orders[0] == torch.randperm(50, generator=torch.Generator().manual_seed(3)).tolist()  # the order of old runs


def test_each_image_has_its_own_seed_in_each_epoch():
    sampler = EpochShuffle(50, seed=3)
    seeds = []
    for epoch in (0, 1, 0):
        sampler.set_epoch(epoch)
        seeds.append(dict(sampler))
    assert seeds[0] == seeds[2] and len(set(seeds[0].values())) == 50
    assert all(seeds[0][i] != seeds[1][i] for i in range(50))


class Noise(Dataset):
    """Item i: i plus a draw from the global torch RNG, as torchvision's random transforms draw."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, index: int) -> torch.Tensor:
        return index + torch.rand(())


def test_seeded_samples_draw_from_the_image_seed_alone_and_leave_the_global_rng_alone():
    samples = SeededSamples(Noise())
    torch.manual_seed(1)
    state = torch.get_rng_state()
    first = samples[(7, 123)]
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(samples[(7, 123)], first)
    torch.manual_seed(2)
    assert torch.equal(samples[(7, 123)], first) and not torch.equal(samples[(7, 124)], first)
    assert len(samples) == 40 and 3 <= samples[3] < 4  # a bare index loads as the dataset does


def loader(sampler, num_workers: int = 0, persistent: bool = False, dataset: Dataset | None = None) -> ResumableLoader:
    return ResumableLoader(
        SeededSamples(Noise() if dataset is None else dataset),
        batch_sampler=ResumableBatchSampler(sampler, batch_size=3, drop_last=False),
        num_workers=num_workers,
        persistent_workers=persistent,
    )


@pytest.mark.parametrize("num_workers,persistent", [(0, False), (1, True)])
def test_loader_resumes_where_its_checkpointed_state_stopped(num_workers, persistent):
    straight = loader(EpochShuffle(40, seed=5))
    assert isinstance(straight.sampler, EpochShuffle)  # what Lightning wraps under DDP, and calls set_epoch on
    straight.sampler.set_epoch(2)
    expected = list(straight)  # 14 batches, the last of one image
    stopped = iter(straight)
    for _ in range(4):
        next(stopped)
    assert straight.state_dict() == {"batches": 4}

    resumed = loader(EpochShuffle(40, seed=5), num_workers, persistent)
    resumed.load_state_dict(straight.state_dict())
    batches = iter(resumed)  # Lightning creates the iterator first and sets the epoch after
    resumed.sampler.set_epoch(2)
    rest = list(batches)
    assert len(rest) == 10 and all(torch.equal(a, b) for a, b in zip(rest, expected[4:], strict=True))
    assert resumed.state_dict() == {"batches": 14} and len(resumed) == 14
    assert len(list(resumed)) == 14  # the next pass is whole again

    whole = loader(EpochShuffle(40, seed=5))
    whole.load_state_dict({"batches": 14})  # an end-of-epoch checkpoint: nothing left out
    assert len(list(whole)) == 14


def test_loader_resumes_each_process_in_its_own_shard():
    """Under DDP Lightning wraps the sampler in DistributedSamplerWrapper: the skip applies after sharding."""
    for rank in (0, 1):
        straight = loader(DistributedSamplerWrapper(EpochShuffle(40, seed=5), num_replicas=2, rank=rank))
        expected = list(straight)
        resumed = loader(DistributedSamplerWrapper(EpochShuffle(40, seed=5), num_replicas=2, rank=rank))
        resumed.load_state_dict({"batches": 2})
        rest = list(resumed)
        assert len(expected) == 7 and all(torch.equal(a, b) for a, b in zip(rest, expected[2:], strict=True))


class Logged(Dataset):
    """Item i: i; each load is written down in ``log/loaded<rank>``, from the loader's workers too."""

    def __init__(self, log: Path, size: int = 40) -> None:
        self.log = log
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        with (self.log / f"loaded{rank}").open("a") as file:
            file.write(f"{index}\n")
        return index


def loaded(log: Path, rank: int = 0) -> list[int]:
    path = log / f"loaded{rank}"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("num_workers,persistent", [(0, False), (2, True)])
def test_a_resumed_loader_loads_no_image_of_the_batches_it_leaves_out(tmp_path, num_workers, persistent):
    resumed = loader(EpochShuffle(40, seed=5), num_workers, persistent, dataset=Logged(tmp_path))
    resumed.load_state_dict({"batches": 4})
    rest = [batch.tolist() for batch in resumed]
    order = [index for index, _ in EpochShuffle(40, seed=5)]
    assert [i for batch in rest for i in batch] == order[12:]
    assert sorted(loaded(tmp_path)) == sorted(order[12:])  # not one image of the 4 batches left out
    (tmp_path / "loaded0").unlink()
    assert len(list(resumed)) == 14 and sorted(loaded(tmp_path)) == list(range(40))  # the next pass, on the same workers


def test_a_loader_without_a_resumable_batch_sampler_refuses_to_resume_mid_epoch():
    plain = ResumableLoader(list(range(8)), batch_size=2)
    plain.load_state_dict({"batches": 0})
    with pytest.raises(TypeError, match="ResumableBatchSampler"):
        plain.load_state_dict({"batches": 1})


class Numbers(ImageDataModule):
    """The shuffled loader of the image datamodules (``ImageDataModule._loader``) over ``Logged``: 24 items, 2 a batch."""

    num_classes = 1
    image_size = 1

    def __init__(self, log: Path) -> None:
        super().__init__(batch_size=2, num_workers=0, pin_memory=False)
        self.log = log

    def setup_splits(self, stage: str | None) -> None:
        self.train_set = Logged(self.log, size=24)


class Batches(L.LightningModule):
    """Writes each rank's training batches down in ``log/batches<rank>``; saves a checkpoint after batch ``save_at``."""

    def __init__(self, log: Path, save_at: int = -1) -> None:
        super().__init__()
        self.log = log
        self.save_at = save_at
        self.layer = torch.nn.Linear(1, 1)

    def on_train_start(self) -> None:
        loader = self.trainer.train_dataloader  # under DDP, the one Lightning re-created
        assert isinstance(loader, ResumableLoader) and isinstance(loader.batch_sampler, ResumableBatchSampler)
        if self.trainer.world_size > 1:
            assert isinstance(loader.sampler, DistributedSamplerWrapper) and loader.sampler.rank == self.global_rank

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        with (self.log / f"batches{self.global_rank}").open("a") as file:
            file.write(" ".join(map(str, batch.tolist())) + "\n")
        return self.layer(batch.float()[:, None]).sum()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == self.save_at:
            self.trainer.save_checkpoint(self.log / "mid.ckpt")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.long
def test_two_process_ddp_resumes_each_rank_in_its_own_shard_without_loading_what_it_leaves_out(tmp_path):
    """Lightning re-creates the loader for each rank (a DistributedSamplerWrapper in a new batch sampler) and loads its state.

    The checkpoint comes from a one-process run stopped after 2 batches: each rank leaves out the
    first 2 batches of its own shard.
    """

    def fit(log: Path, save_at: int = -1, ckpt_path: Path | None = None, **ddp: Any) -> None:
        log.mkdir()
        trainer = L.Trainer(
            accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, **ddp,
        )  # fmt: skip
        trainer.fit(Batches(log, save_at), Numbers(log), ckpt_path=ckpt_path)

    fit(tmp_path / "stopped", save_at=1, devices=1)
    fit(tmp_path / "resumed", ckpt_path=tmp_path / "stopped" / "mid.ckpt", devices=2, strategy="ddp_spawn")
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    for rank in (0, 1):
        # The rank's shard as Lightning cuts it for training: its wrapper around the loader's own sampler, shuffled.
        shard = [i for i, _ in DistributedSamplerWrapper(EpochShuffle(24), num_replicas=2, rank=rank, shuffle=True, seed=seed)]
        lines = (tmp_path / "resumed" / f"batches{rank}").read_text().splitlines()
        assert [[int(i) for i in line.split()] for line in lines] == [shard[i : i + 2] for i in range(4, 12, 2)]
        assert sorted(loaded(tmp_path / "resumed", rank)) == sorted(shard[4:])  # the 2 batches left out: never loaded


class WorkerPid(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> int:
        return os.getpid()


def test_a_loader_worker_outlives_a_sigterm_sent_to_the_whole_job():
    loader = ResumableLoader(WorkerPid(), batch_size=2, num_workers=1, worker_init_fn=ignore_stop_signals)
    batches = iter(loader)
    pid = int(next(batches)[0])
    kill = f"import os, signal; os.kill({pid}, signal.SIGTERM)"  # as a scheduler sends it to every process
    subprocess.run([sys.executable, "-c", kill], check=True)
    assert len(list(batches)) == 3  # a killed worker would fail the main process at once


def test_workers_that_ignore_stop_signals_do_not_hold_up_the_exit():
    """multiprocessing ends daemonic children at exit with SIGTERM and waits: these would be waited for forever."""
    script = (
        "from bam_lightning.data.sampler import ResumableLoader, ignore_stop_signals\n"
        "batches = iter(ResumableLoader(list(range(8)), batch_size=2, num_workers=1, worker_init_fn=ignore_stop_signals))\n"
        "next(batches)\n"  # and exit with the worker still running
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == 0


class LabelSpy(L.Callback):
    """Records the labels of every training batch of epoch 2."""

    seen: list[list[int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 2:
            LabelSpy.seen.append(batch[1].tolist())


def test_resumed_run_sees_the_same_order_as_the_straight_run(tmp_path):
    write_cifar100(tmp_path / "data", n_train=48, n_test=16)
    config = Path(__file__).parents[2] / "configs" / "cifar100_wrn.yaml"
    args = [
        "--config", str(config), "--model.backbone", "wrn", "--model.backbone_kwargs", "{depth: 10, widen_factor: 1}",
        "--model.compile", "false",
        "--data.root", str(tmp_path / "data"), "--data.verify_md5", "false", "--data.num_workers", "0", "--data.batch_size", "16",
        "--data.pin_memory", "false", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.logger", "false", "--trainer.callbacks+=test_sampler.LabelSpy", "--trainer.limit_val_batches", "1",
    ]  # fmt: skip

    def fit(root, epochs, *extra):
        build_cli(["fit", *args, "--trainer.default_root_dir", str(tmp_path / root), "--trainer.max_epochs", str(epochs), *extra])

    fit("straight", 3)
    straight, LabelSpy.seen = LabelSpy.seen, []
    fit("split", 2)
    fit("split", 3, "--ckpt_path", str(tmp_path / "split" / "checkpoints" / "last.ckpt"))
    assert len(straight) == 3 and LabelSpy.seen == straight
    assert torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2
