import pytest
import torch

from bam_lightning.errors import InputError
from bam_lightning.models import count_parameters, create_model, get_model_entry, list_models, register_model
from bam_lightning.nn import BAM

# How many bottlenecks each family has at its input size: one BAM after every stage
# whose output the next stage downsamples (the stem excluded, nothing after the last).
EXPECTED_BAMS = {
    **dict.fromkeys(["cifar_resnet18", "cifar_resnet34", "cifar_resnet50", "cifar_resnet101"], 3),
    **dict.fromkeys(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet18"], 3),
    **dict.fromkeys(["resnext29_8x64d", "resnext29_16x64d", "wrn", "wrn16_8", "wrn28_8", "wrn28_10"], 2),
    **dict.fromkeys(["preresnet", "preresnet110", "squeezenet1_1"], 2),
    "mobilenet_v1": 4,
    "vgg16": 4,  # after conv1_2, conv2_2, conv3_3 and conv4_3, before their max-pools
    "densenet100_bc": 4,  # before and after each of its two transitions
}


def test_every_listed_model_is_accounted_for():
    assert list_models() == sorted(EXPECTED_BAMS)
    assert list_models("cifar_*") == ["cifar_resnet101", "cifar_resnet18", "cifar_resnet34", "cifar_resnet50"]


@pytest.mark.parametrize("name", sorted(EXPECTED_BAMS))
def test_full_size_model_forward_shape_and_bam_count(name):
    """On the meta device: shapes and the graph at the model's own input size, without computing them (a real
    full-size forward and backward of all of them took 75 s of the suite; the trained and tested paths are real)."""
    size = get_model_entry(name).input_size
    with torch.device("meta"):
        model = create_model(name, num_classes=7)
        model.train()
        logits = model(torch.randn(2, 3, size, size))
    assert sum(isinstance(m, BAM) for m in model.modules()) == EXPECTED_BAMS[name]
    assert logits.shape == (2, 7)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_a_second_builder_of_a_registered_name_is_refused():
    def resnet50(num_classes: int) -> torch.nn.Module:
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="model 'resnet50' is registered twice"):
        register_model(input_size=32)(resnet50)
    assert get_model_entry("resnet50").input_size == 224


def test_input_sizes():
    assert get_model_entry("wrn28_8").input_size == 32
    assert get_model_entry("cifar_resnet50").input_size == 32
    assert get_model_entry("resnet50").input_size == 224
    assert get_model_entry("squeezenet1_1").input_size == 224


def test_unknown_model_and_attention_are_clear_errors():
    near = r"unknown model 'resnet51' \(did you mean 'resnet50'\?\): "
    with pytest.raises(InputError, match=near + "choose one of cifar_resnet101, .*, wrn28_8, or timm/<name>$"):
        create_model("resnet51", 10)
    with pytest.raises(InputError, match="unknown model 'yolo': choose one of"):
        create_model("yolo", 10)
    with pytest.raises(ValueError, match="unknown attention 'bam2'"):
        create_model("wrn16_8", 10, attention="bam2")


def test_builder_and_attention_options_pass_through():
    model = create_model("wrn", 10, attention="bam", attention_kwargs={"reduction": 8}, depth=16, widen_factor=2)
    bams = [m for m in model.modules() if isinstance(m, BAM)]
    assert [b.channel.mlp[0].out_features for b in bams] == [32 // 8, 64 // 8]
    assert model.fc.in_features == 128
    with pytest.raises(ValueError, match="6n \\+ 4"):
        create_model("wrn", 10, depth=27)


def test_attention_none_is_the_bare_backbone():
    torch.manual_seed(0)
    bare = create_model("resnet18", 10, attention=None)
    torch.manual_seed(0)
    import torchvision

    reference = torchvision.models.resnet18(num_classes=10)
    assert count_parameters(bare) == count_parameters(reference)
    bare.eval(), reference.eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(bare(x), reference(x))


def test_mobilenet_width_multiplier_scales_every_layer():
    model = create_model("mobilenet_v1", 10, attention=None, width_mult=0.5)
    assert model.fc.in_features == 512
    assert count_parameters(model) < count_parameters(create_model("mobilenet_v1", 10, attention=None)) / 3


def test_a_misspelt_backbone_option_is_named_with_the_nearest_one():
    with pytest.raises(ValueError, match=r"wide_resnet18 has no option 'widen' \(did you mean 'widen_factor'\?\)"):
        create_model("wide_resnet18", 10, widen=2.0)
    with pytest.raises(ValueError, match="resnet50 has no option 'depth': it takes no backbone_kwargs"):
        create_model("resnet50", 10, depth=18)
