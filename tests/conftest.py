"""Fixtures shared by several test files, and the paths and settings they
need before any test module is imported."""

import os
import sys
from pathlib import Path

import pytest
import torch

# the benchmark harness, nanoGPT's reference model and the book's Sphinx
# extension are tested too
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))
# plots render to memory: no window opens, with or without a display
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny models on one torch thread, then restore the count.

    At these sizes two threads mostly wait on each other, badly so on a busy
    machine. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
