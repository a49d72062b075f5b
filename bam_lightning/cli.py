"""The ``bam`` command: LightningCLI wired to ImageClassifier and our DataModules.

Beyond what LightningCLI does by itself:
- ``num_classes`` and ``image_size`` flow from the datamodule into the model;
- checkpoints are always on: the best by ``val/acc1`` (``--checkpoint.*``) and ``last.ckpt``
  after every epoch (``--last_checkpoint.*``), with a LearningRateMonitor (``--lr_monitor.*``);
- ``--ckpt_path last`` finds the newest ``last.ckpt`` of any earlier run under the config's
  ``trainer.default_root_dir`` (Lightning alone looks only in the new run's own folder);
- before a run, a checkpoint that does not fit the model and an image size the model
  cannot take are refused by name;
- mistakes a user can fix (a wrong name, a missing dataset, a diverged loss) end in one
  line, no traceback.

Research tools that are not Trainer methods are subcommands too (``bam summary``,
``bam attention``, ``bam compare``): each is a module in ``bam_lightning/tools`` with its
own ``main(args)``, dispatched here before LightningCLI sees the arguments.
"""

import importlib
import pickle
import sys
from pathlib import Path

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from .checkpoints import check_fits, unreadable
from .data import ImageDataModule
from .errors import InputError, TrainingDiverged
from .module import ImageClassifier

DESCRIPTION = (
    "BAM (Bottleneck Attention Module) experiments: fit, validate, test, predict from a YAML config."
    " Research tools: bam summary, bam attention, bam compare (each with --help)."
)
TOOLS = {
    "summary": "bam_lightning.tools.summary",
    "attention": "bam_lightning.tools.attention",
    "compare": "bam_lightning.tools.compare",
}


def latest_checkpoint(root: Path, name: str = "last.ckpt") -> Path | None:
    """The most recently written ``name`` anywhere under ``root``, or None."""
    found = [path for path in root.rglob(name) if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime, default=None)


class BamCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.image_size", "model.image_size", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc1",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best-epoch{epoch:03d}-acc1_{val/acc1:.2f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # Lightning's save_last only writes when the monitored metric improved, which
        # leaves a stale last.ckpt to resume from; this one is rewritten every epoch.
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults({"last_checkpoint.filename": "last", "last_checkpoint.enable_version_counter": False})
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")

    def _before_run(self) -> None:
        if self.trainer.logger is None:  # --trainer.logger false: nothing to log learning rates to
            self.trainer.callbacks = [c for c in self.trainer.callbacks if not isinstance(c, LearningRateMonitor)]
        config = self.config_init[self.subcommand]
        # "last" without an explicit dirpath: Lightning alone would look only in this new run's folder.
        if config.get("ckpt_path") == "last" and not self.trainer.checkpoint_callback.dirpath:
            found = latest_checkpoint(Path(self.trainer.default_root_dir))
            if found is not None:
                print(f"bam: resuming from {found}", file=sys.stderr)
                config["ckpt_path"] = str(found)
        # LightningCLI has already rebuilt the model from the checkpoint's hyperparameters, but the
        # data decide num_classes and image_size: a checkpoint can still miss the model built here.
        if config.get("ckpt_path") not in (None, "last", "best", "hpc"):
            check_fits(config["ckpt_path"], self.model)
        self.model.check_image_size(self.datamodule.image_size)

    before_fit = before_validate = before_test = before_predict = _before_run


def build_cli(args: list[str] | None = None, run: bool = True) -> BamCLI:
    """The ``bam`` command's CLI; ``run=False`` only parses and instantiates (for tests and notebooks)."""
    return BamCLI(
        ImageClassifier,
        ImageDataModule,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": DESCRIPTION},
        args=args,
        run=run,
    )


def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else args
    try:
        if argv and argv[0] in TOOLS:
            importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
        else:
            build_cli(args)  # None: LightningCLI reads sys.argv itself, as its DDP launcher expects
    except (InputError, TrainingDiverged) as error:
        print(f"bam: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except (pickle.UnpicklingError, EOFError) as error:  # LightningCLI reads --ckpt_path's hyperparameters first
        print(f"bam: error: {unreadable('--ckpt_path', error)}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
