"""The ``bam`` command: LightningCLI wired to the task's LightningModule and our DataModules (docs/contributing.md says what
it adds to LightningCLI and where)."""

from .app import BamCLI, build_cli
from .exits import main
from .task import task_of

__all__ = ["BamCLI", "build_cli", "main", "task_of"]
