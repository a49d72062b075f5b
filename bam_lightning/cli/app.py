"""``BamCLI``: LightningCLI with the links, callbacks and checks a BAM run needs; ``build_cli`` builds it for a command line."""

import sys
from argparse import ArgumentError
from collections.abc import Callable
from typing import Any

from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from ..checkpoints import AtomicCheckpointIO, ReadCheckpoint, check_fits, checkpoint_file
from ..engine.callbacks import AttentionMapLogger, LastCheckpoint, ThroughputLogger
from ..engine.ema import ema_callbacks
from ..engine.run_logs import SaveConfig, use_run_logger
from ..errors import InputError, check_output_folder, check_seed
from ..models.hub import is_source
from ..tasks.classification import ImageClassifier
from ..tasks.detection import ObjectDetector
from .commands import DESCRIPTION
from .config_errors import explain
from .reconcile import reconcile
from .runs import earlier_checkpoint, prepare_predictions
from .task import data_class, given_data_class, task_of
from .trainer_values import check_trainer_values

# Always on, each with its --<group>.* options. Lightning's save_last only writes when the monitored metric improved,
# a stale last.ckpt to resume from; last_checkpoint's is rewritten every epoch, and when SIGTERM stops the run.
# throughput: images/s of every fit and test (--throughput.enable false leaves it out).
CALLBACKS = {"checkpoint": ModelCheckpoint, "last_checkpoint": LastCheckpoint, "lr_monitor": LearningRateMonitor,
             "throughput": ThroughputLogger}  # fmt: skip


def option_keys(parser: LightningArgumentParser) -> list[str]:
    """The keys ``parser`` takes, with the groups above them (``model.optimizer`` of ``model.optimizer.init_args.lr``)."""
    keys = [key.split(".") for key in parser.get_defaults(skip_validation=True).keys()]
    return list(dict.fromkeys(".".join(parts[:end]) for parts in keys for end in range(1, len(parts) + 1)))


class BamCLI(LightningCLI):
    def __init__(self, *args: Any, on_start: Callable[[Trainer], None] | None = None, **kwargs: Any) -> None:
        self.command_parsers: dict[str, LightningArgumentParser] = {}  # by subcommand; none with run=False
        self.on_start = on_start
        self.args: list[str] = []  # the command line (parse_arguments)
        self.model_given: Any = None  # the model's options before the checkpoint's replaced them (parse_arguments)
        self.checkpoint: ReadCheckpoint | None = None  # --ckpt_path as read once (parse_arguments), for the run
        super().__init__(*args, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """LightningCLI's parser; a subcommand's (``parser_kwargs[subcommand]["command"]``, build_cli) is kept by name."""
        command = kwargs.pop("command", None)
        parser = super().init_parser(**kwargs)
        if command is not None:
            self.command_parsers[command] = parser
        return parser

    def parse_arguments(self, parser: LightningArgumentParser, args: list[str] | None) -> None:
        self.args = sys.argv[1:] if args is None else args
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:  # the parsers are built with exit_on_error=False (build_cli)
            # run=False (build_cli) parses without a subcommand: the options are fit's, not a mistyped command
            command = next((arg for arg in self.args if arg in self.command_parsers), None if self.command_parsers else "fit")
            known = option_keys(self.command_parsers.get(command, parser))
            raise InputError(explain(str(error), command, known, self.args, self.owners())) from None
        subcommand = self.config.get("subcommand")
        check_seed(self.config.get(subcommand, self.config).get("seed_everything"), "seed_everything")
        if subcommand is None:
            return
        # LightningCLI reads the checkpoint's hyperparameters next, with a traceback for a file that is not a
        # checkpoint (a text file fails torch.load as a KeyError or IndexError): read here first, once, for the run.
        given = self.config[subcommand].get("ckpt_path")
        if is_source(given):  # the network's weights alone, no trainer state: the model's option takes them
            raise InputError(
                f"--ckpt_path {given} names a folder of weights, not a checkpoint: give --model.pretrained {given}"
                " instead (with the config whose model it fits)"
            )
        path = checkpoint_file(given)
        if path is not None:
            self.checkpoint = ReadCheckpoint.of(path)
            self.model_given = self.config[subcommand]["model"].clone()

    def owners(self) -> dict[str, Any]:
        """The classes whose signatures type the options of each group."""
        data = given_data_class(self.args)
        return {"model": self.model_class, "trainer": Trainer, "data": data, "attention_maps": AttentionMapLogger, **CALLBACKS}

    def before_instantiate_classes(self) -> None:
        """The checkpoint's hyperparameters, which LightningCLI has put in place of the model's options, against the user's."""
        if self.model_given is not None:
            config = self.config[self.config["subcommand"]]
            reconcile(self.model_given, config["model"], self.args, self.model_class.RUN_OPTIONS, config["ckpt_path"])

    def instantiate_classes(self) -> None:
        """On a ValueError, the datamodule's own one-line error, which jsonargparse buries in ten lines of Union subtypes."""
        try:
            super().instantiate_classes()
        except ValueError:
            data = self.config.get(self.config.get("subcommand") or "", self.config).get("data")
            found = data_class(data.get("class_path")) if data is not None else None
            try:
                if found is not None:
                    found(**data.get("init_args", {}).as_dict())
            except InputError as error:  # the datamodule's own line, without jsonargparse's report chained to it
                raise error from None
            raise

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        check_trainer_values(self.config_init.get(self.subcommand, self.config_init)["trainer"])
        return super().instantiate_trainer(**kwargs)

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
        for group, callback in CALLBACKS.items():
            parser.add_lightning_class_args(callback, group)
        parser.set_defaults(
            {
                "checkpoint.monitor": best,
                "checkpoint.mode": "max",
                "checkpoint.filename": f"best-epoch{{epoch:03d}}-{name}_{{{best}:.2f}}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        # The EMA of the weights, off unless a decay is given (engine.ema; fit only: a checkpoint holds the average).
        parser.add_argument("--ema.decay", type=float | None, default=None, help="EMA of the weights, e.g. 0.9999")

    def before_run(self) -> None:
        # --trainer.logger false: nothing to log learning rates and throughput to; --throughput.enable false: no throughput.
        unused = (LearningRateMonitor, ThroughputLogger) if self.trainer.logger is None else ()
        self.trainer.callbacks = [
            c for c in self.trainer.callbacks
            if not isinstance(c, unused) and (not isinstance(c, ThroughputLogger) or c.enable)
        ]  # fmt: skip
        config = self.config_init[self.subcommand]
        check_output_folder(self.trainer.default_root_dir, "--trainer.default_root_dir")
        # "last"/"best" without an explicit dirpath: Lightning alone would look only in this new run's folder.
        if config.get("ckpt_path") in ("last", "best") and not self.trainer.checkpoint_callback.dirpath:
            config["ckpt_path"] = earlier_checkpoint(self.trainer, self.subcommand, config["ckpt_path"])
        # LightningCLI has already rebuilt the model from the checkpoint's hyperparameters, but the
        # data decide num_classes and image_size: a checkpoint can still miss the model built here.
        checkpoint, self.checkpoint = self.checkpoint, None  # handed to the run's restore below, then freed
        path = checkpoint_file(config.get("ckpt_path"))
        if path is not None:
            if checkpoint is None or not checkpoint.holds(path):
                checkpoint = ReadCheckpoint.of(path)
            check_fits(checkpoint, self.model)
        self.trainer.callbacks += ema_callbacks(self.subcommand, config["ema"]["decay"], checkpoint)
        use_run_logger(self.trainer, self.subcommand, config)
        if isinstance(self.model, ImageClassifier):
            self.model.check_image_size(self.datamodule.image_size)
        if self.subcommand == "predict":
            prepare_predictions(self.trainer, self.model, self.datamodule, config.get("ckpt_path"))
        if self.subcommand == "fit":  # a bad optimizer or scheduler value, refused before the run makes its folder
            self.model.configure_optimizers()
        # A kill during a save leaves the previous checkpoint, never half of a new one.
        if type(self.trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            self.trainer.strategy.checkpoint_io = AtomicCheckpointIO(handed=checkpoint)
        if self.on_start is not None:
            self.on_start(self.trainer)

    before_fit = before_validate = before_test = before_predict = before_run


def build_cli(args: list[str] | None = None, run: bool = True, on_start: Callable[[Trainer], None] | None = None) -> BamCLI:
    """The ``bam`` command's CLI; ``run=False`` only parses and instantiates (for tests and notebooks).

    ``on_start`` is handed the trainer once a run starts (``exits.main``).
    """
    model_class, datamodule_class = task_of(sys.argv[1:] if args is None else args)
    return BamCLI(
        model_class,
        datamodule_class,
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
        on_start=on_start,
    )
