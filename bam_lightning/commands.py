"""What ``bam`` runs: the subcommands that are not Trainer methods, each with the module whose ``main(args)`` runs it
(``TOOLS``), and all its commands. The command (``cli``), its error wording (``config_errors``) and the tools read them here.
"""

from lightning.pytorch.cli import LightningCLI

TOOLS = {
    "summary": "bam_lightning.tools.summary",
    "attention": "bam_lightning.tools.attention",
    "compare": "bam_lightning.tools.compare",
    "detect": "bam_lightning.tools.detect",
    "export": "bam_lightning.tools.export",
    "sweep": "bam_lightning.tools.sweep",
}
COMMANDS = (*LightningCLI.subcommands(), *TOOLS)  # the Trainer methods LightningCLI makes subcommands of, then TOOLS
