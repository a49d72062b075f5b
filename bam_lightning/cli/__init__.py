"""The ``bam`` command: LightningCLI wired to the task's LightningModule and our DataModules.

The task is the data's: a detection DataModule (``COCODataModule``, ``VOCDataModule``) in the
config trains an ``ObjectDetector``; any other an ``ImageClassifier`` (``task.task_of``). Beyond
what LightningCLI does by itself (``app.BamCLI``):
- ``num_classes`` and ``image_size`` (detection: the class names and the metric) flow from the
  datamodule into the model;
- checkpoints are always on: the best by ``val/acc1`` (detection: ``val/map_50``; ``--checkpoint.*``)
  and ``last.ckpt`` after every epoch and on SIGTERM (``--last_checkpoint.*``), with a
  LearningRateMonitor (``--lr_monitor.*``); a run stopped by SIGTERM or Ctrl-C resumes exactly;
- ``--ckpt_path last`` finds the newest ``last.ckpt`` of any earlier run under the config's
  ``trainer.default_root_dir`` (``runs``: Lightning alone looks only in the new run's folder);
- a ``--model.*`` option that the checkpoint contradicts, a checkpoint that does not fit the model
  and an image size the model cannot take are refused by name (``reconcile``, ``app``);
- a user's mistake ends in one ``bam: error:`` line with status 2, a stop by signal and a lost
  process of a multi-process run in one line too: ``exits.EXITS`` says which status each ends in.

Research tools that are not Trainer methods are subcommands too (``bam summary``, ``bam attention``,
``bam compare``, ...): each is a module in ``bam_lightning/tools`` with its own ``main(args)``.
"""

from .app import BamCLI, build_cli
from .exits import main
from .task import task_of

__all__ = ["BamCLI", "build_cli", "main", "task_of"]
