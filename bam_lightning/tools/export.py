"""``bam export``: a trained classifier as one file that runs without this package, in ONNX or TorchScript.

The file holds the checkpoint's network (``ImageClassifier.model``, with or without BAM) in eval
mode: it takes a batch of normalised RGB images ``(N, 3, S, S)``, S being the size the model was
trained at, and gives ``(N, classes)`` logits. N is free: the network is exported with a batch of
``EXPORT_BATCH`` and checked with ``CHECK_BATCH`` images, so a file that learnt its batch size
from the example is caught before anyone ships it.

That check compares the written file, run as a user runs it (onnxruntime on the CPU, or
``torch.jit.load``), with the checkpoint's own eager network on the same random batch; a file
off by more than float32 rounding is refused and removed.

    bam export --ckpt_path runs/.../last.ckpt --format onnx --out model.onnx
    bam export --ckpt_path runs/.../last.ckpt --format torchscript --out model.pt
"""

import io
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Literal

import torch
from jsonargparse import ArgumentParser
from torch import Tensor, nn

from ..errors import InputError, check_output_folder, one_line
from ..nn import BAMS, attention_blocks
from . import parse, tool_parser
from .attention import input_size, load_checkpoint_classifier

FORMATS = {"onnx": (".onnx",), "torchscript": (".pt", ".ts")}  # the suffixes --out may end in, the first the default's
Format = Literal[tuple(FORMATS)]  # type: ignore[valid-type]
EXPORT_BATCH, CHECK_BATCH = 2, 3
# torch.testing's float32 tolerances, the relative one taken of each image's largest |logit|, not of each logit: a logit's
# rounding error grows with the sums behind it, so a logit near 0 of a deep network is off by as much as the large ones
# (a random ResNet-50's reached 0.7 of torch.testing's element-wise tolerance; 0.005 of this one).
ATOL = RTOL = 1e-4
TOLERANCE = f"{ATOL:.0e} + {RTOL:.0e} x the image's largest |logit|"
EXTRA = 'pip install "bam_lightning[export]"'


@contextmanager
def plain_bam(network: nn.Module) -> Iterator[None]:
    """Every BAM of ``network`` (``nn.BAMS``) in its plain form, operator by operator, for the export.

    The fused form is a custom ``torch.autograd.Function`` (``nn/fused.py``), which exporters do not
    promise to trace: ``torch.jit.trace`` records it as a call into Python that ``torch.jit.save``
    cannot write, and its backward, the reason it exists, means nothing to an inference file.
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


@contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Without torch's warnings that ``torch.jit`` is deprecated: they are about the format the user chose, not the model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        yield


def check_extra(kind: str) -> None:
    """Refuse, before the export, an ONNX file without the packages that write (onnx, onnxscript) and check it (onnxruntime).

    They are an extra, imported here and not with the module: ``bam`` and TorchScript work without them.
    """
    if kind != "onnx":
        return
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise InputError(f"--format onnx needs the export extra ({one_line(error)}): {EXTRA}") from None


def write(network: nn.Module, kind: str, size: int, out: Path) -> None:
    """``network`` (in eval mode) to ``out``, for a user who feeds it batches of any size.

    ONNX's batch dimension is declared free (the exporter specialises every size it is not told
    about); a TorchScript trace keeps the sizes it reads from its input as operations, which
    ``check_exported`` tries with another batch. ONNX's input and output get names to feed and read.
    """
    example = torch.randn(EXPORT_BATCH, 3, size, size)
    if kind == "onnx":
        torch.onnx.export(
            network,
            (example,),
            out,
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            input_names=["images"],
            output_names=["logits"],
            external_data=False,  # one file to ship; protobuf caps it at 2 GB, far above this package's own networks
            verbose=False,
        )
    else:
        with quiet_torchscript(), torch.no_grad():
            torch.jit.save(torch.jit.trace(network, example), out)


def run_exported(path: Path, kind: str, images: Tensor) -> Tensor:
    """The logits of the file at ``path`` for ``images``, run as its user runs it."""
    if kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: images.numpy()})[0])
    with quiet_torchscript(), torch.no_grad():
        return torch.jit.load(path, map_location="cpu")(images)


def check_exported(path: Path, kind: str, classifier: nn.Module, size: int) -> float:
    """The largest absolute difference between the file's and ``classifier``'s logits on a random batch.

    A file that fails on it, or differs by more than ``TOLERANCE``, is removed and refused.
    """
    images = torch.randn(CHECK_BATCH, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = classifier(images)
    try:
        exported = run_exported(path, kind, images)
    except Exception as error:  # onnxruntime's and TorchScript's errors share no base class
        path.unlink()
        raise InputError(f"the exported {kind} file fails on {CHECK_BATCH} images ({one_line(error)}); it was removed") from None
    if exported.shape != expected.shape:
        path.unlink()
        shapes = f"{tuple(exported.shape)}, not {tuple(expected.shape)}"
        raise InputError(f"the exported {kind} file gives logits of shape {shapes}; it was removed")
    difference = (exported - expected).abs()
    if not (difference <= ATOL + RTOL * expected.abs().amax(dim=1, keepdim=True)).all():  # NaN fails too
        path.unlink()
        raise InputError(
            f"the exported {kind} file differs from the checkpoint's logits (max |difference| {difference.max().item():.3g},"
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


def build_parser() -> ArgumentParser:
    parser = tool_parser("bam export", "Write a trained classifier's network as an ONNX or TorchScript file.")
    parser.add_argument(
        "--ckpt_path", type=str, required=True, help="checkpoint written by bam fit (a classifier, with or without BAM)"
    )
    parser.add_argument("--format", type=Format, default="onnx", help="the file's format")
    parser.add_argument(
        "--out", type=str | None, help="the file to write; unset: the checkpoint's name with .onnx or .pt, beside it"
    )
    return parser


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args)
    suffixes = FORMATS[options.format]
    out = Path(options.out) if options.out else Path(options.ckpt_path).with_suffix(suffixes[0])
    if out.suffix.lower() not in suffixes:
        raise InputError(f"--out {out} does not fit --format {options.format}: give a file ending in {' or '.join(suffixes)}")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give the file to write")
    check_output_folder(out.parent, "--out's folder")
    classifier = load_checkpoint_classifier(options.ckpt_path, "export")
    check_extra(options.format)  # after the checkpoint: onnxscript's import alone takes a second
    size = input_size(classifier)
    out.parent.mkdir(parents=True, exist_ok=True)
    said = io.StringIO()
    try:
        with plain_bam(classifier.model), redirect_stdout(said), redirect_stderr(said):
            write(classifier.model, options.format, size, out)
    except Exception as error:  # the exporters' failures share no base class
        out.unlink(missing_ok=True)
        other = next(name for name in FORMATS if name != options.format)
        raise InputError(
            f"the {options.format} exporter cannot write this network ({exporter_reason(error)}): try --format {other}"
        ) from None
    sys.stderr.write(said.getvalue())  # its warnings, such as TorchScript's about what tracing fixed
    difference = check_exported(out, options.format, classifier, size)
    print(
        f"checked on {CHECK_BATCH} random {size}x{size} images (exported with a batch of {EXPORT_BATCH}): max |difference| from"
        f" the checkpoint's logits {difference:.3g}, tolerance {TOLERANCE}"
    )
    print(f"wrote {out}")
