import shutil

import pytest
import torch
from PIL import Image

from bam_lightning.data import ImageNetDataModule
from bam_lightning.errors import DatasetNotFoundError, InputError

from helpers.datasets import write_image_folder


def make(root, **kwargs):
    kwargs = {"image_size": 32, "resize_size": 36, "batch_size": 4, "num_workers": 0, "pin_memory": False, **kwargs}
    return ImageNetDataModule(root=str(root), **kwargs)


def test_num_classes_counts_train_folders_before_setup(tmp_path):
    write_image_folder(tmp_path, classes=5, per_class=1)
    (tmp_path / "train" / "README.txt").write_text("not a class")
    dm = make(tmp_path)
    assert dm.num_classes == 5 and dm.image_size == 32
    assert dm.classes == [f"n{c:08d}" for c in range(5)]


def test_non_square_jpegs_become_square_batches(tmp_path):
    write_image_folder(tmp_path, classes=3, per_class=4, size=(40, 48))
    dm = make(tmp_path)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set)) == (12, 12)
    assert dm.test_set is dm.val_set  # ImageNet's test labels are not public
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0 <= y.min() and y.max() < 3
    labels = torch.cat([y for _, y in dm.test_dataloader()])
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4  # folder order, unshuffled


def test_defaults_give_224_pixel_batches(tmp_path):
    write_image_folder(tmp_path, classes=2, per_class=2, size=(60, 45))
    dm = ImageNetDataModule(root=str(tmp_path), num_workers=0, pin_memory=False)
    assert (dm.image_size, dm.batch_size) == (224, 64)
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))[0].shape == (4, 3, 224, 224)
    assert next(iter(dm.val_dataloader()))[0].shape == (4, 3, 224, 224)


def test_eval_resizes_the_short_side_then_crops_the_centre(tmp_path):
    write_image_folder(tmp_path, classes=2, per_class=1)
    dm = make(tmp_path)
    dm.setup("validate")
    assert not hasattr(dm, "train_set")  # evaluating does not scan train/
    # 72 x 144, red rows 0-55 over blue: Resize(36) halves it to 36 x 72 (red rows 0-27), CenterCrop(32)
    # keeps rows 20-51, so the crop turns from red to blue between its rows 7 and 8.
    image = Image.new("RGB", (72, 144), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 72, 56))
    red = dm.eval_transform(image)[0]
    assert red.shape == (32, 32)
    torch.testing.assert_close(red[:7], torch.full((7, 32), (1 - 0.485) / 0.229), rtol=0, atol=1e-2)
    torch.testing.assert_close(red[9:], torch.full((23, 32), (0 - 0.485) / 0.229), rtol=0, atol=1e-2)
    torch.testing.assert_close(dm.val_set[0][0], dm.val_set[0][0], rtol=0, atol=0)
    draws = [dm.train_transform(image) for _ in range(5)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


def not_found(root):
    return f"ImageNet not found: expected {root}/train/<class>/*.JPEG and {root}/val/<class>/*.JPEG; pass --data.root DIR"


def test_missing_root_is_reported_by_num_classes_and_setup(tmp_path):
    dm = make(tmp_path / "nowhere")
    for read in (lambda: dm.num_classes, lambda: dm.setup("fit")):
        with pytest.raises(DatasetNotFoundError) as caught:
            read()
        assert str(caught.value) == not_found(tmp_path / "nowhere")


def test_a_single_class_folder_is_refused_naming_the_folder_the_class_and_the_fix(tmp_path):
    """num_classes 1 would reach the model, where torchmetrics ends the run in a traceback; setup reads the classes too."""
    write_image_folder(tmp_path, classes=1, per_class=2)
    expected = (
        f"{tmp_path}/train holds one class folder ('n00000000'), and a classifier needs two or more:"
        " add a folder per class to train/ and val/, or pass --data.root DIR of a tree that has them"
    )
    for read in (lambda dm: dm.num_classes, lambda dm: dm.setup("fit"), lambda dm: dm.setup("validate")):
        with pytest.raises(InputError) as caught:
            read(make(tmp_path))
        assert str(caught.value) == expected
    shutil.copytree(tmp_path / "train" / "n00000000", tmp_path / "train" / "n00000001")
    assert make(tmp_path).num_classes == 2


def test_missing_val_folder_is_not_found(tmp_path):
    shutil.rmtree(write_image_folder(tmp_path) / "val")
    with pytest.raises(DatasetNotFoundError) as caught:
        make(tmp_path).setup("fit")
    assert str(caught.value) == not_found(tmp_path)


def test_class_folder_without_images_is_not_found(tmp_path):
    write_image_folder(tmp_path, classes=2, per_class=1)
    for image in (tmp_path / "val" / "n00000001").iterdir():
        image.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"ImageNet not found: .*\(.*n00000001.*\); pass --data.root DIR"):
        make(tmp_path).setup("fit")


@pytest.mark.parametrize("split,where", [("val", "val/ but not train/"), ("train", "train/ but not val/")])
def test_class_mismatch_names_the_first_differing_class(tmp_path, split, where):
    write_image_folder(tmp_path, classes=3, per_class=1)
    for name in ("n00000009", "n00000005"):
        shutil.copytree(tmp_path / split / "n00000000", tmp_path / split / name)
    with pytest.raises(InputError, match=f"class 'n00000005' is in {where}"):
        make(tmp_path).setup("fit")


def test_an_empty_root_folder_is_not_found(tmp_path):
    (tmp_path / "train").mkdir()  # there, but without a class folder
    for dm in (make(tmp_path), make(tmp_path / "train")):
        with pytest.raises(DatasetNotFoundError, match="ImageNet not found: expected"):
            dm.setup("fit")


def damage(root):
    """Truncate one training JPEG and replace another with text; returns their paths."""
    truncated, text = root / "train" / "n00000000" / "train_0_1.JPEG", root / "train" / "n00000001" / "train_1_2.JPEG"
    truncated.write_bytes(truncated.read_bytes()[:300])
    text.write_text("not an image")
    return truncated, text


def test_an_unreadable_image_fails_naming_the_file_and_the_flag(tmp_path):
    truncated, _ = damage(write_image_folder(tmp_path, classes=2, per_class=4))
    dm = make(tmp_path)
    dm.setup("fit")
    assert dm.bad_images == "fail"
    with pytest.raises(InputError) as caught:
        dm.train_set[1]
    assert str(caught.value) == (
        f"{truncated} is not a readable image (Truncated File Read): replace or delete it,"
        " or pass --data.bad_images skip to train without it"
    )
    with pytest.raises(InputError, match="train_1_2.JPEG is not a readable image \\(PIL cannot identify it as an image\\)"):
        dm.train_set[6]


def test_skip_uses_the_next_image_and_counts_across_loader_workers(tmp_path, capfd):
    truncated, text = damage(write_image_folder(tmp_path, classes=2, per_class=4))
    dm = make(tmp_path, bad_images="skip", num_workers=2)
    dm.setup("fit")
    image, label = dm.train_set[1]  # train_0_1 is bad: train_0_2, same class
    assert image.shape == (3, 32, 32) and label == 0
    assert dm.train_set.readable.skipped == [str(truncated)]
    dm.train_set.readable.bad[:] = False
    capfd.readouterr()
    for _epoch in range(2):
        labels = torch.cat([y for _, y in dm.train_dataloader()])
        assert len(labels) == 8  # batches keep their size: a neighbour stands in
    assert sorted(dm.train_set.readable.skipped) == sorted([str(truncated), str(text)])  # marked inside the workers
    dm.teardown("fit")
    err = capfd.readouterr().err
    assert err.count("bam: skipping unreadable image") == 2  # once per file, not once per epoch
    assert f"bam: skipped 2 unreadable image(s) of 8 under {tmp_path / 'train'} (--data.bad_images skip)" in err


def test_bad_images_takes_fail_or_skip():
    with pytest.raises(InputError, match="--data.bad_images must be fail or skip, got 'ignore'"):
        ImageNetDataModule(bad_images="ignore")
