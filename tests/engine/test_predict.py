"""``bam predict``: a trained checkpoint classifies a folder of the user's images into ``predictions.csv``."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bam_lightning.data import CIFAR100DataModule
from bam_lightning.tasks.classification import ImageClassifier

from helpers.cli_args import cifar_args
from helpers.command import bam, refusal
from helpers.datasets import write_cifar100

IMAGES = ["a.jpg", "sub/b.png", "sub/d.bmp", "sub/deeper/c.PNG", "z.jpeg"]  # sorted by folder and name: the rows' order


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch fit on a tiny CIFAR-100 and a folder of photos of several sizes, with a broken file and a note."""
    root = tmp_path_factory.mktemp("predict")
    write_cifar100(root / "data", n_train=32, n_test=16)
    bam("fit", *cifar_args(root, "--trainer.max_epochs", "1"), cwd=root)
    rng = np.random.default_rng(0)
    for i, name in enumerate(IMAGES):
        path = root / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20 + 9 * i, 48 - 5 * i, 3), dtype=np.uint8)).save(path)
    (root / "images" / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "images" / "notes.txt").write_text("not an image: not read")
    return root


def predict(root: Path, *extra: str):
    """``bam predict`` on the fit's last.ckpt, with CIFAR's data root pointing nowhere: predicting needs no dataset."""
    checkpoint = next((root / "runs").rglob("last.ckpt"))
    args = cifar_args(root, "--ckpt_path", str(checkpoint), "--data.predict_dir", str(root / "images"))
    return bam("predict", *args, "--data.root", str(root / "nowhere"), *extra, cwd=root, check=False)


def rows(result) -> list[list[str]]:
    assert result.returncode == 0, result.stderr[-3000:]
    path = Path(result.stderr.strip().splitlines()[-1].rpartition(" to ")[2])
    assert path.name == "predictions.csv" and path.parent.parent.name == "lightning_logs"  # beside the run's logs
    with path.open() as file:
        return list(csv.reader(file))


def test_the_top_five_of_every_readable_image_in_file_order_with_the_checkpoints_class_names(run):
    result = predict(run, "--data.bad_images", "skip")
    header, *lines = rows(result)
    assert header == ["file"] + [f"{what}_{k}" for k in range(1, 6) for what in ("class", "prob")]
    assert [line[0] for line in lines] == IMAGES
    assert "skipping unreadable image" in result.stderr and "broken.jpg" in result.stderr
    # Independently: the checkpoint's network on the datamodule's predict transform of each file.
    checkpoint = next((run / "runs").rglob("last.ckpt"))
    model = ImageClassifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()
    transform = CIFAR100DataModule(root=str(run / "nowhere")).predict_transform
    images = torch.stack([transform(Image.open(run / "images" / name).convert("RGB")) for name in IMAGES])
    with torch.no_grad():
        top = model(images).softmax(-1).topk(5)
    for line, probs, classes in zip(lines, top.values, top.indices, strict=True):
        assert line[1::2] == [f"fine_{c:02d}" for c in classes.tolist()]  # the names write_cifar100 put in the meta file
        assert [float(p) for p in line[2::2]] == pytest.approx(probs.tolist(), abs=1e-5)


@pytest.mark.long
def test_two_processes_write_one_file_with_each_image_once_in_order(run):
    """Five images over two processes (three and two): the same file as one process writes."""
    single = rows(predict(run, "--data.bad_images", "skip"))
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp", "--data.batch_size", "2"]
    assert rows(predict(run, "--data.bad_images", "skip", *ddp)) == single


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "sub/broken.jpg is not a readable image (PIL cannot identify it as an image)"),
        (["--data.predict_dir", "nowhere"], "--data.predict_dir nowhere is not a folder"),
        (["--data.predict_dir", "data"], "--data.predict_dir data holds no image file"),
        (["--data.bad_images", "maybe"], "data.bad_images"),
        (["--ckpt_path", "null"], "bam predict needs the trained network: give --ckpt_path"),
    ],
    ids=["broken-file", "not-a-folder", "no-image", "bad-images-value", "no-checkpoint"],
)
def test_each_mistake_is_one_line_from_the_real_command(run, extra, message):
    result = predict(run, *extra)
    last = refusal(result)
    assert message in last, last


def test_without_a_predict_dir_is_one_line(run):
    checkpoint = next((run / "runs").rglob("last.ckpt"))
    result = bam("predict", *cifar_args(run, "--ckpt_path", str(checkpoint)), cwd=run, check=False)
    assert refusal(result) == ("bam: error: bam predict classifies the images under --data.predict_dir DIR: give that folder")
