import json
from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).parent / "reference"


def pytest_configure(config):
    # Two xdist workers share two cores: one thread each avoids oversubscription.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def load_reference(name: str) -> dict:
    """A copy of ../shared/reference/<name>.json (the paper's tables, the public code's counts)."""
    return json.loads((REFERENCE / f"{name}.json").read_text())
