from xml.etree import ElementTree

import pytest
import torch
import torchvision.datasets.voc

from bam_lightning.data import VOCDataModule
from bam_lightning.data.digit_canvases import write_voc as write_canvases
from bam_lightning.data.sampler import SeededSamples
from bam_lightning.errors import DatasetNotFoundError, InputError

from helpers.datasets import VOC_NAMES, write_voc


def make(root, **kwargs):
    return VOCDataModule(root=str(root), **{"batch_size": 4, "num_workers": 0, "pin_memory": False, **kwargs})


def write_07_12(root, test=None):
    """VOC2007 trainval (3 images), VOC2012 trainval (2) and VOC2007 test (``test``, else 2 random images)."""
    write_voc(root, "2007", "trainval")
    write_voc(root, "2012", "trainval", images=2, seed=1)
    return write_voc(root, "2007", "test", test, images=2, seed=2)


def test_the_20_classes_in_the_standard_order_before_any_file():
    dm = VOCDataModule(root="/nowhere")
    assert dm.num_classes == 20 and dm.classes == list(VOC_NAMES)
    assert (
        dm.recipe == "ssd"
        and dm.batch_size == 32
        and dm.image_sets
        == {
            "train": ["2007-trainval", "2012-trainval"],
            "test": ["2007-test"],
        }
    )


def test_a_tree_of_ones_own_classes_is_labelled_in_their_order(tmp_path):
    write_canvases(tmp_path, n_train=3, n_val=2, size=64, classes=(0, 1, 2))
    dm = make(tmp_path, classes=["digit2", "digit0", "digit1"], train_sets=["2007-trainval"])
    assert dm.num_classes == 3 and dm.classes == ["digit2", "digit0", "digit1"]  # before setup: the CLI sizes the head
    dm.setup("fit")
    for dataset in (dm.train_set, dm.val_set):
        for i in range(len(dataset)):
            xml = ElementTree.parse(dataset.annotations[i]).getroot()
            names = [obj.findtext("name") for obj in xml.iter("object")]
            assert dataset.objects[i].labels.tolist() == [dm.classes.index(name) + 1 for name in names]


@pytest.mark.parametrize(
    "classes, message",
    [([], "--data.classes is empty"), (["cat", "dog", "cat"], "--data.classes names 'cat' more than once")],
    ids=["empty", "repeated"],
)
def test_no_class_or_a_repeated_one_is_refused_when_created(classes, message):
    with pytest.raises(InputError, match=message):
        VOCDataModule(classes=classes)


def test_07_plus_12_trains_and_2007_test_evaluates_with_voc_pixels_as_boxes(tmp_path):
    write_07_12(tmp_path, test=[[("tvmonitor", 1, 1, 64, 48, 0), ("aeroplane", 11, 6, 30, 20, 0)], []])
    dm = make(tmp_path)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set)) == (5, 2) and dm.test_set is dm.val_set
    assert sorted(dm.train_set[i][1]["image_id"] for i in range(5)) == [0, 1, 2, 3, 4]  # ids run on across sets
    image, target = dm.val_set[0]
    assert image.shape == (3, 48, 64) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    # 1-based inclusive pixels: xmin=1, xmax=64 is the whole width, [0, 64].
    assert target["boxes"].tolist() == [[0, 0, 64, 48], [10, 5, 30, 20]]
    assert target["labels"].tolist() == [20, 1] and target["labels"].dtype == torch.int64
    assert target["image_id"] == 0 and target["iscrowd"].tolist() == [False, False]
    images, targets = next(iter(dm.test_dataloader()))
    assert [image.shape for image in images] == [(3, 48, 64)] * 2  # eval does not resize
    assert targets[1]["boxes"].shape == (0, 4)


def test_difficult_objects_are_out_of_training_and_flagged_in_eval(tmp_path):
    objects = [[("person", 5, 5, 20, 30, 0), ("dog", 30, 10, 50, 40, 1)]]
    write_voc(tmp_path, "2007", "trainval", objects)
    write_voc(tmp_path, "2007", "test", objects)
    dm = make(tmp_path, train_sets=["2007-trainval"])
    dm.setup("fit")
    assert dm.train_set.objects[0].labels.tolist() == [15] and dm.train_set.objects[0].iscrowd.tolist() == [False]
    target = dm.val_set[0][1]
    assert target["labels"].tolist() == [15, 12] and target["iscrowd"].tolist() == [False, True]


def test_ssd_batches_are_300_pixels_with_boxes_inside(tmp_path):
    write_07_12(tmp_path)
    dm = make(tmp_path)
    dm.setup("fit")
    for seed in range(15):
        image, target = SeededSamples(dm.train_set)[(seed % 5, seed)]
        assert image.shape == (3, 300, 300)
        boxes = target["boxes"]
        assert len(boxes) == len(target["labels"]) == len(target["iscrowd"]) and boxes.dtype == torch.float32
        assert (boxes >= 0).all() and (boxes <= 300).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert ((1 <= target["labels"]) & (target["labels"] <= 20)).all()


def epoch(root, number, workers):
    """The training loader set to epoch ``number`` and its samples as (image, image_id), in order."""
    dm = make(root, num_workers=workers, batch_size=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(number)
    return loader, samples(loader)


def samples(batches):
    return [(image, t["image_id"]) for images, targets in batches for image, t in zip(images, targets, strict=True)]


def test_exact_resume_same_seed_epoch_index_same_sample_in_any_worker(tmp_path):
    write_07_12(tmp_path)
    _, first = epoch(tmp_path, 1, workers=0)
    loader, with_workers = epoch(tmp_path, 1, workers=2)
    assert [i for _, i in first] == [i for _, i in with_workers] and sorted(i for _, i in first) == [0, 1, 2, 3, 4]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, with_workers, strict=True))
    assert [i for _, i in first] != [i for _, i in epoch(tmp_path, 2, workers=0)[1]]  # another epoch, another order
    loader.load_state_dict({"batches": 1})  # resumed after the first batch of epoch 1
    resumed = samples(loader)
    assert [i for _, i in resumed] == [i for _, i in first[2:]]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(resumed, first[2:], strict=True))


def test_a_missing_devkit_is_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError) as caught:
        make(tmp_path).setup("fit")
    assert str(caught.value) == (
        f"PASCAL VOC 2007-trainval not found: {tmp_path}/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt is missing;"
        " pass --data.root DIR (the folder that holds VOCdevkit/), or --data.download true"
    )
    write_voc(tmp_path, "2007", "test")
    write_voc(tmp_path, "2007", "trainval")
    with pytest.raises(DatasetNotFoundError, match="PASCAL VOC 2012-trainval not found: .*/VOCdevkit/VOC2012/ImageSets"):
        make(tmp_path).setup("fit")
    make(tmp_path).setup("test")  # evaluating reads only the test set


def test_a_missing_image_or_annotation_is_not_found(tmp_path):
    folder = write_voc(tmp_path, "2007", "test", images=3)
    (folder / "JPEGImages" / "2007_test_0001.jpg").unlink()
    missing = (
        r"1 of the 3 images of PASCAL VOC 2007-test are not in .*JPEGImages \(the first 2007_test_0001.jpg\); pass --data.root"
    )
    with pytest.raises(DatasetNotFoundError, match=missing):
        make(tmp_path).setup("test")
    folder = write_voc(tmp_path, "2007", "test", images=3)
    (folder / "Annotations" / "2007_test_0002.xml").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"PASCAL VOC annotation .*2007_test_0002.xml not found \(its image set lists"):
        make(tmp_path).setup("test")


BROKEN = {
    "truncated": (
        lambda xml: "<annotation><size>",
        r"is not a readable VOC annotation \(XML: no element found: line 1, column 18\)",
    ),
    "class": (
        lambda xml: xml.replace("<name>dog</name>", "<name>unicorn</name>"),
        r": object 1 is a 'unicorn', not one of the 20 classes \(aeroplane, .*, tvmonitor\): fix its <name>, or pass"
        r" --data.classes \[...\] listing every object name of your labels$",
    ),
    "reversed": (
        lambda xml: xml.replace("<xmax>50</xmax>", "<xmax>3</xmax>"),
        r": object 1 \(dog\) has its corners reversed \(xmin 30, xmax 3, ymin 10, ymax 40\): a broken annotation; fix or delete",
    ),
    "number": (
        lambda xml: xml.replace("<ymin>10</ymin>", "<ymin>ten</ymin>"),
        r": object 1's <bndbox><ymin> is missing or not a number \('ten'\)",
    ),
    "size": (lambda xml: xml.replace("<width>64</width>", ""), r": <size><width> is missing or not a number \(None\)"),
    "root": (lambda xml: xml.replace("annotation>", "voc>"), r"is not a VOC annotation \(its root is <voc>, not <annotation>\)"),
    "difficult": (
        lambda xml: xml.replace("<difficult>0</difficult>", "<difficult>yes</difficult>"),
        r"<difficult>yes</difficult>; it must be 0 or 1",
    ),
}


@pytest.mark.parametrize("damage,expected", BROKEN.values(), ids=BROKEN)
def test_a_broken_annotation_is_one_line_naming_the_file(tmp_path, damage, expected):
    folder = write_voc(tmp_path, "2007", "test", [[("person", 5, 5, 20, 30, 0)], [("dog", 30, 10, 50, 40, 0)]])
    xml = folder / "Annotations" / "2007_test_0001.xml"
    xml.write_text(damage(xml.read_text()))
    with pytest.raises(InputError, match=expected) as caught:
        make(tmp_path).setup("test")
    assert str(caught.value).startswith(str(xml)) and "\n" not in str(caught.value)


def test_boxes_outside_the_image_are_clipped_or_dropped_with_one_line(tmp_path, capsys):
    write_voc(tmp_path, "2007", "test", [[("cat", 50, 40, 90, 60, 0), ("cow", 70, 5, 80, 10, 1)]])
    dm = make(tmp_path)
    dm.setup("test")
    assert dm.test_set.objects[0].boxes.tolist() == [[49, 39, 64, 48]]  # the difficult one too: kept in eval
    assert capsys.readouterr().err == "bam: VOC 2007-test: dropped 1 of 2 box(es) with no area inside their image\n"


@pytest.mark.parametrize("name", ["2012-test", "2007-foo", "07-trainval", "2013-train"])
def test_a_malformed_set_name_is_refused_when_created(name):
    with pytest.raises(InputError, match=f"'{name}' is not a VOC image set: write YEAR-SET, YEAR 2007 to 2012"):
        VOCDataModule(train_sets=[name])


def test_no_training_set_is_refused():
    with pytest.raises(InputError, match=r"--data.train_sets is empty: name at least one VOC image set, e.g. \[2007-trainval\]"):
        VOCDataModule(train_sets=[])


def test_download_fetches_only_missing_sets_and_a_failure_is_one_line(tmp_path, monkeypatch):
    fetched = []

    def offline(url, download_root, filename=None, md5=None, **kwargs):
        fetched.append(filename)
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.voc, "download_and_extract_archive", offline)
    write_voc(tmp_path, "2007", "trainval")
    write_voc(tmp_path, "2007", "test")
    make(tmp_path, train_sets=["2007-trainval"], download=True).prepare_data()
    make(tmp_path, download=False).prepare_data()
    assert fetched == []
    with pytest.raises(DatasetNotFoundError) as caught:
        make(tmp_path, download=True).prepare_data()
    assert fetched == ["VOCtrainval_11-May-2012.tar"]
    assert str(caught.value) == (
        f"could not download PASCAL VOC 2012-trainval to {tmp_path} ([Errno -3] Temporary failure in name resolution):"
        " download it elsewhere and pass --data.root DIR (the folder that holds VOCdevkit/), with --data.download false"
    )
