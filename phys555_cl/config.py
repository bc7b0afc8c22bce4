"""Course-wide settings: fast mode, notebook sizes, device choice, seeding, progress bars.

Every notebook starts with the same two lines::

    from phys555_cl import config
    S = config.sizes("05")          # dataset size, epochs, batch size ... for this notebook
    DEVICE = config.device()        # CUDA, then Apple MPS, then CPU

Environment variables (all optional):

- ``PHYS555_FAST=1``: fast mode. Every cell still runs, on tiny data and few epochs, so the
  whole course executes in minutes. The tests and CI set it.
- ``PHYS555_DEVICE=cpu|cuda|cuda:1|mps``: use this device instead of the automatic choice.
- ``PHYS555_QUIET=1``: no progress bars (useful in logs).
"""

from __future__ import annotations

import os
import random
import re
import zlib
from types import SimpleNamespace

import numpy as np
import torch

from phys555_cl.project import PYPROJECT, REPO, read_pyproject

__all__ = ["SIZES", "data_dir", "device", "device_name", "fast_mode", "progress", "quiet",
           "required_versions", "seed_everything", "sizes"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"Environment variable {name}={os.environ[name]!r} is not understood: "
        f"use 1/true/yes to switch it on or 0/false/no (or unset it) to switch it off."
    )


def fast_mode() -> bool:
    """True when ``PHYS555_FAST`` is set to 1/true/yes (read at every call, never cached)."""
    return _env_flag("PHYS555_FAST")


# The one place where notebooks get their sizes. "fast" keeps every cell but shrinks the
# work so that a notebook runs in well under a minute on a 2-core laptop; "normal" is what a
# student runs in class (each notebook under 15 minutes on a laptop CPU).
SIZES: dict[str, dict[str, dict]] = {
    "00": {
        "fast": {"n_galaxies": 16, "image_size": 32},
        "normal": {"n_galaxies": 64, "image_size": 64},
    },
    "01": {
        "fast": {"n_galaxies": 512, "image_size": 32, "n_pairs": 512, "epochs": 3,
                 "batch_size": 64, "width": 16, "margin": 1.0, "lr": 2e-3},
        "normal": {"n_galaxies": 3000, "image_size": 64, "n_pairs": 6000, "epochs": 5,
                   "batch_size": 128, "width": 16, "margin": 1.0, "lr": 1e-3},
    },
    "02": {
        "fast": {"n_galaxies": 512, "image_size": 32, "epochs": 2, "steps_per_epoch": 12,
                 "hard_steps": 16, "per_class": 8, "width": 16, "margin": 0.2, "lr": 2e-3},
        "normal": {"n_galaxies": 3000, "image_size": 64, "epochs": 8, "steps_per_epoch": 50,
                   "hard_steps": 100, "per_class": 16, "width": 16, "margin": 0.2,
                   "lr": 1e-3},
    },
    "03": {
        "fast": {"n_galaxies": 64, "image_size": 64, "n_colour": 384},
        "normal": {"n_galaxies": 512, "image_size": 64, "n_colour": 4000},
    },
    "04": {
        "fast": {"batch_sizes": [8, 32, 128], "dim": 32, "repeats": 2, "toy_steps": 100},
        "normal": {"batch_sizes": [8, 64, 512, 2048], "dim": 128, "repeats": 5,
                   "toy_steps": 400},
    },
    "05": {
        "fast": {"n_galaxies": 512, "n_test": 512, "image_size": 32, "epochs": 1,
                 "batch_size": 64, "experiment_epochs": 1, "toy_steps": 100},
        "normal": {"n_galaxies": 4096, "n_test": 4000, "image_size": 32, "epochs": 5,
                   "batch_size": 256, "experiment_epochs": 3, "toy_steps": 400},
    },
    "06": {
        "fast": {"n_galaxies": 512, "steps": 10, "label_counts": [5, "all"],
                 "survey_counts": [5, "all"], "repeats": 1},
        "normal": {"n_galaxies": 2000, "steps": 300, "label_counts": [5, 20, 200, "all"],
                   "survey_counts": [20, "all"], "repeats": 1},
    },
    "07": {
        "fast": {"n_sequences": 256, "n_test": 192, "n_samples": 504, "epochs": 2,
                 "batch_size": 32, "lr": 3e-3, "z_dim": 64, "c_dim": 64, "n_steps": 4,
                 "pool": "mean"},
        "normal": {"n_sequences": 4000, "n_test": 2000, "n_samples": 504, "epochs": 30,
                   "batch_size": 32, "lr": 3e-3, "z_dim": 64, "c_dim": 64, "n_steps": 4,
                   "pool": "mean"},
    },
}


def sizes(notebook: str) -> SimpleNamespace:
    """The sizes for ``notebook`` (e.g. ``"05"``) in the current mode, as attributes.

    The returned namespace also has ``fast`` (bool) so a notebook can print which mode it is in.
    """
    key = str(notebook).zfill(2)[:2]
    if key not in SIZES:
        raise KeyError(
            f"No sizes for notebook {notebook!r}. Known notebooks: {sorted(SIZES)}. "
            f"Add an entry to SIZES in phys555_cl/config.py."
        )
    fast = fast_mode()
    return SimpleNamespace(fast=fast, **SIZES[key]["fast" if fast else "normal"])


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer``, else ``PHYS555_DEVICE``, else CUDA, MPS, CPU.

    A requested device that is not available raises a ``RuntimeError`` that says what is
    available, instead of failing later inside a model.
    """
    requested = prefer or os.environ.get("PHYS555_DEVICE", "").strip()
    if requested:
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"Device {requested!r} was requested but CUDA is not available on this "
                f"machine. Unset PHYS555_DEVICE (or set it to 'cpu') to use what is here."
            )
        if dev.type == "mps" and not _mps_available():
            raise RuntimeError(
                f"Device {requested!r} was requested but Apple MPS is not available. "
                f"Unset PHYS555_DEVICE (or set it to 'cpu')."
            )
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(dev: torch.device | None = None) -> str:
    """A human-readable description of ``dev`` (default: the one :func:`device` picks)."""
    dev = device() if dev is None else torch.device(dev)
    if dev.type == "cuda":
        return f"CUDA GPU ({torch.cuda.get_device_name(dev)})"
    if dev.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and all GPUs).

    Returns a fresh CPU ``torch.Generator`` seeded with ``seed`` for code that prefers an
    explicit generator.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def stable_seed(*parts, bits: int = 32) -> int:
    """A reproducible seed of ``bits`` bits named by any values: ``crc32("a/b/c") mod 2^bits``.

    The same parts give the same seed on every machine and Python version (``hash()`` does
    not), e.g. ``stable_seed(seed, epoch, rank, "augment")`` for one epoch's augmentation
    stream, ``stable_seed("split", population, bits=31)`` for a population's split.
    """
    return zlib.crc32("/".join(map(str, parts)).encode()) & ((1 << bits) - 1)


def quiet() -> bool:
    """True when ``PHYS555_QUIET`` asks for no progress bars."""
    return _env_flag("PHYS555_QUIET")


def progress(iterable=None, **kwargs):
    """A ``tqdm.auto`` progress bar (a widget in Jupyter, text elsewhere).

    Disabled when ``PHYS555_QUIET=1``. Keyword arguments go to tqdm (``desc``, ``total``...).
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", quiet())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def data_dir() -> str:
    """Where the course keeps data files (``PHYS555_DATA`` or ``data/`` in the repository)."""
    env = os.environ.get("PHYS555_DATA")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(REPO, "data")


# ------------------------------------------------------------------------------------------
# the versions the course needs (notebook 00's table)
# ------------------------------------------------------------------------------------------

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")


def required_versions() -> dict[str, str | None]:
    """``{library: oldest version}`` the course needs, from ``pyproject.toml``'s dependencies.

    Read from the installed package's metadata (``pip install -e .``, which ``make setup``
    and the conda environment do), else from ``pyproject.toml`` next to the package. Optional
    extras (``dev``, ``bench``) are left out; a library without a ``>=`` bound maps to
    ``None``.
    """
    from importlib.metadata import PackageNotFoundError, requires

    try:
        lines = requires("phys555-cl") or []
    except PackageNotFoundError:
        lines = _dependencies_in_pyproject(PYPROJECT)
    out: dict[str, str | None] = {}
    for line in lines:
        spec, _, marker = line.partition(";")
        if "extra" in marker:
            continue
        m = _REQUIREMENT.match(spec)
        if m:
            bound = re.search(r">=\s*([0-9][^,\s]*)", m.group(2))
            out[m.group(1)] = bound.group(1) if bound else None
    return out


def _dependencies_in_pyproject(path) -> list[str]:
    """The strings of ``[project] dependencies = [...]`` of the ``pyproject.toml`` at ``path``
    (read by :func:`phys555_cl.project.read_pyproject`, so Python 3.10 works too).

    Raises:
        OSError: the file cannot be read.
    """
    return list(read_pyproject(path).get("project", {}).get("dependencies", []))
