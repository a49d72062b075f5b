import pytest
import torch


def pytest_configure(config):
    # Two xdist workers share two cores: one thread each avoids oversubscription.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
