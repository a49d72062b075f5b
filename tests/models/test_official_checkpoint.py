"""Import of the public code's checkpoints, checked against an independent functional forward."""

import pathlib
import pickle

import pytest
import torch
from torch.nn import functional as F

from bam_lightning import from_official_checkpoint
from bam_lightning.errors import InputError
from bam_lightning.models import create_model
from bam_lightning.models.official import official_to_ours

from helpers.official import SHAPES, random_official_state_dict, save_like_the_public_script


# --- the public code's forward, written out from its equations over the raw state dict ---
def bn(x, sd, p):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, 1e-5)


def bottleneck(x, sd, p, stride):
    out = F.relu(bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
    out = F.relu(bn(F.conv2d(out, sd[f"{p}.conv2.weight"], stride=stride, padding=1), sd, f"{p}.bn2"))
    out = bn(F.conv2d(out, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
    if f"{p}.downsample.0.weight" in sd:
        x = bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd, f"{p}.downsample.1")
    return F.relu(out + x)


def official_bam(x, sd, p):
    c, s = f"{p}.channel_att.gate_c.", f"{p}.spatial_att.gate_s."
    v = F.avg_pool2d(x, x.size(2), stride=x.size(2)).flatten(1)
    v = F.relu(bn(F.linear(v, sd[c + "gate_c_fc_0.weight"], sd[c + "gate_c_fc_0.bias"]), sd, c + "gate_c_bn_1"))
    channel = F.linear(v, sd[c + "gate_c_fc_final.weight"], sd[c + "gate_c_fc_final.bias"])[:, :, None, None].expand_as(x)
    m = F.relu(
        bn(F.conv2d(x, sd[s + "gate_s_conv_reduce0.weight"], sd[s + "gate_s_conv_reduce0.bias"]), sd, s + "gate_s_bn_reduce0")
    )
    for i in range(2):
        m = F.conv2d(m, sd[s + f"gate_s_conv_di_{i}.weight"], sd[s + f"gate_s_conv_di_{i}.bias"], padding=4, dilation=4)
        m = F.relu(bn(m, sd, s + f"gate_s_bn_di_{i}"))
    spatial = F.conv2d(m, sd[s + "gate_s_conv_final.weight"], sd[s + "gate_s_conv_final.bias"]).expand_as(x)
    return (1 + torch.sigmoid(channel * spatial)) * x


def official_resnet50_bam(x, sd):
    x = F.max_pool2d(F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1")), 3, 2, 1)
    for layer, blocks in enumerate([3, 4, 6, 3], start=1):
        for b in range(blocks):
            x = bottleneck(x, sd, f"layer{layer}.{b}", 2 if layer > 1 and b == 0 else 1)
        if layer < 4:
            x = official_bam(x, sd, f"bam{layer}")
    return F.linear(F.avg_pool2d(x, 7).flatten(1), sd["fc.weight"], sd["fc.bias"])


def test_key_layout_maps_one_to_one_onto_ours():
    model = create_model("resnet50", 1000, attention="bam_official")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped = official_to_ours({f"module.{k}": torch.empty(v) for k, v in SHAPES.items()}, model)
    assert len(SHAPES) == len(ours) == 416
    assert {k: tuple(v.shape) for k, v in mapped.items()} == ours
    assert mapped.keys() >= {
        "layer1.attn.channel_att.gate_c.gate_c_fc_0.weight",
        "layer3.attn.spatial_att.gate_s.gate_s_conv_final.bias",
    }


def test_imported_network_computes_what_the_public_code_computes(tmp_path):
    state = random_official_state_dict()
    save_like_the_public_script(tmp_path / "model_best.pth.tar", state)
    model = from_official_checkpoint(tmp_path / "model_best.pth.tar", arch="resnet50", num_classes=1000)
    assert not model.training
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = model(x), official_resnet50_bam(x, state)
    assert theirs.abs().max() > 0.1  # a real signal, not a vanished one
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_plain_state_dict_without_wrapper_also_loads(tmp_path):
    state = random_official_state_dict()
    torch.save(state, tmp_path / "plain.pth")
    model = from_official_checkpoint(tmp_path / "plain.pth")
    torch.testing.assert_close(model.fc.bias, state["fc.bias"])


def test_missing_unexpected_and_misshapen_keys_are_named(tmp_path):
    state = random_official_state_dict()
    del state["fc.bias"]
    state["bam4.gate.weight"] = torch.zeros(3)
    save_like_the_public_script(tmp_path / "bad.pth.tar", state)
    with pytest.raises(ValueError, match=r"missing keys fc\.bias.*unexpected keys bam4\.gate\.weight"):
        from_official_checkpoint(tmp_path / "bad.pth.tar")
    save_like_the_public_script(tmp_path / "other_classes.pth.tar", random_official_state_dict())
    with pytest.raises(ValueError, match=r"100 classes: wrong shapes fc\.bias, fc\.weight"):
        from_official_checkpoint(tmp_path / "other_classes.pth.tar", num_classes=100)


class Exploit:
    """Unpickling this touches a file: what a malicious checkpoint would do, harmlessly."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


def test_missing_file_and_code_carrying_pickle_are_refused(tmp_path):
    with pytest.raises(InputError, match="no checkpoint file"):
        from_official_checkpoint(tmp_path / "nope.pth")
    target = tmp_path / "pwned"
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"state_dict": Exploit(target)}, protocol=2))
    pickle.loads(pickle.dumps(Exploit(tmp_path / "proof"), protocol=2))
    assert (tmp_path / "proof").exists()  # the payload really runs when unpickled blindly
    with pytest.raises(InputError, match="evil.pth is refused: it holds more than tensors and numbers"):
        from_official_checkpoint(tmp_path / "evil.pth")
    assert not target.exists()
