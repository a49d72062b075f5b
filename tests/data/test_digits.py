from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from bam_lightning.data import DigitsDataModule
from bam_lightning.data.digits import DIGIT_CORRUPTIONS, DigitsCDataModule, load_digits, main, write_corrupted_digits
from bam_lightning.errors import InputError


def make(**kwargs) -> DigitsDataModule:
    dm = DigitsDataModule(**{"batch_size": 16, "num_workers": 0, "pin_memory": False, **kwargs})
    dm.setup("fit")
    return dm


def test_stratified_split_sizes_and_val_is_test():
    dm = make()
    assert (len(dm.train_set), len(dm.test_set)) == (1437, 360)
    assert dm.val_set is dm.test_set
    _, targets = load_digits()
    everywhere = Counter(targets.tolist())
    for subset, share in ((dm.train_set, 0.8), (dm.test_set, 0.2)):
        counts = Counter(subset.targets.tolist())
        assert all(abs(counts[k] - share * everywhere[k]) <= 1 for k in range(10)), counts


def test_split_is_fixed_by_its_seed_and_disjoint():
    _, targets = load_digits()
    train, test = DigitsDataModule(split_seed=0).split(targets)
    again = DigitsDataModule(split_seed=0).split(targets)
    other = DigitsDataModule(split_seed=1).split(targets)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, other[1])
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(targets)))


def test_batches_are_3_channel_32_pixel_normalised_with_labels_0_to_9():
    dm = make()
    assert dm.num_classes == 10 and dm.image_size == 32
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0 <= y.min() and y.max() <= 9
    images, targets = map(torch.cat, zip(*dm.test_dataloader(), strict=True))
    assert images.shape == (360, 3, 32, 32) and set(targets.tolist()) == set(range(10))
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])  # grey in 3 channels
    assert abs(images.mean()) < 0.1 and abs(images.std() - 1) < 0.1


def test_image_size_upsamples_bilinearly():
    dm = make(image_size=64)
    x, _ = dm.test_set[0]
    assert x.shape == (3, 64, 64) and dm.image_size == 64
    assert len(torch.unique(x)) > 17  # bilinear: values between the 17 grey levels of the original


def steps(transform: T.Compose) -> list[type]:
    return [kind for t in transform.transforms for kind in (steps(t) if isinstance(t, T.Compose) else [type(t)])]


def test_training_shifts_but_never_flips():
    dm = make()
    kinds = steps(dm.train_transform)
    assert T.RandomCrop in kinds and T.RandomHorizontalFlip not in kinds and T.RandomVerticalFlip not in kinds
    torch.manual_seed(0)
    seen = {tuple(dm.train_set[0][0].flatten().tolist()) for _ in range(10)}
    assert len(seen) > 1  # random shifts
    assert torch.equal(dm.test_set[0][0], dm.test_set[0][0])  # evaluation is deterministic


def test_test_fraction_must_leave_both_sets():
    with pytest.raises(InputError, match="test_fraction"):
        DigitsDataModule(test_fraction=1.0)


def test_module_writes_test_digits_as_pngs(tmp_path):
    paths = [tmp_path / f"digit{k}.png" for k in range(3)]
    main([str(p) for p in paths])
    dm = make()
    for label, path in enumerate(paths):
        image = Image.open(path)
        assert image.size == (32, 32) and image.mode == "RGB"
        first = next(i for i in range(len(dm.test_set)) if dm.test_set.targets[i] == label)
        pixels = T.ToTensor()(image)
        mean, std = torch.tensor(dm.mean).view(3, 1, 1), torch.tensor(dm.std).view(3, 1, 1)
        torch.testing.assert_close(pixels, dm.test_set[first][0] * std + mean, rtol=0, atol=1e-5)


def test_the_corrupted_test_split_is_written_in_the_cifar_c_format_the_same_for_the_same_seed(tmp_path):
    digits = DigitsDataModule(test_fraction=0.03)  # 54 test digits
    folder = write_corrupted_digits(tmp_path / "digits-c", digits)
    labels = np.load(folder / "labels.npy")
    assert labels.shape == (5 * 54,) and (labels[:54] == labels[54:108]).all()
    noise = np.load(folder / "gaussian_noise.npy")
    assert noise.dtype == np.uint8 and noise.shape == (5 * 54, 32, 32, 3)
    again = write_corrupted_digits(tmp_path / "again", digits)
    assert all((np.load(again / f"{n}.npy") == np.load(folder / f"{n}.npy")).all() for n in DIGIT_CORRUPTIONS)
    contrast = np.load(folder / "contrast.npy").reshape(5, 54, -1).astype(float)
    spread = contrast.std(axis=2).mean(axis=1)
    assert (np.diff(spread) < 0).all()  # each severity lowers the contrast further
    data = DigitsCDataModule(root=str(tmp_path), corruptions=["pixelate"], severities=[5])
    data.setup("test")
    image, label, group = data.test_set[3]
    assert image.shape == (3, 32, 32) and label == labels[4 * 54 + 3] and group == 0
