"""Grad-CAM and its kin beside BAM's own maps: the pixels a class decision used (the ``grad-cam`` package, an extra).

BAM's map says where the block attends before any decision; a class activation map says which
pixels raised the score of the class the network chose. Both are drawn in ``bam attention``'s
one-PNG layout, on each BAM's output and on the last stage's (a baseline without BAM gets the
last stage alone).
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..models.probe import probing
from ..nn import BAMS, attention_blocks

METHODS = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "eigencam": "EigenCAM"}


def last_stage(model: nn.Module, inputs: Tensor) -> tuple[str, nn.Module]:
    """The last of ``model``'s own children to give a map larger than 1x1 on ``inputs``: its last stage (not its pooling)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable:
        return lambda module, args, output: shapes.__setitem__(name, tuple(output.shape) if isinstance(output, Tensor) else ())

    children = list(model.named_children())
    hooks = [child.register_forward_hook(record(name)) for name, child in children]
    with probing(model, hooks):
        model(inputs[:1])
    maps = [(name, child) for name, child in children if len(shapes.get(name, ())) == 4 and shapes[name][2] * shapes[name][3] > 1]
    if not maps:
        raise InputError(f"{type(model).__name__} has no child that gives a feature map: no layer to draw a CAM on")
    return maps[-1]


def class_maps(model: nn.Module, inputs: Tensor, method: str) -> list[tuple[str, Tensor]]:
    """(layer, maps (N, H, W) in [0, 1]) for each BAM's output and the last stage, each image's top class as target."""
    try:
        import pytorch_grad_cam
    except ImportError:
        raise InputError(f"--method {method} needs the grad-cam package: pip install 'bam_lightning[gradcam]'") from None
    cam_class = getattr(pytorch_grad_cam, METHODS[method])
    layers = [*attention_blocks(model, BAMS), last_stage(model, inputs)]
    found = []
    for name, layer in layers:
        with cam_class(model=model, target_layers=[layer]) as cam:
            found.append((f"{method} {name}", torch.from_numpy(cam(input_tensor=inputs, targets=None)).float()))
    return found
