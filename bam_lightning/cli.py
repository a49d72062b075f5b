"""The ``bam`` command: LightningCLI wired to the task's LightningModule and our DataModules.

The task is the data's: a detection DataModule (``COCODataModule``, ``VOCDataModule``) in the
config trains an ``ObjectDetector``; any other an ``ImageClassifier`` (``task_of``). Beyond what
LightningCLI does by itself:
- ``num_classes`` and ``image_size`` (detection: the class names and the metric) flow from the
  datamodule into the model;
- checkpoints are always on: the best by ``val/acc1`` (detection: ``val/map_50``; ``--checkpoint.*``) and ``last.ckpt``
  after every epoch and on SIGTERM (``--last_checkpoint.*``), with a LearningRateMonitor
  (``--lr_monitor.*``); a run stopped by SIGTERM exits with status 143 and resumes exactly;
- ``--ckpt_path last`` finds the newest ``last.ckpt`` of any earlier run under the config's
  ``trainer.default_root_dir`` (Lightning alone looks only in the new run's own folder);
- before a run, a checkpoint that does not fit the model and an image size the model
  cannot take are refused by name;
- mistakes a user can fix (a wrong name, a missing dataset, a diverged loss) end in one
  line, no traceback; so do a misspelt key or class_path in a config (``config_errors``) and a
  ``--ckpt_path`` that is not a checkpoint, refused before LightningCLI reads it;
- checkpoints are written whole or not at all (``checkpoints.AtomicCheckpointIO``), and a
  multi-process run that loses a process ends in one line that names the checkpoint to
  resume from (``distributed``).

Research tools that are not Trainer methods are subcommands too (``bam summary``,
``bam attention``, ``bam compare``): each is a module in ``bam_lightning/tools`` with its
own ``main(args)``, dispatched here before LightningCLI sees the arguments.
"""

import importlib
import os
import pickle
import signal
import sys
import threading
from argparse import ArgumentError
from typing import Any

import yaml
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from . import data, distributed
from .callbacks import AttentionMapLogger, LastCheckpoint
from .checkpoints import AtomicCheckpointIO, ReadCheckpoint, best_checkpoint, check_fits, newest_checkpoint, unreadable
from .commands import TOOLS
from .config_errors import explain
from .data import DetectionDataModule, ImageDataModule
from .data.predict import find_images
from .detections import DetectionsCSV
from .detector import ObjectDetector
from .errors import InputError, TrainingDiverged, check_output_folder
from .module import ImageClassifier
from .predictions import PredictionsCSV
from .run_logs import RunLogger, RunSummary, run_of_checkpoint
from .trainer_values import SaveConfig, check_trainer_values, keep_whole_counts, options, yaml_file

DESCRIPTION = (
    f"BAM (Bottleneck Attention Module) experiments: {', '.join(LightningCLI.subcommands())} from a YAML config."
    f" Research tools: {', '.join(f'bam {tool}' for tool in TOOLS)} (each with --help)."
)


def worker_message(error: BaseException) -> str:
    """The message of an error raised in a DataLoader worker, which DataLoader re-raises with the worker's traceback."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    return last.split(": ", 1)[1] if last.startswith(f"{type(error).__module__}.{type(error).__name__}: ") else last


def option_keys(parser: LightningArgumentParser) -> list[str]:
    """The keys ``parser`` takes, with the groups above them (``model.optimizer`` of ``model.optimizer.init_args.lr``)."""
    keys = [key.split(".") for key in parser.get_defaults(skip_validation=True).keys()]
    return list(dict.fromkeys(".".join(parts[:end]) for parts in keys for end in range(1, len(parts) + 1)))


_running: Trainer | None = None  # the trainer of the run in progress (set before it starts)
_interrupted = False  # Ctrl-C was pressed


def _stop_like_sigterm(signum: int, frame: object) -> None:
    """Ctrl-C (SIGINT) during a run stops it as SIGTERM does: after the batch, with last.ckpt to resume from.

    Lightning alone catches the KeyboardInterrupt wherever it lands, loses the partial epoch and
    exits 1. Sending ourselves SIGTERM hands the stop to Lightning's own handler (which also stops
    the other processes of a DDP run). Before a run starts, and on a second press, it stops at once.
    """
    global _interrupted
    again, _interrupted = _interrupted, True
    if _running is None or again:
        raise KeyboardInterrupt
    os.write(2, b"bam: Ctrl-C: stopping after this batch (press it again to stop at once)\n")  # print is not reentrant
    os.kill(os.getpid(), signal.SIGTERM)


class BamCLI(LightningCLI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.command_parsers: dict[str, LightningArgumentParser] = {}  # by subcommand; none with run=False
        self._args: list[str] = []  # the command line (parse_arguments)
        self._checkpoint: ReadCheckpoint | None = None  # --ckpt_path as read once (parse_arguments), for the run
        super().__init__(*args, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """LightningCLI's parser; a subcommand's (``parser_kwargs[subcommand]["command"]``, build_cli) is kept by name."""
        command = kwargs.pop("command", None)
        parser = super().init_parser(**kwargs)
        if command is not None:
            self.command_parsers[command] = parser
        return parser

    def parse_arguments(self, parser: LightningArgumentParser, args: list[str] | None) -> None:
        self._args = sys.argv[1:] if args is None else args
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:  # the parsers are built with exit_on_error=False (build_cli)
            command = next((arg for arg in self._args if arg in self.command_parsers), None)
            known = option_keys(self.command_parsers.get(command, parser))
            configs = [value for flag, value in options(self._args) if flag in ("-c", "--config")]
            raise InputError(explain(str(error), command, known, configs)) from None
        subcommand = self.config.get("subcommand")
        # LightningCLI reads the checkpoint's hyperparameters next, with a traceback for a file that
        # is not a checkpoint (a text file fails torch.load as a KeyError or IndexError).
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in ("last", "best", "hpc") and not ckpt_path.startswith("registry"):
            if "://" not in ckpt_path:  # remote files are Lightning's to read
                self._checkpoint = ReadCheckpoint.of(ckpt_path)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        for config in (self.config_init, self.config):  # the trainer's, and the config.yaml the run saves
            keep_whole_counts(config.get(self.subcommand, config)["trainer"], self._args)
        check_trainer_values(self.config_init.get(self.subcommand, self.config_init)["trainer"])
        return super().instantiate_trainer(**kwargs)

    def _parse_ckpt_path(self) -> None:
        """LightningCLI's: the checkpoint's hyperparameters replace the model's options (the checkpoint decides the network).

        A ``--model.*`` option given on the command line that the checkpoint contradicts would be
        dropped without a word (``bam test --model.backbone resnet50`` evaluating the checkpoint's
        WRN): it is refused, naming both values. Values from config files are the checkpoint's to
        replace: the config a run was trained with often differs from it in an override or two.
        Options that only say how to run the network (the module's ``RUN_OPTIONS``) are the user's.
        """
        subcommand = self.config.get("subcommand")
        before = self.config[subcommand].get("model") if subcommand else None
        before = before.clone() if before is not None else None
        super()._parse_ckpt_path()
        if before is None:
            return
        after = self.config[subcommand]["model"]
        given = dict.fromkeys(flag.split(".")[1] for flag, _ in options(self._args) if flag.startswith("--model."))
        for key in given:
            if key in self.model_class.RUN_OPTIONS:  # how to run the same network (compile, memory order): the user's
                after[key] = before[key]
            elif key in after and key in before and after[key] != before[key]:
                raise InputError(
                    f"--model.{key} {_yaml(before[key])} contradicts the checkpoint {self.config[subcommand]['ckpt_path']},"
                    f" trained with {key}={_yaml(after[key])}: the checkpoint decides the network; drop --model.{key}"
                    " or give a checkpoint trained with it"
                )

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError:
            self._raise_data_error()
            raise

    def _raise_data_error(self) -> None:
        """The datamodule's own one-line error, which jsonargparse buries in ten lines of Union subtypes (subclass mode)."""
        config = self.config.get(self.config.get("subcommand") or "", self.config)
        data = config.get("data")
        data_class = _data_class(data.get("class_path")) if data is not None else None
        if data_class is not None:
            try:
                data_class(**data.get("init_args", {}).as_dict())
            except InputError as error:
                raise error from None

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        if self.model_class is ObjectDetector:
            parser.link_arguments("data.classes", "model.class_names", apply_on="instantiate")
            parser.link_arguments("data.metric", "model.metric", apply_on="instantiate")
            best, name = "val/map_50", "map50"
        else:
            parser.link_arguments("data.image_size", "model.image_size", apply_on="instantiate")
            best, name = "val/acc1", "acc1"
            # BAM's maps in TensorBoard every few epochs (--attention_maps.every_n_epochs); a baseline says once it has none.
            parser.add_lightning_class_args(AttentionMapLogger, "attention_maps")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": best,
                "checkpoint.mode": "max",
                "checkpoint.filename": f"best-epoch{{epoch:03d}}-{name}_{{{best}:.2f}}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # Lightning's save_last only writes when the monitored metric improved, which
        # leaves a stale last.ckpt to resume from; this one is rewritten every epoch.
        # Also written when SIGTERM stops the run (a preempted job), at the batch it stopped after.
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "last_checkpoint.filename": "last",
                "last_checkpoint.enable_version_counter": False,
                "last_checkpoint.save_on_exception": True,
            }
        )
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")

    def _before_run(self) -> None:
        if self.trainer.logger is None:  # --trainer.logger false: nothing to log learning rates to
            self.trainer.callbacks = [c for c in self.trainer.callbacks if not isinstance(c, LearningRateMonitor)]
        config = self.config_init[self.subcommand]
        check_output_folder(self.trainer.default_root_dir, "--trainer.default_root_dir")
        # "last"/"best" without an explicit dirpath: Lightning alone would look only in this new run's folder.
        if config.get("ckpt_path") in ("last", "best") and not self.trainer.checkpoint_callback.dirpath:
            config["ckpt_path"] = self._earlier_checkpoint(config["ckpt_path"])
        # LightningCLI has already rebuilt the model from the checkpoint's hyperparameters, but the
        # data decide num_classes and image_size: a checkpoint can still miss the model built here.
        checkpoint, self._checkpoint = self._checkpoint, None  # handed to the run's restore below, then freed
        if config.get("ckpt_path") not in (None, "last", "best", "hpc") and "://" not in config["ckpt_path"]:
            if checkpoint is None or not checkpoint.holds(config["ckpt_path"]):
                checkpoint = ReadCheckpoint.of(config["ckpt_path"])
            check_fits(checkpoint, self.model)
        self._use_run_logger(config)
        if isinstance(self.model, ImageClassifier):
            self.model.check_image_size(self.datamodule.image_size)
        if self.subcommand == "predict":
            self._prepare_predictions(config.get("ckpt_path"))
        if self.subcommand == "fit":  # a bad optimizer or scheduler value, refused before the run makes its folder
            self.model.configure_optimizers()
        # A kill during a save leaves the previous checkpoint, never half of a new one.
        if type(self.trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            self.trainer.strategy.checkpoint_io = AtomicCheckpointIO(handed=checkpoint)
        global _running
        _running = self.trainer  # for the checkpoint that an error of the run names (main)

    before_fit = before_validate = before_test = before_predict = _before_run

    def _use_run_logger(self, config: Any) -> None:
        """Where ``trainer.logger`` is left at its default: ``run_logs.RunLogger``, and for a fit the run's TensorBoard summary.

        ``bam test`` and ``bam validate`` of a checkpoint that a run wrote log into that run's
        folder (their config as ``config_<command>.yaml`` beside the run's own), so TensorBoard
        shows the test figures with the run, in its HPARAMS row too.
        """
        if config["trainer"].get("logger") not in (None, True) or type(self.trainer.logger) is not TensorBoardLogger:
            return
        run = run_of_checkpoint(config.get("ckpt_path")) if self.subcommand in ("test", "validate") else None
        if run is None:
            self.trainer.logger = RunLogger(self.trainer.default_root_dir, version=self.trainer.logger._version)
        else:
            self.trainer.logger = RunLogger(str(run.parent.parent), name=run.parent.name, version=run.name)
        if self.subcommand == "fit":
            self.trainer.callbacks.append(RunSummary())

    def _prepare_predictions(self, ckpt_path: str | None) -> None:
        """``bam predict`` runs a trained network on images and writes what it found beside the run's logs.

        A classifier classifies the images under ``--data.predict_dir`` (``predictions.csv``); a
        detector detects objects on them or, without the folder, on the evaluation split's images
        (``detections.csv``, and ``detections.json`` for a COCO file's images).
        """
        if ckpt_path is None:
            raise InputError("bam predict needs the trained network: give --ckpt_path FILE (or last, or best)")
        detector = isinstance(self.model, ObjectDetector)
        if self.datamodule.predict_dir is not None:
            find_images(self.datamodule.predict_dir)  # a wrong folder, refused before the run makes its own
        elif not detector:
            raise InputError("bam predict classifies the images under --data.predict_dir DIR: give that folder")
        self.trainer.callbacks.append(DetectionsCSV() if detector else PredictionsCSV())

    def _earlier_checkpoint(self, which: str) -> str | None:
        """The path ``--ckpt_path last`` or ``best`` means: the newest run's, under the config's default_root_dir.

        ``fit --ckpt_path last`` with no earlier run starts from scratch, saying so (a job script
        that always resumes has a first run too); anything else without one is an error, not an
        evaluation of random weights.
        """
        found = newest_checkpoint(self.trainer) if which == "last" else best_checkpoint(self.trainer)
        root = self.trainer.default_root_dir
        if found is not None:
            print(f"bam: {'resuming from' if self.subcommand == 'fit' else 'using'} {found}", file=sys.stderr)
            return str(found)
        if self.subcommand == "fit" and which == "last":
            print(f"bam: no last.ckpt under {root} yet: starting from scratch", file=sys.stderr)
            return None
        kept = "last.ckpt" if which == "last" else "best checkpoint recorded in a last.ckpt"
        raise InputError(f"--ckpt_path {which}: no {kept} under {root}: run bam fit with this config first, or give a .ckpt path")


def _yaml(value: Any) -> str:
    """A value as a user writes it in a config or on the command line: ``null``, ``true``, ``{reduction: 8}``."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()


def _data_class(value: Any) -> type | None:
    """The class a ``data.class_path`` names (a full path, or a name ``bam_lightning.data`` exports), or None."""
    if not isinstance(value, str):
        return None
    module, _, name = value.rpartition(".")
    try:
        found = getattr(importlib.import_module(module) if module else data, name, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


def task_of(args: list[str]) -> tuple[type, type]:
    """The LightningModule and DataModule base of the task that the data given in ``args`` (configs or --data) make.

    A name or file that cannot be read here is left to LightningCLI, which reports it in its own words.
    """
    found = None
    for flag, value in options(args):
        if flag in ("-c", "--config"):
            section = yaml_file(value).get("data")
            found = _data_class(section.get("class_path") if isinstance(section, dict) else section) or found
        elif flag in ("--data", "--data.class_path"):
            found = _data_class(value) or found
    if found is not None and issubclass(found, DetectionDataModule):
        return ObjectDetector, DetectionDataModule
    return ImageClassifier, ImageDataModule


def build_cli(args: list[str] | None = None, run: bool = True) -> BamCLI:
    """The ``bam`` command's CLI; ``run=False`` only parses and instantiates (for tests and notebooks)."""
    model_class, data_class = task_of(sys.argv[1:] if args is None else args)
    return BamCLI(
        model_class,
        data_class,
        subclass_mode_data=True,
        save_config_callback=SaveConfig,
        save_config_kwargs={"overwrite": True},
        # Parse errors raise ArgumentError (one line from BamCLI.parse_arguments), not usage + exit.
        parser_kwargs={
            "description": DESCRIPTION,
            "exit_on_error": False,
            **{command: {"exit_on_error": False, "command": command} for command in BamCLI.subcommands()},
        },
        args=args,
        run=run,
    )


def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else args
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous = signal.signal(signal.SIGINT, _stop_like_sigterm) if in_main_thread else None
    try:
        _run(argv, args)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)


def _run(argv: list[str], args: list[str] | None) -> None:
    """``bam ARGS``: a user's mistake, a stop by signal and a lost process of a DDP run end in one line."""
    global _interrupted, _running
    _interrupted, _running = False, None
    try:
        if argv and argv[0] in TOOLS:
            importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
        else:
            build_cli(args)  # None: LightningCLI reads sys.argv itself, as its DDP launcher expects
    except (InputError, TrainingDiverged) as error:
        print(f"bam: error: {worker_message(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except MisconfigurationException as error:  # Lightning's refusal of a Trainer value (max_epochs -5, accelerator gpu, ...)
        print(f"bam: error: trainer: {' '.join(str(error).split())} (bam fit --help lists the options)", file=sys.stderr)
        raise SystemExit(2) from None
    except ArgumentError as error:  # LightningCLI re-parsing a checkpoint's hyperparameters
        print(f"bam: error: {explain(str(error))}", file=sys.stderr)
        raise SystemExit(2) from None
    except (pickle.UnpicklingError, EOFError) as error:  # LightningCLI reads --ckpt_path's hyperparameters first
        print(f"bam: error: {unreadable('--ckpt_path', error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except SIGTERMException:  # a SystemExit with status 0: a script must not take the stopped run for a finished one
        resume = "; last.ckpt holds it up to its last batch: continue with --ckpt_path last" if argv[:1] == ["fit"] else ""
        stop = signal.SIGINT if _interrupted else signal.SIGTERM
        print(f"bam: stopped by {'Ctrl-C (SIGINT)' if _interrupted else 'SIGTERM'}{resume}", file=sys.stderr)
        raise SystemExit(128 + stop) from None
    except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C before a run or twice: Lightning exits 1 after a KeyboardInterrupt
        if not _interrupted:
            raise
        resume = "; --ckpt_path last resumes from the last checkpoint saved" if argv[:1] == ["fit"] else ""
        print(f"bam: stopped by Ctrl-C (SIGINT){resume}", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from stop
    except Exception as error:  # a lost process of a multi-process run: one line, not a traceback per process
        message = distributed.failure_message(error, _running)
        if message is None:
            raise
        print(f"bam: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(distributed.EXIT_STATUS) from None


if __name__ == "__main__":
    main()
