import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny test models gain nothing from threads, and on a busy CI machine torch's thread pool
    spins waiting for descheduled siblings: files ran up to 20x slower (120 s against 7 s)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
