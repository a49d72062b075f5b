"""What a run logged to TensorBoard, read back."""

import re
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar in the event files of ``run_dir``: its values by tag, in logging order."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


# Lightning's ThroughputMonitor's tags (train/time, test/device/samples_per_sec, ...): measurements of each process's clock.
THROUGHPUT = re.compile(r"(train|validate|test)/(time|batches|samples|(device/)?\w+_per_sec|device/mfu)")
