"""The ``bam`` command's subcommands, by name: a leaf that the command, its tools and its one-line errors all import.

``TOOLS`` maps each research tool to the module whose ``main(args)`` runs it; ``COMMANDS`` lists what ``bam``
runs: the Trainer methods LightningCLI makes subcommands of, then the tools.
"""

from lightning.pytorch.cli import LightningCLI

TOOLS = {
    "summary": "bam_lightning.tools.summary",
    "attention": "bam_lightning.tools.attention",
    "compare": "bam_lightning.tools.compare",
    "detect": "bam_lightning.tools.detect",
    "export": "bam_lightning.tools.export",
}
COMMANDS = (*LightningCLI.subcommands(), *TOOLS)
