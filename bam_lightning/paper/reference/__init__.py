"""Numbers this package is checked against, as published (copies of ../shared/reference).

- ``paper_tables.json``: Tables 1-5 of the BAM paper as printed.
- ``official_param_counts.json``: the public code's exact parameter counts.
- ``official_resnet50_bam_state_dict.json``: key layout of its ResNet-50+BAM checkpoint.
"""

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_reference(name: str) -> dict[str, Any]:
    """The parsed ``<name>.json`` of this folder."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text())
