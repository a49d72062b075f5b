"""Checkpoints in the layout of the BAM paper's public training script, with random weights."""

import torch

from bam_lightning.paper.reference import load_reference

SHAPES = load_reference("official_resnet50_bam_state_dict")["state_dict_shapes"]


def random_official_state_dict() -> dict[str, torch.Tensor]:
    """Random weights in the public ResNet-50+BAM layout, scaled so 50 layers stay finite."""
    state = {}
    for key, shape in SHAPES.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var") or (key.endswith("weight") and len(shape) == 1):
            state[key] = torch.rand(shape) + 0.5
        elif len(shape) == 1:
            state[key] = 0.1 * torch.randn(shape)
        else:
            fan_in = torch.Size(shape[1:]).numel()
            state[key] = torch.randn(shape) / fan_in**0.5
    return state


def save_like_the_public_script(path, state):
    torch.save(
        {
            "epoch": 90,
            "arch": "resnet",
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "best_prec1": torch.tensor(76.86),
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "momentum": 0.9, "params": [0, 1]}]},
        },
        path,
    )
