"""``python -m bam_lightning.cli``: the ``bam`` command, as torchrun and SLURM job scripts start it."""

from . import main

main()
