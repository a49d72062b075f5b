"""The ``bam`` subcommands that are not Trainer methods, each with the module whose ``main(args)`` runs it.

A leaf module: the command (``cli``), its error wording (``config_errors``) and the tools all read the names here.
"""

TOOLS = {
    "summary": "bam_lightning.tools.summary",
    "attention": "bam_lightning.tools.attention",
    "compare": "bam_lightning.tools.compare",
    "detect": "bam_lightning.tools.detect",
    "export": "bam_lightning.tools.export",
    "sweep": "bam_lightning.tools.sweep",
}
