"""Train SimCLR on galaxies: the configs, the step, the loop (resume, AMP, multi-GPU), the CLI.

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

What the loop trains with (processes, device, data, model, optimizer, schedule, mixed
precision) is built in :mod:`phys555_cl.train_setup`. What a checkpoint holds, and how it is
written, read and resumed, is :mod:`phys555_cl.checkpoints`; its names (``load_checkpoint``,
``CheckpointError``...) can also be imported from here.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from phys555_cl import config
from phys555_cl._checks import check_int
from phys555_cl._cli import run_command
from phys555_cl.checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    HISTORY_NAME,
    PRETRAINED_NAME,
    PRETRAINED_NAMES,
    RECREATE_COMMAND,
    Checkpointer,
    CheckpointError,
    check_out_folder,
    checkpoint_to_resume,
    load_checkpoint,
    pretrained_path,
    read_checkpoint,
    restore_training,
    save_checkpoint,
)
from phys555_cl.encoders import SimCLR
from phys555_cl.losses import nt_xent
from phys555_cl.monitor import RepresentationMonitor
from phys555_cl.train_setup import (
    Training,
    check_batch_split,
    end_distributed,
    given_images,
    init_distributed,
    setup_training,
    training_device,
    wait_for_the_other_processes,
)

__all__ = [
    "CONFIGS", "DATA_SEED", "load_pretrained", "main", "make_config", "simclr_step", "train_simclr",
    # from phys555_cl.checkpoints, kept importable from here (notebooks, older code)
    "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "HISTORY_NAME", "PRETRAINED_NAME", "PRETRAINED_NAMES",
    "RECREATE_COMMAND",
    "CheckpointError", "check_out_folder", "load_checkpoint", "pretrained_path", "read_checkpoint",
    "save_checkpoint",
]

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
    # NT-Xent temperature, chosen on the current simulator's validation populations
    # (study.VALIDATION_SEEDS, data/pretrained/README.md): at twice this recipe's compute 0.1
    # beat 0.05, 0.2 and 0.5 (the ablation of benchmarks/pretraining_scaling.py: +4.1 points
    # of linear probe at 20 labels over 0.5), and at this recipe's own compute 0.1 minus 0.5
    # was +3.0 [+1.9, +4.1] points at 20 labels and +5.3 [+4.0, +6.5] at 200 (linear probe),
    # +0.9 [-0.0, +1.8] and +1.8 [+0.8, +2.8] (fine-tuning). (0.5 had won after 8 epochs on
    # a previous simulator.)
    temperature=0.1,
    augment=dict(),  # keyword arguments of GalaxyAugment
    amp=True,  # mixed precision on CUDA (ignored elsewhere)
    channels_last=True,  # memory format of the convolutions (CPU and CUDA; ignored on MPS)
    seed=0,  # model initialisation and augmentation stream
    # every epoch: kNN accuracy of h on labelled validation galaxies and the contrastive top-1
    # accuracy of the training batches (phys555_cl.monitor; about 2% of a default epoch)
    monitor=True,
)

CONFIGS: dict[str, dict] = {
    "fast": {**_BASE, "n_train": 1024, "width": 8, "hidden_dim": 128, "proj_dim": 64,
             "epochs": 2, "batch_size": 128, "warmup_epochs": 0.5},
    "default": {**_BASE},
    # the reference model of notebook 06 (data/pretrained/simclr_reference.pt): the default
    # recipe on 8x the unlabelled galaxies, the largest point of the pretraining scaling study
    # (benchmarks/pretraining_scaling.py) within its budget of 3 CPU core-hours and 20 MB
    "reference": {**_BASE, "n_train": 65536},
    "gpu": {**_BASE, "n_train": 65536, "image_size": 64, "encoder": "resnet18", "epochs": 100,
            "batch_size": 512, "lr": 2e-3},
}


# ------------------------------------------------------------------------------------------
# configuration, and the shipped model
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
    for key in ("epochs", "batch_size", "n_train", "image_size", "width", "hidden_dim",
                "proj_dim"):
        cfg[key] = check_int(key, cfg[key], minimum=1)
    for key in ("data_seed", "seed"):
        cfg[key] = check_int(key, cfg[key])
    return cfg


def _resolve_config(name_or_cfg: str | dict, overrides: dict) -> dict:
    """The configuration ``train_simclr`` was asked for: a name or a dict, with overrides."""
    if isinstance(name_or_cfg, dict):
        base = {k: v for k, v in name_or_cfg.items() if k != "name"}
        return make_config(name_or_cfg.get("name", "default"), **{**base, **overrides})
    return make_config(name_or_cfg, **overrides)


def load_pretrained(images: torch.Tensor | None = None,
                    name: str = "compact") -> tuple[SimCLR, dict]:
    """A shipped SimCLR model and its config, as notebooks 05 and 06 start from it.

    ``name``: ``"compact"`` (the 5-minute model of notebook 05, ``--config default``) or
    ``"reference"`` (the same recipe on 8x the unlabelled galaxies, notebook 06; see
    ``data/pretrained/README.md``).
    Without the reference file the compact model is loaded, and the message says so.
    Without the repository's data folder (a notebook copied on its own, a cloud session
    without ``git clone``) a quick model is trained instead, and the message says so: the
    ``fast`` config for one epoch, on ``images`` if given (else on its own simulated
    galaxies). Either way ``config["image_size"]`` is the size the model was trained on.
    """
    path = pretrained_path(name)
    if name != "compact" and not os.path.exists(path) and os.path.exists(pretrained_path()):
        print(f"{path} not found: loading the compact model instead (its payoff is smaller; "
              f"data/pretrained/README.md says how to make the {name} model)")
        path = pretrained_path()
    if os.path.exists(path):
        model, cfg = load_checkpoint(path)
        print(f"loaded the shipped model {os.path.basename(path)}: {cfg['encoder']} encoder, "
              f"trained for {cfg['epochs']} epochs on {cfg['n_train']} galaxies of "
              f"{cfg['image_size']} px")
        return model, cfg
    print(f"{path} not found (run the notebook from the course repository to use the shipped "
          f"model): training a quick model instead, fast config, 1 epoch.")
    cfg = make_config("fast", epochs=1)
    if images is not None:
        cfg.update(image_size=int(images.shape[-1]), n_train=len(images))
    model, _ = train_simclr(cfg, images=images)
    return model, cfg


# ------------------------------------------------------------------------------------------
# one training step
# ------------------------------------------------------------------------------------------


def simclr_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    v1: torch.Tensor,
    v2: torch.Tensor,
    temperature: float,
    *,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    gather: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
    on_embeddings: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> float:
    """One SimCLR optimisation step on positive pairs ``(v1[k], v2[k])``; returns the loss.

    The step of the lecture (and the reference of notebook 05's exercise 5.1)::

        (h, z) = model(cat([v1, v2]))         [2N, C, H, W] -> h [2N, F], z [2N, D]
        z1, z2 = z.chunk(2)                   the embeddings of v1 and of v2, [N, D] each
        loss   = nt_xent(z1, z2, temperature) (loss on z = g(h), never on h)
        zero the gradients, loss.backward(), optimizer.step()

    Args:
        model: returns ``(h, z)`` for a batch of views: a :class:`~phys555_cl.encoders.SimCLR`,
            or DistributedDataParallel around one.
        optimizer: over the model's parameters.
        v1, v2: two views of the same N galaxies, ``[N, C, H, W]`` each.
        temperature: τ of NT-Xent.
        scaler: a ``torch.amp.GradScaler`` for float16 mixed precision (``None``: no scaling).
        amp_dtype: run the forward pass under ``torch.autocast`` with this dtype
            (``None``: full precision).
        gather: take the negatives from every process (under torchrun; see ``nt_xent``).
        memory_format: of the views, e.g. ``torch.channels_last`` (faster convolutions).
        on_embeddings: called with ``(z1, z2)`` (detached) before the update, e.g. to
            measure the contrastive top-1 accuracy (:mod:`phys555_cl.monitor`).

    Returns:
        the loss as a Python float, for the history and the progress bar.
    """
    # one forward pass for both views: BatchNorm sees all 2N views
    views = torch.cat([v1, v2]).contiguous(memory_format=memory_format)
    with torch.autocast(views.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        _, z = model(views)
    z1, z2 = z.float().chunk(2)
    loss = nt_xent(z1, z2, temperature, gather=gather)
    if on_embeddings is not None:
        on_embeddings(z1.detach(), z2.detach())
    if scaler is None:
        scaler = torch.amp.GradScaler("cuda", enabled=False)  # backward() and step() as they are
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    value = loss.item()  # synchronise before the parameters change (Ctrl-C safety)
    scaler.step(optimizer)
    scaler.update()
    return value


# ------------------------------------------------------------------------------------------
# the training loop
# ------------------------------------------------------------------------------------------


def _epoch_streams(t: Training, epoch: int, first_step: int, gen_states: list | None):
    """This epoch's shuffled order and augmentation generator. Every epoch has its own
    seeds, so a resumed run draws the same numbers; a run resumed mid-epoch continues the
    saved generator state instead."""
    seed = t.cfg["seed"]
    order_gen = torch.Generator().manual_seed(config.stable_seed(seed, epoch, 0, "order"))
    order = torch.randperm(len(t.data), generator=order_gen)
    gen = torch.Generator(device=t.device if t.device.type == "cuda" else "cpu")
    gen.manual_seed(config.stable_seed(seed, epoch, t.rank, "augment"))
    if first_step and gen_states is not None:
        gen.set_state(gen_states[t.rank].to("cpu"))
    return order, gen


def _record_step(history: dict, t: Training, epoch: int, step: int, loss: float) -> None:
    history["step"].append(epoch * t.steps_per_epoch + step + 1)
    history["epoch"].append(epoch + (step + 1) / t.steps_per_epoch)
    history["loss"].append(loss)
    history["lr"].append(t.scheduler.get_last_lr()[0])


def _epoch_summary(epoch: int, losses: list, images: int, seconds: float) -> dict:
    return {
        "epoch": epoch + 1,
        "loss": float(np.mean(losses)) if losses else float("nan"),
        "images_per_s": images / seconds if seconds > 0 else float("nan"),
        "seconds": seconds,
    }


def train_simclr(
    cfg: str | dict = "default",
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
        cfg: ``"fast"``, ``"default"`` or ``"gpu"`` (see :data:`CONFIGS`), or a dict made by
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
            ``"epochs"``: a list of ``{"epoch", "loss", "images_per_s", "seconds"}``, with
            ``"knn_accuracy"`` (``{task: accuracy}``) and ``"contrastive_top1"`` when the
            ``monitor`` option is on (the default; see :mod:`phys555_cl.monitor`).

    Ctrl-C (KeyboardInterrupt) saves a checkpoint (when ``out`` is set) and returns the model
    trained so far; resuming it later repeats exactly the random numbers an uninterrupted run
    would have drawn.
    """
    t, history, (start_epoch, start_step, gen_states) = _prepare(
        _resolve_config(cfg, overrides), images, out, resume, device)
    cfg, checkpointer = t.cfg, Checkpointer(t, out, history)
    # rank 0 watches the representation (the replicas are identical); see phys555_cl.monitor
    monitor = RepresentationMonitor(cfg["image_size"], t.device) \
        if cfg["monitor"] and t.rank == 0 else None
    shown: dict = {}  # the last epoch's monitor values, kept in the progress bar
    bar = _progress_bar(t, cfg, start_epoch, start_step) if t.rank == 0 and progress else None
    steps_done = 0
    # where a resumed run would continue (see Checkpointer); updated once a step is complete
    point = (start_epoch, start_step, None)
    t.net.train()
    try:
        for epoch in range(start_epoch, cfg["epochs"]):
            first = start_step if epoch == start_epoch else 0
            order, gen = _epoch_streams(t, epoch, first, gen_states)
            point = (epoch, first, gen.get_state())
            t0, losses = time.perf_counter(), []
            for step in range(first, t.steps_per_epoch):
                if max_steps is not None and steps_done >= max_steps:
                    raise _StopTraining
                with torch.no_grad():
                    v1, v2 = t.augment.two_views(t.batch(order, step), generator=gen)
                loss = simclr_step(t.net, t.optimizer, v1, v2, cfg["temperature"],
                                   scaler=t.scaler, amp_dtype=t.amp_dtype, gather=t.world > 1,
                                   memory_format=t.memory_format,
                                   on_embeddings=monitor.observe if monitor else None)
                t.scheduler.step()
                steps_done += 1
                losses.append(loss)
                _record_step(history, t, epoch, step, loss)
                point = (epoch, step + 1, gen.get_state())
                _show_step(bar, epoch, loss, len(losses) * cfg["batch_size"], t0, shown)
            shown = _end_epoch(history, t, monitor, bar, epoch, losses,
                               time.perf_counter() - t0)
            point = (epoch + 1, 0, None)
            checkpointer.save(point)
    except _StopTraining:
        checkpointer.save(point)
    except KeyboardInterrupt:
        checkpointer.save_interrupted(point)
    finally:
        if bar is not None:
            bar.close()
    t.model.eval()
    return t.model, history


def _prepare(cfg: dict, images, out: str | None, resume: bool, device):
    """Everything before the first step: check ``out``, start torch.distributed under
    torchrun, share out the data, set up the model and optimizer and restore a checkpoint.
    Returns ``(training state, history, (epoch, step, generator states) to start at)``."""
    if out:
        check_out_folder(out)  # before any work: a bad --out must not cost an epoch
    rank, world, local_rank = init_distributed()
    device = training_device(device, world, local_rank)
    # given images are shared out now; the configured data is loaded after the resume check,
    # so a bad --out fails fast
    data = given_images(images, cfg, rank, world) if images is not None else None
    check_batch_split(cfg["batch_size"], world)
    saved = checkpoint_to_resume(out, resume, cfg, rank)
    t = setup_training(cfg, data, device, rank, world)
    return (t, *restore_training(t, saved, out))


def _progress_bar(t, cfg: dict, start_epoch: int, start_step: int):
    return config.progress(
        total=t.steps_per_epoch * cfg["epochs"], desc=f"SimCLR {cfg['encoder']}",
        initial=start_epoch * t.steps_per_epoch + start_step, unit="step",
    )


def _show_step(bar, epoch: int, loss: float, images: int, t0: float, shown: dict) -> None:
    """One step more in the progress bar (if any): the loss, images/s since ``t0`` and the
    last epoch's monitor values."""
    if bar is not None:
        rate = images / (time.perf_counter() - t0)
        bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.3f}", img_s=f"{rate:.0f}", **shown)
        bar.update(1)


def _end_epoch(history: dict, t, monitor, bar, epoch: int, losses: list, seconds: float) -> dict:
    """Record the epoch's summary and (rank 0) the monitor's measurement of ``h``; returns the
    monitor values to keep showing in the progress bar."""
    images = len(losses) * t.cfg["batch_size"]
    history["epochs"].append(_epoch_summary(epoch, losses, images, seconds))
    if monitor is None:
        return {}
    stats = monitor.end_epoch(t.model)
    history["epochs"][-1].update(stats)
    shown = RepresentationMonitor.postfix(stats)
    if bar is not None and losses:
        bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}", **shown)
    t.net.train()  # the monitor embedded in eval mode
    return shown


class _StopTraining(Exception):
    """Raised inside the loop when ``max_steps`` is reached."""


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    """``python -m phys555_cl.train --config NAME --out DIR [--resume] ...``: train, then print
    one summary line. Exit status 0; 2 for a bad option, folder or checkpoint and 1 for any
    other error, each reported in one ``error:`` line (``--debug``: the full traceback)."""
    args = _parser().parse_args(argv)
    try:
        return run_command(lambda: _run(args), debug=args.debug,
                           expected=(FileExistsError, FileNotFoundError, ValueError),
                           expected_status=2)  # a CheckpointError is a ValueError
    finally:
        end_distributed()


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--no-monitor", action="store_true",
                        help="skip the per-epoch kNN accuracy of h and contrastive top-1 "
                             "(phys555_cl.monitor)")
    parser.add_argument("--debug", action="store_true",
                        help="show the full Python traceback of an error")
    return parser


def _run(args) -> int:
    cfg = make_config(
        args.config, data=args.data, galaxy10_path=args.galaxy10_path,
        encoder=args.encoder, epochs=args.epochs, batch_size=args.batch_size,
        monitor=False if args.no_monitor else None,
    )
    check_out_folder(args.out)
    t0 = time.perf_counter()
    _, history = train_simclr(cfg, out=args.out, resume=args.resume)
    wait_for_the_other_processes()
    if int(os.environ.get("RANK", "0")) == 0 and history["epochs"]:
        last = history["epochs"][-1]
        knn = "".join(f", kNN accuracy of h on {task} {acc:.3f}"
                      for task, acc in last.get("knn_accuracy", {}).items())
        print(
            f"done: {len(history['epochs'])} epochs in this history, last loss "
            f"{last['loss']:.4f}{knn}, {time.perf_counter() - t0:.0f} s wall time; "
            f"{os.path.join(args.out, CHECKPOINT_NAME)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
