"""How the recipe of phys555_cl.study.RECIPE was chosen: validation populations only.

Every number here comes from ``simulate(..., seed=s)`` for ``s`` in ``VALIDATION_SEEDS``, never
from the evaluation seeds. It answers, for the networks trained on labels:

1. how many steps they need (150 / 300 at 20 and 200 labels; 600 at 20 labels on half the
   subsets), per arm;
2. the fine-tuning learning rate (5e-4 / 2e-3; the distillation student uses the same);
3. the distillation temperature (1 / 2);
4. how many (population, subset) pairs it takes for the 95% interval of the paired difference
   to be about +-1 point (from the spread of the differences measured here).

The recipe's own learning rate and temperature are the columns of the steps table; the
other candidate of each is run on its own. Usage (30 minutes on 2 quiet cores for the four
validation populations, 4 subsets each, as in data/pretrained/README.md)::

    python benchmarks/choose_study_recipe.py --seeds 1234 1235 1236 1237 --repeats 4
        [--checkpoint data/pretrained/simclr_compact.pt] [--only steps lr temperature]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from phys555_cl.checkpoints import load_checkpoint
from phys555_cl.galaxies import simulate
from phys555_cl.study import RECIPE, VALIDATION_SEEDS, ResultTable, label_efficiency

ARMS = ("simclr + fine-tune", "simclr + fine-tune + distill", "supervised")


def run(model, cfg, populations, count, repeats, methods, recipe):
    tables = [label_efficiency(model, images, labels, cfg, label_counts=(count,),
                               repeats=repeats, methods=methods, recipe=recipe, population=seed,
                               progress=False)
              for seed, (images, labels) in populations.items()]
    return ResultTable.concat(tables)


def summary(table, count, methods) -> dict:
    return {m: next(r["mean"] for r in table if r["method"] == m and r["labels"] == count)
            for m in methods}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default="data/pretrained/simclr_compact.pt")
    p.add_argument("--seeds", type=int, nargs="+", default=list(VALIDATION_SEEDS[:2]))
    p.add_argument("--n-galaxies", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--only", nargs="+", default=["steps", "lr", "temperature"])
    args = p.parse_args()
    model, cfg = load_checkpoint(args.checkpoint)
    pops = {s: simulate(args.n_galaxies, size=cfg["image_size"], seed=s) for s in args.seeds}
    print(f"validation populations {args.seeds}, {args.n_galaxies} galaxies each, "
          f"{args.repeats} subsets per population; mean accuracy in %\n")

    if "steps" in args.only:
        print("| labels | steps | " + " | ".join(ARMS) + " | seconds |")
        print("|---|---|" + "---|" * len(ARMS) + "---|")
        diffs = {}
        plan = [(20, args.repeats, 150), (20, args.repeats, 300), (200, args.repeats // 2, 150),
                (200, args.repeats // 2, 300), (20, args.repeats // 2, 600)]
        for count, repeats, steps in plan:
            t0 = time.perf_counter()
            table = run(model, cfg, pops, count, repeats, ARMS, {"steps": steps})
            s = summary(table, count, ARMS)
            print(f"| {count} | {steps} | " + " | ".join(f"{100 * s[m]:.1f}" for m in ARMS)
                  + f" | {time.perf_counter() - t0:.0f} |", flush=True)
            for arm in ARMS[:2]:
                diffs[(count, steps, arm)] = table.compare(arm, "supervised", count)
        print("\npaired differences to supervised (points; sd of one pair; pairs for +-1 at 95%):")
        for (count, steps, arm), c in diffs.items():
            sd = c["sem"] * math.sqrt(c["pairs"])
            need = math.ceil((1.96 * 100 * sd) ** 2) if not math.isnan(sd) else "n/a"
            print(f"  {count:>3} labels, {steps} steps, {arm}: {100 * c['difference']:+.1f} "
                  f"[{100 * c['low']:+.1f}, {100 * c['high']:+.1f}], sd {100 * sd:.1f} -> "
                  f"{need} pairs", flush=True)

    if "lr" in args.only:
        print("\n| fine-tune lr | 20 labels | 200 labels |")
        print("|---|---|---|")
        # the recipe's own rate is the fine-tune column of the steps table
        for lr in (x for x in (5e-4, 2e-3) if x != RECIPE["finetune_lr"]):
            out = []
            for count, repeats in ((20, args.repeats), (200, args.repeats // 2)):
                table = run(model, cfg, pops, count, repeats, ("simclr + fine-tune",),
                            {"finetune_lr": lr})
                out.append(summary(table, count, ("simclr + fine-tune",))["simclr + fine-tune"])
            print(f"| {lr:g} | {100 * out[0]:.1f} | {100 * out[1]:.1f} |", flush=True)

    if "temperature" in args.only:
        print("\n| distillation T | 20 labels |")
        print("|---|---|")
        # the recipe's own temperature is the distill column of the steps table
        for temp in (x for x in (1.0, 2.0) if x != RECIPE["distill_temperature"]):
            table = run(model, cfg, pops, 20, args.repeats, ("simclr + fine-tune + distill",),
                        {"distill_temperature": temp})
            s = summary(table, 20, ("simclr + fine-tune + distill",))
            print(f"| {temp:g} | {100 * s['simclr + fine-tune + distill']:.1f} |", flush=True)
    print(f"\nrecipe now: {RECIPE}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
