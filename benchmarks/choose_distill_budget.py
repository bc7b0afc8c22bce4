"""How much arithmetic the distillation student needs: validation populations only (issue 20,
item 5).

The distillation student is most of the payoff study's time: every step it sees the labelled
minibatch (up to 64 galaxies) and an unlabelled minibatch of 64, for 300 steps, so its steps
are 2 to 4 times the size of the other arms'. This script trains, on each labelled subset of
the validation populations (``study.VALIDATION_SEEDS``, never the evaluation seeds), the
teacher (``simclr + fine-tune``) once and then one student per candidate budget, every
student from the same teacher and the same labelled galaxies, so that the paired difference
between two budgets is the budget's alone::

    python benchmarks/choose_distill_budget.py            # 4 populations: about 30 minutes
    python benchmarks/choose_distill_budget.py --seeds 1234 --subsets 1 1 1   # a smoke run

It prints, per budget (student steps x unlabelled minibatch): the mean accuracy in % at each
label count, the paired difference to the present recipe (300 x 64) with its 95% interval
over (population, subset), and the student's seconds, the budget's cost.

The rule, fixed before the first run: the recipe takes the cheapest budget (fewest student
seconds) whose paired difference to 300 x 64 is no worse than -1 point in the mean at 20
and at 200 labels, with a 95% interval that reaches zero at both.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

from phys555_cl.checkpoints import load_checkpoint
from phys555_cl.evaluate import TASKS
from phys555_cl.galaxies import simulate
from phys555_cl.label_subsets import draw_subset, label_pools
from phys555_cl.labelled import RECIPE, Population
from phys555_cl.processes import map_in_processes, split_cores
from phys555_cl.scaling import format_difference
from phys555_cl.study import EVAL_SEEDS, VALIDATION_SEEDS
from phys555_cl.study_results import paired_interval, score

DISTILL = "simclr + fine-tune + distill"
TEACHER = "simclr + fine-tune"
#: (student steps, unlabelled minibatch): the present recipe first.
BUDGETS = ((300, 64), (300, 16), (150, 64), (150, 32), (150, 16))


def population_job(checkpoint: str, seed: int, counts: dict, budgets, n_galaxies: int,
                   recipe: dict = RECIPE, progress=False) -> list:
    """Every budget's student on every subset of one validation population: a list of
    ``{"population", "labels", "subset", "budget", "mean", "seconds"}``."""
    model, cfg = load_checkpoint(checkpoint)
    images, labels = simulate(n_galaxies, size=cfg["image_size"], seed=seed)
    pop = Population(model, cfg, images, labels, TASKS, "random", 0.5, seed, None)
    pools = label_pools(pop.lab_tr, list(TASKS), "random")
    rows = []
    for count, n in counts.items():
        rng = np.random.default_rng(seed * 1000 + count)
        for r in range(n):
            subset = draw_subset(pools, count, rng, shared=True)
            where = (count, r)
            teacher = pop.fit_subset(subset, {}, (TEACHER,), recipe, where, False)
            for steps, u in budgets:
                rec = {**recipe, "distill_steps": steps, "distill_unlabelled": u}
                fit = pop.fit_subset(subset, {}, (DISTILL,), rec, where, False,
                                     teachers={TEACHER: teacher.trained[TEACHER]})
                s = score(fit.preds[DISTILL], pop.lab_te, TASKS, None)
                rows.append({"population": seed, "labels": count, "subset": r,
                             "budget": (steps, u), "mean": s["mean"],
                             "seconds": fit.seconds[DISTILL]})
            print(f"population {seed}, {count} labels, subset {r + 1} of {n} done", flush=True)
    return rows


def report(rows: list, budgets, counts) -> str:
    """Markdown: per budget and label count, mean accuracy and the paired difference to the
    first budget; the student's seconds over every subset."""
    by = defaultdict(dict)
    for r in rows:
        by[(r["budget"], r["labels"])][(r["population"], r["subset"])] = r["mean"]
    lines = ["| steps x unlabelled | " + " | ".join(f"{c} labels: % / minus 300x64"
                                                   for c in counts) + " | student seconds |",
             "|---|" + "---|" * (len(counts) + 1)]
    for i, b in enumerate(budgets):
        cells = []
        for c in counts:
            base, mine = by[(budgets[0], c)], by[(b, c)]
            keys = sorted(mine)
            diff = paired_interval([mine[k] - base[k] for k in keys])
            cells.append(f"{100 * np.mean(list(mine.values())):.1f} / "
                         + ("-" if i == 0 else format_difference(diff)))
        secs = sum(r["seconds"] for r in rows if r["budget"] == b)
        lines.append(f"| {b[0]} x {b[1]} | " + " | ".join(cells) + f" | {secs:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="data/pretrained/simclr_compact.pt")
    p.add_argument("--seeds", type=int, nargs="+", default=list(VALIDATION_SEEDS))
    p.add_argument("--subsets", type=int, nargs=3, default=[2, 3, 1], metavar=("N5", "N20", "N200"),
                   help="labelled subsets per population at 5, 20 and 200 labels")
    p.add_argument("--n-galaxies", type=int, default=2000)
    args = p.parse_args(argv)
    if set(args.seeds) & set(EVAL_SEEDS):
        raise SystemExit(f"{sorted(set(args.seeds) & set(EVAL_SEEDS))} are evaluation seeds "
                         f"(study.EVAL_SEEDS): choose the recipe on others, e.g. "
                         f"{list(VALIDATION_SEEDS)}")
    counts = {c: n for c, n in zip((5, 20, 200), args.subsets) if n > 0}
    t0 = time.perf_counter()
    workers, threads = split_cores(len(args.seeds), None, "cpu")
    jobs = [(args.checkpoint, s, counts, BUDGETS, args.n_galaxies) for s in args.seeds]
    done = map_in_processes(population_job, jobs, workers=workers, threads=threads,
                            progress=False)
    rows = [r for rs in done for r in rs]
    print(f"\nvalidation populations {args.seeds}, subsets {counts}; "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(report(rows, BUDGETS, list(counts)))


if __name__ == "__main__":
    main()
