"""Backbone families (one file each), the registry that names them, and attention placement."""

from . import cifar_resnet, densenet, mobilenet, preact_resnet, resnet, squeezenet, vgg  # noqa: F401  (register the builders)
from .complexity import activation_bytes, count_macs, count_parameters, images_per_second
from .insert import DEFAULT_ATTENTION, Attention, Bottleneck, Placement, extra_block, find_bottlenecks, insert_attention
from .official import from_official_checkpoint
from .pretrained import from_pretrained, register_with_timm
from .registry import create_model, get_model_entry, list_models, register_model

__all__ = [
    "DEFAULT_ATTENTION",
    "Attention",
    "activation_bytes",
    "Bottleneck",
    "Placement",
    "count_macs",
    "count_parameters",
    "create_model",
    "extra_block",
    "find_bottlenecks",
    "from_official_checkpoint",
    "from_pretrained",
    "get_model_entry",
    "images_per_second",
    "insert_attention",
    "list_models",
    "register_model",
]

register_with_timm()  # timm.create_model("local-dir:DIR") and list_models("*bam*") for timm's users, after import bam_lightning
