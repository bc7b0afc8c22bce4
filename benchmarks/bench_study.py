"""How fast is the payoff study, and do its speed-ups change its numbers? (issue 20, item 5)

The study is bound by the networks it trains on labels (supervised, fine-tuning,
distillation: 300 steps each, 13 labelled subsets per population). Two changes make it
faster without changing its recipe:

- ``channels-last``: the label-trained networks run their convolutions in the channels-last
  memory format, as SimCLR training already did (``encoders.conv_memory_format``);
- ``processes``: the populations run side by side, one process per core with one thread
  each (``study.payoff_study(workers=...)``, the command line's default): a step on 5 or 20
  labelled galaxies keeps one core busy, not two.

This script runs the same populations of the study (every arm, the default label counts and
subsets, fewer steps per network so that it takes minutes; time grows in proportion to the
steps) three ways, in the same run so that the machine's day is the same for all three:

- ``before``: one process with every thread, contiguous memory (the study before these two
  changes; the smaller ones of the same round, fused AdamW, predictions in batches of 128 and
  the faster sigma clipping, are in all three ways);
- ``channels-last``: one process, channels-last;
- ``channels-last, processes``: the command line's default now.

and prints the seconds, the speed-up over ``before``, and how many of the records (one
accuracy per population, subset and method) each way reproduces exactly, with the largest
difference in points where one differs (rounding in another memory format or thread count
can flip a prediction; the seeds are the same)::

    python benchmarks/bench_study.py              # 2 populations, 30 steps: about 5 minutes
    python benchmarks/bench_study.py --steps 300  # the study's own recipe

``--compare NEW.json OLD.json`` pairs two studies' JSON files (``python -m phys555_cl.study
... --json``) record by record instead: per method and label count, how many records are
identical and the mean difference with its 95% interval. For two runs of the same
checkpoint (or, for the arms that never see the SimCLR weights, of two checkpoints of one
architecture) that is what the speed-ups changed::

    python benchmarks/bench_study.py --compare new_study.json data/pretrained/study_random.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from unittest import mock

import torch

from phys555_cl import labelled
from phys555_cl.checkpoints import load_checkpoint
from phys555_cl.processes import split_cores
from phys555_cl.scaling import format_difference
from phys555_cl.study import EVAL_SEEDS, METHODS, payoff_study
from phys555_cl.study_results import load_study, paired_between, scores_by_subset


def _contiguous(device=None, enabled=True):
    return torch.contiguous_format


def run(model, cfg, seeds, steps: int, way: str, n_galaxies: int = 2000) -> tuple[float, list]:
    """Seconds and records of the study of ``seeds`` done ``way``."""
    kw = dict(eval_seeds=seeds, recipe={"steps": steps}, progress=False, retrieval=False,
              n_galaxies=n_galaxies)
    t0 = time.perf_counter()
    if way == "before":
        with mock.patch.object(labelled, "conv_memory_format", _contiguous):
            study = payoff_study(model, cfg, workers=1, **kw)
    else:
        study = payoff_study(model, cfg, workers=1 if way == "channels-last" else None, **kw)
    return time.perf_counter() - t0, study.table.records


def _key(r: dict) -> tuple:
    return r["population"], str(r["labels"]), r["subset"], r["method"]


def compare(new_path: str, old_path: str) -> str:
    """Markdown: per (method, label count) of the records both studies hold, how many are
    identical and the paired difference new - old (points, 95% t-interval)."""
    new, old = load_study(new_path), load_study(old_path)
    lines = [f"{new_path} minus {old_path}, paired on (population, subset), points of mean "
             f"accuracy", "", "| method | labels | identical | new - old [95% interval] |",
             "|---|---|---|---|"]
    for method in METHODS:
        for count in new.settings["label_counts"]:
            a = scores_by_subset(new.table.records, method, count, new.settings["protocol"])
            b = scores_by_subset(old.table.records, method, count, old.settings["protocol"])
            keys = [k for k in a if k in b]
            if not keys:
                continue
            same = sum(a[k] == b[k] for k in keys)
            d = paired_between(a, b)
            lines.append(f"| {method} | {count} | {same} of {len(keys)} | "
                         f"{format_difference(d)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="data/pretrained/simclr_compact.pt")
    p.add_argument("--seeds", type=int, nargs="+", default=list(EVAL_SEEDS[:2]))
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--n-galaxies", type=int, default=2000)
    p.add_argument("--compare", nargs=2, metavar=("NEW.json", "OLD.json"),
                   help="pair two studies' records instead of timing")
    args = p.parse_args(argv)
    if args.compare:
        print(compare(*args.compare))
        return 0
    model, cfg = load_checkpoint(args.checkpoint)
    workers, threads = split_cores(len(args.seeds))
    print(f"{args.checkpoint}; populations {args.seeds}; every arm, counts 5 20 200 all; "
          f"{args.steps} steps per network; {torch.get_num_threads()} threads here, "
          f"{workers} processes of {threads} thread(s) for 'processes'\n")
    ways = ("before", "channels-last", "channels-last, processes")
    results = {w: run(model, cfg, args.seeds, args.steps, w, args.n_galaxies) for w in ways}
    base_seconds, base_records = results["before"]
    base = {_key(r): r["mean"] for r in base_records}
    print("| way | seconds | speed-up over before | records equal to before | largest "
          "difference (points) |")
    print("|---|---|---|---|---|")
    for way, (seconds, records) in results.items():
        diffs = [0.0 if r["mean"] == base[_key(r)] or (math.isnan(r["mean"])
                                                        and math.isnan(base[_key(r)]))
                 else abs(r["mean"] - base[_key(r)]) for r in records]
        same = sum(d == 0 for d in diffs)
        print(f"| {way} | {seconds:.0f} | {base_seconds / seconds:.2f}x | {same} of "
              f"{len(diffs)} | {100 * max(diffs):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
