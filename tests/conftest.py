import os

import pytest
import torch

# No test reaches the Hugging Face Hub: a name outside the local cache fails at once instead of after retries. Set before
# anything imports huggingface_hub (timm does, on bam_lightning's import), which reads it once.
os.environ["HF_HUB_OFFLINE"] = "1"


def pytest_configure(config):
    # Two xdist workers share two cores: one thread each avoids oversubscription.
    torch.set_num_threads(1)
    config.addinivalue_line("markers", "long: a test of tens of seconds or more, started first (see below)")
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU; skipped without one (make gpu-check runs them)")


@pytest.hookimpl(tryfirst=True)  # before xdist names the groups
def pytest_collection_modifyitems(items):
    """Order and group the tests for ``make test``'s two workers (``--dist loadgroup``), which take them one at a time.

    Tests sharing a module-scoped fixture (a fit, a fitted checkpoint) go to one worker, so the
    fixture is built once. Long tests and those groups start first: the workers then end within
    seconds of each other instead of one running the demo's fit alone at the end. The order changes
    no result: every test still runs on its own data.
    """
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("cuda") and not torch.cuda.is_available():
            item.add_marker(no_gpu)
        shared = [d for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs if d.scope == "module"]
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    items.sort(key=lambda item: not (item.get_closest_marker("long") or item.get_closest_marker("xdist_group")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
