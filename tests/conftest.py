"""Fixtures and settings shared by the unit tests."""

import matplotlib
import pytest

matplotlib.use("Agg")  # no display in CI; plots are rendered off screen


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``cuda`` when no CUDA GPU is present."""
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch intra-op thread, then restore the count.

    The models in these tests are tiny: on a busy 2-core machine, two
    competing OpenMP threads make each step many times slower, with the same
    results. Use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
