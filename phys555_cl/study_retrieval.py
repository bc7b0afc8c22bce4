"""One-shot retrieval: find more of a rare kind from one example, by similarity alone.

An astronomer who has found one ring galaxy wants more of them; there is no classifier to
train on one example, but there is a search (Stein et al. 2021). Precision@k of that search,
every galaxy of the kind in turn as the query, for the SimCLR representation ``h`` and what it
is compared with: raw pixels, a random encoder, the supervised network's features. The payoff
study (:mod:`phys555_cl.study`) adds this table to its label-efficiency records.
"""

from __future__ import annotations

import torch

from phys555_cl.config import stable_seed
from phys555_cl.encoders import build_model_from_config
from phys555_cl.evaluate import embed, raw_pixels, retrieval_precision
from phys555_cl.galaxies import KIND_NAMES

__all__ = ["RARE_KINDS", "retrieval_on_test", "retrieval_table"]

#: The rare kinds of :func:`retrieval_table` (names of ``phys555_cl.galaxies.KIND_NAMES``).
RARE_KINDS = ("ring", "lens", "merger", "irregular", "disk_edge_on")


def retrieval_table(features: dict, kinds, *, rare_kinds=RARE_KINDS, ks=(10, 50)) -> dict:
    """Precision@k of one-shot retrieval for every rare kind and every feature set.

    ``features``: ``{name: [N, D]}`` (e.g. ``h``, raw pixels, random init, supervised);
    ``kinds``: ``[N]`` integer kinds (``labels["kind"]``). Returns ``{name: {kind: {"queries",
    "chance", "p@10", "p@50"}}}`` (see :func:`phys555_cl.evaluate.retrieval_precision`).
    """
    codes = [KIND_NAMES.index(k) for k in rare_kinds]
    return {name: retrieval_precision(f, kinds, query_kinds=codes, ks=ks, names=KIND_NAMES)
            for name, f in features.items()}


def retrieval_on_test(model, config, images, labels, table, device=None) -> dict:
    """:func:`retrieval_table` on the test galaxies of a
    :func:`phys555_cl.study.label_efficiency` ``table``.

    Compares ``h`` of ``model``, raw pixels, a randomly initialised encoder of the same
    architecture (when ``config`` is given) and, when ``table`` kept it
    (``keep_models=True``), the supervised network trained on all labels.
    """
    test = table.test_index
    x = images[test]
    feats = {"h (simclr)": embed(model, x, device=device), "raw pixels": raw_pixels(x)}
    if config is not None:
        torch.manual_seed(stable_seed("random init retrieval", bits=31))
        feats["random init"] = embed(build_model_from_config(config), x, device=device)
    if "supervised" in table.models:
        feats["supervised"] = embed(table.models["supervised"], x, device=device)
    return retrieval_table(feats, labels["kind"][test])
