"""What the SimCLR loop trains with: processes, device, data, model, optimizer, schedule, AMP.

:func:`setup_training` builds one :class:`Training` for :func:`phys555_cl.train.train_simclr`:

- processes: under ``torchrun`` every process trains on its own share of the data (its own
  simulated galaxies, or its slice of Galaxy10); the model is wrapped in
  DistributedDataParallel with SyncBatchNorm (on GPUs; the CPU "gloo" backend has none);
- device: the one asked for, this process's GPU under torchrun, else the course default;
- optimizer: AdamW at ``lr * batch_size / 256`` (linear scaling with the global batch), a
  linear warm-up then cosine decay to zero (SimCLR section B.1);
- mixed precision on CUDA (bfloat16 where supported, else float16 with a gradient scaler),
  channels-last convolutions on CPU and CUDA.
"""

from __future__ import annotations

import dataclasses
import math
import os

import torch
import torch.distributed as dist
from torch import nn

from phys555_cl import config
from phys555_cl.augment import GalaxyAugment
from phys555_cl.data import GALAXY10_FIELD_ARCSEC, Galaxy10DECaLS
from phys555_cl.encoders import SimCLR, build_model_from_config, conv_memory_format
from phys555_cl.galaxies import simulate

__all__ = [
    "Training", "check_batch_split", "end_distributed", "given_images", "init_distributed",
    "load_training_images", "lr_factor", "setup_training", "training_device",
    "wait_for_the_other_processes",
]


# ------------------------------------------------------------------------------------------
# processes and device
# ------------------------------------------------------------------------------------------


def init_distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank); starts torch.distributed when run by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def wait_for_the_other_processes() -> None:
    """Under torchrun: every process has finished before any of them tears the group down.

    Without it the first process to leave closes its gloo connections while another still
    uses them, and that process can abort at exit ("terminate called without an active
    exception", SIGABRT) even though its training finished.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def end_distributed() -> None:
    """Tear the torchrun process group down, if one was started (the last thing a run does)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def training_device(device, world: int, local_rank: int) -> torch.device:
    """``device`` if given, else this process's GPU under torchrun, else the course default."""
    if device is None:
        device = (
            torch.device("cuda", local_rank)
            if world > 1 and torch.cuda.is_available()
            else config.device()
        )
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def given_images(images: torch.Tensor, cfg: dict, rank: int, world: int) -> torch.Tensor:
    """This process's share of ``images`` (every ``world``-th); records them in ``cfg``."""
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be [N, C, S, S], got shape {tuple(images.shape)}")
    cfg["image_size"], cfg["data"], cfg["n_train"] = images.shape[-1], "given", len(images)
    return images[rank::world].float().cpu()


def check_batch_split(batch_size: int, world: int) -> None:
    """Refuse a global batch that the ``world`` processes cannot share equally."""
    if batch_size % world:
        raise ValueError(
            f"batch_size {batch_size} is the global batch and must divide evenly over "
            f"{world} processes"
        )


# ------------------------------------------------------------------------------------------
# data, model, optimizer
# ------------------------------------------------------------------------------------------


def load_training_images(cfg: dict, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """This process's training images ``[n, 3, image_size, image_size]`` (float32, CPU).

    Synthetic: ``n_train // world_size`` galaxies simulated with seed ``data_seed + rank``.
    Galaxy10: every ``world_size``-th image starting at ``rank``.
    """
    if cfg["data"] == "synthetic":
        images, _ = simulate(
            cfg["n_train"] // world_size, size=cfg["image_size"], seed=cfg["data_seed"] + rank
        )
        return images
    data = Galaxy10DECaLS(cfg["galaxy10_path"], size=cfg["image_size"])
    return torch.as_tensor(data.images[rank::world_size]).float()


def lr_factor(warmup_steps: int, total_steps: int):
    """Linear warm-up, then cosine decay to zero (SimCLR section B.1), as a LambdaLR factor."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return factor


@dataclasses.dataclass
class Training:
    """Everything the loop works with, made by :func:`setup_training`."""

    cfg: dict
    rank: int
    world: int
    device: torch.device
    data: torch.Tensor  # this process's training images (on the GPU when training on one)
    local_batch: int  # this process's share of the global batch
    steps_per_epoch: int
    augment: GalaxyAugment
    model: SimCLR  # what checkpoints save
    net: nn.Module  # what the loop calls: the model, or DistributedDataParallel around it
    memory_format: torch.memory_format
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # None: full precision

    def batch(self, order: torch.Tensor, step: int) -> torch.Tensor:
        """The galaxies of ``step`` in this epoch's ``order``, on the training device."""
        idx = order[step * self.local_batch : (step + 1) * self.local_batch]
        return self.data[idx.to(self.data.device)].to(self.device, non_blocking=True)


def setup_training(cfg: dict, data: torch.Tensor | None, device: torch.device, rank: int,
                   world: int) -> Training:
    """Seed, build the model, load the data (``None``: the configured data), wrap the model
    for the device and for DDP, make the optimizer, its schedule and mixed precision."""
    config.seed_everything(cfg["seed"])
    model = build_model_from_config(cfg).to(device)
    if data is None:
        data = load_training_images(cfg, rank, world)
    local_batch = cfg["batch_size"] // world
    if len(data) < local_batch:
        raise ValueError(
            f"each process has {len(data)} training images, fewer than its batch of "
            f"{local_batch}; use a smaller --batch-size or more data"
        )
    steps_per_epoch = len(data) // local_batch
    data = data.to(device) if device.type == "cuda" else data
    augment_options = dict(cfg["augment"])
    if cfg["data"] == "galaxy10":  # blur and noise estimate in arcsec: Galaxy10's pixels
        augment_options.setdefault("pixel_scale", GALAXY10_FIELD_ARCSEC / cfg["image_size"])
    augment = GalaxyAugment(**augment_options).to(device)
    memory_format = conv_memory_format(device, cfg["channels_last"])
    model = model.to(memory_format=memory_format)
    if world > 1 and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    lr = cfg["lr"] * cfg["batch_size"] / 256  # linear scaling with the global batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg["weight_decay"])
    warmup = int(cfg["warmup_epochs"] * steps_per_epoch)
    schedule = lr_factor(warmup, steps_per_epoch * cfg["epochs"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    amp_dtype = None
    if cfg["amp"] and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    return Training(cfg, rank, world, device, data, local_batch, steps_per_epoch, augment,
                    model, net, memory_format, optimizer, scheduler, scaler, amp_dtype)
