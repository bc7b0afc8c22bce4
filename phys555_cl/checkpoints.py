"""Training checkpoints: what ``checkpoint.pt`` holds, and how it is written, read and resumed.

A checkpoint is one dictionary of tensors and plain Python values, so that it loads with
``torch.load(weights_only=True)``, which never runs code stored in a file (a shared or
downloaded checkpoint is safe to try)::

    format       "phys555_cl.simclr/1" (CHECKPOINT_FORMAT)
    config       the training configuration (phys555_cl.train.make_config)
    model, optimizer, scheduler, scaler     their state_dict()
    rng          every global random stream: torch, numpy, Python, CUDA (capture_rng_state)
    generators   every process's augmentation generator state when saved mid-epoch, else None
    epoch, step  where a resumed run continues: epochs done, steps done in the next epoch
    history      the training history so far

``phys555_cl.train.train_simclr(out=DIR)`` writes ``DIR/checkpoint.pt`` and
``DIR/history.json`` every epoch (rank 0 only), each atomically (:mod:`phys555_cl.fileio`).

Example::

    model, config = load_checkpoint("data/pretrained/simclr_compact.pt")
    h, z = model(images)    # images [B, 3, S, S] with S = config["image_size"]
"""

from __future__ import annotations

import json
import os
import pickle
import random
import sys

import numpy as np
import torch
import torch.distributed as dist

from phys555_cl import config
from phys555_cl.encoders import SimCLR, build_model_from_config
from phys555_cl.fileio import atomic_write, atomic_write_text

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "HISTORY_NAME", "PRETRAINED_NAME", "PRETRAINED_NAMES",
    "RECREATE_COMMAND",
    "RESUMABLE_CHANGES", "CheckpointError", "Checkpointer", "capture_rng_state", "check_out_folder",
    "checkpoint_to_resume", "load_checkpoint", "pretrained_path", "read_checkpoint",
    "restore_rng_state", "restore_training", "save_checkpoint", "write_history",
]

CHECKPOINT_FORMAT = "phys555_cl.simclr/1"
CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
#: The command that re-creates the shipped checkpoint (error messages suggest it).
RECREATE_COMMAND = "python -m phys555_cl.train --config default --out runs/default"
#: the model the course ships (made by ``python -m phys555_cl.train --config default``; see
#: ``data/pretrained/README.md`` for its command, time and scores)
PRETRAINED_NAME = "simclr_compact.pt"
#: The shipped models, by the name ``load_pretrained`` and ``pretrained_path`` take.
PRETRAINED_NAMES = {"compact": PRETRAINED_NAME, "reference": "simclr_reference.pt"}
#: Only these may change when a run is resumed: more epochs continue the schedule.
RESUMABLE_CHANGES = {"epochs", "galaxy10_path", "monitor"}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, not a SimCLR checkpoint, or made with
    another configuration than the one asked for."""


# ------------------------------------------------------------------------------------------
# random streams, save, read, load
# ------------------------------------------------------------------------------------------


def capture_rng_state() -> dict:
    """Every global random stream as tensors and plain values (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Put every global random stream back as :func:`capture_rng_state` found it."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then
    ``os.replace``, so a crash or Ctrl-C during the write leaves the previous file intact.

    ``state`` must hold only tensors and plain Python values (dict, list, tuple, str, int,
    float, bool, None), so that :func:`read_checkpoint` can load it with
    ``torch.load(weights_only=True)``, which never runs code stored in the file.
    """
    atomic_write(path, lambda fh: torch.save(state, fh))


def write_history(path: str, cfg: dict, history: dict) -> None:
    """Write ``{"config": cfg, **history}`` to ``path`` as JSON, atomically (``history.json``:
    the loss curve and per-epoch summaries without loading the checkpoint)."""
    atomic_write_text(path, json.dumps({"config": cfg, **history}, indent=1))


def read_checkpoint(path: str, map_location="cpu") -> dict:
    """Load a training checkpoint dictionary safely, with clear errors for bad files.

    The file is read with ``torch.load(weights_only=True)``: only tensors and plain Python
    values are accepted, so a crafted file cannot run code (a shared or downloaded
    checkpoint is safe to try). Raises ``FileNotFoundError`` for a missing file and
    :class:`CheckpointError` for a damaged, old-format (numpy objects inside) or foreign one.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no checkpoint at {path!r}; train one with `python -m phys555_cl.train --out DIR` "
            f"(it writes DIR/{CHECKPOINT_NAME}) or use data/pretrained/"
        )
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":  # a zip file, or a legacy pickle
        raise CheckpointError(
            f"{path!r} is not a PyTorch checkpoint at all (it does not start like one: a text "
            f"file, an image, another format?). Pass the checkpoint.pt written by "
            f"`python -m phys555_cl.train --out DIR`, or use data/pretrained/."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "unsupported global" not in str(err).lower():
            raise _damaged(path, err) from None
        raise CheckpointError(
            f"{path!r} holds Python objects, not only tensors and plain values: it is an "
            f"old-format phys555_cl checkpoint or not one at all, and loading it could run code "
            f"hidden inside it, so it was not loaded. Re-create it with `{RECREATE_COMMAND}` "
            f"(same --config as before; the shipped data/pretrained/simclr_compact.pt is "
            f"updated by `git pull`), or use data/pretrained/."
        ) from None
    except Exception as err:  # truncated zip, random bytes, ...
        raise _damaged(path, err) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path!r} is a PyTorch file but not a phys555_cl SimCLR checkpoint (expected "
            f"format {CHECKPOINT_FORMAT!r}); it was not written by phys555_cl.train. Pass a "
            f"checkpoint.pt from `python -m phys555_cl.train --out DIR`, or use data/pretrained/."
        )
    return state


def _damaged(path: str, err: Exception) -> CheckpointError:
    first = (str(err).strip().splitlines() or [""])[0][:120]
    return CheckpointError(
        f"{path!r} is damaged or not a PyTorch checkpoint ({type(err).__name__}: {first}). "
        f"Train again with `{RECREATE_COMMAND}` (or --resume from an intact copy), or use "
        f"data/pretrained/."
    )


def load_checkpoint(path: str, map_location="cpu") -> tuple[SimCLR, dict]:
    """Rebuild the trained model from a checkpoint: returns ``(model, config)``.

    ``model`` is a :class:`~phys555_cl.encoders.SimCLR` in eval mode on ``map_location``;
    ``config`` is the training configuration (``config["image_size"]`` is the image size it
    was trained on; ``config["epochs_done"]`` how far it got).

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` for a damaged
    or foreign one.
    """
    state = read_checkpoint(path, map_location)
    cfg = dict(state["config"])
    model = build_model_from_config(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {path!r} do not fit its own config: {err}") from err
    cfg["epochs_done"] = state["epoch"]
    return model.to(map_location).eval(), cfg


def pretrained_path(name: str = "compact") -> str:
    """Where a shipped model lives: ``<data folder>/pretrained/simclr_<name>.pt``.

    ``"compact"``: the 5-minute model of notebook 05 (``--config default``); ``"reference"``:
    the largest point of the pretraining scaling study within its budget, at the temperature
    that won the ablation (``--config reference``, notebook 06's payoff sections;
    ``data/pretrained/README.md``).
    """
    if name not in PRETRAINED_NAMES:
        raise ValueError(f"no shipped model called {name!r}; choose one of "
                         f"{sorted(PRETRAINED_NAMES)}")
    return os.path.join(config.data_dir(), "pretrained", PRETRAINED_NAMES[name])


def check_out_folder(out: str) -> None:
    """Make sure ``out`` is (or can become) a folder this process can write, before any work.

    Creates the folder if it does not exist. Raises ``ValueError`` saying what is wrong and
    what to do: ``out`` is a file, or sits inside a file, or cannot be written.
    """
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ValueError(
            f"--out {out!r} is a file, not a folder; choose a folder name (it is created if "
            f"it does not exist), e.g. --out runs/my_run"
        )
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, f".write-test-{os.getpid()}")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(
            f"cannot write in --out {out!r} ({err.strerror or err}); choose a folder you can "
            f"write, e.g. --out runs/my_run inside your copy of the course"
        ) from None


def _check_same_config(saved: dict, cfg: dict, path: str) -> None:
    """Refuse to resume ``path`` (config ``saved``) with another ``cfg``, naming every
    difference; only :data:`RESUMABLE_CHANGES` may differ."""
    diff = {
        k: (saved.get(k), cfg.get(k))
        for k in set(saved) | set(cfg)
        if k not in RESUMABLE_CHANGES and saved.get(k) != cfg.get(k)
    }
    if diff:
        pairs = sorted(diff.items())
        lines = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in pairs)
        raise CheckpointError(
            f"{path!r} was made with another configuration ({lines}). Resume with the same "
            f"--config and options, or train into a new --out folder."
        )


# ------------------------------------------------------------------------------------------
# resume, and the checkpointer of the training loop
# ------------------------------------------------------------------------------------------


def checkpoint_to_resume(out: str | None, resume: bool, cfg: dict, rank: int) -> dict | None:
    """The checkpoint state in ``out`` to continue from, or ``None`` for a new run. Refuses to
    overwrite a checkpoint without ``resume`` and to resume one made with another config."""
    path = os.path.join(out, CHECKPOINT_NAME) if out else None
    if not (path and os.path.exists(path)):
        if resume and rank == 0:
            print(f"no checkpoint in {out!r} yet: starting a new run", file=sys.stderr)
        return None
    if not resume:
        raise FileExistsError(
            f"{path!r} already exists: pass --resume (resume=True) to continue it, or "
            f"choose another --out folder"
        )
    saved = read_checkpoint(path)
    _check_same_config(saved["config"], cfg, path)
    return saved


def restore_training(t, saved: dict | None, out: str | None):
    """Load ``saved`` into the model, optimizer, schedule, scaler and random streams.

    ``t`` is the training loop's state (``phys555_cl.train_setup.Training``: ``model``,
    ``optimizer``, ``scheduler``, ``scaler``, ``rank``, ``world``); ``saved`` comes from
    :func:`checkpoint_to_resume` (``None``: a new run, nothing to load).

    Returns ``(history, (epoch, step, generators))``: the history so far, and where to
    continue: epochs done, steps done in the next epoch, and every process's augmentation
    generator state at that step (``None`` at an epoch boundary or when not saved).
    """
    if saved is None:
        return {"step": [], "epoch": [], "loss": [], "lr": [], "epochs": []}, (0, 0, None)
    t.model.load_state_dict(saved["model"])
    t.optimizer.load_state_dict(saved["optimizer"])
    t.scheduler.load_state_dict(saved["scheduler"])
    t.scaler.load_state_dict(saved["scaler"])
    restore_rng_state(saved["rng"])
    epoch, step = saved["epoch"], saved["step"]
    gen_states = saved["generators"] if step else None
    if gen_states is not None and len(gen_states) != t.world:
        raise CheckpointError(
            f"{os.path.join(out, CHECKPOINT_NAME)!r} was interrupted mid-epoch by a run with "
            f"{len(gen_states)} processes; resume it with the same number of processes"
        )
    if step and gen_states is None and t.rank == 0:
        print("resuming mid-epoch without the saved augmentation streams of every process: "
              "the rest of this epoch draws new augmentations", file=sys.stderr)
    return saved["history"], (epoch, step, gen_states)


class Checkpointer:
    """Writes ``checkpoint.pt`` and ``history.json`` into ``out`` (rank 0 only; ``out=None``
    writes nothing). A point ``(epoch, step, generator state)`` says where a resumed run
    continues: epochs done, steps done in the next epoch, the augmentation stream there.

    ``t`` is the training loop's state (``phys555_cl.train_setup.Training``: ``cfg``, ``model``,
    ``optimizer``, ``scheduler``, ``scaler``, ``rank``, ``world``); ``history`` is the history
    the loop appends to (losses, per-epoch summaries), saved with every checkpoint."""

    def __init__(self, t, out: str | None, history: dict):
        self.t, self.out, self.history = t, out, history
        self.path = os.path.join(out, CHECKPOINT_NAME) if out else None

    def snapshot(self, point: tuple, gather: bool = True) -> dict:
        """Everything needed to continue at ``point``; every process must call it (gather)."""
        t = self.t
        epoch, step, gen_state = point
        gens = None
        if step and t.world == 1:
            gens = [gen_state]
        elif step and gather:  # every process's augmentation stream, so resume is exact
            gens = [None] * t.world
            dist.all_gather_object(gens, gen_state.cpu())
        return {
            "format": CHECKPOINT_FORMAT,
            "config": t.cfg,
            "model": t.model.state_dict(),
            "optimizer": t.optimizer.state_dict(),
            "scheduler": t.scheduler.state_dict(),
            "scaler": t.scaler.state_dict(),
            "rng": capture_rng_state(),
            "generators": gens,
            "epoch": epoch,
            "step": step,
            "history": self.history,
        }

    def save(self, point: tuple) -> None:
        """Save at ``point`` (every process calls this; rank 0 writes)."""
        state = self.snapshot(point)
        if self.t.rank == 0 and self.out:
            save_checkpoint(self.path, state)
            write_history(os.path.join(self.out, HISTORY_NAME), self.t.cfg, state["history"])

    def save_interrupted(self, point: tuple) -> None:
        """After Ctrl-C: the step in flight is dropped, everything before it is saved. Under
        torchrun the other processes may be stuck in a collective, so rank 0 saves without
        gathering (a mid-epoch resume then re-seeds the other ranks' augmentation streams)."""
        if self.t.rank == 0 and self.out:
            save_checkpoint(self.path, self.snapshot(point, gather=False))
            print(
                f"\ninterrupted: saved {self.path} at epoch {point[0] + 1}, step {point[1]}; "
                f"continue with --resume", file=sys.stderr,
            )
