"""When does self-supervision pay off? Every way to use the encoder, against labels alone.

The lecture's promise (Hayat et al. 2021): a representation learned without labels lets the
few labels an astronomer has go further. This module measures it on the course's galaxies,
honestly, with every method fitted on exactly the same labelled galaxies:

- ``simclr + linear``: the frozen SimCLR representation ``h`` and a logistic regression;
- ``simclr + fine-tune``: the SimCLR encoder, trained further on the labelled galaxies
  (new linear heads, the same augmentations and step budget as ``supervised``);
- ``simclr + fine-tune + distill`` (SimCLRv2, Chen et al. 2020b): the fine-tuned network
  labels the probe-training galaxies that carry no label with soft targets, and a network of
  the same architecture (started from the SimCLR weights) learns from those targets and the
  labels;
- ``supervised``: the same architecture trained from scratch on the labelled galaxies;
- ``random init + linear`` and ``raw pixels + linear``: what no learning gives.

Two protocols choose the labelled galaxies:

- ``random``: any galaxy of the probe-training part may carry the labels;
- ``survey``: as in a real survey, morphology labels exist only for ``label_tier`` 2 (the
  brightest galaxies) and redshift labels for tiers 1-2; every method is then scored on the
  test galaxies of *every* tier and reported per tier (tier 0 is what a survey most wants:
  the faint galaxies nobody labelled).

The study measures the method, not one seed: several independent evaluation populations
(simulator seeds never used to train or choose anything), several random labelled subsets in
each, and a fresh initialisation seed for every network trained. Each SimCLR arm is compared
with ``supervised`` by paired differences, one per (population, subset), with a 95%
t-interval over all of them. :func:`retrieval_table` adds one-shot similarity search (the use
with no supervised alternative).

Where the parts live: which galaxies carry labels (the protocols, the labelled subsets) in
:mod:`phys555_cl.label_subsets`; every method fitted on one labelled subset (the networks
trained on labels, the probes) in :mod:`phys555_cl.labelled`; the records, paired intervals and
tables in :mod:`phys555_cl.study_results`. Here: one population (:func:`label_efficiency`),
several (:func:`payoff_study`, side by side in worker processes with ``workers``), retrieval,
the command.

From a shell (the numbers of ``data/pretrained/README.md``)::

    python -m phys555_cl.study data/pretrained/simclr_compact.pt --json results.json
    python -m phys555_cl.study data/pretrained/simclr_compact.pt --protocol survey
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter

import numpy as np
import torch
from torch import nn

from phys555_cl._checks import check_int
from phys555_cl._cli import run_command
from phys555_cl.checkpoints import load_checkpoint
from phys555_cl.config import stable_seed
from phys555_cl.evaluate import TASKS
from phys555_cl.fileio import atomic_write_text
from phys555_cl.galaxies import simulate
from phys555_cl.label_subsets import (
    DEFAULT_REPEATS,
    MORPHOLOGY_TASKS,
    PROTOCOLS,
    REPEATS,
    draw_subset,
    label_pools,
    subsets_for,
)
from phys555_cl.labelled import RECIPE, Population, study_bar
from phys555_cl.processes import map_in_processes, split_cores
from phys555_cl.study_results import (
    LABEL_COUNTS,
    METHODS,
    SIMCLR_ARMS,
    WEIGHT_FREE,
    ResultTable,
    Study,
    architecture,
    check_reuse,
    format_comparisons,
    format_retrieval,
    lend_records,
    load_study,
    mean_retrieval,
    score,
)
from phys555_cl.study_retrieval import RARE_KINDS, retrieval_on_test, retrieval_table

__all__ = [
    "EVAL_SEEDS", "RARE_KINDS", "VALIDATION_SEEDS", "WEIGHT_FREE", "label_efficiency", "main",
    "payoff_study", "retrieval_on_test", "retrieval_table",
    # the study's vocabulary, subsets, results and networks, kept importable from here
    "DEFAULT_REPEATS", "LABEL_COUNTS", "METHODS", "MORPHOLOGY_TASKS", "PROTOCOLS", "RECIPE",
    "REPEATS", "SIMCLR_ARMS", "ResultTable", "Study", "draw_subset", "format_comparisons",
    "format_retrieval", "label_pools", "score", "subsets_for",
]

#: Simulator seeds of the evaluation populations: never used for training or for any choice.
EVAL_SEEDS = (2021, 2022, 2023, 2024)
#: Simulator seeds of the validation populations: every choice of the recipe (:data:`RECIPE`)
#: and of :data:`REPEATS` was made on these (see ``data/pretrained/README.md``), never on
#: ``EVAL_SEEDS``.
VALIDATION_SEEDS = (1234, 1235, 1236, 1237)


# ------------------------------------------------------------------------------------------
# argument checks (label_efficiency, payoff_study and the command line share them)
# ------------------------------------------------------------------------------------------


def _check_settings(*, label_counts=LABEL_COUNTS, methods=METHODS, protocol="random",
                    repeats=REPEATS, recipe=None, n_galaxies=None, eval_seeds=None,
                    names=None) -> tuple[tuple, tuple, dict]:
    """Refuse bad settings of :func:`label_efficiency` and :func:`payoff_study` (and of the
    command line) by name, before any work; returns ``(label counts, methods, full recipe)``.

    ``names``: how a message names each argument (default its Python name; the command line
    passes its options, e.g. ``{"n_galaxies": "--n-galaxies"}``). ``n_galaxies`` and
    ``eval_seeds`` are checked when given.

    Raises:
        ValueError: saying which setting is wrong, what it was and what is allowed.
    """
    name = {"steps": "recipe['steps']", **(names or {})}.get
    counts = _check_counts(label_counts, name("label_counts", "label_counts"))
    methods = _check_methods(methods)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    per_count = repeats.items() if isinstance(repeats, dict) else [(None, repeats)]
    for count, n in per_count:
        key = name("repeats", "repeats")
        check_int(key if count is None else f"{key}[{count!r}]", n, 1)
    rec = {**RECIPE, **(recipe or {})}
    unknown = sorted(set(rec) - set(RECIPE))
    if unknown:
        raise ValueError(f"unknown recipe key(s) {unknown}; keys are {sorted(RECIPE)}")
    check_int(name("steps", "steps"), rec["steps"], 1)
    check_int("recipe['distill_unlabelled']", rec["distill_unlabelled"], 1)
    check_int("recipe['distill_steps']", rec["distill_steps"], 1, allow_none=True)
    if n_galaxies is not None:
        check_int(name("n_galaxies", "n_galaxies"), n_galaxies, 20)
    if eval_seeds is not None:
        if not list(eval_seeds):
            raise ValueError("eval_seeds is empty: give at least one simulator seed")
        for seed in eval_seeds:
            check_int(name("eval_seeds", "eval_seeds"), seed)
    return counts, methods, rec


def _check_counts(label_counts, name: str) -> tuple:
    """The label counts as a tuple of whole numbers >= 1 and ``"all"``; one count may be
    given alone."""
    if isinstance(label_counts, (int, str)):
        label_counts = (label_counts,)
    try:
        counts = tuple(label_counts)
    except TypeError:
        raise ValueError(f"{name} must be a list like (5, 20, 200, 'all'), got "
                         f"{label_counts!r}") from None
    for c in counts:
        if c != "all" and (isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1):
            raise ValueError(f"every label count must be a whole number >= 1 or 'all', got {c!r}")
    if not counts:
        raise ValueError(f"{name} is empty: give at least one, e.g. (20,)")
    return counts


def _check_methods(methods) -> tuple:
    """The methods as a tuple of names of :data:`METHODS`; one may be given alone."""
    if isinstance(methods, str):
        methods = (methods,)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    return tuple(methods)


def _check_population(labels, tasks, protocol, test_fraction) -> None:
    """Refuse labels and a split :func:`label_efficiency` cannot use, saying why."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    unknown = [t for t in tasks if t not in labels]
    if unknown:
        raise ValueError(f"no labels for task(s) {unknown}; the labels have {sorted(labels)}")
    if protocol == "survey" and "label_tier" not in labels:
        raise ValueError("the survey protocol needs labels['label_tier'] (0, 1, 2)")


# ------------------------------------------------------------------------------------------
# one population
# ------------------------------------------------------------------------------------------


def label_efficiency(
    model: nn.Module,
    images: torch.Tensor,
    labels: dict,
    config: dict | None = None,
    *,
    label_counts=LABEL_COUNTS,
    methods=METHODS,
    tasks=tuple(TASKS),
    protocol: str = "random",
    repeats: int | dict = REPEATS,
    test_fraction: float = 0.5,
    recipe: dict | None = None,
    population=0,
    device=None,
    progress: bool = True,
    keep_models: bool = False,
) -> ResultTable:
    """Every method fitted on the same labelled galaxies of one population, scored on its test part.

    The galaxies are split once into a probe-training part and a test part (``test_fraction``,
    seeded by ``population``). For each label count, ``subsets_for(count, repeats)`` random
    labelled subsets are drawn (one for ``"all"``; see :data:`REPEATS`) and every method in
    ``methods`` (see :data:`METHODS`) is fitted on exactly those labels. Each network trained
    gets its own initialisation seed.

    Args:
        model: the trained SimCLR model (``load_checkpoint``).
        images, labels: the evaluation galaxies, e.g. ``simulate(2000, size=32, seed=2021)``.
        config: its training config, to rebuild the architecture for ``supervised`` and
            ``random init``; default: a copy of ``model`` with its weights re-initialised.
        label_counts: labelled galaxies per task, e.g. ``(5, 20, 200, "all")``. A count larger
            than a task's pool is skipped and noted in ``table.notes``.
        protocol: ``"random"`` or ``"survey"`` (labels only where ``label_tier`` allows them,
            scores per tier as ``tier0``, ``tier1``, ``tier2``).
        recipe: overrides of :data:`RECIPE` (steps, learning rates, distillation temperature).
        population: a name for this population in the records (e.g. its simulator seed).
        keep_models: keep the networks trained on ``"all"`` labels (first subset) in
            ``table.models[method]``, e.g. for :func:`retrieval_table`.

    Returns:
        :class:`ResultTable`: ``table.records`` holds every (subset, method) score,
        ``table.seconds`` the time per method, ``table.notes`` the counts skipped,
        ``table.test_index`` the test galaxies and ``table.models`` the networks kept.

    Raises:
        ValueError: a setting or the labels cannot be used (the message says which and why).
    """
    counts, methods, rec = _check_settings(label_counts=label_counts, methods=methods,
                                           protocol=protocol, repeats=repeats, recipe=recipe)
    _check_population(labels, tasks, protocol, test_fraction)
    pop = Population(model, config, images, labels, tasks, protocol, test_fraction,
                     population, device)
    seconds = Counter({m: 0.0 for m in methods})
    features, spent = pop.frozen_features(methods)
    seconds.update(spent)
    records, notes, models = [], [], {}
    pools = label_pools(pop.lab_tr, list(tasks), protocol)
    runnable = []
    for count in counts:
        short = {t: len(p) for t, p in pools.items() if count != "all" and len(p) < count}
        if short:
            notes.append(f"population {population}, protocol {protocol}: {count} labels asked "
                         f"but only {short} galaxies may carry them; skipped")
        else:
            runnable.append(count)
    bar = study_bar(progress, runnable, repeats, methods, rec, population)
    for count in runnable:
        rng = np.random.default_rng(stable_seed("subsets", population, protocol, count, bits=31))
        n_subsets = subsets_for(count, repeats)
        for r in range(n_subsets):
            subset = draw_subset(pools, count, rng, shared=(protocol == "random"))
            if bar is not None:
                bar.set_description(f"population {population}: {count} labels, subset "
                                    f"{r + 1} of {n_subsets}")
            fit = pop.fit_subset(subset, features, methods, rec, (count, r), bar or False)
            seconds.update(fit.seconds)
            if keep_models and count == "all" and r == 0:
                models.update(fit.trained)
            for m in methods:
                records.append({
                    "protocol": protocol, "population": population, "labels": count,
                    "subset": r, "method": m, "no_labels": fit.no_labels,
                    "n_labelled": {t: len(subset[t]) for t in tasks},
                    **score(fit.preds[m], pop.lab_te, tasks, pop.tiers_te),
                })
    if bar is not None:
        bar.close()
    return ResultTable(records, tasks, notes=notes, seconds=dict(seconds), models=models,
                       test_index=pop.test_idx)


# ------------------------------------------------------------------------------------------
# the whole study: several populations
# ------------------------------------------------------------------------------------------


def payoff_study(
    model: nn.Module,
    config: dict,
    *,
    eval_seeds=EVAL_SEEDS,
    n_galaxies: int = 2000,
    label_counts=LABEL_COUNTS,
    repeats: int | dict = REPEATS,
    protocol: str = "random",
    methods=METHODS,
    retrieval: bool = True,
    recipe: dict | None = None,
    device=None,
    progress: bool = True,
    reuse=None,
    workers: int | None = 1,
) -> Study:
    """:func:`label_efficiency` on several independent populations, plus one-shot retrieval.

    Every population is ``simulate(n_galaxies, size=config["image_size"], seed=s)`` for ``s``
    in ``eval_seeds``; the rows and paired comparisons pool every (population, subset).
    Retrieval runs on each population's test galaxies with ``h``, raw pixels, a random
    encoder and, when ``supervised`` is among the methods and ``"all"`` among the counts, the
    representation of the supervised network trained on all labels.

    ``reuse``: a :class:`Study` (or the path of its JSON) of *another* checkpoint of the same
    architecture, run with the same settings: the methods of :data:`WEIGHT_FREE` are copied
    from it instead of trained again (they never see the SimCLR weights, so their records are
    the same number for number), and so is its ``supervised`` retrieval row. This is what makes
    a study of a new checkpoint cheaper (about a fifth of the time of the default study).

    Raises:
        ValueError: a bad setting (``n_galaxies`` < 20, no or negative ``eval_seeds``, or any
            setting :func:`label_efficiency` refuses), or a ``reuse`` study whose settings or
            architecture differ (the message names them), before any galaxy is simulated.
    """
    counts, methods, rec = _check_settings(
        label_counts=label_counts, methods=methods, protocol=protocol, repeats=repeats,
        recipe=recipe, n_galaxies=n_galaxies, eval_seeds=eval_seeds)
    seeds, n_galaxies = list(eval_seeds), int(n_galaxies)
    settings = {"eval_seeds": seeds, "n_galaxies": n_galaxies, "label_counts": list(counts),
                "subsets": {str(c): subsets_for(c, repeats) for c in counts},
                "protocol": protocol, "methods": list(methods), "recipe": rec,
                "image_size": config["image_size"], "architecture": architecture(config)}
    lent, reused_from = (), None
    if reuse is not None:
        if not isinstance(reuse, Study):
            reused_from, reuse = str(reuse), load_study(reuse)
        lent = tuple(m for m in methods if m in WEIGHT_FREE)
        check_reuse(reuse, settings, lent, retrieval)
        settings["reused"] = {"methods": list(lent), "from": reused_from}
    own = tuple(m for m in methods if m not in lent)
    n_workers, threads = split_cores(len(seeds), workers, device)
    t0 = time.perf_counter()
    job = dict(n_galaxies=n_galaxies, label_counts=counts, methods=own, protocol=protocol,
               repeats=repeats, recipe=recipe, device=device, retrieval=retrieval)
    if n_workers > 1:
        done = map_in_processes(_population_job, [(model, config, s, job) for s in seeds],
                                workers=n_workers, threads=threads, progress=progress,
                                desc=f"{len(seeds)} populations, {n_workers} processes")
    else:
        done = [_population_job(model, config, s, job, progress=progress) for s in seeds]
    table = ResultTable.concat([t for t, _ in done])
    retrievals = [r for _, r in done if r is not None]
    retrieved = mean_retrieval(retrievals) if retrievals else {}
    if lent:
        table = lend_records(table, reuse, lent, seeds, counts, methods)
        if retrieval and "supervised" in lent and "supervised" in reuse.retrieval:
            retrieved["supervised"] = reuse.retrieval["supervised"]
    seconds = {**{m: 0.0 for m in lent}, **table.seconds, "total": time.perf_counter() - t0}
    return Study(table, retrieved, table.notes, seconds, settings)


def _population_job(model, config: dict, seed: int, job: dict, progress=True):
    """One population of :func:`payoff_study`: ``(its ResultTable, its retrieval table or
    None)``. Runs in this process or in a worker (:func:`map_in_processes`): the networks
    kept for retrieval are used here and not sent back."""
    images, labels = simulate(job["n_galaxies"], size=config["image_size"], seed=int(seed))
    own, counts = job["methods"], job["label_counts"]
    keep = job["retrieval"] and "supervised" in own and "all" in counts
    table = label_efficiency(model, images, labels, config, label_counts=counts, methods=own,
                             protocol=job["protocol"], repeats=job["repeats"],
                             recipe=job["recipe"], population=int(seed), device=job["device"],
                             progress=progress, keep_models=keep)
    found = (retrieval_on_test(model, config, images, labels, table, job["device"])
             if job["retrieval"] else None)
    table.models = {}
    return table, found


# ------------------------------------------------------------------------------------------
# command line: python -m phys555_cl.study CHECKPOINT ...
# ------------------------------------------------------------------------------------------


#: How the command line names the settings it shares with :func:`payoff_study`.
_OPTIONS = {"label_counts": "--labels", "repeats": "--repeats", "steps": "--steps",
            "n_galaxies": "--n-galaxies", "eval_seeds": "--eval-seeds"}


def _count(text: str):
    """A label count as typed: ``all`` or a whole number (its limits: :func:`_check_settings`)."""
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a label count: use whole numbers >= 1 or 'all'") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m phys555_cl.study",
        description="When does self-supervision pay off? Every way to use a SimCLR checkpoint "
                    "with few labels, against a network trained on the labels alone, on "
                    "independent populations of simulated galaxies; plus one-shot retrieval.",
    )
    p.add_argument("checkpoint", help="a checkpoint.pt from phys555_cl.train (or data/pretrained/)")
    p.add_argument("--eval-seeds", type=int, nargs="+", default=list(EVAL_SEEDS), metavar="S",
                   help=f"simulator seeds of the evaluation populations (default {EVAL_SEEDS})")
    p.add_argument("--n-galaxies", type=int, default=2000, metavar="N",
                   help="galaxies per population, half of them for the probes (default 2000)")
    p.add_argument("--labels", type=_count, nargs="+", default=list(LABEL_COUNTS), metavar="L",
                   help="labelled galaxies per task: whole numbers or 'all' (default 5 20 200 all)")
    p.add_argument("--repeats", type=int, default=None, metavar="R",
                   help="random labelled subsets per population and count (default: "
                        + ", ".join(f"{n} for {c}" for c, n in REPEATS.items())
                        + f", {DEFAULT_REPEATS} for other counts, 1 for all)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="random",
                   help="random: any galaxy may be labelled; survey: labels follow label_tier")
    p.add_argument("--methods", nargs="+", default=list(METHODS), metavar="M",
                   help="methods to run (quote names with spaces), default: all of "
                        + ", ".join(f"'{m}'" for m in METHODS))
    p.add_argument("--steps", type=int, default=RECIPE["steps"],
                   help=f"training steps of every network trained on labels "
                        f"(default {RECIPE['steps']})")
    p.add_argument("--no-retrieval", action="store_true", help="skip the retrieval table")
    p.add_argument("--reuse", metavar="STUDY.json", help="copy the methods that never see the "
                   "SimCLR weights (" + ", ".join(WEIGHT_FREE) + ") from this study of "
                   "another checkpoint of the same architecture and settings instead of "
                   "training them again (the same numbers, about 20%% less time)")
    p.add_argument("--workers", type=int, default=None, metavar="W",
                   help="populations computed side by side, the CPU cores shared out between "
                        "them (default: one per population up to one per core; 1: one "
                        "process with every thread)")
    p.add_argument("--json", metavar="PATH", help="also write every row, comparison and the "
                   "retrieval table to PATH as JSON")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return p


def main(argv=None) -> int:
    """``python -m phys555_cl.study CHECKPOINT [--protocol survey] [--json F] ...``: the payoff
    study of a checkpoint, printed as Markdown tables. Every argument is checked (by the checks
    of :func:`payoff_study`) before anything is loaded; exit status 0, 2 for a bad argument,
    1 for a missing or damaged checkpoint or any other error (one ``error:`` line)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.repeats is None:  # every count its own number of subsets
        args.repeats = REPEATS
    try:
        _check_settings(label_counts=args.labels, methods=args.methods, protocol=args.protocol,
                        repeats=args.repeats, recipe={"steps": args.steps},
                        n_galaxies=args.n_galaxies, eval_seeds=args.eval_seeds, names=_OPTIONS)
    except ValueError as err:
        parser.error(str(err))
    if not args.no_retrieval and args.n_galaxies < 120:
        parser.error(f"the retrieval table (precision@50 among half the galaxies) needs "
                     f"--n-galaxies of at least 120, got {args.n_galaxies}; or add --no-retrieval")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be 1 or more, got {args.workers}")
    if args.reuse and not os.path.isfile(args.reuse):
        parser.error(f"--reuse {args.reuse!r}: no such file; give the JSON that "
                     f"python -m phys555_cl.study ... --json wrote")
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if os.path.isdir(args.json) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            parser.error(f"--json {args.json!r}: give a file path in an existing folder you can "
                         f"write to")
    return run_command(lambda: _run(args), debug=args.debug, expected=(OSError, ValueError),
                       expected_status=1,  # a CheckpointError is a ValueError
                       interrupted="stopped (Ctrl-C); nothing was written")


def _subsets_text(counts, repeats) -> str:
    """E.g. ``5: 5, 20: 5, 200: 2, all: 1`` for the CLI's header line."""
    return ", ".join(f"{c}: {subsets_for(c, repeats)}" for c in counts)


def _run(args) -> int:
    t0 = time.perf_counter()
    model, cfg = load_checkpoint(args.checkpoint)
    study = payoff_study(model, cfg, eval_seeds=args.eval_seeds, n_galaxies=args.n_galaxies,
                         label_counts=args.labels, repeats=args.repeats,
                         protocol=args.protocol, methods=args.methods,
                         retrieval=not args.no_retrieval, recipe={"steps": args.steps},
                         reuse=args.reuse, workers=args.workers)
    print(f"{args.checkpoint}: protocol {args.protocol}; populations (simulator seeds) "
          f"{args.eval_seeds}, {args.n_galaxies} galaxies each (half to fit, half to score); "
          f"labelled subsets per count: {_subsets_text(args.labels, args.repeats)}; "
          f"accuracies in %, averaged "
          f"over (population, subset); std: spread of the mean accuracy between them.\n")
    print(study)
    took = time.perf_counter() - t0
    per = ", ".join(f"{m} {s:.0f} s" for m, s in study.seconds.items() if m != "total")
    workers, threads = split_cores(len(args.eval_seeds), args.workers)
    where = (f"{workers} processes of {threads} thread{'s' * (threads > 1)} side by side; "
             f"each method's seconds added up over them" if workers > 1 else "one process")
    print(f"\n({took:.0f} s in {where}: {per})")
    if args.json:
        text = json.dumps({"checkpoint": args.checkpoint, **study.to_json()}, indent=1)
        atomic_write_text(args.json, text)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
