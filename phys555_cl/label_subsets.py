"""Which galaxies carry labels in the payoff study: the protocols and the labelled subsets.

- a *protocol* says which probe-training galaxies may carry each task's label
  (:func:`label_pools`): ``random``: any of them; ``survey``: as in a real survey, morphology
  labels only on ``label_tier`` 2 (the brightest galaxies) and redshift labels on tiers 1-2;
- a *labelled subset* is ``count`` galaxies of each task's pool (:func:`draw_subset`; the
  random protocol labels the same galaxies for every task), and every method of the study is
  fitted on exactly the same subset;
- each label count gets :func:`subsets_for` independent subsets per population.
"""

from __future__ import annotations

import numpy as np
import torch

from phys555_cl.galaxies import MORPHOLOGY_TASKS

__all__ = [
    "DEFAULT_REPEATS", "MORPHOLOGY_TASKS", "PROTOCOLS", "REPEATS", "draw_subset", "label_pools",
    "masked_labels", "subsets_for",
]

#: How the labelled galaxies are chosen (see :func:`label_pools`).
PROTOCOLS = ("random", "survey")
#: Tasks whose labels come from a visual morphology (tier 2 in the survey protocol); the
#: others come from a spectrum (tiers 1-2).
#: Random labelled subsets per population for each label count (``"all"`` has one subset; a
#: count not listed here gets ``DEFAULT_REPEATS``). Chosen on the validation populations so
#: that the 95% interval of a paired difference over 4 populations is about +-1 point at 20
#: labels (it took 18-21 pairs there: 5 subsets); at 200 labels 2-4 pairs were enough (2
#: subsets, 8 pairs); at 5 labels +-1 would take 50-80 pairs, beyond the 30-minute budget, so
#: it gets the 20 pairs of 20 labels (about +-2). See data/pretrained/README.md.
REPEATS = {5: 5, 20: 5, 200: 2}
DEFAULT_REPEATS = 3


def subsets_for(count, repeats=REPEATS) -> int:
    """How many labelled subsets ``count`` gets: ``repeats`` is one number for every count or
    a ``{count: subsets}`` dict like :data:`REPEATS`; ``"all"`` always has one."""
    if count == "all":
        return 1
    if isinstance(repeats, dict):
        return repeats.get(count, DEFAULT_REPEATS)
    return repeats


def label_pools(train_labels: dict, tasks, protocol: str) -> dict:
    """Which probe-training galaxies may carry each task's label: ``{task: indices}``.

    ``random``: all of them. ``survey``: morphology tasks only tier 2, redshift tasks tiers
    1-2 (``label_tier``), as a survey's spectroscopic and visual selections allow.
    """
    n = len(train_labels[tasks[0]])
    if protocol == "random":
        return {t: np.arange(n) for t in tasks}
    tier = np.asarray(train_labels["label_tier"])
    return {t: np.flatnonzero(tier >= (2 if t in MORPHOLOGY_TASKS else 1)) for t in tasks}


def draw_subset(pools: dict, count, rng: np.random.Generator, shared: bool) -> dict:
    """``{task: sorted indices}`` of the labelled galaxies: ``count`` of each task's pool
    (``"all"``: the whole pool). ``shared`` (the random protocol): one draw for every task."""
    out, cache = {}, {}
    for t, pool in pools.items():
        key = tuple(pool) if shared else t
        if key not in cache:
            cache[key] = pool if count == "all" else np.sort(rng.choice(pool, count, replace=False))
        out[t] = cache[key]
    return out


def masked_labels(train_labels: dict, subset: dict) -> dict:
    """Train labels with -1 everywhere outside each task's labelled subset."""
    out = {}
    for t, idx in subset.items():
        y = torch.full_like(torch.as_tensor(train_labels[t]), -1)
        y[idx] = torch.as_tensor(train_labels[t])[idx]
        out[t] = y
    return out
