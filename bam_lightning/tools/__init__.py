"""Tools behind the ``bam`` subcommands that are not Trainer methods.

``TOOLS`` names each subcommand and the module whose ``main(args)`` runs it; ``bam`` (``cli.main``)
dispatches to it and lists it among its commands.
"""

TOOLS = {
    "summary": "bam_lightning.tools.summary",
    "attention": "bam_lightning.tools.attention",
    "compare": "bam_lightning.tools.compare",
    "detect": "bam_lightning.tools.detect",
}
