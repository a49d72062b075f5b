import os

import pytest
import torch

# BAM compiles its training steps by default; on the suite's tiny maps compiling costs more
# than it saves (minutes in all, subprocesses included). tests/nn/test_fused.py turns it back
# on; BAM_LIGHTNING_COMPILE=1 make test runs everything on the default path.
os.environ.setdefault("BAM_LIGHTNING_COMPILE", "0")


def pytest_configure(config):
    # Two xdist workers share two cores: one thread each avoids oversubscription.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
