"""Detection on handwritten-digit canvases (``bam_lightning.data.digit_canvases``): the offline demo's config shrunk to
seconds, on the canvases' COCO or VOC layout.
"""

from pathlib import Path

from helpers.cli_args import CPU

DEMO = Path(__file__).parents[2] / "configs" / "demo_detect.yaml"
DIGITS = "[digit0, digit1, digit2]"
CANVASES = ["--train", "8", "--val", "4", "--size", "64", "--classes", "0", "1", "2"]  # digit_canvases' own options


def demo_args(root: Path, *extra: str) -> list[str]:
    """The demo's config shrunk to seconds: two training steps, one validation batch, a quarter-width MobileNet."""
    return [
        "--config", str(DEMO), *CPU, "--trainer.default_root_dir", str(root / "runs"),
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.check_val_every_n_epoch", "1", "--trainer.log_every_n_steps", "1",
        "--model.backbone_kwargs", "{width_mult: 0.25}", "--data.batch_size", "4", *extra,
    ]  # fmt: skip


def coco_args(root: Path, *extra: str) -> list[str]:
    """The demo's own data layout (``--data.root`` holding ``train/``, ``val/`` and ``annotations/``)."""
    return demo_args(root, "--data.root", str(root / "coco"), *extra)


def voc_args(root: Path, *extra: str) -> list[str]:
    """The demo switched to VOCDataModule on the canvases' VOCdevkit tree (trainval to train, test to validate)."""
    data = ["--data", "VOCDataModule", "--data.root", str(root / "voc"), "--data.train_sets", "[2007-trainval]"]
    return demo_args(root, *data, *extra)
