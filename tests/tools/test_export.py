"""``bam export`` on checkpoints fitted here: the files it writes run with any batch size and give the checkpoint's logits;
the folders it writes rebuild the network in this package and in timm, from a folder or the Hugging Face cache."""

import json
import os
import shutil
import subprocess
import sys

import lightning.pytorch as L
import onnxruntime
import pytest
import torch
from torch import nn

from bam_lightning import create_model, from_official_checkpoint, from_pretrained
from bam_lightning.cli import main
from bam_lightning.errors import InputError
from bam_lightning.tasks.classification import ImageClassifier
from bam_lightning.tasks.detection import ObjectDetector
from bam_lightning.tools import export

from helpers.classifier import fit_checkpoint
from helpers.command import bam, one_line_error
from helpers.official import random_official_state_dict, save_like_the_public_script


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
    return {"root": root, "bam": fit_checkpoint(root / "bam.ckpt", "bam")}


@pytest.fixture(scope="module")
def folder(files):
    """``bam export --format hf`` of the BAM checkpoint, and copies of it spoilt one way each."""
    root = files["root"]
    result = bam("export", "--ckpt_path", "bam.ckpt", "--format", "hf", "--out", "hub/wrn_bam", cwd=root)
    out = root / "hub" / "wrn_bam"
    assert result.stdout.strip().splitlines()[-1] == "wrote hub/wrn_bam"
    config = json.loads((out / "config.json").read_text())
    for name, change in {
        "unknown": {"architecture": "wrn_bma"},
        "misfit": {"model_args": {**config["model_args"], "backbone_kwargs": {"depth": 10, "widen_factor": 2}}},
    }.items():
        shutil.copytree(out, root / name)
        (root / name / "config.json").write_text(json.dumps({**config, **change}))
    (root / "no_config").mkdir()
    shutil.copy(out / "model.safetensors", root / "no_config")
    return out


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


def run_pt2(path, images):
    with torch.no_grad():
        return torch.export.load(path).module()(images)


@pytest.mark.parametrize("kind,out", [("onnx", "shipped/model.onnx"), ("pt2", None)])
def test_the_file_gives_the_checkpoints_logits_for_any_batch_size(files, kind, out):
    ckpt = files["bam"]
    args = ["export", "--ckpt_path", str(ckpt), "--format", kind] + (["--out", out] if out else [])
    result = bam(*args, cwd=files["root"])
    path = files["root"] / out if out else ckpt.with_suffix(".pt2")  # the default: beside the checkpoint
    checked, wrote = result.stdout.strip().splitlines()
    assert "checked on 3 random 32x32 images (exported with a batch of 2): max |difference|" in checked
    assert float(checked.split("logits ")[1].split(",")[0]) <= 1e-4
    assert checked.endswith("tolerance 1e-04 + 1e-04 x the image's largest |logit|")
    assert wrote == f"wrote {out or path}" and path.is_file()
    run = run_onnx if kind == "onnx" else run_pt2
    for batch in (1, 5):  # neither the export's 2 nor the check's 3
        images = torch.randn(batch, 3, 32, 32)
        torch.testing.assert_close(run(path, images), eager_logits(ckpt, images), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--ckpt_path", "bam.ckpt", "--format", "tflite"], "format: 'tflite' is not one of onnx, pt2, hf"),
        (["--format", "hf"], "give --ckpt_path (a checkpoint of bam fit) or --official_checkpoint (the public code's), one"),
        (["--ckpt_path", "bam.ckpt", "--format", "hf", "--out", "."], "--out . exists and is not an empty folder: give a new"),
        (["--ckpt_path", "detector.ckpt", "--format", "hf"], "object detector's checkpoint (ssd300), not a classifier's"),
        (["--ckpt_path", "nope.ckpt"], "no checkpoint file at nope.ckpt"),
        (["--ckpt_path", "notes.ckpt"], "notes.ckpt is not a readable checkpoint"),
        (["--ckpt_path", "detector.ckpt"], "object detector's checkpoint (ssd300), not a classifier's: bam export takes"),
        (["--ckpt_path", "no_weights.ckpt"], "no_weights.ckpt is not a checkpoint of bam fit (RuntimeError: "),
        (["--ckpt_path", "bam.ckpt", "--out", "notes.ckpt/model.onnx"], "--out's folder notes.ckpt is a file"),
        (["--ckpt_path", "bam.ckpt", "--out", "model.pt"], "--out model.pt does not fit --format onnx"),
        (["--ckpt_path", "bam.ckpt", "--format", "pt2", "--out", "m.onnx"], "give a file ending in .pt2"),
    ],
    ids=[
        "format",
        "no_source",
        "hf_out_not_empty",
        "hf_of_a_detector",
        "missing",
        "text",
        "detector",
        "no_weights",
        "out_under_a_file",
        "onnx_suffix",
        "pt2_suffix",
    ],
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

    def write_then_retrain(exported_network, *args):  # the folder holds the weights as they were, the reference changes
        network = exported_network.network
        fused = [module.fused for module in network.modules() if hasattr(module, "fused")]
        assert fused and not any(fused)  # both BAMs exported in their plain form
        write(exported_network, *args)
        exported.append(network)
        with torch.no_grad():
            network.fc.bias.add_(0.01)

    monkeypatch.setattr(export, "write", write_then_retrain)
    out = files["root"] / "off"
    last = only_line(["export", "--ckpt_path", str(files["bam"]), "--format", "hf", "--out", str(out)], capsys)
    assert "the exported hf folder differs from the checkpoint's logits (max |difference| 0.01" in last
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
    assert last.endswith("): try --format hf (weights and config, for this package and timm)") and not out.exists()


def test_the_folder_rebuilds_the_checkpoints_network(files, folder):
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "wrn_bam" and config["num_classes"] == 4 and config["num_features"] == 64
    assert config["model_args"] == {
        "attention": "bam",
        "attention_kwargs": None,
        "placement": None,
        "backbone_kwargs": {"depth": 10, "widen_factor": 1},
    }
    cfg = config["pretrained_cfg"]
    assert cfg["input_size"] == [3, 32, 32] and cfg["crop_pct"] == 1.0 and cfg["interpolation"] == "bilinear"
    assert cfg["mean"] == [0.5071, 0.4865, 0.4409] and cfg["classifier"] == "fc"  # no config.yaml: CIFAR-100's, by size
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: timm\nlicense: mit\n") and "| wrn | bam  | 4 | 77,917 |" in card
    assert "@inproceedings{park2018bam," in card
    images = torch.randn(2, 3, 32, 32)
    expected = eager_logits(files["bam"], images)
    with torch.no_grad():
        torch.testing.assert_close(from_pretrained(f"local-dir:{folder}")(images), expected)
        model = create_model("wrn", 4, depth=10, widen_factor=1, pretrained=f"local-dir:{folder}").eval()
        torch.testing.assert_close(model(images), expected)
    # Fine-tuning on 7 classes: every weight but the classifier's, which starts fresh; a checkpoint records no source
    tuned = ImageClassifier("wrn", 7, backbone_kwargs={"depth": 10, "widen_factor": 1}, pretrained=f"local-dir:{folder}")
    torch.testing.assert_close(tuned.model.conv1.weight, model.conv1.weight)
    assert tuned.model.fc.weight.shape == (7, 64)
    with pytest.raises(InputError, match="pretrained 'bam.ckpt' names no weights: give local-dir:... or hf-hub:..."):
        create_model("wrn", 4, depth=10, widen_factor=1, pretrained="bam.ckpt")  # a checkpoint is not a folder
    with pytest.raises(InputError, match="wrn has no option 'pretrained'"):  # a bool is the backbone's (timm's weights)
        create_model("wrn", 4, pretrained=True)
    checkpoint = {"hyper_parameters": dict(tuned.hparams)}
    tuned.on_save_checkpoint(checkpoint)
    assert checkpoint["hyper_parameters"]["pretrained"] is None and tuned.hparams.pretrained == f"local-dir:{folder}"


def test_timm_loads_the_folder_and_the_hub_cache_in_a_fresh_process(files, folder, tmp_path):
    """After ``import bam_lightning``, timm builds our architectures by name, from a folder and, offline, from
    huggingface_hub's cache layout (``models--owner--name/snapshots/<commit>/`` and ``refs/main``)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--someone--wrn_bam"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    images = torch.randn(3, 3, 32, 32)
    torch.save(images, tmp_path / "images.pt")
    script = f"""
import bam_lightning, timm, torch
images = torch.load({str(tmp_path / "images.pt")!r})
folder = timm.create_model("local-dir:{folder}", pretrained=True).eval()
hub = timm.create_model("hf-hub:someone/wrn_bam", pretrained=True).eval()
ours = bam_lightning.from_pretrained("hf-hub:someone/wrn_bam")
with torch.no_grad():
    torch.save([folder(images), hub(images), ours(images)], {str(tmp_path / "logits.pt")!r})
print(timm.list_models("*bam*"), timm.data.resolve_data_config(model=hub)["crop_pct"])
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env["PYTHONWARNINGS"] = "ignore"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    names, crop = result.stdout.strip().rsplit(" ", 1)
    assert "'resnet50_bam'" in names and "'wrn28_8_bam'" in names and "'wrn_bam'" in names and crop == "1.0"
    expected = eager_logits(files["bam"], images)
    for logits in torch.load(tmp_path / "logits.pt"):
        torch.testing.assert_close(logits, expected)


def test_the_public_checkpoint_converts_with_its_preprocessing(tmp_path):
    save_like_the_public_script(tmp_path / "model_best.pth.tar", random_official_state_dict())
    args = ["export", "--official_checkpoint", "model_best.pth.tar", "--format", "hf", "--out", "resnet50_bam"]
    assert bam(*args, cwd=tmp_path).stdout.strip().endswith("wrote resnet50_bam")
    config = json.loads((tmp_path / "resnet50_bam" / "config.json").read_text())
    assert config["architecture"] == "resnet50_bam" and config["model_args"] == {"attention": "bam_official"}
    cfg = config["pretrained_cfg"]  # the public code's eval: resize 256, centre crop 224, bilinear, ImageNet's statistics
    assert (cfg["input_size"], cfg["crop_pct"], cfg["interpolation"]) == ([3, 224, 224], 0.875, "bilinear")
    assert cfg["mean"] == [0.485, 0.456, 0.406] and cfg["std"] == [0.229, 0.224, 0.225]
    assert "records a best top-1 of 76.86 % on ImageNet val" in (tmp_path / "resnet50_bam" / "README.md").read_text()
    images = torch.randn(1, 3, 64, 64)  # the export's own check ran at 224; any square side runs, at a twelfth of the work
    with torch.no_grad():
        converted = from_pretrained(f"local-dir:{tmp_path / 'resnet50_bam'}")(images)
        torch.testing.assert_close(converted, from_official_checkpoint(tmp_path / "model_best.pth.tar")(images))


@pytest.mark.parametrize(
    "source,message",
    [
        ("local-dir:no_config", "local-dir:no_config: no_config has no config.json: give a folder written by bam export"),
        ("local-dir:unknown", "names architecture 'wrn_bma', which bam_lightning does not build (did you mean 'wrn_bam'?)"),
        ("local-dir:misfit", "does not fit the network its config.json builds: missing keys layer1.0.shortcut.weight;"),
        ("hf-hub:nobody/none", "hf-hub:nobody/none: config.json is not in the Hugging Face cache and cannot be downloaded"),
    ],
    ids=["no_config", "unknown_architecture", "misfit", "not_in_the_cache"],
)
def test_a_bad_folder_ends_in_one_line(files, folder, source, message, capsys, monkeypatch):
    monkeypatch.chdir(files["root"])
    assert message in one_line_error(["attention", "--ckpt_path", source, "--image", "any.png"], capsys)
