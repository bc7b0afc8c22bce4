"""Specification of phys555_cl.processes: independent jobs side by side, one bar, errors kept."""

import pytest
import torch

from phys555_cl import processes
from phys555_cl.processes import cpu_cores, map_in_processes, split_cores


def _square(x, progress=False):
    """A job: counts 3 steps on its bar and returns its input squared and its thread count."""
    if progress:
        bar = progress(total=3, desc="job")
        for _ in range(3):
            bar.update()
        bar.close()
    return x * x, torch.get_num_threads()


def _refuse(x, progress=False):
    """Refuses an even job, does an odd one (one failing job: which error comes first is
    then not a race between the workers)."""
    if x % 2 == 0:
        raise ValueError(f"job {x}: the labels have no 'edge_on'; give labels with it")
    return x


def test_cores_are_shared_out_between_the_workers(monkeypatch):
    monkeypatch.setattr(processes, "cpu_cores", lambda: 8)
    assert split_cores(4) == (4, 2)  # one process per job, the cores shared out
    assert split_cores(16) == (8, 1)  # at most one per core
    assert split_cores(1) == (1, 8)
    assert split_cores(4, workers=1) == (1, 8)
    assert split_cores(2, workers=5) == (2, 4)  # never more workers than jobs
    assert split_cores(4, device="cuda") == (1, 8)  # the jobs would share one GPU
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be a whole number >= 1"):
            split_cores(4, workers=bad)
    assert cpu_cores() >= 1


def test_jobs_run_in_processes_in_order_with_their_threads():
    assert map_in_processes(_square, [(2,), (3,), (4,)], workers=2, threads=1,
                            progress=False) == [(4, 1), (9, 1), (16, 1)]


def test_the_workers_bars_move_one_bar_here(monkeypatch):
    bars = []

    class Bar:
        def __init__(self, total=None, **_):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, n=1):
            self.n += n

        def refresh(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(processes.config, "progress", Bar)
    map_in_processes(_square, [(1,), (2,)], workers=2, threads=1, progress=True)
    assert len(bars) == 1 and bars[0].total == 6 and bars[0].n == 6


def test_an_error_in_a_job_is_raised_here_as_the_job_raised_it():
    with pytest.raises(ValueError, match="job 2: the labels have no 'edge_on'"):
        map_in_processes(_refuse, [(2,), (3,)], workers=2, threads=1, progress=False)
