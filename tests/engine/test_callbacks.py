import logging
from functools import partial
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms import Normalize

from bam_lightning.data import CIFAR100DataModule
from bam_lightning.engine.callbacks import AttentionMapLogger, LastCheckpoint, _displayable
from bam_lightning.errors import TrainingDiverged
from bam_lightning.tasks.classification import ImageClassifier

from helpers.command import bam
from helpers.datasets import write_cifar100

CONFIG = Path(__file__).parents[2] / "configs" / "cifar100_wrn.yaml"
BAMS = ["layer1.attn", "layer2.attn"]  # of WRN-10-1


def fit(logger, callback, epochs=2):
    x, y = torch.randn(16, 3, 16, 16), torch.arange(16) % 4
    model = ImageClassifier(
        "wrn", 4, backbone_kwargs={"depth": 10, "widen_factor": 1}, optimizer=partial(torch.optim.SGD, lr=0.01)
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_train_batches=2,
        logger=logger,
        callbacks=[callback],
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    trainer.fit(model, loader, loader)


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


def test_logs_the_map_grid_and_a_histogram_per_bam_after_each_epoch_but_not_the_sanity_check(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="", version=0)
    fit(logger, AttentionMapLogger(every_n_epochs=1, num_images=3))
    logged = events(logger.log_dir)
    assert logged.Tags()["images"] == ["attention/maps"]
    assert sorted(logged.Tags()["histograms"]) == [f"attention/channel/{name}" for name in BAMS]
    grids = logged.Images("attention/maps")
    assert [grid.step for grid in grids] == [2, 4]  # none at step 0, when the sanity check runs
    padding = 1
    assert (grids[0].height, grids[0].width) == (3 * (16 + padding) + padding, (1 + len(BAMS)) * (16 + padding) + padding)
    for name in BAMS:
        assert [h.step for h in logged.Histograms(f"attention/channel/{name}")] == [2, 4]


def test_every_n_epochs_skips_the_epochs_in_between(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="", version=0)
    fit(logger, AttentionMapLogger(every_n_epochs=2), epochs=3)
    assert [grid.step for grid in events(logger.log_dir).Images("attention/maps")] == [4]


def test_without_tensorboard_it_says_so_once_and_trains_on(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        fit(False, AttentionMapLogger(every_n_epochs=1), epochs=1)
    assert sum("no TensorBoard logger" in record.getMessage() for record in caplog.records) == 1


def test_inputs_are_shown_in_the_datamodules_colours():
    datamodule = CIFAR100DataModule()
    images = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(_displayable(Normalize(datamodule.mean, datamodule.std)(images), datamodule), images)
    shown = _displayable(images * 5 - 2, datamodule=None)  # unknown statistics: stretched per image
    assert shown.amin(dim=(1, 2, 3)).tolist() == [0, 0] and shown.amax(dim=(1, 2, 3)).tolist() == [1, 1]


def test_bam_fit_logs_attention_maps_as_its_config_says(tmp_path):
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    callbacks = tmp_path / "callbacks.yaml"
    callbacks.write_text("attention_maps: {every_n_epochs: 1, num_images: 4}\n")
    args = [
        "fit", "--config", str(CONFIG), "--config", str(callbacks),
        "--model.backbone", "wrn", "--model.backbone_kwargs", "{depth: 10, widen_factor: 1}", "--model.compile", "false",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "1",
        "--data.root", str(tmp_path / "data"), "--data.verify_md5", "false", "--data.num_workers", "0",
        "--data.batch_size", "16", "--data.pin_memory", "false", "--trainer.default_root_dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    bam(*args, cwd=tmp_path)
    logged = events(tmp_path / "runs" / "lightning_logs" / "version_0")
    assert logged.Tags()["images"] == ["attention/maps"]
    assert sorted(logged.Tags()["histograms"]) == [f"attention/channel/{name}" for name in BAMS]
    grid = logged.Images("attention/maps")[0]
    assert (grid.height, grid.width) == (4 * 33 + 1, 3 * 33 + 1)


class RaiseAfterStep(L.Callback):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == 2:
            raise self.error


@pytest.mark.parametrize(
    "error,saved",
    [(SIGTERMException(), True), (TrainingDiverged("loss became nan"), False), (RuntimeError("an unreadable image"), False)],
    ids=["sigterm", "diverged", "other"],
)
def test_last_checkpoint_is_written_when_sigterm_stops_the_run_and_for_no_other_error(tmp_path, error, saved):
    last = LastCheckpoint(dirpath=tmp_path, filename="last", save_on_exception=True)
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=4, limit_val_batches=0, callbacks=[last, RaiseAfterStep(error)], logger=False,
        accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    with pytest.raises(type(error)):
        trainer.fit(BoringModel())
    assert (tmp_path / "last.ckpt").is_file() == saved
    if saved:  # where SIGTERM stopped it, inside the epoch
        assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 2


def test_the_validation_progress_counters_that_last_checkpoint_rewinds_are_still_there():
    """``validate_again`` writes Lightning's loop progress counters (no public API says where a loop is)."""
    progress = L.Trainer(logger=False).fit_loop.epoch_loop.val_loop.batch_progress
    for counts in (progress.total, progress.current):
        fields = set(vars(counts))
        assert {"started", "processed", "completed"} <= fields, (
            f"lightning {L.__version__} moved its validation progress counters ({fields}): callbacks.validate_again"
            " must follow (tested with 2.6)"
        )
