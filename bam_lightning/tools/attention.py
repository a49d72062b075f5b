"""``bam attention``: where each BAM of a trained classifier looks, on your own images.

``--method gradcam`` (``gradcam++``, ``eigencam``) draws class activation maps instead, in the
same layout, on each BAM's output and the last stage (``cams``).

Writes one figure like the paper's hierarchical-attention figure: a row per image, the
image, then each BAM's spatial attention map over it (red = most attended), earliest BAM
first, each titled with its module, its map size and the range of its values in that
image (the colours stretch each map to its own range).

Images are resized (shorter side) and centre-cropped to the model's input size, as
evaluation crops them, and normalised as the data the model learnt from. A checkpoint
does not record its dataset, but ``bam fit`` writes the run's ``config.yaml`` beside its
``checkpoints/`` folder: the statistics are those of the datamodule named there. Without
that file the rule goes by the size the model was trained at: 64 pixels or more get
ImageNet's statistics, smaller inputs CIFAR-100's (the paper's two benchmarks; CIFAR-10's
differ by less than 0.02). The image panels show the same crop at the panel's
resolution, so a 32-pixel model's maps are drawn over a sharp picture.
"""

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from jsonargparse import ArgumentParser
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor
from torchvision import transforms as T

from ..checkpoints import read_checkpoint
from ..data import CIFAR100DataModule, ImageNetDataModule
from ..data.base import Statistics, input_statistics
from ..engine.ema import holds_ema
from ..errors import InputError, check_output_folder, one_line
from ..models import get_model_entry
from ..models.attention_maps import capture_attention, overlay, rescale
from ..models.hub import is_source, read_config
from ..models.pretrained import model_of
from ..nn import BAMS, attention_blocks
from ..tasks.classification import ImageClassifier
from . import parse, tool_parser
from .cams import METHODS, class_maps

DPI = 100
Method = Literal[("bam", *METHODS)]  # type: ignore[valid-type]  # BAM's own maps, or a class activation map


def load_checkpoint_classifier(ckpt_path: str | Path, command: str) -> ImageClassifier:
    """The classifier of a ``bam fit`` checkpoint, with or without BAM, on the CPU in eval mode, read without unpickling code.

    A detector's checkpoint is refused by its hyperparameters, before it is built: ``load_from_checkpoint``
    passes ``ImageClassifier`` only the ones it takes, so it would build the detector's backbone as a
    classifier and fail on its weights. ``command`` names the ``bam`` command in that refusal.
    """
    if is_source(str(ckpt_path)):
        return folder_classifier(str(ckpt_path))
    path = Path(ckpt_path)
    # A missing, code-carrying or unreadable file: the one-line refusals every command gives.
    content = read_checkpoint(path)
    trained = content.get("hyper_parameters", {})
    if "detector" in trained:
        raise InputError(
            f"{path} is an object detector's checkpoint ({trained['detector']}), not a classifier's:"
            f" bam {command} takes classification networks (bam detect takes detectors)"
        )
    try:
        classifier = ImageClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (KeyError, TypeError, RuntimeError) as error:  # a readable file, but not what bam fit writes
        raise InputError(f"{path} is not a checkpoint of bam fit ({type(error).__name__}: {one_line(error)})") from error
    if holds_ema(content):
        print(f"bam {command}: {path} holds the EMA of the weights: using the average")
    return classifier.eval()


def folder_classifier(source: str) -> ImageClassifier:
    """The classifier of a folder of weights (``local-dir:DIR``, ``hf-hub:owner/name``), on the CPU in eval mode: its network
    as the folder's ``config.json`` describes it, its class names and input side, its weights."""
    config = read_config(source)
    name, args = model_of(config, source)
    size = config.get("pretrained_cfg", {}).get("input_size", [None])[-1]
    labels = config.get("label_names")
    return ImageClassifier(
        name, config["num_classes"], size, pretrained=source, class_names=labels if isinstance(labels, list) else None, **args
    ).eval()


def load_classifier(ckpt_path: str | Path) -> ImageClassifier:
    """The classifier of a ``bam fit`` checkpoint, on the CPU in eval mode, read without unpickling code; one with BAM."""
    classifier = load_checkpoint_classifier(ckpt_path, "attention")
    if not attention_blocks(classifier.model, BAMS):
        raise InputError(
            f"this checkpoint's model has no BAM (attention: {classifier.hparams.attention}): train with model.attention bam"
        )
    return classifier


def input_size(classifier: ImageClassifier) -> int:
    """The side the model was trained at: the datamodule's, else its backbone's registered size."""
    return classifier.hparams.get("image_size") or get_model_entry(classifier.hparams.backbone).input_size


def fallback_datamodule(size: int) -> ImageNetDataModule | CIFAR100DataModule:
    """The data a model trained on inputs of ``size`` pixels is taken to come from, when its own is unknown (see the module's
    docstring): its transforms, built without reading any data, say how images are prepared for the model."""
    return ImageNetDataModule(image_size=size) if size >= 64 else CIFAR100DataModule()


def normalization(size: int) -> Statistics:
    """Mean and std for a model trained on inputs of ``size`` pixels, when its data is unknown (see the module's docstring)."""
    statistics = input_statistics(fallback_datamodule(size))
    assert statistics is not None  # both datamodules normalise
    return statistics


def run_datamodule(ckpt_path: str | Path) -> tuple[Any, str] | None:
    """The datamodule (and its class name) of the ``config.yaml`` of the run that wrote ``ckpt_path``, or None without one.

    Constructing a datamodule reads no data: it only builds its transforms, which say how the model saw its images.
    """
    config = Path(ckpt_path).parent.parent / "config.yaml"
    data = (yaml.safe_load(config.read_text()) or {}).get("data") if config.is_file() else None
    if not isinstance(data, dict) or "class_path" not in data:
        return None
    module, _, name = data["class_path"].rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)(**(data.get("init_args") or {})), name
    except (ImportError, AttributeError, TypeError, InputError) as error:
        raise InputError(f"{config} names data {data['class_path']} that cannot be built ({one_line(error)})") from error


def run_statistics(ckpt_path: str | Path) -> tuple[Statistics, str] | None:
    """Mean, std and datamodule name from the ``config.yaml`` of the run that wrote ``ckpt_path``, or None without one.

    For a folder of weights (``local-dir:``, ``hf-hub:``), those its ``config.json`` records.
    """
    if is_source(str(ckpt_path)):
        cfg = read_config(str(ckpt_path)).get("pretrained_cfg", {})
        return ((cfg["mean"], cfg["std"]), f"{ckpt_path}'s config.json") if "mean" in cfg and "std" in cfg else None
    found = run_datamodule(ckpt_path)
    statistics = None if found is None else input_statistics(found[0])
    return None if statistics is None else (statistics, found[1])


def read_image(path: str | Path) -> Image.Image:
    if Path(path).is_dir():
        raise InputError(f"--image {path} is a folder: give an image file (repeat --image for more)")
    if not Path(path).is_file():
        raise InputError(f"--image {path} is missing: give the path of an image file")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as error:  # PIL's UnidentifiedImageError included
        raise InputError(f"cannot read image {path} ({one_line(error)})") from error


def square_crop(image: Image.Image, size: int) -> Tensor:
    """(3, size, size) in [0, 1]: the centred square of ``image``, ``size`` pixels on a side."""
    return T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor()])(image.convert("RGB"))


def attention_figure(
    classifier: ImageClassifier,
    images: Sequence[tuple[str, Image.Image]],
    size: int | None = None,
    panel_px: int = 256,
    statistics: Statistics | None = None,
    method: Method = "bam",
) -> Figure:
    """One row per ``(title, image)``, one column for the image and one per BAM, each panel ``panel_px`` square.

    ``size`` overrides the input size; ``statistics`` (mean, std) the normalisation, by
    default ``normalization`` of the size the model was trained at. Saved at the figure's
    dpi, the picture is exactly rows x panel_px high and (1 + BAMs) x panel_px wide.
    """
    statistics = statistics or normalization(input_size(classifier))
    size = size or input_size(classifier)
    inputs = T.Normalize(*statistics)(torch.stack([square_crop(image, size) for _, image in images]))
    inputs = inputs.to(classifier.device)
    if method == "bam":
        maps = [(m.name, m.spatial) for m in capture_attention(classifier.model, inputs)]
    else:
        maps = class_maps(classifier.model, inputs, method)
    side = round(panel_px * 0.8)  # the rest of the panel holds the title
    shown = torch.stack([square_crop(image, side) for _, image in images])
    panels = [shown] + [overlay(shown, rescale(spatial)) for _, spatial in maps]
    rows, cols = len(images), len(panels)
    figure = Figure(figsize=(cols * panel_px / DPI, rows * panel_px / DPI), dpi=DPI)
    for row, (title, _) in enumerate(images):
        titles = [f"{title}\n(input {size} px)"] + [
            f"{name} {spatial.shape[1]}x{spatial.shape[2]}\nrange {spatial[row].min():.2f}-{spatial[row].max():.2f}"
            for name, spatial in maps
        ]
        for col, (panel, text) in enumerate(zip(panels, titles, strict=True)):
            ax = figure.add_axes(((col + 0.1) / cols, (rows - row - 1 + 0.02) / rows, 0.8 / cols, 0.8 / rows))
            ax.imshow(panel[row].permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(text, fontsize=panel_px / 32, pad=2)
            ax.set_axis_off()
    return figure


def build_parser() -> ArgumentParser:
    parser = tool_parser("bam attention", "Draw each BAM's spatial attention map over images, one row per image, into one PNG.")
    parser.add_argument(
        "--ckpt_path",
        type=str,
        required=True,
        help="checkpoint written by bam fit (a model with BAM), or local-dir:DIR / hf-hub:owner/name",
    )
    parser.add_argument("--image", type=str, action="append", required=True, help="an image file; repeat for more rows")
    parser.add_argument("--out", type=str, default="attention_maps.png", help="the PNG to write")
    parser.add_argument("--size", type=int | None, help="input side in pixels; unset: the model's")
    parser.add_argument("--panel_px", type=int, default=256, help="side of each panel in pixels")
    parser.add_argument("--method", type=Method, default="bam", help="BAM's own maps, or class activation maps (grad-cam extra)")
    return parser


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args)
    if (options.size is not None and options.size < 1) or options.panel_px < 32:
        raise InputError(f"--size must be positive and --panel_px 32 or more, got {options.size} and {options.panel_px}")
    check_output_folder(Path(options.out).parent, "--out's folder")
    bam = options.method == "bam"
    classifier = load_classifier(options.ckpt_path) if bam else load_checkpoint_classifier(options.ckpt_path, "attention")
    images = [(Path(path).name, read_image(path)) for path in options.image]
    found = run_statistics(options.ckpt_path)
    if found:
        statistics, source = found[0], f"{found[1]}'s, from the run's config.yaml"
    else:
        size = input_size(classifier)
        statistics, source = normalization(size), f"no config.yaml beside the run's checkpoints/: the rule for {size} px"
    print(f"normalising with mean {tuple(statistics[0])} and std {tuple(statistics[1])} ({source})")
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    attention_figure(classifier, images, options.size, options.panel_px, statistics, options.method).savefig(out, dpi=DPI)
    print(f"wrote {out}")
