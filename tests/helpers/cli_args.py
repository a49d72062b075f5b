"""The arguments most ``bam`` commands in the tests share: the main config on a tiny WRN, on CPU, on tiny data."""

from pathlib import Path

CONFIG = Path(__file__).parents[2] / "configs" / "cifar100_wrn.yaml"
TINY_MODEL = ["--model.backbone", "wrn", "--model.backbone_kwargs", "{depth: 10, widen_factor: 1}"]
EAGER = ["--model.compile", "false"]  # the paper configs compile BAM: tens of seconds a run, kept for one fit (fitted)
CPU = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def cifar_args(root: Path, *extra: str, eager: bool = True) -> list[str]:
    """The main config on tiny data; ``eager=False`` keeps its ``compile: attention`` (tens of seconds of compiling)."""
    return [
        "--config", str(CONFIG), *TINY_MODEL, *CPU, *(EAGER if eager else []),
        "--data.root", str(root / "data"), "--data.verify_md5", "false", "--data.num_workers", "0",
        "--data.batch_size", "16", "--data.pin_memory", "false",
        "--trainer.default_root_dir", str(root / "runs"), "--trainer.log_every_n_steps", "1", *extra,
    ]  # fmt: skip
