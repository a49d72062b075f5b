"""What ``bam`` runs: the subcommands that are not Trainer methods, each with the module whose ``main(args)`` runs it
(``TOOLS``), all its commands, and how ``bam --help`` sums them up; the command (``cli``), its error wording
(``config_errors``) and the tools read them here.
"""

from lightning.pytorch.cli import LightningCLI

TOOLS = {
    "summary": "bam_lightning.tools.summary",
    "attention": "bam_lightning.tools.attention",
    "compare": "bam_lightning.tools.compare",
    "detect": "bam_lightning.tools.detect",
    "export": "bam_lightning.tools.export",
    "sweep": "bam_lightning.tools.sweep",
    "tune": "bam_lightning.tools.tune",
}
COMMANDS = (*LightningCLI.subcommands(), *TOOLS)  # the Trainer methods LightningCLI makes subcommands of, then TOOLS
DESCRIPTION = (  # bam --help's
    f"BAM (Bottleneck Attention Module) experiments: {', '.join(LightningCLI.subcommands())} from a YAML config."
    f" Research tools: {', '.join(f'bam {tool}' for tool in TOOLS)} (each with --help)."
)
