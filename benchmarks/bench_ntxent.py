"""NT-Xent side by side: time (forward + backward) and extra peak memory.

    .venv/bin/python benchmarks/bench_ntxent.py            # CPU table, 2N in {512, 2048, 8192}
    .venv/bin/python benchmarks/bench_ntxent.py --sizes 512 2048 --repeats 3

Contenders (all compute the same number, checked at the start of every size):

- phys555 full      `phys555_cl.losses.nt_xent(z1, z2)`
- phys555 chunked   `nt_xent(z1, z2, chunk_size=c)`, c = 256 and 1024 (recomputes the tiles in
                    backward: less memory, more matrix products)
- plain             `nt_xent_textbook`: normalise, one matmul, diagonal -> -inf,
                    `F.cross_entropy` (the textbook way)
- lightly           `lightly.loss.NTXentLoss` (baseline of the ratio columns)
- pml               `pytorch_metric_learning.losses.NTXentLoss` on [z1; z2] with pair labels
- matmul floor      the three matrix products any NT-Xent needs, z z^T [2N, 2N] forward and
                    G z, G^T z backward: 6 (2N)^2 D FLOPs, timed at this machine's own rate.

Time: median of `--repeats` rounds after one warm-up round; every round runs each contender once,
in turn, so that a neighbour's load on a shared machine hits all of them alike.

Extra peak memory, CPU: torch's allocations are invisible to tracemalloc, so each measurement runs
in a fresh subprocess that builds the inputs, resets the kernel's peak-RSS mark (writing 5 to
/proc/self/clear_refs), reads its resident set size (VmRSS), runs one forward + backward, and reads
the peak RSS (VmHWM in /proc/self/status). Extra peak = peak RSS - RSS before the call: every page
the loss touched at its worst moment, inputs excluded. The child runs with
MALLOC_MMAP_THRESHOLD_=65536 and MALLOC_TRIM_THRESHOLD_=0 so that glibc hands freed buffers back at
once and RSS tracks live memory (repeat runs agree to 0.1 MB). resource.getrusage's ru_maxrss is
only the fallback: a child inherits its parent's peak across fork + exec.
A warm-up call on a tiny batch first loads lazily-initialised kernels so they do not count.
Resolution is about 1 MB (page and allocator granularity), so small sizes read near zero.
CUDA: torch.cuda.max_memory_allocated() minus the allocation before the call.

On CUDA the script also runs 2N up to 65536 in float32 and bfloat16 (`--cuda-sizes`).
Peers that are not installed are skipped: `pip install -e .[bench]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from phys555_cl.losses import nt_xent, nt_xent_textbook

TEMPERATURE = 0.5
CHUNK = 256


# --------------------------------------------------------------------------------------------
# the contenders: each takes (z1, z2) and returns a scalar loss
# --------------------------------------------------------------------------------------------


def phys555_full(z1, z2):
    return nt_xent(z1, z2, TEMPERATURE)


def phys555_chunked(z1, z2):
    return nt_xent(z1, z2, TEMPERATURE, chunk_size=CHUNK)


def phys555_chunked_1024(z1, z2):
    return nt_xent(z1, z2, TEMPERATURE, chunk_size=1024)


def plain(z1, z2):
    return nt_xent_textbook(z1, z2, TEMPERATURE)


def _make_lightly():
    from lightly.loss import NTXentLoss

    loss = NTXentLoss(temperature=TEMPERATURE)
    return lambda z1, z2: loss(z1, z2)


def _make_pml():
    from pytorch_metric_learning.losses import NTXentLoss

    loss = NTXentLoss(temperature=TEMPERATURE)

    def pml(z1, z2):
        n = z1.shape[0]
        labels = torch.arange(n, device=z1.device).repeat(2)
        return loss(torch.cat([z1, z2]), labels)

    return pml


def contenders() -> dict:
    found = {"phys555 full": phys555_full, f"phys555 chunked({CHUNK})": phys555_chunked,
             "phys555 chunked(1024)": phys555_chunked_1024, "plain matmul+CE": plain}
    for name, make in [("lightly", _make_lightly), ("pytorch-metric-learning", _make_pml)]:
        try:
            found[name] = make()
        except ImportError:
            print(f"# {name} not installed: skipped (pip install -e .[bench])")
    return found


def matmul_floor(z1, z2):
    """The three matrix products of NT-Xent's forward and backward, nothing else."""
    z = torch.cat([z1, z2]).detach()
    s = z @ z.t()
    return (s @ z, s.t() @ z)


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------


def make_inputs(two_n, dim, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(two_n // 2, dim, generator=g).to(device=device, dtype=dtype)
    z2 = torch.randn(two_n // 2, dim, generator=g).to(device=device, dtype=dtype)
    return z1.requires_grad_(), z2.requires_grad_()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def step(fn, z1, z2):
    z1.grad = z2.grad = None
    out = fn(z1, z2)
    if isinstance(out, tuple):  # the matmul floor has no backward of its own
        return
    out.backward()


def time_all(fns: dict, z1, z2, repeats: int) -> dict:
    """Median seconds per forward+backward; round-robin so load noise hits everyone alike."""
    device = z1.device
    times = {name: [] for name in fns}
    failed = {}
    for round_ in range(repeats + 1):  # round 0 is the warm-up
        for name, fn in fns.items():
            if name in failed:
                continue
            try:
                _sync(device)
                t0 = time.perf_counter()
                step(fn, z1, z2)
                _sync(device)
                if round_ > 0:
                    times[name].append(time.perf_counter() - t0)
            except (torch.cuda.OutOfMemoryError, MemoryError, RuntimeError) as err:
                failed[name] = "OOM" if "memory" in str(err).lower() else f"error: {err}"[:40]
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return {name: failed.get(name, statistics.median(t) if t else None)
            for name, t in times.items()}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes(reset_ok: bool) -> int:
    if reset_ok:
        return _status_kib("VmHWM") * 1024
    # fallback: getrusage's peak, which a child inherits from its parent across fork + exec,
    # so it can overstate small measurements
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_child(name: str, two_n: int, dim: int) -> None:
    """Runs in a fresh process: print the extra peak RSS of one forward+backward of `name`."""
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    fns = contenders() if name != "matmul floor" else {"matmul floor": matmul_floor}
    fn = fns[name]
    step(fn, *make_inputs(8, dim, torch.float32, torch.device("cpu")))  # load kernels
    z1, z2 = make_inputs(two_n, dim, torch.float32, torch.device("cpu"))
    reset_ok = _reset_peak_rss()
    before = _status_kib("VmRSS") * 1024
    try:
        step(fn, z1, z2)
    except (MemoryError, RuntimeError) as err:
        print(json.dumps({"error": "OOM" if "memory" in str(err).lower() else str(err)[:40]}))
        return
    print(json.dumps({"extra": _peak_rss_bytes(reset_ok) - before}))


def cpu_memory(name: str, two_n: int, dim: int):
    cmd = [sys.executable, __file__, "--memory-child", name, str(two_n), str(dim)]
    # every allocation over 64 KiB mmap-ed and unmapped on free (no dynamic threshold, no heap
    # cache), so RSS follows live memory and the child's peak is the loss's own peak
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return "OOM" if proc.returncode in (-9, 137) else f"failed rc={proc.returncode}"
    result = json.loads(lines[-1])
    if "error" in result:
        return result["error"]
    return result["extra"]


def cuda_memory(fn, z1, z2):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    try:
        step(fn, z1, z2)
        torch.cuda.synchronize()
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return "OOM"
    return torch.cuda.max_memory_allocated() - before


# --------------------------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------------------------


def _fmt_time(t):
    return f"{t * 1e3:10.1f}" if isinstance(t, float) else f"{t:>10}"


def _fmt_mem(m):
    return f"{m / 2**20:9.1f}" if isinstance(m, int) else f"{m:>9}"


def _ratio(a, b):
    ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0
    return f"{b / a:7.2f}x" if ok else f"{'-':>8}"


def check_values(fns, z1, z2):
    ref = phys555_full(z1, z2).item()
    for name, fn in fns.items():
        if name == "matmul floor":
            continue
        try:
            value = fn(z1, z2).item()
        except Exception as err:  # noqa: BLE001 (report and go on)
            print(f"#   {name}: failed on the value check: {err}")
            continue
        if abs(value - ref) > 1e-3 * max(1.0, abs(ref)):
            print(f"#   WARNING {name} gives {value:.6f}, phys555 gives {ref:.6f}")


def run_size(two_n, dim, dtype, device, repeats, fns):
    z1, z2 = make_inputs(two_n, dim, dtype, device)
    check_values(fns, *make_inputs(min(two_n, 512), dim, dtype, device, seed=1))
    all_fns = dict(fns, **{"matmul floor": matmul_floor})
    times = time_all(all_fns, z1, z2, repeats)
    if device.type == "cuda":
        mems = {name: cuda_memory(fn, z1, z2) for name, fn in all_fns.items()}
    else:
        del z1, z2
        mems = {name: cpu_memory(name, two_n, dim) for name in all_fns}
    flops = 6 * two_n**2 * dim
    floor = times["matmul floor"]
    rate = flops / floor / 1e9 if isinstance(floor, float) else float("nan")
    title = f"2N = {two_n}, D = {dim}, {str(dtype).replace('torch.', '')}, {device.type}"
    print(f"\n{title}  (matmul rate {rate:.1f} GFLOP/s, 6(2N)^2 D = {flops / 1e9:.2f} GFLOP)")
    header = (f"{'method':<26}{'time ms':>10}{'extra MB':>10}{'vs lightly':>12}"
              f"{'x floor':>9}{'mem/full':>10}")
    print(header)
    print("-" * len(header))
    base_t, base_m = times.get("lightly"), mems.get("phys555 full")
    for name in all_fns:
        t, m = times[name], mems[name]
        print(f"{name:<26}{_fmt_time(t)}{_fmt_mem(m):>10}{_ratio(t, base_t):>12}"
              f"{_ratio(floor, t) if name != 'matmul floor' else '  1.00x':>9}"
              f"{_ratio(m, base_m):>10}")
    return times, mems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 8192],
                        help="values of 2N on the CPU")
    parser.add_argument("--cuda-sizes", type=int, nargs="+",
                        default=[512, 2048, 8192, 16384, 32768, 65536])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-child", nargs=3, metavar=("NAME", "TWO_N", "DIM"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        name, two_n, dim = args.memory_child
        _memory_child(name, int(two_n), int(dim))
        return

    fns = contenders()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at start")
    print("# ratios: 'vs lightly' = lightly time / this time (higher is faster than lightly);")
    print("# 'x floor' = this time / matmul floor time; 'mem/full' = phys555 full extra / this")
    cpu = torch.device("cpu")
    for two_n in args.sizes:
        run_size(two_n, args.dim, torch.float32, cpu, args.repeats, fns)
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        print(f"\n# CUDA: {torch.cuda.get_device_name()}")
        for dtype in (torch.float32, torch.bfloat16):
            for two_n in args.cuda_sizes:
                run_size(two_n, args.dim, dtype, cuda, args.repeats, fns)
    print(f"\n# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
