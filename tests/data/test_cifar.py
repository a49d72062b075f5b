import pickle
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import SequentialSampler
from torchvision.datasets import CIFAR10, CIFAR100

from bam_lightning.data import CIFAR10DataModule, CIFAR100DataModule
from bam_lightning.data.cifar_pickles import CIFARPickles
from bam_lightning.data.sampler import EpochShuffle
from bam_lightning.errors import DatasetNotFoundError, InputError

from helpers.datasets import write_cifar10, write_cifar100


@dataclass
class Case:
    datamodule: type
    write: Callable
    layout: type  # torchvision's class
    n_train: int  # the writer's defaults
    n_test: int
    class_names: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    root: Path | None = None
    test_labels: list[int] | None = None
    test_data: np.ndarray | None = None  # N x 3072 as written


CASES = {
    "cifar10": Case(
        datamodule=CIFAR10DataModule,
        write=write_cifar10,
        layout=CIFAR10,
        n_train=50,
        n_test=20,
        class_names=[f"label_{i}" for i in range(10)],
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    ),
    "cifar100": Case(
        datamodule=CIFAR100DataModule,
        write=write_cifar100,
        layout=CIFAR100,
        n_train=64,
        n_test=32,
        class_names=[f"fine_{i:02d}" for i in range(100)],
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
    ),
}


@pytest.fixture(params=list(CASES))
def cifar(request, tmp_path) -> Case:
    """A tiny copy written to ``tmp_path``, with its test labels and bytes read back independently."""
    case = CASES[request.param]
    case.write(tmp_path)
    with open(tmp_path / case.layout.base_folder / case.layout.test_list[0][0], "rb") as f:
        written = pickle.load(f)
    labels = written["labels" if "labels" in written else "fine_labels"]
    return replace(case, root=tmp_path, test_labels=labels, test_data=written["data"])


def make(datamodule, root, **kwargs):
    kwargs = {"download": False, "verify_md5": False, "batch_size": 8, "num_workers": 0, "pin_memory": False, **kwargs}
    return datamodule(root=str(root), **kwargs)


def test_tiny_copy_loads_without_checksum(cifar):
    dm = make(cifar.datamodule, cifar.root)
    assert dm.num_classes == len(cifar.class_names) and dm.image_size == 32
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (cifar.n_train, cifar.n_test, cifar.n_test)
    assert dm.val_set is dm.test_set  # val_size=0: validate on the test set
    assert dm.train_set.classes == dm.test_set.classes == cifar.class_names
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64 and 0 <= y.min() and y.max() < dm.num_classes


def test_test_loader_yields_written_labels_and_normalised_pixels(cifar):
    dm = make(cifar.datamodule, cifar.root)
    dm.setup("test")
    images, targets = map(torch.cat, zip(*dm.test_dataloader(), strict=True))
    assert targets.tolist() == cifar.test_labels
    # Undo Normalize with the published statistics: the written channel-major bytes come back.
    mean, std = torch.tensor(cifar.mean).view(1, 3, 1, 1), torch.tensor(cifar.std).view(1, 3, 1, 1)
    written = torch.from_numpy(cifar.test_data).view(cifar.n_test, 3, 32, 32).float() / 255
    torch.testing.assert_close(images * std + mean, written, rtol=0, atol=1e-5)


def test_reader_matches_torchvision_when_its_checksum_is_skipped(cifar, monkeypatch):
    """The tiny files are the real format: torchvision's own reader sees the same images."""
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args: True)
    for train in (True, False):
        ours, theirs = CIFARPickles(cifar.root, cifar.layout, train), cifar.layout(str(cifar.root), train=train)
        assert (ours.data == theirs.data).all() and ours.targets == theirs.targets
        assert ours.classes == theirs.classes


def test_checksum_failure_points_at_verify_md5(cifar):
    with pytest.raises(InputError) as caught:
        make(cifar.datamodule, cifar.root, verify_md5=True).setup("fit")
    message = str(caught.value)
    assert "--data.verify_md5 false" in message and "MD5" in message and "\n" not in message


@pytest.mark.parametrize("verify_md5", [True, False])
@pytest.mark.parametrize("datamodule,layout", [(CIFAR10DataModule, CIFAR10), (CIFAR100DataModule, CIFAR100)])
def test_missing_root_names_path_and_fix(tmp_path, datamodule, layout, verify_md5):
    root = tmp_path / "nowhere"
    dm = make(datamodule, root, verify_md5=verify_md5)
    dm.prepare_data()  # download=False: nothing to do, nothing raised yet
    with pytest.raises(DatasetNotFoundError) as caught:
        dm.setup("fit")
    message = str(caught.value)
    assert str(root / layout.base_folder) in message and "--data.download true" in message
    assert "--data.root" in message and "\n" not in message


@pytest.mark.parametrize("verify_md5", [True, False])
def test_one_missing_file_is_not_found(tmp_path, verify_md5):
    (write_cifar100(tmp_path) / "cifar-100-python" / "meta").unlink()
    with pytest.raises(DatasetNotFoundError, match="CIFAR-100 not found under"):
        make(CIFAR100DataModule, tmp_path, verify_md5=verify_md5).setup("fit")


def test_failed_download_is_one_line_with_the_fix(tmp_path, monkeypatch):
    def offline(self):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(CIFAR100, "download", offline)
    with pytest.raises(DatasetNotFoundError) as caught:
        make(CIFAR100DataModule, tmp_path, download=True).prepare_data()
    message = str(caught.value)
    assert message.startswith(f"could not download CIFAR-100 to {tmp_path} (")
    assert "Temporary failure in name resolution" in message
    assert "--data.download false" in message and "cifar-100-python/" in message and "\n" not in message


def test_present_files_are_never_downloaded_again(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(CIFAR100, "download", lambda self: calls.append(self))
    make(CIFAR100DataModule, write_cifar100(tmp_path), download=True).prepare_data()
    assert calls == []
    with pytest.raises(DatasetNotFoundError, match="could not download"):  # the stub fetched nothing
        make(CIFAR100DataModule, tmp_path / "empty", download=True).prepare_data()
    assert len(calls) == 1


def held_out(dm):
    dm.setup("fit")
    return dm.train_set.indices, dm.val_set.indices


def test_val_split_is_disjoint_and_fixed_by_seed(tmp_path):
    write_cifar100(tmp_path)
    train, val = held_out(make(CIFAR100DataModule, tmp_path, val_size=16))
    assert (len(train), len(val)) == (48, 16)
    assert sorted(train + val) == list(range(64))
    assert held_out(make(CIFAR100DataModule, tmp_path, val_size=16)) == (train, val)
    assert held_out(make(CIFAR100DataModule, tmp_path, val_size=16, split_seed=1))[1] != val


def test_held_out_images_use_eval_transforms_and_training_images_augment(tmp_path):
    write_cifar100(tmp_path)
    dm = make(CIFAR100DataModule, tmp_path, val_size=16)
    dm.setup("fit")
    assert len(dm.test_set) == 32  # the test set stays whole
    torch.testing.assert_close(dm.val_set[0][0], dm.val_set[0][0], rtol=0, atol=0)
    torch.testing.assert_close(dm.test_set[3][0], dm.test_set[3][0], rtol=0, atol=0)
    draws = [dm.train_set[0][0] for _ in range(5)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


@pytest.mark.parametrize("val_size", [64, 100])
def test_val_size_must_leave_training_images(tmp_path, val_size):
    write_cifar100(tmp_path)
    with pytest.raises(InputError, match=f"--data.val_size {val_size} leaves no training images"):
        make(CIFAR100DataModule, tmp_path, val_size=val_size).setup("fit")


def test_negative_val_size_is_refused():
    with pytest.raises(InputError, match="--data.val_size"):
        CIFAR100DataModule(val_size=-1)


def test_loaders_shuffle_only_training_and_skip_persistent_workers_without_workers(tmp_path):
    write_cifar100(tmp_path)
    dm = make(CIFAR100DataModule, tmp_path, persistent_workers=True, batch_size=5)
    dm.setup("fit")
    train, val, test = dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()
    assert isinstance(train.sampler, EpochShuffle) and not train.drop_last
    assert all(isinstance(loader.sampler, SequentialSampler) for loader in (val, test))
    assert test.dataset is dm.test_set and train.batch_size == 5
    assert not train.persistent_workers  # DataLoader refuses persistent workers when num_workers=0
    assert len(train) == 13  # 64 images, batches of 5, the last one kept


def rewrite(path: Path, change: Callable[[dict], None]) -> None:
    """Unpickle ``path``, let ``change`` edit the dict in place, pickle it back."""
    content = pickle.loads(path.read_bytes())
    change(content)
    path.write_bytes(pickle.dumps(content))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def relabel_first(content: dict, label: int) -> None:
    key = "labels" if "labels" in content else "fine_labels"
    content[key] = [label, *content[key][1:]]


# Which file to damage ("train", "test" or "meta": the layout's first file of that kind), how,
# and a piece of the reason the message must give ("" where pickle's own wording may vary).
CORRUPTIONS = {
    "truncated train file": ("train", truncate, ""),
    "garbage bytes in meta": ("meta", lambda p: p.write_bytes(b"\x00\xffnot a pickle\n" * 8), "invalid load key"),
    "empty test file": ("test", lambda p: p.write_bytes(b""), "Ran out of input"),
    "pickle that is not a dict": ("test", lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), "holds a list, not a dict"),
    "train pickle without data": ("train", lambda p: rewrite(p, lambda c: c.pop("data")), "no 'data' key"),
    "meta without class names": ("meta", lambda p: p.write_bytes(pickle.dumps({"num_vis": 3072})), "no list of class names"),
    "rows of 3000 bytes": ("train", lambda p: rewrite(p, lambda c: c.update(data=c["data"][:, :3000])), "N x 3072"),
    "int64 pixels": ("test", lambda p: rewrite(p, lambda c: c.update(data=c["data"].astype(np.int64))), "int64"),
    "one label short": ("test", lambda p: rewrite(p, lambda c: c.update(data=c["data"][1:])), "labels for"),
    "label past the classes": ("train", lambda p: rewrite(p, lambda c: relabel_first(c, 100)), "label 100 is outside"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_damaged_pickle_is_one_input_error_naming_the_file(cifar, corruption):
    """Without the checksum a damaged copy must still fail in setup, as one line the CLI prints."""
    kind, damage, reason = CORRUPTIONS[corruption]
    folder = cifar.root / cifar.layout.base_folder
    name = {"train": cifar.layout.train_list[0][0], "test": cifar.layout.test_list[0][0], "meta": cifar.layout.meta["filename"]}
    path = folder / name[kind]
    damage(path)
    with pytest.raises(InputError) as caught:
        make(cifar.datamodule, cifar.root).setup("fit")
    message = str(caught.value)
    assert message.startswith(f"{path} is not a readable CIFAR pickle (")
    assert reason in message
    assert f"--data.download true after deleting {folder}" in message and "\n" not in message
    assert not isinstance(caught.value, DatasetNotFoundError)  # the file is there: "not found" would mislead


@pytest.mark.parametrize("verify_md5", [True, False])
def test_an_empty_dataset_folder_is_not_found(tmp_path, verify_md5):
    (tmp_path / "cifar-100-python").mkdir()
    with pytest.raises(DatasetNotFoundError, match="CIFAR-100 not found under"):
        make(CIFAR100DataModule, tmp_path, verify_md5=verify_md5).setup("fit")


@pytest.mark.parametrize("split", ["train", "test"])
def test_files_without_images_are_refused(tmp_path, split):
    """Lightning would skip every epoch of an empty loader with a warning, and call the run a success."""
    write_cifar100(tmp_path, n_train=0 if split == "train" else 8, n_test=0 if split == "test" else 8)
    with pytest.raises(InputError) as caught:
        make(CIFAR100DataModule, tmp_path, verify_md5=False).setup("fit")
    folder = tmp_path / "cifar-100-python"
    assert str(caught.value) == (
        f"{folder}: {split} hold no images: re-copy the dataset, or pass --data.download true after deleting {folder}"
    )
