"""The VOC detectors of the paper's Table 4b: SSD300 and StairNet300 on VGG-16 and MobileNet v1."""

import pytest
import torch
from torchvision.models.detection.ssd import SSDHead
from torchvision.models.detection.ssdlite import SSDLiteHead

from bam_lightning.errors import InputError
from bam_lightning.models import count_parameters, create_model
from bam_lightning.models.detection import get_detector_entry
from bam_lightning.models.detection.ssd import ssd300
from bam_lightning.models.detection.stairnet import stairnet300
from bam_lightning.nn import ATTENTION_LAYERS, BAM, OfficialBAM
from bam_lightning.paper.reference import load_reference

ROWS = load_reference("paper_tables")["detection"]["voc2007"]["rows"]
BACKBONES = {"VGG16": "vgg16", "MobileNet": "mobilenet_v1"}
DETECTORS = {"SSD": (ssd300, [None]), "StairNet": (stairnet300, [None]), "StairNet + BAM": (stairnet300, ["bam", "bam_official"])}
VOC_CLASSES = 21  # 20 object classes and background


def build(builder, backbone: str, attention: str | None = None, **backbone_kwargs):
    return builder(create_model(backbone, 1000, attention=None, **backbone_kwargs), VOC_CLASSES, attention)


def printed_precision(value: float) -> int:
    return len(repr(value).split(".")[1])


@pytest.mark.parametrize(
    "row, attention",
    [
        pytest.param(row, attention, id=f"{row['backbone']}-{row['detector']}-{attention}")
        for row in ROWS
        for attention in DETECTORS[row["detector"]][1]
    ],
)
def test_parameter_count_is_the_printed_one(row, attention):
    builder = DETECTORS[row["detector"]][0]
    with torch.device("meta"):
        model = build(builder, BACKBONES[row["backbone"]], attention)
    digits = printed_precision(row["params_M"])
    assert round(count_parameters(model) / 1e6, digits) == row["params_M"]


def test_the_table_has_six_rows_and_both_builders_attend_before_the_heads():
    assert [(r["backbone"], r["detector"]) for r in ROWS] == [(b, d) for b in BACKBONES for d in DETECTORS]
    assert get_detector_entry("ssd300").attention_in == get_detector_entry("stairnet300").attention_in == "heads"


@pytest.mark.parametrize(
    "builder, backbone, channels, sizes",
    [
        (ssd300, "vgg16", [512, 1024, 512, 256, 256, 256], [38, 19, 10, 5, 3, 1]),
        (stairnet300, "vgg16", [256] * 6, [38, 19, 10, 5, 3, 1]),
        (ssd300, "mobilenet_v1", [512, 1024, 512, 256, 256, 128], [19, 10, 5, 3, 2, 1]),
        (stairnet300, "mobilenet_v1", [128] * 6, [19, 10, 5, 3, 2, 1]),
    ],
)
def test_six_maps_feed_the_heads_with_ssd300_default_boxes(builder, backbone, channels, sizes):
    with torch.device("meta"):
        model = build(builder, backbone)
        maps = list(model.backbone(torch.empty(1, 3, 300, 300)).values())
    assert [tuple(m.shape[1:]) for m in maps] == [(c, s, s) for c, s in zip(channels, sizes, strict=True)]
    assert model.anchor_generator.num_anchors_per_location() == [6, 6, 6, 6, 4, 4]
    assert model.transform.fixed_size == (300, 300)


@pytest.mark.parametrize("builder", [ssd300, stairnet300])
@pytest.mark.parametrize("attention", [None, "bam", "bam_official", "se", "cbam"])
def test_attention_sits_on_each_head_map_only_when_asked(builder, attention):
    with torch.device("meta"):
        model = build(builder, "mobilenet_v1", attention)
    found = [m for m in model.modules() if isinstance(m, tuple(ATTENTION_LAYERS.values()))]
    if attention is None:
        assert found == []
    else:
        assert [type(m) for m in found] == [ATTENTION_LAYERS[attention]] * 6
        assert list(model.backbone.attention) == found


def test_attention_options_reach_every_module():
    with torch.device("meta"):
        model = ssd300(create_model("mobilenet_v1", 1000, attention=None), VOC_CLASSES, "bam", {"reduction": 8})
    assert [m.channel.mlp[0].out_features for m in model.modules() if isinstance(m, BAM)] == [64, 128, 64, 32, 32, 16]


def test_a_classifier_without_an_ssd_cut_is_refused():
    with torch.device("meta"):
        classifier = create_model("resnet18", 1000, attention=None)
    with pytest.raises(InputError, match="vgg16 or mobilenet_v1"):
        ssd300(classifier, VOC_CLASSES)


@pytest.mark.parametrize(
    "builder, attention, options",
    [(ssd300, None, {}), (stairnet300, "bam_official", {}), (stairnet300, "bam", {"head": "separable", "extras_norm": "batch"})],
)
def test_train_losses_and_eval_boxes_in_each_image_own_frame(builder, attention, options):
    torch.manual_seed(0)
    classifier = create_model("mobilenet_v1", 1000, attention=None, width_mult=0.25)
    model = builder(classifier, VOC_CLASSES, attention, **options)
    images = (torch.rand(3, 150, 200), torch.rand(3, 240, 120))
    targets = (
        {"boxes": torch.tensor([[10.0, 20.0, 90.0, 140.0]]), "labels": torch.tensor([3])},
        {"boxes": torch.tensor([[5.0, 5.0, 60.0, 100.0], [30.0, 120.0, 110.0, 230.0]]), "labels": torch.tensor([1, 20])},
    )
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"bbox_regression", "classification"}
    assert all(torch.isfinite(loss) and loss > 0 for loss in losses.values())
    sum(losses.values()).backward()
    attended = [m for m in model.modules() if isinstance(m, (BAM, OfficialBAM))]
    assert len(attended) == (6 if attention else 0)
    assert all(p.grad is not None for m in attended for p in m.parameters())
    assert torch.isfinite(sum(model(images[:1], targets[:1]).values()))  # one image: the 1x1 map's norms hold

    model.eval()
    with torch.no_grad():
        detections = model(images)
    for image, found in zip(images, detections, strict=True):
        height, width = image.shape[1:]
        boxes = found["boxes"]
        assert len(boxes) > 0 and found["labels"].min() >= 1 and found["labels"].max() < VOC_CLASSES
        assert boxes[:, 0::2].min() >= 0 and boxes[:, 1::2].min() >= 0
        assert boxes[:, 2].max() <= width and boxes[:, 3].max() <= height
        assert boxes[:, 2].max() > 0.9 * width and boxes[:, 3].max() > 0.9 * height  # not in the 300x300 frame


@pytest.mark.parametrize("builder", [ssd300, stairnet300])
def test_from_scratch_options_change_only_what_they_name(builder):
    with torch.device("meta"):
        classifier = create_model("mobilenet_v1", 1000, attention=None)
        paper = builder(classifier, VOC_CLASSES)
        options = builder(create_model("mobilenet_v1", 1000, attention=None), VOC_CLASSES, None, None, "separable", "batch")
    assert isinstance(options.head, SSDLiteHead) and isinstance(paper.head, SSDHead)
    extras = options.backbone.extractor.extra if builder is stairnet300 else options.backbone.extra
    norms = [m for block in extras[1:] for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 2 * len(extras[1:])  # after each of the extras' 1x1 and 3x3 convs
    assert count_parameters(options) > count_parameters(paper)
    assert options.anchor_generator.num_anchors_per_location() == paper.anchor_generator.num_anchors_per_location()


def test_batch_normed_extras_give_caffe_mobilenet_ssds_count():
    with torch.device("meta"):
        model = ssd300(create_model("mobilenet_v1", 1000, attention=None), VOC_CLASSES, extras_norm="batch")
    assert count_parameters(model) == 5_815_264


@pytest.mark.parametrize(
    "backbone, options, message",
    [
        ("mobilenet_v1", {"head": "wide"}, "head must be conv or separable, got 'wide'"),
        ("mobilenet_v1", {"extras_norm": "group"}, "extras_norm must be none or batch, got 'group'"),
        ("vgg16", {"extras_norm": "batch"}, "extras_norm applies to mobilenet_v1"),
    ],
)
def test_bad_from_scratch_options_are_refused(backbone, options, message):
    with torch.device("meta"), pytest.raises(InputError, match=message):
        ssd300(create_model(backbone, 1000, attention=None), VOC_CLASSES, **options)


@pytest.mark.parametrize(
    "backbone, pixels",
    [
        ("vgg16", [30, 60, 111, 162, 213, 264, 315]),  # SSD300's VOC min_sizes and the last max_size (Caffe SSD)
        ("mobilenet_v1", [60, 105, 150, 195, 240, 285, 300]),  # MobileNet-SSD's, for its stride-16 first map
    ],
)
def test_default_boxes_are_sized_for_the_backbones_grids(backbone, pixels):
    with torch.device("meta"):
        model = build(ssd300, backbone)
    assert [round(scale * 300) for scale in model.anchor_generator.scales] == pixels


def test_stairnets_width_widens_every_map_the_heads_see():
    torch.manual_seed(0)
    classifier = create_model("mobilenet_v1", 1000, attention=None, width_mult=0.25)
    model = stairnet300(classifier, VOC_CLASSES, width=256).eval()
    with torch.no_grad():
        refined = list(model.backbone(torch.rand(1, 3, 300, 300)).values())
    assert [m.shape[1] for m in refined] == [256] * 6
    assert [m.shape[-1] for m in refined] == [19, 10, 5, 3, 2, 1]
    assert [conv.in_channels for conv in model.head.classification_head.module_list] == [256] * 6


def test_stairnets_top_down_path_starts_silent_and_can_learn_to_add():
    """Each upsampling norm starts at scale 0: every map begins as its own projection; the scales still get gradients."""
    torch.manual_seed(0)
    top_down = stairnet300(create_model("mobilenet_v1", 1000, attention=None, width_mult=0.25), VOC_CLASSES).backbone
    x = torch.rand(2, 3, 300, 300)
    refined = list(top_down.eval()(x).values())
    with torch.no_grad():
        maps = top_down.extractor(x).values()
        own = [refine(lateral(m)) for refine, lateral, m in zip(top_down.refine, top_down.lateral, maps, strict=True)]
    assert all(torch.equal(r, o) for r, o in zip(refined, own, strict=True))
    sum(m.square().mean() for m in top_down.train()(x).values()).backward()
    assert all(norm.weight.grad.abs().sum() > 0 for _, norm in top_down.upsample)
