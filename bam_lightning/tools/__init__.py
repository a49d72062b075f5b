"""Tools behind the ``bam`` subcommands that are not Trainer methods."""
