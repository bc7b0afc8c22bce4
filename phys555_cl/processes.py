"""Independent jobs in worker processes, with one progress bar in the parent.

The payoff study's populations are independent (every seed is derived from the population's
name), so they can run side by side. Small networks trained at small batches use one CPU
core poorly with two threads (a fine-tuning step on 5 galaxies takes the same time on one
thread as on two), so ``W`` processes of ``cores / W`` threads each get more from the same
cores than one process with every thread (``benchmarks/bench_study.py``).

Example::

    results = map_in_processes(fit_population, [(2021,), (2022,)], workers=2, threads=1)

``fit_population(seed, progress=...)`` runs in a worker; ``progress`` is a factory of
progress bars (``progress(total=..., desc=...)``) whose steps move the parent's one bar.

Processes are started with ``spawn`` on every system (what Windows and macOS do anyway, and
safe with the OpenMP threads the parent has used), so ``fn`` must be importable from a module
and its arguments picklable.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import torch

from phys555_cl import config

__all__ = ["cpu_cores", "map_in_processes", "split_cores"]

#: Steps a worker's bar counts before it tells the parent (fewer messages, same total).
_BATCH = 20


def cpu_cores() -> int:
    """The CPU cores this process may use (its affinity where the system says, e.g. in a
    container), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def split_cores(n_jobs: int, workers: int | None = None, device=None) -> tuple[int, int]:
    """``(workers, threads per worker)`` for ``n_jobs`` independent jobs.

    ``workers``: ``None`` chooses one process per job up to one per core on the CPU, and one
    process on a GPU (the jobs would share it); a number is kept (at most ``n_jobs``). The
    cores are shared out: ``threads = max(1, cores // workers)``.

    Raises:
        ValueError: ``workers`` is not a whole number >= 1.
    """
    cores = cpu_cores()
    if workers is None:
        on_cpu = device is None or torch.device(device).type == "cpu"
        workers = min(n_jobs, cores) if on_cpu else 1
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1 (or None to choose), "
                         f"got {workers!r}")
    workers = max(1, min(workers, n_jobs))
    return workers, max(1, cores // workers)


class _QueueBar:
    """A progress bar in a worker: its steps go to the parent's bar, in batches."""

    def __init__(self, total=None, **_):
        self._n = 0
        if total:
            _QUEUE.put(("total", int(total)))

    def update(self, n: int = 1) -> None:
        self._n += n
        if self._n >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._n:
            _QUEUE.put(("steps", self._n))
            self._n = 0

    def set_description(self, *_, **__) -> None:  # the parent's bar names the whole run
        pass

    def set_postfix_str(self, *_, **__) -> None:
        pass

    def close(self) -> None:
        self._flush()


_QUEUE = None


def _start_worker(threads: int, queue) -> None:
    """Each worker: its share of the cores, and the queue to the parent's bar."""
    global _QUEUE
    _QUEUE = queue
    torch.set_num_threads(threads)


def _call(fn, args, with_progress: bool):
    return fn(*args, progress=_QueueBar if with_progress else False)


def map_in_processes(fn, jobs, *, workers: int, threads: int, progress=True,
                     desc: str = "working") -> list:
    """``[fn(*args, progress=...) for args in jobs]``, computed in ``workers`` processes of
    ``threads`` threads each; the results in the order of ``jobs``.

    ``progress``: show one bar in this process for the steps every worker's bars count
    (``fn`` gets a bar factory, or ``False`` without a bar).

    An error in a job stops every worker and is raised here, as the job raised it (a worker
    that dies, e.g. out of memory, raises ``BrokenProcessPool``); so does Ctrl-C.
    """
    jobs = [tuple(a) for a in jobs]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    bar = config.progress(total=None, desc=desc, unit="step") if progress else None
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                               initargs=(threads, queue))
    results: dict = {}
    try:
        pending = {pool.submit(_call, fn, args, bool(progress)): i for i, args in enumerate(jobs)}
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            _drain(queue, bar)
            for future in done:
                results[pending.pop(future)] = future.result()  # raises the job's error
    except BaseException:
        _stop(pool)
        raise
    finally:
        # a worker's last steps may still be on their way: they are in the queue once it has
        # ended (a process flushes its queue when it exits)
        pool.shutdown(wait=True, cancel_futures=True)
        _drain(queue, bar)
        if bar is not None:
            bar.close()
    return [results[i] for i in range(len(jobs))]


def _drain(queue, bar) -> None:
    """Move the parent's bar on by what the workers said."""
    while True:
        try:
            kind, n = queue.get_nowait()
        except queue_module.Empty:
            return
        if bar is None:
            continue
        if kind == "total":
            bar.total = (bar.total or 0) + n
            bar.refresh()
        else:
            bar.update(n)


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the workers now instead of letting the jobs they run finish."""
    pool.shutdown(wait=False, cancel_futures=True)
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
