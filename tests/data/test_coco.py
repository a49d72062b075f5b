import json

import pytest
import torch

from bam_lightning.data import COCODataModule
from bam_lightning.data.sampler import SeededSamples
from bam_lightning.errors import DatasetNotFoundError, InputError

from helpers.datasets import write_coco


def make(root, **kwargs):
    return COCODataModule(root=str(root), **{"batch_size": 2, "num_workers": 0, "pin_memory": False, **kwargs})


def write(root, train=None, val=None, **kwargs):
    """COCO 2017's layout under ``root``; returns the train and val annotation paths."""
    return write_coco(root, "train2017", train, **kwargs), write_coco(root, "val2017", val, seed=1, **kwargs)


def test_num_classes_reads_the_categories_before_setup_without_images(tmp_path):
    write(tmp_path)
    for folder in ("train2017", "val2017"):
        for image in (tmp_path / folder).iterdir():
            image.unlink()
    dm = make(tmp_path)
    assert dm.num_classes == 3
    assert dm.classes == ["person", "car", "train"]  # category ids 1, 3, 7: sorted by id, not as listed


def test_eval_samples_are_float_images_and_xyxy_boxes_with_contiguous_labels(tmp_path):
    # Category 7 (train) is label 3, category 1 (person) label 1, category 3 (car) label 2.
    write(tmp_path, val=[[(7, 10, 5, 20, 10, 0), (1, 0, 0, 8, 8, 0)], [(3, 30, 20, 4.5, 6, 0)]])
    dm = make(tmp_path)
    dm.setup("validate")
    assert not hasattr(dm, "train_set")  # evaluating does not read the training file
    assert len(dm.val_set) == 2 and dm.test_set is dm.val_set
    image, target = dm.val_set[0]
    assert image.shape == (3, 48, 64) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1 and image.max() > 0.5  # in [0, 1], not normalised
    assert target["image_id"] == 100
    assert target["boxes"].tolist() == [[10, 5, 30, 15], [0, 0, 8, 8]] and target["boxes"].dtype == torch.float32
    assert target["labels"].tolist() == [3, 1] and target["labels"].dtype == torch.int64
    assert target["iscrowd"].tolist() == [False, False] and target["iscrowd"].dtype == torch.bool
    assert dm.val_set[1][1]["boxes"].tolist() == [[30, 20, 34.5, 26]] and dm.val_set[1][1]["labels"].tolist() == [2]


def test_the_flip_recipe_mirrors_boxes_with_the_image_and_eval_batches_keep_sizes(tmp_path):
    write(tmp_path, train=[[(3, 30, 20, 4, 6, 0)]])
    dm = make(tmp_path)
    dm.setup("fit")
    seen = {tuple(SeededSamples(dm.train_set)[(0, seed)][1]["boxes"][0].tolist()) for seed in range(12)}
    assert seen == {(30, 20, 34, 26), (64 - 34, 20, 64 - 30, 26)}
    images, targets = next(iter(dm.val_dataloader()))
    assert isinstance(images, tuple) and isinstance(targets, tuple) and len(images) == len(targets) == 2
    assert all(image.shape == (3, 48, 64) for image in images)  # not resized: the detector does that
    assert [t["image_id"] for t in targets] == [100, 103]  # unshuffled, in id order


def test_crowd_boxes_are_out_of_training_and_flagged_in_eval(tmp_path):
    boxes = [[(1, 2, 2, 10, 10, 0), (3, 20, 20, 30, 20, 1)]]
    write(tmp_path, train=boxes, val=boxes)
    dm = make(tmp_path)
    dm.setup("fit")
    train = dm.train_set[0][1]
    assert train["labels"].tolist() == [1] and train["iscrowd"].tolist() == [False] and len(train["boxes"]) == 1
    val = dm.val_set[0][1]
    assert val["labels"].tolist() == [1, 2] and val["iscrowd"].tolist() == [False, True]
    assert val["boxes"].tolist() == [[2, 2, 12, 12], [20, 20, 50, 40]]


def test_boxes_are_clipped_and_those_without_area_dropped_with_one_line_per_split(tmp_path, capsys):
    # Partly outside (clipped), zero width, wholly outside (dropped), touching the corner.
    train = [[(1, -5, 40, 20, 20, 0), (1, 10, 10, 0, 5, 0), (3, 70, 10, 5, 5, 0), (7, 60, 0, 10, 10, 0)], []]
    write(tmp_path, train=train)
    dm = make(tmp_path, recipe="ssd")
    dm.setup("fit")
    err = capsys.readouterr().err
    assert err.count("bam: ") == 1  # nothing dropped from val: no line for it
    path = tmp_path / "annotations" / "instances_train2017.json"
    assert f"bam: COCO {path}: dropped 2 of 4 box(es) with no area inside their image\n" in err
    objects = dm.train_set.objects[100]
    assert objects.boxes.tolist() == [[0, 40, 15, 48], [60, 0, 64, 10]] and objects.labels.tolist() == [1, 3]
    empty = dm.train_set[1][1]  # an image without objects trains, through the SSD recipe too
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,) and empty["iscrowd"].shape == (0,)
    _, targets = next(iter(dm.train_dataloader()))
    assert sorted(len(t["boxes"]) for t in targets)[0] == 0


def test_the_ssd_recipe_keeps_boxes_inside_300_pixels_and_fills_zoom_out_with_the_mean(tmp_path):
    write(tmp_path, images=3, size=(80, 60))
    dm = make(tmp_path, recipe="ssd")
    dm.setup("fit")
    corners = []
    for seed in range(24):
        image, target = SeededSamples(dm.train_set)[(seed % 3, seed)]
        assert image.shape == (3, 300, 300) and image.dtype == torch.float32
        boxes = target["boxes"]
        assert len(boxes) == len(target["labels"]) == len(target["iscrowd"])
        assert (boxes >= 0).all() and (boxes <= 300).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        corners.append(image[:, 0, 0])
    mean = torch.tensor([124, 116, 104]) / 255
    assert any(torch.allclose(corner, mean, atol=1.5 / 255) for corner in corners)  # a zoom-out's border


def test_the_same_seed_epoch_and_index_give_the_same_augmented_sample(tmp_path):
    write(tmp_path, images=3)
    dm = make(tmp_path, recipe="ssd")
    dm.setup("fit")
    samples = SeededSamples(dm.train_set)
    image, target = samples[(1, 1234)]
    torch.rand(100)  # the global RNG moves on; the sample does not
    again, target_again = samples[(1, 1234)]
    assert torch.equal(image, again) and torch.equal(target["boxes"], target_again["boxes"])
    others = [samples[(1, seed)][0] for seed in range(4)]
    assert any(not torch.equal(image, other) for other in others)


def test_an_epoch_is_the_same_with_workers_and_resumes_mid_epoch(tmp_path):
    write(tmp_path, images=5)
    batches = {}
    for workers in (0, 2):
        dm = make(tmp_path, recipe="ssd", num_workers=workers)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(3)
        batches[workers] = list(loader)
    assert len(batches[0]) == 3
    for (images0, targets0), (images2, targets2) in zip(batches[0], batches[2], strict=True):
        assert all(torch.equal(a, b) for a, b in zip(images0, images2, strict=True))
        assert [t["image_id"] for t in targets0] == [t["image_id"] for t in targets2]
    loader.load_state_dict({"batches": 2})
    (images, targets), *rest = list(loader)
    assert not rest and all(torch.equal(a, b) for a, b in zip(images, batches[0][2][0], strict=True))


def test_a_missing_root_is_not_found_from_num_classes_and_setup(tmp_path):
    dm = make(tmp_path / "nowhere")
    for read in (lambda: dm.num_classes, lambda: dm.setup("fit")):
        with pytest.raises(DatasetNotFoundError) as caught:
            read()
        assert str(caught.value) == (
            f"COCO annotations not found: {tmp_path / 'nowhere' / 'annotations' / 'instances_val2017.json'} is not a file;"
            " pass --data.root DIR or --data.val_annotations FILE"
        )


def test_missing_images_are_not_found_at_setup(tmp_path):
    write(tmp_path)
    (tmp_path / "train2017" / "train2017_000002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError) as caught:
        make(tmp_path).setup("fit")
    assert str(caught.value) == (
        f"1 of the 4 images {tmp_path / 'annotations' / 'instances_train2017.json'} lists are not in"
        f" {tmp_path / 'train2017'} (the first train2017_000002.jpg): pass --data.train_images DIR, the folder that holds them"
    )
    with pytest.raises(
        DatasetNotFoundError, match=r"COCO images not found: .*elsewhere is not a folder; .*--data.val_images DIR"
    ):
        make(tmp_path, val_images="elsewhere").setup("validate")


@pytest.mark.parametrize(
    "content,expected",
    [
        ("{not json", r"is not JSON \(Expecting property name enclosed in double quotes: line 1 column 2 \(char 1\)\)"),
        ("[1, 2]", r"is not a COCO instances file \(it has no 'images', 'annotations', 'categories'\)"),
        ('{"images": [], "annotations": []}', r"is not a COCO instances file \(it has no 'categories'\)"),
        ('{"images": [{"id": 1}], "annotations": [], "categories": []}', "lists no categories"),
        ('{"images": [{"file": 1}], "annotations": [], "categories": [{"id": 1}]}', r"an entry has no 'id'"),
        ('{"images": [{"id": 1}], "annotations": [], "categories": [{"id": 1, "name": "a"}]}', "an image has no 'file_name'"),
    ],
)
def test_an_annotation_file_that_is_not_coco_is_one_line(tmp_path, content, expected):
    _, val = write(tmp_path)
    val.write_text(content)
    with pytest.raises(InputError, match=expected) as caught:
        _ = make(tmp_path).num_classes
    message = str(caught.value)
    assert message.startswith(str(val)) and "\n" not in message
    assert message.endswith("pass --data.val_annotations FILE, a COCO instances JSON")


def test_train_and_val_with_different_categories_are_refused(tmp_path):
    write_coco(tmp_path, "train2017", categories=((1, "person"), (2, "bicycle")))
    write_coco(tmp_path, "val2017", categories=((1, "person"), (3, "car")))
    with pytest.raises(InputError, match=r"instances_train2017.json and .*instances_val2017.json list different categories"):
        make(tmp_path).setup("fit")


def test_a_negative_box_size_names_the_file_the_image_and_the_annotation(tmp_path):
    train, _ = write(tmp_path, train=[[(1, 2, 2, 5, 5, 0)], [(1, 2, 2, 5, 5, 0), (3, 30, 20, -10, 5, 0)]])
    with pytest.raises(InputError) as caught:
        make(tmp_path).setup("fit")
    assert str(caught.value) == (
        f"{train}: annotation 3 of image train2017_000001.jpg has a negative width or height (bbox [30, 20, -10, 5],"
        " COCO boxes are [x, y, width, height]): a broken annotation; fix or delete it"
    )


def test_unknown_categories_and_entries_without_fields_are_one_line(tmp_path):
    train, _ = write(tmp_path, train=[[(1, 2, 2, 5, 5, 0), (5, 2, 2, 5, 5, 0)]])
    with pytest.raises(InputError, match=r"instances_train2017.json: annotation 2 has category 5, which the file does not list"):
        make(tmp_path).setup("fit")
    data = json.loads(train.read_text())
    del data["annotations"][0]["bbox"]
    train.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"is not a COCO instances file: image id 100 .* \(KeyError: 'bbox'\)"):
        make(tmp_path).setup("fit")


def test_the_recipe_is_ssd_or_faster_rcnn():
    with pytest.raises(InputError, match="--data.recipe must be ssd or faster_rcnn, got 'yolo'"):
        COCODataModule(recipe="yolo")


def test_skip_puts_the_next_image_with_its_own_boxes_in_place_of_one_that_does_not_decode(tmp_path, capsys):
    write(tmp_path, val=[[(1, 2, 2, 5, 5, 0)], [(3, 10, 10, 8, 8, 0)], [(7, 20, 20, 6, 6, 0)]])
    broken = tmp_path / "val2017" / "val2017_000001.jpg"
    broken.write_text("not an image")
    dm = make(tmp_path, bad_images="skip")
    dm.setup("validate")
    image, target = dm.val_set[1]
    assert target["image_id"] == 106 and target["boxes"].tolist() == [[20, 20, 26, 26]] and target["labels"].tolist() == [3]
    assert torch.equal(image, dm.val_set[2][0])
    _, targets = next(iter(dm.val_dataloader()))
    assert [t["image_id"] for t in targets] == [100, 106]  # the batch keeps its size
    dm.teardown("validate")
    err = capsys.readouterr().err
    assert err.count(str(broken)) == 1  # once: the mask passes over it without decoding it again
    assert f"bam: skipped 1 unreadable image(s) of 3 under {tmp_path / 'val2017'} (--data.bad_images skip)\n" in err
    with pytest.raises(InputError, match="--data.bad_images must be fail or skip, got 'maybe'"):
        make(tmp_path, bad_images="maybe")


def test_annotations_of_images_the_file_does_not_list_are_counted_in_the_splits_line(tmp_path, capsys):
    train, _ = write(tmp_path, train=[[(1, 2, 2, 5, 5, 0), (3, 70, 10, 5, 5, 0)], [(7, 4, 4, 6, 6, 0)]])
    data = json.loads(train.read_text())
    data["annotations"] += [{**data["annotations"][0], "id": 10 + i, "image_id": 999} for i in range(2)]
    train.write_text(json.dumps(data))
    dm = make(tmp_path)
    dm.setup("fit")
    assert sorted(dm.train_set.objects) == [100, 103] and len(dm.train_set.objects[100].boxes) == 1
    assert capsys.readouterr().err == (
        f"bam: COCO {train}: dropped 1 of 3 box(es) with no area inside their image;"
        " left out 2 annotation(s) of images the file does not list\n"
    )
    del data["annotations"][1]  # the box outside its image gone: that count alone
    train.write_text(json.dumps(data))
    make(tmp_path).setup("fit")
    assert capsys.readouterr().err == f"bam: COCO {train}: left out 2 annotation(s) of images the file does not list\n"
