"""``bam export`` on checkpoints fitted here: the files it writes run with any batch size and give the checkpoint's logits."""

import sys

import lightning.pytorch as L
import onnxruntime
import pytest
import torch
from torch import nn

from bam_lightning.cli import main
from bam_lightning.tasks.classification import ImageClassifier
from bam_lightning.tasks.detection import ObjectDetector
from bam_lightning.tools import export

from helpers.classifier import fit_checkpoint
from helpers.command import bam


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    (root / "notes.ckpt").write_text("not a checkpoint")
    detector = ObjectDetector("ssd300", "mobilenet_v1", 2, ["a", "b"], backbone_kwargs={"width_mult": 0.25})
    lightning = {"pytorch-lightning_version": L.__version__}  # what Lightning writes and load_from_checkpoint reads
    detected = {"state_dict": detector.state_dict(), "hyper_parameters": dict(detector.hparams), **lightning}
    torch.save(detected, root / "detector.ckpt")
    wrn = {"backbone": "wrn", "num_classes": 4, "backbone_kwargs": {"depth": 10, "widen_factor": 1}}
    torch.save({"state_dict": {}, "hyper_parameters": wrn, **lightning}, root / "no_weights.ckpt")  # weights that do not fit
    return {"root": root, **{name: fit_checkpoint(root / f"{name}.ckpt", name) for name in ("bam", "bam_official")}}


def only_line(args, capsys):
    """``bam ARGS`` in this process: exit status 2 and nothing on stderr but the one ``bam: error:`` line, returned."""
    with pytest.raises(SystemExit) as exit:
        main(args)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and line.startswith("bam: error:"), line
    return line


def eager_logits(ckpt_path, images):
    with torch.no_grad():
        return ImageClassifier.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True).eval()(images)


def run_onnx(path, images):
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    assert given.name == "images" and given.shape[1:] == [3, 32, 32] and isinstance(given.shape[0], str)  # a named, free batch
    return torch.from_numpy(session.run(None, {"images": images.numpy()})[0])


def run_torchscript(path, images):
    with export.quiet_torchscript(), torch.no_grad():
        return torch.jit.load(path)(images)


@pytest.mark.parametrize(
    "attention,kind,out",
    [("bam", "onnx", "shipped/model.onnx"), ("bam", "torchscript", None), ("bam_official", "torchscript", None)],
)
def test_the_file_gives_the_checkpoints_logits_for_any_batch_size(files, attention, kind, out):
    ckpt = files[attention]
    args = ["export", "--ckpt_path", str(ckpt), "--format", kind] + (["--out", out] if out else [])
    result = bam(*args, cwd=files["root"])
    path = files["root"] / out if out else ckpt.with_suffix(".pt")  # the default: beside the checkpoint
    checked, wrote = result.stdout.strip().splitlines()
    assert "checked on 3 random 32x32 images (exported with a batch of 2): max |difference|" in checked
    assert float(checked.split("logits ")[1].split(",")[0]) <= 1e-4
    assert checked.endswith("tolerance 1e-04 + 1e-04 x the image's largest |logit|")
    assert wrote == f"wrote {out or path}" and path.is_file()
    images = torch.randn(5, 3, 32, 32)
    run = run_onnx if kind == "onnx" else run_torchscript
    torch.testing.assert_close(run(path, images), eager_logits(ckpt, images), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--ckpt_path", "bam.ckpt", "--format", "tflite"], "format: 'tflite' is not one of onnx, torchscript"),
        (["--ckpt_path", "nope.ckpt"], "no checkpoint file at nope.ckpt"),
        (["--ckpt_path", "notes.ckpt"], "notes.ckpt is not a readable checkpoint"),
        (["--ckpt_path", "detector.ckpt"], "object detector's checkpoint (ssd300), not a classifier's: bam export takes"),
        (["--ckpt_path", "no_weights.ckpt"], "no_weights.ckpt is not a checkpoint of bam fit (RuntimeError: "),
        (["--ckpt_path", "bam.ckpt", "--out", "notes.ckpt/model.onnx"], "--out's folder notes.ckpt is a file"),
        (["--ckpt_path", "bam.ckpt", "--out", "model.pt"], "--out model.pt does not fit --format onnx"),
        (["--ckpt_path", "bam.ckpt", "--format", "torchscript", "--out", "m.onnx"], "give a file ending in .pt or .ts"),
    ],
    ids=["format", "missing", "text", "detector", "no_weights", "out_under_a_file", "onnx_suffix", "torchscript_suffix"],
)
def test_mistakes_end_in_one_line(files, args, message):
    result = bam("export", *args, cwd=files["root"], check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("bam: error:") and message in line, line


def test_onnx_without_the_export_extra_says_what_to_install(files, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what a failed import leaves: import raises ImportError
    last = only_line(["export", "--ckpt_path", str(files["bam"]), "--out", str(files["root"] / "none.onnx")], capsys)
    assert "needs the export extra (import of onnxruntime halted; None in sys.modules)" in last
    assert last.endswith(': pip install "bam_lightning[export]"')
    assert not (files["root"] / "none.onnx").exists()


def test_a_file_off_the_checkpoints_logits_is_refused_and_removed(files, monkeypatch, capsys):
    write, exported = export.write, []

    def write_then_retrain(network, *args):  # the file holds the weights as they were, the reference changes
        fused = [module.fused for module in network.modules() if hasattr(module, "fused")]
        assert fused and not any(fused)  # both BAMs exported in their plain form
        write(network, *args)
        exported.append(network)
        with torch.no_grad():
            network.fc.bias.add_(0.01)

    monkeypatch.setattr(export, "write", write_then_retrain)
    out = files["root"] / "off.pt"
    last = only_line(["export", "--ckpt_path", str(files["bam"]), "--format", "torchscript", "--out", str(out)], capsys)
    assert "the exported torchscript file differs from the checkpoint's logits (max |difference| 0.01" in last
    assert last.endswith("tolerance 1e-04 + 1e-04 x the image's largest |logit|); it was removed") and not out.exists()
    assert all(module.fused for module in exported[0].modules() if hasattr(module, "fused"))  # compared with as trained


class DataDependent(nn.Module):
    """A network whose path depends on its input's values: torch.export, behind the ONNX exporter, refuses it."""

    def forward(self, x):
        return x.mean((2, 3)) if x.sum() > 0 else x.amax((2, 3))


def test_an_exporter_failure_is_one_line_naming_the_other_format(files, monkeypatch, capsys):
    load = export.load_checkpoint_classifier

    def load_data_dependent(*args):
        classifier = load(*args)
        classifier.model = DataDependent().eval()
        return classifier

    monkeypatch.setattr(export, "load_checkpoint_classifier", load_data_dependent)
    out = files["root"] / "data_dependent.onnx"
    last = only_line(["export", "--ckpt_path", str(files["bam"]), "--out", str(out)], capsys)
    assert last.startswith("bam: error: the onnx exporter cannot write this network (GuardOnDataDependentSymNode: ")
    assert last.endswith("): try --format torchscript") and not out.exists()
