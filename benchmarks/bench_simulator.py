"""Can the galaxy simulator feed a network? Galaxies/s beside training images/s, as a ratio.

    .venv/bin/python benchmarks/bench_simulator.py                 # CPU (and CUDA if present)
    .venv/bin/python benchmarks/bench_simulator.py --sizes 64 --repeats 5 --threads 1

For each image size (32, 64, 96 px) and device:

- simulate     `phys555_cl.galaxies.simulate(n, size=...)`: galaxies per second, labels included.
- compact      the baseline: one training step (forward + backward + SGD step) of the course's
               small conv net, `encoders.CompactEncoder` (width 32, the encoder the notebooks
               train) plus a linear head, on batches of the same simulated images (asinh
               stretched), cross-entropy on smooth_or_featured: images per second.
- tiny CNN     the same with a deliberately minimal net (three stride-2 3x3 conv-BN-ReLU
               layers, 32-64-128 channels, global pool, linear): a lower bound on what any
               useful encoder costs.

- before       the simulator as it was before the catalogue/observe rewrite (issue 18), read
               from git (`--baseline`, default be26c34) into a private module and timed in the
               same rounds: the rewrite's cost as a ratio, measured on the same machine.

ratio = simulated galaxies/s over trained images/s. A ratio above 1 means simulating a fresh
batch costs less than a training step on it; the course asks for >= 5 against the course's
small conv net on a CPU, so that data never limits training.

Timing: median of --repeats rounds after one warm-up; each round runs every contender once, in
turn, so that load from a neighbour on a shared machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from phys555_cl.galaxies import simulate


def small_cnn() -> nn.Module:
    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                             nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

    return nn.Sequential(block(3, 32), block(32, 64), block(64, 128), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(128, 2))


def compact_net() -> nn.Module:
    from phys555_cl.encoders import CompactEncoder

    enc = CompactEncoder(3, 32)
    return nn.Sequential(enc, nn.Linear(enc.out_dim, 2))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def load_baseline(rev: str):
    """``galaxies.simulate`` as it was at git revision ``rev`` (None when git cannot say)."""
    root = Path(__file__).resolve().parents[1]
    try:
        text = subprocess.run(["git", "show", f"{rev}:phys555_cl/galaxies.py"], cwd=root,
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "galaxies_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("galaxies_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["galaxies_before"] = module
    spec.loader.exec_module(module)
    return module.simulate


def time_simulate(n, size, device, seed, fn=simulate):
    _sync(device)
    t = time.perf_counter()
    fn(n, size=size, seed=seed, device=device)
    _sync(device)
    return n / (time.perf_counter() - t)


def time_training(net, opt, images, target, batch, steps, device):
    net.train()
    _sync(device)
    t = time.perf_counter()
    for s in range(steps):
        i = (s * batch) % (len(images) - batch + 1)
        x, y = images[i:i + batch], target[i:i + batch]
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(torch.asinh(x / 0.05)), y).backward()
        opt.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t)


def run(device, sizes, n_sim, batch, steps, repeats, before=None):
    rows = []
    for size in sizes:
        images, labels = simulate(max(n_sim, 2 * batch), size=size, seed=1, device=device)
        target = labels["smooth_or_featured"]
        contenders = {"compact": compact_net(), "tiny CNN": small_cnn()}
        opts = {}
        for name, net in contenders.items():
            net.to(device)
            opts[name] = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        results = {"simulate": [], "before": [], **{name: [] for name in contenders}}
        for r in range(repeats + 1):  # round 0 is the warm-up
            sim = time_simulate(n_sim, size, device, seed=100 + r)
            old = (time_simulate(n_sim, size, device, seed=100 + r, fn=before)
                   if before else float("nan"))
            trained = {name: time_training(net, opts[name], images, target, batch, steps, device)
                       for name, net in contenders.items()}
            if r > 0:
                results["simulate"].append(sim)
                results["before"].append(old)
                for name, v in trained.items():
                    results[name].append(v)
        rows.append((size, {k: statistics.median(v) for k, v in results.items()}))
    return rows


def print_table(device, rows, threads):
    print(f"\ndevice: {device} (torch threads: {threads})")
    header = (f"{'size':>5} | {'simulate gal/s':>14} | {'before gal/s':>12} | {'time x':>6} | "
              f"{'compact img/s':>13} | {'ratio':>6} | {'tiny CNN img/s':>14} | {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for size, res in rows:
        sim, comp, tiny, old = res["simulate"], res["compact"], res["tiny CNN"], res["before"]
        print(f"{size:>5} | {sim:14.0f} | {old:12.0f} | {old / sim:5.2f}x | {comp:13.0f} | "
              f"{sim / comp:5.1f}x | {tiny:14.0f} | {sim / tiny:5.1f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 96])
    parser.add_argument("--n", type=int, default=1024, help="galaxies per simulate() call")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2, help="training steps per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--baseline", default="be26c34",
                        help="git revision of the simulator to time beside ('' for none)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    for device in devices:
        n, steps = args.n, args.steps
        if device.type == "cuda":
            n, steps = 8 * args.n, 10 * args.steps
        before = load_baseline(args.baseline) if args.baseline else None
        rows = run(device, args.sizes, n, args.batch, steps, args.repeats, before)
        print_table(device, rows, torch.get_num_threads())


if __name__ == "__main__":
    main()
