"""Is fine-tuning behind the frozen linear probe at 20 labels because its recipe is too harsh?

With the reference model the linear probe on frozen ``h`` beats fine-tuning at 20 labels on
the evaluation populations (``data/pretrained/README.md``); the fine-tuning recipe (300 steps
at lr 2e-3) was chosen on the compact model. This compares, on the **validation** populations
only (``study.VALIDATION_SEEDS``), the linear probe with fine-tuning at the recipe's rate and
at a gentler one, paired on the same labelled subsets. Usage (about 7 minutes on 2 cores)::

    python benchmarks/finetune_vs_linear.py [--checkpoint data/pretrained/simclr_reference.pt]

Result with the reference model at temperature 0.1 (2026-12-05, 9.5 min on one thread beside
another job; ``data/pretrained/README.md``): mean accuracy 68.4% linear probe, 69.4%
fine-tuned at 2e-3, 70.0% at 5e-4; fine-tuning minus the probe +1.0 [-0.6, +2.7] and +1.7
[-0.1, +3.5] points (16 pairs): level at either rate. The model it replaced (temperature
0.5): 68.5%, 68.2%, 68.6%; -0.2 [-2.2, +1.7] and +0.1 [-1.9, +2.1].
"""

from __future__ import annotations

import argparse
import time

from phys555_cl.checkpoints import load_checkpoint
from phys555_cl.galaxies import simulate
from phys555_cl.study import RECIPE, VALIDATION_SEEDS, ResultTable, label_efficiency


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="data/pretrained/simclr_reference.pt")
    p.add_argument("--labels", type=int, default=20)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--rates", type=float, nargs="+", default=[RECIPE["finetune_lr"], 5e-4])
    args = p.parse_args(argv)
    model, cfg = load_checkpoint(args.checkpoint)
    pops = {s: simulate(2000, size=cfg["image_size"], seed=s) for s in VALIDATION_SEEDS}
    records = []
    for i, lr in enumerate(args.rates):
        t0 = time.perf_counter()
        methods = ("simclr + linear", "simclr + fine-tune") if i == 0 else ("simclr + fine-tune",)
        for seed, (images, labels) in pops.items():
            table = label_efficiency(model, images, labels, cfg, label_counts=(args.labels,),
                                     repeats=args.repeats, methods=methods,
                                     recipe={"finetune_lr": lr}, population=seed,
                                     progress=False)
            for r in table.records:  # one name per rate, so the arms can be paired
                name = r["method"] if r["method"] == "simclr + linear" else f"fine-tune lr {lr:g}"
                records.append({**r, "method": name})
        print(f"lr {lr:g}: {time.perf_counter() - t0:.0f} s", flush=True)
    table = ResultTable(records)
    print(f"\n{args.checkpoint}, validation populations {list(VALIDATION_SEEDS)}, "
          f"{args.labels} labels, {args.repeats} subsets each; mean accuracy %:\n")
    for row in table:
        print(f"  {row['method']:<22} {100 * row['mean']:.1f}")
    print("\nfine-tuning minus the linear probe, paired (points, 95% interval):")
    for lr in args.rates:
        c = table.compare(f"fine-tune lr {lr:g}", "simclr + linear", args.labels)
        print(f"  lr {lr:g}: {100 * c['difference']:+.1f} [{100 * c['low']:+.1f}, "
              f"{100 * c['high']:+.1f}], ahead on {c['wins']} of {c['pairs']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
