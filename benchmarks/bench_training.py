"""How fast does SimCLR train, and is the data path (simulate + augment) the bottleneck?

Prints two tables, each with ratios against a baseline measured in the same run:

1. training throughput (galaxies per second, two views each, forward + backward + AdamW step)
   per encoder and memory format (channels-last or not), relative to the compact encoder in
   float32 on the same device; on CUDA also resnet50 and mixed precision (bf16/fp16 autocast);
2. the data path: simulating galaxies and making two augmented views, in galaxies per second,
   and the ratio "time to make a batch / time to train on it" (< 1: the data keeps up).

Usage::

    python benchmarks/bench_training.py                 # CPU (and CUDA when present)
    python benchmarks/bench_training.py --quick         # fewer steps, smaller batches
    python benchmarks/bench_training.py --device cuda --image-size 64 --batch-size 256
"""

from __future__ import annotations

import argparse
import time

import torch

from phys555_cl.augment import GalaxyAugment
from phys555_cl.encoders import build_simclr
from phys555_cl.galaxies import simulate
from phys555_cl.losses import nt_xent


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_rate(encoder: str, device: torch.device, images: torch.Tensor, *, steps: int,
               warmup: int, amp: bool = False, channels_last: bool = False, width: int = 16):
    """Galaxies per second of full SimCLR training steps (augmentation excluded)."""
    torch.manual_seed(0)
    model = build_simclr(encoder, width=width).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() \
        else torch.float16
    v1 = images.to(device)
    v2 = images.flip(-1).to(device)
    views = torch.cat([v1, v2]).contiguous(memory_format=fmt)
    n = len(images)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            _, z = model(views)
        loss = nt_xent(*z.float().chunk(2), temperature=0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return n * steps / (time.perf_counter() - t0)


def data_rates(device: torch.device, n: int, image_size: int, repeats: int):
    """(simulate galaxies/s, two-view augmentation galaxies/s) on ``device``.

    The simulator renders whole blocks of 128 galaxies, so ``n`` is rounded up to a block.
    """
    n = -(-n // 128) * 128
    simulate(128, size=image_size, seed=99, device=device)  # warm-up (cosmology table)
    _sync(device)
    t0 = time.perf_counter()
    images, _ = simulate(n, size=image_size, seed=1, device=device)
    _sync(device)
    sim = n / (time.perf_counter() - t0)
    aug = GalaxyAugment().to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    aug.two_views(images, generator=gen)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        aug.two_views(images, generator=gen)
    _sync(device)
    return sim, n * repeats / (time.perf_counter() - t0), images


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cpu and cuda)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device(args.device)] if args.device else [torch.device("cpu")] + (
        [torch.device("cuda")] if torch.cuda.is_available() else [])

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"image size {args.image_size}")
    for device in devices:
        cuda = device.type == "cuda"
        batch = args.batch_size or (256 if cuda else (32 if args.quick else 128))
        steps = args.steps or (20 if cuda else (3 if args.quick else 5))
        warmup = 3 if cuda else 1
        sim_rate, aug_rate, images = data_rates(device, batch, args.image_size,
                                                repeats=10 if cuda else 2)
        images = images[:batch]
        runs = [("compact", False, False), ("compact", False, True),
                ("resnet18", False, False), ("resnet18", False, True)]
        if cuda:
            runs += [("compact", True, False), ("resnet18", True, False),
                     ("resnet18", True, True), ("resnet50", False, False),
                     ("resnet50", True, False), ("resnet50", True, True)]
        name = torch.cuda.get_device_name(device) if cuda else "CPU"
        print(f"\n## training throughput on {name} (batch {batch}, {steps} timed steps)\n")
        print("| encoder  | mixed precision | channels-last | galaxies/s | vs compact fp32 |")
        print("|----------|-----------------|---------------|------------|-----------------|")
        base = None
        rates = {}
        for enc, amp, cl in runs:
            if enc == "resnet50" and not cuda:
                continue
            rate = train_rate(enc, device, images, steps=steps, warmup=warmup, amp=amp,
                              channels_last=cl)
            rates[(enc, amp, cl)] = rate
            base = base or rate
            print(f"| {enc:<8} | {'yes' if amp else 'no':<15} | {'yes' if cl else 'no':<13} "
                  f"| {rate:10.1f} | {rate / base:15.2f} |")
        train_compact = rates[("compact", False, False)]
        print(f"\n## data path on {name} (baseline: the compact training step, fp32)\n")
        print("| stage                       | galaxies/s | time per batch / compact train step |")
        print("|-----------------------------|------------|--------------------------------------|")
        for stage, rate in [("simulate", sim_rate), ("augment (two views)", aug_rate),
                            ("simulate + augment", 1 / (1 / sim_rate + 1 / aug_rate)),
                            ("train step (compact, fp32)", train_compact)]:
            print(f"| {stage:<27} | {rate:10.1f} | {train_compact / rate:36.2f} |")


if __name__ == "__main__":
    main()
