"""Attention blocks, one per file, chosen by name through ``create_attn``."""

from .bam import BAM
from .bam_official import OfficialBAM
from .cbam import CBAM
from .create import ATTENTION_LAYERS, BAMS, AttentionName, attention_blocks, create_attn, create_attns, get_attn
from .norm import BATCH_NORMS, BatchNorm1d, BatchNorm2d
from .se import SqueezeExcite

__all__ = [
    "ATTENTION_LAYERS",
    "BATCH_NORMS",
    "BAM",
    "BAMS",
    "CBAM",
    "AttentionName",
    "BatchNorm1d",
    "BatchNorm2d",
    "OfficialBAM",
    "SqueezeExcite",
    "attention_blocks",
    "create_attn",
    "create_attns",
    "get_attn",
]
