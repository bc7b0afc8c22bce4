"""Shared test settings (headless matplotlib, fast mode, quiet) and servers on a free port."""

import os
import socket

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("PHYS555_FAST", "1")
os.environ.setdefault("PHYS555_QUIET", "1")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes tens of seconds however small its data (deselect: -m 'not slow')")


class PortTaken(Exception):
    """Raised by a server's start function when another process had taken its port."""


def _free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago: the one the OS gives to port 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on_a_free_port(start, attempts: int = 5):
    """``start(port)`` on a free port of 127.0.0.1, tried again on a new port if it was taken.

    The OS names a free port, but it must be released before the server binds it, and another
    process can take it in between (EADDRINUSE). ``start`` raises :class:`PortTaken` when that
    happened; then a new port is tried, up to ``attempts`` times.
    """
    for attempt in range(attempts):
        try:
            return start(_free_port())
        except PortTaken:
            if attempt == attempts - 1:
                raise


@pytest.fixture
def tiny_model():
    """A factory of the smallest SimCLR (compact encoder, width 4), seeded the same each call."""
    import torch

    from phys555_cl.encoders import build_simclr

    def make():
        torch.manual_seed(0)
        return build_simclr("compact", width=4, hidden_dim=16, proj_dim=8)

    return make


@pytest.fixture(scope="module")
def galaxies():
    """160 simulated galaxies of 16 px (seed 5) and their labels."""
    from phys555_cl.galaxies import simulate

    return simulate(160, size=16, seed=5)
