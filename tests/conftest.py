"""Shared test settings."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The test networks are tiny: a second thread only adds synchronisation, which costs
    seconds per forward when other processes share the two CI cores. Subprocesses that the
    tests start get OMP_NUM_THREADS=1 to match."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the torch-free runtime tests need nothing
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
