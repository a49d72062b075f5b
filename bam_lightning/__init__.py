"""bam_lightning: the Bottleneck Attention Module (BAM, BMVC 2018) for PyTorch Lightning."""

from .models import create_model, from_official_checkpoint, from_pretrained, insert_attention, list_models
from .nn import BAM, create_attn

__version__ = "0.1.0"

__all__ = [
    "BAM",
    "create_attn",
    "create_model",
    "from_official_checkpoint",
    "from_pretrained",
    "insert_attention",
    "list_models",
]
