"""Is the representation h any good? Embeddings, probes, retrieval, UMAP and similarity search.

SimCLR never sees a label, so we judge ``h`` by what a *simple* model can read from it
(Chen et al. 2020, section 4; Hayat et al. 2021):

- **linear probe**: a logistic (or linear) regression on frozen ``h`` (scikit-learn, with
  standardisation); if a straight cut in h-space separates smooth from featured galaxies, the
  encoder has learned that distinction by itself;
- **kNN probe**: the majority label of the k nearest galaxies in h-space (:func:`knn_predict`,
  the package's one kNN);
- **one-shot retrieval**: from one example of a rare kind, how many of its nearest
  neighbours are of that kind (:func:`retrieval_precision`);
- **UMAP** of h and **nearest neighbours** (their plots: :mod:`phys555_cl.plotting`).

Whether self-supervision saves labels, against every alternative and over many populations,
is the study in :mod:`phys555_cl.study` (``python -m phys555_cl.study CHECKPOINT``).

Example::

    model, cfg = load_checkpoint("data/pretrained/simclr_compact.pt")
    images, labels = simulate(2000, size=cfg["image_size"], seed=EVAL_SEED)
    h = embed(model, images)                                   # [2000, 128]
    linear_probe(h[:1000], labels["edge_on"][:1000], h[1000:], labels["edge_on"][1000:])
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import torch
from torch import nn

from phys555_cl.encoders import AsinhStretch
from phys555_cl.galaxies import LABEL_SCHEMA

__all__ = [
    "EVAL_SEED", "TASKS", "embed", "fit_linear_probe", "knn_predict", "knn_probe", "linear_probe",
    "nearest_neighbours", "raw_pixels", "retrieval_precision", "umap_embedding",
]

#: Simulator seed of the evaluation galaxies; never used for training (training uses seed
#: ``phys555_cl.train.DATA_SEED + rank``, i.e. 0, 1, 2, ...).
EVAL_SEED = 2021

#: The four questions of the quality target: (label key, which galaxies it applies to).
TASKS = {t: LABEL_SCHEMA[t]["asked_of"]
         for t in ("smooth_or_featured", "edge_on", "odd_feature", "redshift_high")}


# ------------------------------------------------------------------------------------------
# representations
# ------------------------------------------------------------------------------------------


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, batch_size: int = 256, device=None):
    """The representation ``h`` of every image, as a CPU float32 tensor.

    Args:
        model: a :class:`~phys555_cl.encoders.SimCLR` (or any module whose forward returns
            ``h`` or ``(h, z)``). Put in eval mode here (BatchNorm uses its running statistics).
        images: ``[N, 3, H, W]`` exactly as ``simulate()`` (or Galaxy10) returns them.
        batch_size: images per forward pass.
        device: where to compute (default: where the model is).

    Returns:
        ``h``: float32 CPU tensor ``[N, D]``.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    model = model.to(device).eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.as_tensor(images[start : start + batch_size]).to(device).float()
        if hasattr(model, "representation"):
            h = model.representation(x)
        else:
            h = model(x)
            h = h[0] if isinstance(h, tuple) else h
        out.append(h.float().cpu())
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def raw_pixels(images: torch.Tensor) -> torch.Tensor:
    """The "no learning" baseline: asinh-stretched pixels, flattened. ``[N, 3, H, W] -> [N, 3HW]``.

    Uses the same normalisation as the models (:class:`~phys555_cl.encoders.AsinhStretch`).
    """
    return AsinhStretch()(torch.as_tensor(images)).flatten(1)


# ------------------------------------------------------------------------------------------
# probes
# ------------------------------------------------------------------------------------------


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _is_regression(y: np.ndarray) -> bool:
    return np.issubdtype(y.dtype, np.floating)


def _check_label_kind(y: np.ndarray) -> None:
    """Float labels mean a regression; refuse floats that look like class labels."""
    if not _is_regression(y):
        return
    values = np.unique(y[np.isfinite(y)])
    if 0 < len(values) <= 20 and np.all(values == np.round(values)):
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if len(values) > 6 else "")
        raise ValueError(
            f"the labels are floats but take only whole values ({shown}): "
            f"are they class labels? Pass them as integers (y.long() or y.astype(int)) for a "
            f"classification probe; float labels mean a regression (e.g. redshift)."
        )


class _OneClass:
    """The best a probe can do after seeing a single class: predict it."""

    def __init__(self, label):
        self.label = label

    def predict(self, x):
        return np.full(len(x), self.label)


def fit_linear_probe(train_h, train_y, *, C: float = 1.0, max_iter: int = 2000):
    """The fitted linear probe of :func:`linear_probe`; use its ``.predict(h)``.

    Integer labels -> standardise + logistic regression; float labels -> standardise + ridge
    regression. Rows with an integer label < 0 ("not applicable") are left out; with a single
    class left, the probe predicts that class.

    Shapes: ``train_h [N, D], train_y [N]``. Raises ``ValueError`` when no labelled row is
    left, or for float labels that only take whole values (class labels given as floats).
    """
    # scikit-learn (1-2 s to import) is deferred on purpose: embed() and the plots never need it
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _np(train_h), _np(train_y)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"need features [N, D] and one label per row, got {x.shape} and {y.shape}")
    _check_label_kind(y)
    if _is_regression(y):
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0 / C)).fit(x, y)
    keep = y >= 0
    x, y = x[keep], y[keep]
    if len(y) == 0:
        raise ValueError("no labelled galaxies to fit the probe on (all labels are -1): "
                         "give it galaxies to which the question applies")
    if len(np.unique(y)) < 2:
        return _OneClass(y[0])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    return model.fit(x, y)


def linear_probe(train_h, train_y, test_h, test_y, *, C: float = 1.0, max_iter: int = 2000):
    """Fit a linear model on frozen features; return test accuracy (classes) or R^2 (floats).

    Integer labels -> standardise + logistic regression (``C`` is the inverse L2 strength);
    float labels (e.g. ``redshift``) -> standardise + ridge regression. Labels < 0 are "not
    applicable" for integer labels and are left out. Class labels must be integers: float
    labels that only take whole values raise ``ValueError`` instead of silently becoming a
    regression.

    Shapes: ``train_h [N, D], train_y [N], test_h [M, D], test_y [M] -> float``.
    """
    xtr, ytr, xte, yte = _valid(train_h, train_y, test_h, test_y)
    model = fit_linear_probe(xtr, ytr, C=C, max_iter=max_iter)
    if _is_regression(ytr):
        from sklearn.metrics import r2_score  # deferred on purpose, as in fit_linear_probe

        return float(r2_score(yte, model.predict(xte)))
    return float(np.mean(model.predict(xte) == yte))


def knn_probe(train_h, train_y, test_h, test_y, *, k: int = 10):
    """k-nearest-neighbour probe: :func:`knn_predict` on standardised features, scored as an
    accuracy (class labels) or R^2 (float labels).

    Shapes: ``train_h [N, D], train_y [N], test_h [M, D], test_y [M] -> float``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    xtr, ytr, xte, yte = _valid(train_h, train_y, test_h, test_y)
    mean, std = xtr.mean(axis=0), xtr.std(axis=0)
    std[std == 0] = 1.0  # a constant feature stays constant, as in scikit-learn's scaler
    pred = knn_predict(torch.from_numpy((xtr - mean) / std), torch.from_numpy(ytr),
                       torch.from_numpy((xte - mean) / std), k).numpy()
    if _is_regression(ytr):
        from sklearn.metrics import r2_score  # deferred on purpose, as in fit_linear_probe

        return float(r2_score(yte, pred))
    return float(np.mean(pred == yte))


def _valid(train_h, train_y, test_h, test_y):
    xtr, ytr, xte, yte = _np(train_h), _np(train_y), _np(test_h), _np(test_y)
    _check_label_kind(ytr)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(
            f"features must be [N, D] and [M, D] with the same D, got {xtr.shape} and {xte.shape}"
        )
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(
            f"one label per row needed: {len(xtr)} train rows vs {len(ytr)} labels, "
            f"{len(xte)} test rows vs {len(yte)} labels"
        )
    if not _is_regression(ytr):
        keep_tr, keep_te = ytr >= 0, yte >= 0
        xtr, ytr, xte, yte = xtr[keep_tr], ytr[keep_tr], xte[keep_te], yte[keep_te]
    if len(xtr) == 0 or len(xte) == 0:
        raise ValueError(
            "no labelled galaxies left to fit or score (all labels are -1): the question does "
            "not apply to any of these galaxies; give the probe galaxies it applies to"
        )
    return xtr, ytr, xte, yte


# ------------------------------------------------------------------------------------------
# UMAP and nearest neighbours
# ------------------------------------------------------------------------------------------


def umap_embedding(h, *, n_neighbors: int = 15, min_dist: float = 0.1, random_state=None,
                   n_components: int = 2) -> np.ndarray:
    """2-D UMAP (McInnes et al. 2018) of standardised ``h``. ``[N, D] -> [N, 2]`` numpy.

    ``random_state=None`` (default) lets umap-learn use every core; an integer makes the
    result reproducible but runs single-threaded (several times slower).
    """
    # deferred on purpose: umap-learn (numba) takes seconds to import; only this function uses it
    import umap
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(_np(h))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's "n_jobs overridden by random_state" note
        reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist,
                            n_components=n_components, random_state=random_state)
        return reducer.fit_transform(x)


def nearest_neighbours(query_h, gallery_h, k: int = 8, *, exclude_self: bool = False):
    """The ``k`` most similar gallery items to each query by cosine similarity of ``h``.

    Shapes: ``query_h [Q, D], gallery_h [G, D] -> (indices [Q, k] int64, similarity [Q, k])``,
    most similar first. ``exclude_self=True`` drops exact self-matches when the queries are
    rows of the gallery (same index).
    """
    q = nn.functional.normalize(torch.as_tensor(query_h).float(), dim=1)
    g = nn.functional.normalize(torch.as_tensor(gallery_h).float(), dim=1)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"need [Q, D] and [G, D] with the same D, got {tuple(q.shape)}, "
                         f"{tuple(g.shape)}")
    kk = k + 1 if exclude_self else k
    if not 1 <= kk <= len(g):
        raise ValueError(f"k must be between 1 and the gallery size {len(g)}, got {k}")
    sim = q @ g.T
    if exclude_self:
        rows = torch.arange(min(len(q), len(g)))
        sim[rows, rows] = -math.inf
    val, idx = sim.topk(k, dim=1)
    return idx, val


def knn_predict(train_h, train_y, test_h, k: int = 10, *, temperature: float | None = None):
    """What the ``k`` most cosine-similar training rows say about each test row: the one kNN
    of the package (the monitor, :func:`knn_probe` and exercise 6.1 all use it).

    Each neighbour votes for its class with weight 1 (a majority vote) or, given a
    ``temperature``, with weight ``exp(similarity / temperature)`` (the weighted kNN of Wu et
    al. 2018). Ties go to the smaller class index. Float labels (a regression) give the
    neighbours' mean, weighted the same way. ``k`` larger than the training set uses all of it.

    Shapes: ``train_h [N, D], train_y [N], test_h [M, D] -> [M]`` (int64 classes 0..C-1, or
    float values).
    """
    train_y = torch.as_tensor(train_y)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(train_y) != len(train_h):
        raise ValueError(f"one label per training row needed: {len(train_h)} rows vs "
                         f"{len(train_y)} labels")
    if not train_y.is_floating_point() and (train_y < 0).any():
        raise ValueError("class labels must be 0, 1, 2, ...: leave out the rows labelled -1 "
                         "(the question does not apply to them) before the kNN")
    idx, sim = nearest_neighbours(test_h, train_h, min(k, len(train_h)))
    weight = torch.ones_like(sim) if temperature is None else (sim / temperature).exp()
    neighbour_y = train_y.to(sim.device)[idx]
    if neighbour_y.is_floating_point():
        return (weight * neighbour_y.to(weight.dtype)).sum(dim=1) / weight.sum(dim=1)
    votes = torch.zeros(len(idx), int(train_y.max()) + 1, device=sim.device)
    votes.scatter_add_(1, neighbour_y.long(), weight)
    return votes.argmax(dim=1)


def retrieval_precision(features, kinds, *, query_kinds=None, ks=(10, 50), names=None,
                        batch_size: int = 1024) -> dict:
    """One-shot retrieval: how many of a query's nearest neighbours are of the query's kind?

    Every galaxy of a kind in turn is the one labelled example (the query); the others are the
    gallery. Its ``k`` most similar galaxies by cosine similarity of ``features`` are retrieved,
    and precision@k is the fraction of them of the same kind, averaged over every query of that
    kind (Stein et al. 2021 search 42 million galaxies this way, with no classifier trained).

    Args:
        features: ``[N, D]`` (e.g. ``h``, raw pixels).
        kinds: ``[N]`` integer kind of every galaxy (e.g. ``labels["kind"]``).
        query_kinds: the kinds to use as queries (default: every kind present).
        ks: the cut-offs ``k``.
        names: optional ``{kind: name}`` (or a sequence indexed by kind) for the result keys.

    Returns:
        ``{kind (or name): {"queries": n, "chance": fraction of the gallery of that kind,
        "p@10": ..., "p@50": ...}}``; a kind with no galaxy has ``queries`` 0 and NaN
        precisions.
    """
    x = torch.as_tensor(_np(features)).double()
    y = torch.as_tensor(_np(kinds)).long()
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"need features [N, D] and one kind per row, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1 or max(ks) > len(x) - 1:
        raise ValueError(f"every k must be between 1 and N - 1 = {len(x) - 1}, got {ks}")
    x = nn.functional.normalize(x, dim=1)
    kmax = max(ks)
    query_kinds = sorted(set(y.tolist())) if query_kinds is None else list(query_kinds)
    out = {}
    for kind in query_kinds:
        rows = torch.nonzero(y == kind).flatten()
        hits = {k: [] for k in ks}
        for start in range(0, len(rows), batch_size):
            q = rows[start:start + batch_size]
            sim = x[q] @ x.T
            sim[torch.arange(len(q)), q] = -math.inf  # a query does not retrieve itself
            same = (y[sim.topk(kmax, dim=1).indices] == kind).double()
            for k in ks:
                hits[k].append(same[:, :k].mean(1))
        key = kind if names is None else names[kind]
        n_kind = len(rows)
        out[key] = {"queries": n_kind,
                    "chance": (n_kind - 1) / (len(y) - 1) if n_kind else float("nan")}
        for k in ks:
            out[key][f"p@{k}"] = float(torch.cat(hits[k]).mean()) if n_kind else float("nan")
    return out


if __name__ == "__main__":  # an old command: the study has its own module now
    sys.exit("phys555_cl.evaluate has no command line: the payoff study is "
             "`python -m phys555_cl.study CHECKPOINT` (see data/pretrained/README.md)")
