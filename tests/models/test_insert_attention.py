import pytest
import torch
import torchvision
from torch import nn

from bam_lightning.errors import InputError
from bam_lightning.models import find_bottlenecks, insert_attention
from bam_lightning.nn import BAM


def bam_input_sizes(model: nn.Module, size: int) -> list[int]:
    """Spatial size seen by each BAM on one forward pass, in execution order."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, a, o: seen.append(a[0].shape[-1])) for m in model.modules() if isinstance(m, BAM)]
    model.eval()(torch.randn(1, 3, size, size))
    for h in hooks:
        h.remove()
    return seen


def test_resnet50_gets_one_bam_after_layer1_2_3_and_keeps_torchvision_names():
    bare = torchvision.models.resnet50()
    model = torchvision.models.resnet50()
    model.load_state_dict(bare.state_dict())
    assert [(b.after, b.channels) for b in find_bottlenecks(model, 224)] == [("layer1", 256), ("layer2", 512), ("layer3", 1024)]
    insert_attention(model, "bam")
    assert [n for n, m in model.named_modules() if isinstance(m, BAM)] == ["layer1.attn", "layer2.attn", "layer3.attn"]
    assert bam_input_sizes(model, 224) == [56, 28, 14]
    missing, unexpected = model.load_state_dict(bare.state_dict(), strict=False)
    assert not unexpected and all(".attn." in k for k in missing)


def test_mobilenet_v2_gets_one_bam_before_each_of_its_four_downsamplings():
    model = insert_attention(torchvision.models.mobilenet_v2(), "bam")
    names = [n for n, m in model.named_modules() if isinstance(m, BAM)]
    assert names == ["features.1_attn", "features.3_attn", "features.6_attn", "features.13_attn"]
    assert [m.channel.mlp[-1].num_features for m in model.modules() if isinstance(m, BAM)] == [16, 24, 32, 96]
    assert bam_input_sizes(model, 224) == [112, 56, 28, 14]
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


class NeverSeen(nn.Module):
    """A network of our own: custom blocks in a ModuleList, two-conv stem, pooling between stages."""

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
            self.norm = nn.GroupNorm(4, c_out)

        def forward(self, x):
            return torch.relu(self.norm(self.conv(x)))

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 1, 1))
        self.blocks = nn.ModuleList(
            [self.Block(16, 24, 1), self.Block(24, 32, 2), nn.MaxPool2d(2), self.Block(32, 48, 1), self.Block(48, 64, 2)]
        )
        self.head = nn.Linear(64, 5)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean((2, 3)))


def test_a_network_never_seen_gets_one_bam_per_bottleneck():
    model = NeverSeen()
    # 40 -> stem 20 -> block0 20 | block1 10 | pool 5 | block3 5 | block4 3: shrinks at block1, pool, block4.
    assert [(b.after, b.channels) for b in find_bottlenecks(model, 40)] == [
        ("blocks.0", 24),
        ("blocks.1", 32),
        ("blocks.3", 48),
    ]
    insert_attention(model, "bam", input_size=40)
    assert sum(isinstance(m, BAM) for m in model.modules()) == 3
    assert bam_input_sizes(model, 40) == [20, 10, 5]
    assert model(torch.randn(2, 3, 40, 40)).shape == (2, 5)


def test_other_attention_and_options_are_placed_the_same_way():
    model = insert_attention(torchvision.models.resnet18(), "se", attention_kwargs={"reduction": 8})
    se = [m for n, m in model.named_modules() if n.endswith("attn")]
    assert [m.fc1.out_channels for m in se] == [64 // 8, 128 // 8, 256 // 8]


def test_none_leaves_the_model_untouched_and_no_bottleneck_is_an_error():
    model = torchvision.models.resnet18()
    keys = list(model.state_dict())
    assert insert_attention(model, None) is model and list(model.state_dict()) == keys
    with pytest.raises(ValueError, match="no bottleneck found.*input_size"):
        insert_attention(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()), "bam", input_size=16)


def test_trace_restores_training_mode():
    model = torchvision.models.resnet18().train()
    find_bottlenecks(model)
    assert model.training


def test_placements_differ_only_where_the_network_allows():
    resnet = torchvision.models.resnet50()
    bottleneck = find_bottlenecks(resnet, 224)
    assert find_bottlenecks(resnet, 224, placement="around_downsampling") == bottleneck  # stages downsample themselves
    every = [b.after for b in find_bottlenecks(resnet, 224, placement="every_block")]
    assert len(every) == 3 + 4 + 6 + 3 and every[:4] == ["layer1.0", "layer1.1", "layer1.2", "layer2.0"]
    densenet = torchvision.models.densenet121()
    around = [b.after for b in find_bottlenecks(densenet, 224, placement="around_downsampling")]
    assert around == [
        "features.denseblock1",
        "features.transition1",
        "features.denseblock2",
        "features.transition2",
        "features.denseblock3",
        "features.transition3",
    ]


def test_an_unknown_placement_is_refused_not_taken_for_bottleneck():
    message = r"unknown placement 'every_blocks' \(did you mean 'every_block'\?\): choose one of bottleneck, around_"
    with pytest.raises(InputError, match=message):
        insert_attention(torchvision.models.resnet18(), placement="every_blocks")
