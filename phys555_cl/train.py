"""Train SimCLR on galaxies: the loop, checkpoints, resume, mixed precision, multi-GPU, the CLI.

One training step is the lecture's framework (Chen et al. 2020, arXiv:2002.05709)::

    x            = a minibatch of N galaxies                         [N, 3, H, W]
    v1, v2       = two random views of every galaxy (GalaxyAugment)  [N, 3, H, W] each
    (h, z)       = model(v)  (encoder f -> h, projection head g -> z)
    loss         = nt_xent(z1, z2, temperature)    (the other 2(N-1) views are the negatives)

From a shell (a checkpoint ``DIR/checkpoint.pt`` is written every epoch, with ``history.json``)::

    python -m phys555_cl.train --config fast --out runs/fast           # < 2 min on a laptop
    python -m phys555_cl.train --config default --out runs/default     # the shipped checkpoint
    python -m phys555_cl.train --config default --out runs/default --resume   # after Ctrl-C
    torchrun --nproc_per_node=4 -m phys555_cl.train --config gpu --out runs/gpu   # 4 GPUs

From a notebook::

    model, history = train_simclr("fast", images=my_images, epochs=3)
    plt.plot(history["step"], history["loss"])

Under ``torchrun`` every process trains on its own share of the data (its own simulated
galaxies, or its slice of Galaxy10), the model is wrapped in DistributedDataParallel with
SyncBatchNorm (on GPUs; the CPU "gloo" backend has no SyncBatchNorm, so there BatchNorm
statistics stay per process), NT-Xent takes its negatives from every process
(``gather=True``), ``--batch-size`` is the global batch, and only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import pickle
import random
import sys
import time
import zlib

import numpy as np
import torch
from torch import nn

from phys555_cl import config as course_config
from phys555_cl.augment import GalaxyAugment
from phys555_cl.encoders import SimCLR, build_model_from_config
from phys555_cl.losses import nt_xent

CHECKPOINT_FORMAT = "phys555_cl.simclr/1"
CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
#: The simulator seed of the training galaxies (rank r of a multi-process run uses
#: ``data_seed + r``). Evaluate on another seed, e.g. ``phys555_cl.evaluate.EVAL_SEED``.
DATA_SEED = 0

# Plain named values, one dictionary per configuration (minGPT style). Every key can be
# overridden from Python (train_simclr(..., key=value)); the CLI exposes the common ones.
_BASE = dict(
    data="synthetic",  # "synthetic" (phys555_cl.galaxies.simulate) or "galaxy10"
    galaxy10_path=None,
    n_train=8192,  # simulated galaxies (per process: n_train // world_size)
    data_seed=DATA_SEED,
    image_size=32,
    encoder="compact",
    width=16,  # compact encoder width (h has 8 * width features)
    hidden_dim=512,
    proj_dim=128,
    epochs=20,
    batch_size=256,  # global batch, split over processes
    lr=2e-3,  # AdamW learning rate for batch_size 256 (scaled linearly with the batch)
    weight_decay=1e-4,
    warmup_epochs=1.0,
    # NT-Xent temperature, chosen on validation galaxies (simulate(4000, seed=1234)): after 8
    # epochs a linear probe with 20 labels scored 72.5% (0.1), 73.4% (0.2), 75.1% (0.5) and
    # 72.2% (1.0), averaged over 12 random label subsets (data/pretrained/README.md)
    temperature=0.5,
    augment=dict(),  # keyword arguments of GalaxyAugment
    amp=True,  # mixed precision on CUDA (ignored elsewhere)
    channels_last=True,  # memory format of the convolutions (CPU and CUDA; ignored on MPS)
    seed=0,  # model initialisation and augmentation stream
)

CONFIGS: dict[str, dict] = {
    "fast": {**_BASE, "n_train": 1024, "width": 8, "hidden_dim": 128, "proj_dim": 64,
             "epochs": 2, "batch_size": 128, "warmup_epochs": 0.5},
    "default": {**_BASE},
    "gpu": {**_BASE, "n_train": 65536, "image_size": 64, "encoder": "resnet18", "epochs": 100,
            "batch_size": 512, "lr": 2e-3},
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, not a SimCLR checkpoint, or made with
    another configuration than the one asked for."""


# ------------------------------------------------------------------------------------------
# configuration and data
# ------------------------------------------------------------------------------------------


def make_config(name: str = "default", **overrides) -> dict:
    """The named configuration with ``overrides`` applied (``None`` values are ignored).

    Raises ``ValueError`` for an unknown name or key.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    cfg = copy.deepcopy(CONFIGS[name])
    cfg["name"] = name
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in cfg:
            raise ValueError(f"unknown training option {key!r}; options are {sorted(cfg)}")
        cfg[key] = value
    if cfg["data"] not in ("synthetic", "galaxy10"):
        raise ValueError(f"data must be 'synthetic' or 'galaxy10', got {cfg['data']!r}")
    if cfg["data"] == "galaxy10" and not cfg["galaxy10_path"]:
        raise ValueError("data='galaxy10' needs galaxy10_path (--galaxy10-path Galaxy10_DECals.h5)")
    for key in ("epochs", "batch_size", "n_train", "image_size"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"{key} must be a positive integer, got {cfg[key]!r}")
    return cfg


#: The SimCLR model a configuration describes (randomly initialised).
build_model = build_model_from_config


def load_training_images(cfg: dict, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """This process's training images ``[n, 3, image_size, image_size]`` (float32, CPU).

    Synthetic: ``n_train // world_size`` galaxies simulated with seed ``data_seed + rank``.
    Galaxy10: every ``world_size``-th image starting at ``rank``.
    """
    if cfg["data"] == "synthetic":
        from phys555_cl.galaxies import simulate

        images, _ = simulate(
            cfg["n_train"] // world_size, size=cfg["image_size"], seed=cfg["data_seed"] + rank
        )
        return images
    from phys555_cl.data import Galaxy10DECaLS

    data = Galaxy10DECaLS(cfg["galaxy10_path"], size=cfg["image_size"])
    return torch.as_tensor(data.images[rank::world_size]).float()


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------


def _rng_state() -> dict:
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


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


RECREATE_COMMAND = "python -m phys555_cl.train --config default --out runs/default"


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process on Windows: keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Delete ``.NAME.tmp-PID`` files left by killed runs (PID no longer running)."""
    prefix = f".{name}.tmp-"
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        pid = entry[len(prefix):]
        if not (entry.startswith(prefix) and pid.isdigit()):
            continue
        if int(pid) == os.getpid() or not _pid_alive(int(pid)):
            try:
                os.remove(os.path.join(folder, entry))
            except OSError:
                pass


def _atomic_save(path: str, write) -> None:
    """Call ``write(file)`` on a fresh private temporary file beside ``path`` (never a planted
    link: O_EXCL | O_NOFOLLOW), then ``os.replace`` it onto ``path``; a crash or Ctrl-C
    leaves the previous file intact, and no temporary file is left behind. Stale temporary
    files of killed runs are removed first. The new file's mode follows the umask."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    _remove_stale_temporaries(folder, name)
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def save_checkpoint(path: str, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then
    ``os.replace``, so a crash or Ctrl-C during the write leaves the previous file intact.

    ``state`` must hold only tensors and plain Python values (dict, list, tuple, str, int,
    float, bool, None), so that :func:`read_checkpoint` can load it with
    ``torch.load(weights_only=True)``, which never runs code stored in the file.
    """
    _atomic_save(path, lambda fh: torch.save(state, fh))


def _write_history(path: str, cfg: dict, history: dict) -> None:
    text = json.dumps({"config": cfg, **history}, indent=1)
    _atomic_save(path, lambda fh: fh.write(text.encode("utf-8")))


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
    model = build_model(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"the weights in {path!r} do not fit its own config: {err}") from err
    cfg["epochs_done"] = state["epoch"]
    return model.to(map_location).eval(), cfg


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


# only these may change when a run is resumed: more epochs continue the schedule
_RESUMABLE_CHANGES = {"epochs", "galaxy10_path"}


def _check_same_config(saved: dict, cfg: dict, path: str) -> None:
    diff = {
        k: (saved.get(k), cfg.get(k))
        for k in set(saved) | set(cfg)
        if k not in _RESUMABLE_CHANGES and saved.get(k) != cfg.get(k)
    }
    if diff:
        pairs = sorted(diff.items())
        lines = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in pairs)
        raise CheckpointError(
            f"{path!r} was made with another configuration ({lines}). Resume with the same "
            f"--config and options, or train into a new --out folder."
        )


# ------------------------------------------------------------------------------------------
# distributed helpers
# ------------------------------------------------------------------------------------------


def _init_distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank); starts torch.distributed when run by torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def _epoch_seed(seed: int, epoch: int, rank: int, stream: str) -> int:
    return zlib.crc32(f"{seed}/{epoch}/{rank}/{stream}".encode())


# ------------------------------------------------------------------------------------------
# the training loop
# ------------------------------------------------------------------------------------------


def _lr_lambda(warmup_steps: int, total_steps: int):
    """Linear warm-up, then cosine decay to zero (SimCLR section B.1), as a LambdaLR factor."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return factor


def train_simclr(
    config: str | dict = "default",
    *,
    images: torch.Tensor | None = None,
    out: str | None = None,
    resume: bool = False,
    device=None,
    max_steps: int | None = None,
    progress: bool = True,
    **overrides,
) -> tuple[SimCLR, dict]:
    """Train SimCLR with NT-Xent and return ``(model, history)``.

    Args:
        config: ``"fast"``, ``"default"`` or ``"gpu"`` (see :data:`CONFIGS`), or a dict made by
            :func:`make_config`.
        images: train on these ``[N, 3, H, W]`` images (fluxes, as ``simulate()`` returns them)
            instead of the configured data; H = W is recorded as ``image_size``.
        out: folder for ``checkpoint.pt`` (every epoch) and ``history.json``; ``None`` keeps
            everything in memory (notebooks).
        resume: continue from ``out/checkpoint.pt`` (same config needed; ``epochs`` may grow).
        device: where to train (default ``phys555_cl.config.device()``; the local GPU under
            torchrun).
        max_steps: stop after this many optimisation steps in total (a checkpoint is written
            if ``out`` is set); for quick experiments in a notebook.
        progress: show a progress bar with the loss and images/s.
        **overrides: any configuration key, e.g. ``epochs=5, batch_size=128, encoder="resnet18",
            temperature=0.5, augment=dict(noise_level=(0, 2))``.

    Returns:
        model: the trained :class:`~phys555_cl.encoders.SimCLR` (eval mode, on ``device``).
        history: ``{"step", "epoch", "loss", "lr"}`` lists (one entry per step) and
            ``"epochs"``: a list of ``{"epoch", "loss", "images_per_s", "seconds"}``.

    Ctrl-C (KeyboardInterrupt) saves a checkpoint (when ``out`` is set) and returns the model
    trained so far; resuming it later repeats exactly the random numbers an uninterrupted run
    would have drawn.
    """
    if isinstance(config, dict):
        base = {k: v for k, v in config.items() if k != "name"}
        cfg = make_config(config.get("name", "default"), **{**base, **overrides})
    else:
        cfg = make_config(config, **overrides)
    if out:
        check_out_folder(out)  # before any work: a bad --out must not cost an epoch
    rank, world, local_rank = _init_distributed()
    if device is None:
        device = (
            torch.device("cuda", local_rank)
            if world > 1 and torch.cuda.is_available()
            else course_config.device()
        )
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)

    if images is not None:
        if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images must be [N, C, S, S], got shape {tuple(images.shape)}")
        cfg["image_size"], cfg["data"], cfg["n_train"] = images.shape[-1], "given", len(images)
        data = images[rank::world].float().cpu()
    else:
        data = None  # loaded after the resume check, so a bad --out fails fast

    if cfg["batch_size"] % world:
        raise ValueError(
            f"batch_size {cfg['batch_size']} is the global batch and must divide evenly over "
            f"{world} processes"
        )
    local_batch = cfg["batch_size"] // world

    ckpt_path = os.path.join(out, CHECKPOINT_NAME) if out else None
    saved = None
    if ckpt_path and os.path.exists(ckpt_path):
        if not resume:
            raise FileExistsError(
                f"{ckpt_path!r} already exists: pass --resume (resume=True) to continue it, or "
                f"choose another --out folder"
            )
        saved = read_checkpoint(ckpt_path)
        _check_same_config(saved["config"], cfg, ckpt_path)
    elif resume and rank == 0:
        print(f"no checkpoint in {out!r} yet: starting a new run", file=sys.stderr)

    course_config.seed_everything(cfg["seed"])
    model = build_model(cfg).to(device)
    if data is None:
        data = load_training_images(cfg, rank, world)
    n_local = len(data)
    if n_local < local_batch:
        raise ValueError(
            f"each process has {n_local} training images, fewer than its batch of {local_batch}; "
            f"use a smaller --batch-size or more data"
        )
    data = data.to(device) if device.type == "cuda" else data
    steps_per_epoch = n_local // local_batch
    total_steps = steps_per_epoch * cfg["epochs"]

    augment = GalaxyAugment(**cfg["augment"]).to(device)
    # channels-last: 1.24x on a 2-core CPU for the compact encoder (benchmarks/bench_training.py)
    # and the usual choice on CUDA; not measured on Apple GPUs, so left off there
    channels_last = cfg["channels_last"] and device.type in ("cpu", "cuda")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    if world > 1 and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    lr = cfg["lr"] * cfg["batch_size"] / 256
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg["weight_decay"])
    warmup = int(cfg["warmup_epochs"] * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(warmup, total_steps))
    use_amp = bool(cfg["amp"]) and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    history = {"step": [], "epoch": [], "loss": [], "lr": [], "epochs": []}
    start_epoch, start_step, gen_states = 0, 0, None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        _set_rng_state(saved["rng"])
        history = saved["history"]
        start_epoch, start_step = saved["epoch"], saved["step"]
        gen_states = saved["generators"] if start_step else None
        if gen_states is not None and len(gen_states) != world:
            raise CheckpointError(
                f"{ckpt_path!r} was interrupted mid-epoch by a run with {len(gen_states)} "
                f"processes; resume it with the same number of processes"
            )
        if start_step and gen_states is None and rank == 0:
            print("resuming mid-epoch without the saved augmentation streams of every process: "
                  "the rest of this epoch draws new augmentations", file=sys.stderr)

    def snapshot(point: tuple, gather: bool = True) -> dict:
        """Everything needed to continue at ``point = (epoch, step, generator state)``."""
        epoch, step, gen_state = point
        gens = None
        if step and world == 1:
            gens = [gen_state]
        elif step and gather:  # every process's augmentation stream, so resume is exact
            import torch.distributed as dist

            gens = [None] * world
            dist.all_gather_object(gens, gen_state.cpu())
        return {
            "format": CHECKPOINT_FORMAT,
            "config": cfg,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": _rng_state(),
            "generators": gens,
            "epoch": epoch,
            "step": step,
            "history": history,
        }

    def write(state: dict) -> None:
        if rank == 0 and out:
            save_checkpoint(ckpt_path, state)
            _write_history(os.path.join(out, HISTORY_NAME), cfg, state["history"])

    gen_device = device if device.type == "cuda" else torch.device("cpu")
    bar = None
    if rank == 0 and progress:
        bar = course_config.progress(
            total=total_steps, initial=start_epoch * steps_per_epoch + start_step,
            desc=f"SimCLR {cfg['encoder']}", unit="step",
        )
    steps_done = 0
    # where a resumed run would continue: (epochs done, steps done in the next epoch, the
    # augmentation generator's state at that step); updated only after a step is complete
    point = (start_epoch, start_step, None)
    net.train()
    try:
        for epoch in range(start_epoch, cfg["epochs"]):
            # every epoch has its own streams, so a resumed run draws the same numbers
            order_gen = torch.Generator().manual_seed(_epoch_seed(cfg["seed"], epoch, 0, "order"))
            order = torch.randperm(n_local, generator=order_gen)
            gen = torch.Generator(device=gen_device)
            gen.manual_seed(_epoch_seed(cfg["seed"], epoch, rank, "augment"))
            first = start_step if epoch == start_epoch else 0
            if first and gen_states is not None:
                gen.set_state(gen_states[rank].to("cpu"))
            point = (epoch, first, gen.get_state())
            t0, seen, losses = time.perf_counter(), 0, []
            for step in range(first, steps_per_epoch):
                if max_steps is not None and steps_done >= max_steps:
                    raise _StopTraining
                idx = order[step * local_batch : (step + 1) * local_batch]
                x = data[idx.to(data.device)].to(device, non_blocking=True)
                with torch.no_grad():
                    v1, v2 = augment.two_views(x, generator=gen)
                # one forward pass for both views: BatchNorm sees all 2N views
                views = torch.cat([v1, v2]).contiguous(memory_format=memory_format)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    _, z = net(views)
                z1, z2 = z.float().chunk(2)
                loss = nt_xent(z1, z2, cfg["temperature"], gather=world > 1)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                value = loss.item()  # synchronise before the state changes (Ctrl-C safety)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                steps_done += 1
                losses.append(value)
                seen += cfg["batch_size"]
                history["step"].append(epoch * steps_per_epoch + step + 1)
                history["epoch"].append(epoch + (step + 1) / steps_per_epoch)
                history["loss"].append(value)
                history["lr"].append(scheduler.get_last_lr()[0])
                point = (epoch, step + 1, gen.get_state())
                if bar is not None:
                    rate = seen / (time.perf_counter() - t0)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{value:.3f}", img_s=f"{rate:.0f}")
                    bar.update(1)
            seconds = time.perf_counter() - t0
            history["epochs"].append({
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)) if losses else float("nan"),
                "images_per_s": seen / seconds if seconds > 0 else float("nan"),
                "seconds": seconds,
            })
            point = (epoch + 1, 0, None)
            write(snapshot(point))
    except _StopTraining:
        write(snapshot(point))
    except KeyboardInterrupt:
        # the step in flight is dropped; everything before it is saved. Under torchrun the
        # other processes may be stuck in a collective, so rank 0 saves without gathering
        # (a mid-epoch resume then re-seeds the other ranks' augmentation streams).
        if rank == 0 and out:
            save_checkpoint(ckpt_path, snapshot(point, gather=False))
            print(
                f"\ninterrupted: saved {ckpt_path} at epoch {point[0] + 1}, step {point[1]}; "
                f"continue with --resume", file=sys.stderr,
            )
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return model, history


class _StopTraining(Exception):
    """Raised inside the loop when ``max_steps`` is reached."""


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phys555_cl.train",
        description="Train SimCLR on galaxy images (see phys555_cl/train.py).",
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default")
    parser.add_argument("--data", choices=["synthetic", "galaxy10"], default=None)
    parser.add_argument("--galaxy10-path", default=None, help="Galaxy10_DECals.h5")
    parser.add_argument("--encoder", choices=["compact", "resnet18", "resnet50"], default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size")
    parser.add_argument("--out", required=True, help="folder for checkpoint.pt and history.json")
    parser.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt")
    parser.add_argument("--debug", action="store_true",
                        help="show the full Python traceback of an error")
    args = parser.parse_args(argv)
    try:
        cfg = make_config(
            args.config, data=args.data, galaxy10_path=args.galaxy10_path,
            encoder=args.encoder, epochs=args.epochs, batch_size=args.batch_size,
        )
        check_out_folder(args.out)
        t0 = time.perf_counter()
        _, history = train_simclr(cfg, out=args.out, resume=args.resume)
    except (CheckpointError, FileExistsError, FileNotFoundError, ValueError) as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # anything else: one line, the traceback only on request
        if args.debug:
            raise
        first = (str(err).strip().splitlines() or [""])[0][:300]
        print(f"error: {type(err).__name__}: {first} (run the same command with --debug for "
              f"the full traceback)", file=sys.stderr)
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0 and history["epochs"]:
        last = history["epochs"][-1]
        print(
            f"done: {len(history['epochs'])} epochs in this history, last loss "
            f"{last['loss']:.4f}, {time.perf_counter() - t0:.0f} s wall time; "
            f"{os.path.join(args.out, CHECKPOINT_NAME)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
