"""Training order as a function of (seed, epoch): a resumed run sees the order of the run that never stopped."""

from pathlib import Path

import lightning.pytorch as L
import torch

from bam_lightning.cli import build_cli
from bam_lightning.data.sampler import EpochShuffle

from datasets import write_cifar100


def test_each_epoch_is_a_permutation_fixed_by_seed_and_epoch():
    sampler = EpochShuffle(50, seed=3)
    orders = []
    for epoch in (0, 1, 0):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert sorted(orders[0]) == list(range(50)) and len(sampler) == 50
    assert orders[0] == orders[2] != orders[1]
    assert list(EpochShuffle(50, seed=4)) != orders[0]


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
