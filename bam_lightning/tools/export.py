"""``bam export``: a trained classifier's network as a file that runs without this package, or as a folder of weights.

``--format onnx`` and ``--format pt2`` write one file holding the checkpoint's network
(``ImageClassifier.model``, with or without BAM) in eval mode: it takes a batch of normalised RGB
images ``(N, 3, S, S)``, S being the size the model was trained at, and gives ``(N, classes)``
logits. N is free: the network is exported with a batch of ``EXPORT_BATCH`` and checked with
``CHECK_BATCH`` images, so a file that learnt its batch size from the example is caught before
anyone ships it. ONNX runs in onnxruntime; pt2 is ``torch.export``'s ExportedProgram
(``torch.export.load(path).module()``), which needs torch but neither this package nor its code.

``--format hf`` writes the folder timm's ``save_for_hf`` writes (``models.hub``, ``hub_folder``):
weights and the config that rebuilds the network, for the Hugging Face Hub, timm and
``create_model(pretrained=...)``. ``--official_checkpoint`` takes the BAM paper's public
ResNet-50 checkpoint instead of one of ours.

That check compares what was written, run as a user runs it (onnxruntime on the CPU,
``torch.export.load``, the folder rebuilt by ``from_pretrained``), with the network that was
read on the same random batch; an export off by more than float32 rounding is refused and removed.

    bam export --ckpt_path runs/.../last.ckpt --format onnx --out model.onnx
    bam export --ckpt_path runs/.../last.ckpt --format pt2 --out model.pt2
    bam export --ckpt_path runs/.../last.ckpt --format hf --out my-model/
    bam export --official_checkpoint resnet50_bam.pth.tar --format hf --out resnet50_bam/
"""

import io
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Literal

import torch
from jsonargparse import ArgumentParser, Namespace
from torch import Tensor, nn

from ..checkpoints import read_checkpoint
from ..data import ImageNetDataModule
from ..engine.run_logs import run_of_checkpoint
from ..errors import InputError, check_output_folder, one_line
from ..models import from_official_checkpoint, from_pretrained, list_models
from ..models.hub import write_folder
from ..nn import BAMS, attention_blocks
from . import parse, tool_parser
from .attention import fallback_datamodule, input_size, load_checkpoint_classifier, run_datamodule
from .hub_folder import Exported, hub_config, model_card, run_recipe, run_results

FORMATS = {"onnx": (".onnx",), "pt2": (".pt2",), "hf": ("",)}  # the suffixes --out may end in, the first the default's
Format = Literal[tuple(FORMATS)]  # type: ignore[valid-type]
EXPORT_BATCH, CHECK_BATCH = 2, 3
# torch.testing's float32 tolerances, the relative one taken of each image's largest |logit|, not of each logit: a logit's
# rounding error grows with the sums behind it, so a logit near 0 of a deep network is off by as much as the large ones
# (a random ResNet-50's reached 0.7 of torch.testing's element-wise tolerance; 0.005 of this one).
ATOL = RTOL = 1e-4
TOLERANCE = f"{ATOL:.0e} + {RTOL:.0e} x the image's largest |logit|"
EXTRA = 'pip install "bam_lightning[export]"'
OFFICIAL = ("resnet50", 1000)  # the one network the public code published weights of, and its ImageNet classes
OFFICIAL_ORIGIN = (
    "ResNet-50 with BAM in the form of the paper's public code (`bam_official`), trained on ImageNet-1k by its authors"
    " (github.com/Jongchan/attention-module), converted from their checkpoint by `bam export --official_checkpoint`."
)


@contextmanager
def plain_bam(network: nn.Module) -> Iterator[None]:
    """Every BAM of ``network`` (``nn.BAMS``) in its plain form, operator by operator, for the export.

    The fused form is a custom ``torch.autograd.Function`` (``nn/fused.py``), which exporters do not
    promise to trace, and its backward, the reason it exists, means nothing to an inference file.
    The plain form is the same math in standard operators, which every exporter writes. The
    network gets its fused BAMs back after, so the check compares with the network as trained.
    """
    fused = {module: module.fused for _, module in attention_blocks(network, BAMS)}
    for module in fused:
        module.fused = False
    try:
        yield
    finally:
        for module, was in fused.items():
            module.fused = was


def check_extra(kind: str) -> None:
    """Refuse, before the export, an ONNX file without the packages that write (onnx, onnxscript) and check it (onnxruntime).

    They are an extra, imported here and not with the module: ``bam``, pt2 and hf work without them.
    """
    if kind != "onnx":
        return
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise InputError(f"--format onnx needs the export extra ({one_line(error)}): {EXTRA}") from None


def write(exported: Exported, kind: str, out: Path, license: str) -> None:
    """``exported.network`` (in eval mode) to ``out``, for a user who feeds it batches of any size.

    ONNX's and pt2's batch dimension is declared free (``torch.export`` specialises every size it
    is not told about); ONNX's input and output get names to feed and read. A folder holds the
    weights, which take any batch.
    """
    if kind == "hf":
        config = hub_config(exported)
        write_folder(out, exported.network.state_dict(), config, model_card(exported, config, license))
        return
    example = torch.randn(EXPORT_BATCH, 3, exported.size, exported.size)
    batch = ({0: torch.export.Dim("batch")},)
    if kind == "onnx":
        torch.onnx.export(
            exported.network,
            (example,),
            out,
            dynamo=True,
            dynamic_shapes=batch,
            input_names=["images"],
            output_names=["logits"],
            external_data=False,  # one file to ship; protobuf caps it at 2 GB, far above this package's own networks
            verbose=False,
        )
    else:
        torch.export.save(torch.export.export(exported.network, (example,), dynamic_shapes=batch), out)


def run_exported(path: Path, kind: str, images: Tensor) -> Tensor:
    """The logits of what was written at ``path`` for ``images``, run as its user runs it."""
    if kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: images.numpy()})[0])
    with torch.no_grad():
        network = from_pretrained(f"local-dir:{path}") if kind == "hf" else torch.export.load(path).module()
        return network(images)


def remove(path: Path) -> None:
    """Take back what was written: a file, or a folder (``--format hf``)."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def check_exported(path: Path, kind: str, network: nn.Module, size: int) -> float:
    """The largest absolute difference between the export's and ``network``'s logits on a random batch.

    An export that fails on it, or differs by more than ``TOLERANCE``, is removed and refused.
    """
    images = torch.randn(CHECK_BATCH, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = network(images)
    what = "folder" if kind == "hf" else "file"
    try:
        exported = run_exported(path, kind, images)
    except Exception as error:  # onnxruntime's, torch.export's and the rebuild's errors share no base class
        remove(path)
        raise InputError(
            f"the exported {kind} {what} fails on {CHECK_BATCH} images ({one_line(error)}); it was removed"
        ) from None
    if exported.shape != expected.shape:
        remove(path)
        shapes = f"{tuple(exported.shape)}, not {tuple(expected.shape)}"
        raise InputError(f"the exported {kind} {what} gives logits of shape {shapes}; it was removed")
    difference = (exported - expected).abs()
    if not (difference <= ATOL + RTOL * expected.abs().amax(dim=1, keepdim=True)).all():  # NaN fails too
        remove(path)
        raise InputError(
            f"the exported {kind} {what} differs from the checkpoint's logits (max |difference| {difference.max().item():.3g},"
            f" tolerance {TOLERANCE}); it was removed"
        )
    return difference.max().item()


def exporter_reason(error: Exception) -> str:
    """The first line of an exporter's error, which is printed alone: what went wrong, not torch's advice.

    The exporters print graphs and logs as they fail (kept from the terminal by ``main``), and
    ``torch.onnx`` opens its error with the next steps to try and puts the cause under an
    ``## Exception summary`` heading, in colour.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    _, heading, summary = text.partition("## Exception summary")
    lines = [line.strip() for line in (summary if heading else text).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", lines[0]) if heading else f"{type(error).__name__}: {lines[0]}"


def from_ours(ckpt_path: str, kind: str) -> Exported:
    """The network of a ``bam fit`` checkpoint, and for a folder what its run says about it."""
    classifier = load_checkpoint_classifier(ckpt_path, "export")
    trained, size = classifier.hparams, input_size(classifier)
    if kind == "hf" and trained.backbone not in list_models():
        raise InputError(
            f"--format hf writes networks this package builds by name, not {trained.backbone}: export it with --format pt2"
        )
    found = run_datamodule(ckpt_path)
    run = run_of_checkpoint(ckpt_path)
    args = ("attention", "attention_kwargs", "placement", "backbone_kwargs")
    return Exported(
        classifier.model,
        trained.backbone,
        {key: trained.get(key) for key in args},
        trained.num_classes,
        size,
        found[0] if found else fallback_datamodule(size),
        trained.get("class_names"),
        f"{trained.backbone} with attention {trained.attention}, trained with bam-lightning (`bam fit`).",
        run_recipe(run),
        run_results(run),
    )


def from_official(path: str) -> Exported:
    """The network of the public code's checkpoint (``from_official_checkpoint``), with its ImageNet preprocessing:
    resize 256, centre crop 224, bilinear (ImageNetDataModule's defaults are that code's)."""
    name, classes = OFFICIAL
    network = from_official_checkpoint(path, name, classes)
    best = read_checkpoint(path).get("best_prec1")
    scored = f" Its checkpoint records a best top-1 of {float(best):.2f} % on ImageNet val." if best is not None else ""
    return Exported(
        network, name, {"attention": "bam_official"}, classes, 224, ImageNetDataModule(), origin=OFFICIAL_ORIGIN + scored
    )


def build_parser() -> ArgumentParser:
    parser = tool_parser(
        "bam export", "Write a trained classifier's network as an ONNX or torch.export (pt2) file, or a Hugging Face folder."
    )
    parser.add_argument("--ckpt_path", type=str | None, help="checkpoint written by bam fit (a classifier, with or without BAM)")
    parser.add_argument(
        "--official_checkpoint", type=str | None, help="instead: the BAM paper's public ResNet-50+BAM checkpoint (.pth.tar)"
    )
    parser.add_argument("--format", type=Format, default="onnx", help="the file's format, or hf: a Hugging Face Hub folder")
    parser.add_argument(
        "--out",
        type=str | None,
        help="the file (or, for hf, the new folder) to write; unset: the checkpoint's name with .onnx, .pt2 or _hf, beside it",
    )
    parser.add_argument("--license", type=str, default="mit", help="hf: the license the model card declares")
    return parser


def output(options: Namespace) -> Path:
    """Where to write, refused before any work if it cannot be: a file of the format's suffix, or a new (or empty) folder."""
    kind, given = options.format, options.out
    source = Path(options.ckpt_path or options.official_checkpoint)
    if kind == "hf":
        out = Path(given) if given else source.with_name(source.name.split(".")[0] + "_hf")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError(f"--out {out} exists and is not an empty folder: give a new folder (or remove that one)")
    else:
        suffixes = FORMATS[kind]
        out = Path(given) if given else source.with_suffix(suffixes[0])
        if out.suffix.lower() not in suffixes:
            raise InputError(f"--out {out} does not fit --format {kind}: give a file ending in {' or '.join(suffixes)}")
        if out.is_dir():
            raise InputError(f"--out {out} is a folder: give the file to write")
    check_output_folder(out.parent, "--out's folder")
    return out


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args)
    if (options.ckpt_path is None) == (options.official_checkpoint is None):
        raise InputError("give --ckpt_path (a checkpoint of bam fit) or --official_checkpoint (the public code's), one of them")
    out = output(options)
    if options.ckpt_path is not None:
        exported = from_ours(options.ckpt_path, options.format)
    else:
        exported = from_official(options.official_checkpoint)
    check_extra(options.format)  # after the checkpoint: onnxscript's import alone takes a second
    out.parent.mkdir(parents=True, exist_ok=True)
    said = io.StringIO()
    try:
        with plain_bam(exported.network), redirect_stdout(said), redirect_stderr(said):
            write(exported, options.format, out, options.license)
    except Exception as error:  # the exporters' failures share no base class
        if options.format != "hf":
            out.unlink(missing_ok=True)  # a folder is written whole or not at all (write_folder)
        other = "hf (weights and config, for this package and timm)" if options.format != "hf" else "pt2"
        raise InputError(
            f"the {options.format} exporter cannot write this network ({exporter_reason(error)}): try --format {other}"
        ) from None
    sys.stderr.write(said.getvalue())  # the exporters' warnings
    difference = check_exported(out, options.format, exported.network, exported.size)
    size = exported.size
    print(
        f"checked on {CHECK_BATCH} random {size}x{size} images (exported with a batch of {EXPORT_BATCH}): max |difference| from"
        f" the checkpoint's logits {difference:.3g}, tolerance {TOLERANCE}"
    )
    print(f"wrote {out}")
