"""Is the representation h any good? Probes, label efficiency, UMAP and similarity search.

SimCLR never sees a label, so we judge ``h`` by what a *simple* model can read from it
(Chen et al. 2020, section 4; Hayat et al. 2021):

- **linear probe**: a logistic (or linear) regression on frozen ``h`` (scikit-learn, with
  standardisation); if a straight cut in h-space separates smooth from featured galaxies, the
  encoder has learned that distinction by itself;
- **kNN probe**: the majority label of the k nearest galaxies in h-space;
- **label efficiency**: SimCLR + linear probe vs the same encoder trained supervised from
  scratch vs a random encoder, with 1%, 10% and 100% of the labels (the lecture's point: few
  galaxies have morphology labels, many have none);
- **UMAP** of h coloured by any label, and **nearest neighbours** with a gallery plot.

Example::

    model, cfg = load_checkpoint("data/pretrained/simclr_compact.pt")
    images, labels = simulate(2000, size=cfg["image_size"], seed=EVAL_SEED)
    h = embed(model, images)                                   # [2000, 128]
    print(label_efficiency(model, images, labels, cfg))        # a table

From a shell, the numbers recorded in ``data/pretrained/README.md``::

    python -m phys555_cl.evaluate data/pretrained/simclr_compact.pt
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch
from torch import nn

#: Simulator seed of the evaluation galaxies; never used for training (training uses seed
#: ``phys555_cl.train.DATA_SEED + rank``, i.e. 0, 1, 2, ...).
EVAL_SEED = 2021

#: The four questions of the quality target: (label key, which galaxies it applies to).
TASKS = {
    "smooth_or_featured": "all galaxies",
    "edge_on": "featured galaxies (edge_on >= 0)",
    "odd_feature": "odd galaxies (odd_feature >= 0)",
    "redshift_high": "all galaxies",
}


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
    from phys555_cl.encoders import AsinhStretch

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


def linear_probe(train_h, train_y, test_h, test_y, *, C: float = 1.0, max_iter: int = 2000):
    """Fit a linear model on frozen features; return test accuracy (classes) or R^2 (floats).

    Integer labels -> standardise + logistic regression (``C`` is the inverse L2 strength);
    float labels (e.g. ``redshift``) -> standardise + ridge regression. Labels < 0 are "not
    applicable" for integer labels and are left out.

    Shapes: ``train_h [N, D], train_y [N], test_h [M, D], test_y [M] -> float``.
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, ytr, xte, yte = _valid(train_h, train_y, test_h, test_y)
    if _is_regression(ytr):
        model = make_pipeline(StandardScaler(), Ridge(alpha=1.0 / C))
        return float(model.fit(xtr, ytr).score(xte, yte))
    if len(np.unique(ytr)) < 2:  # one class only: the best a probe can do is predict it
        return float(np.mean(yte == ytr[0]))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    return float(model.fit(xtr, ytr).score(xte, yte))


def knn_probe(train_h, train_y, test_h, test_y, *, k: int = 10):
    """k-nearest-neighbour probe (cosine distance on standardised features): accuracy or R^2.

    Shapes: ``train_h [N, D], train_y [N], test_h [M, D], test_y [M] -> float``.
    """
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    xtr, ytr, xte, yte = _valid(train_h, train_y, test_h, test_y)
    k = min(k, len(xtr))
    knn = (KNeighborsRegressor if _is_regression(ytr) else KNeighborsClassifier)(
        n_neighbors=k, metric="cosine"
    )
    return float(make_pipeline(StandardScaler(), knn).fit(xtr, ytr).score(xte, yte))


def _valid(train_h, train_y, test_h, test_y):
    xtr, ytr, xte, yte = _np(train_h), _np(train_y), _np(test_h), _np(test_y)
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
        raise ValueError("no labelled galaxies left to fit or score (all labels are -1)")
    return xtr, ytr, xte, yte


def probe_all(train_h, train_labels: dict, test_h, test_labels: dict, *, tasks=tuple(TASKS),
              probe=linear_probe) -> dict:
    """Run ``probe`` for every task; returns ``{task: score, ..., "mean": mean score}``."""
    scores = {t: probe(train_h, train_labels[t], test_h, test_labels[t]) for t in tasks}
    scores["mean"] = float(np.mean([scores[t] for t in tasks]))
    return scores


# ------------------------------------------------------------------------------------------
# label efficiency
# ------------------------------------------------------------------------------------------


class ResultTable(list):
    """A list of row dicts that prints as a Markdown table (``print(table)`` in a notebook).

    ``subset_means[(fraction, method)]`` keeps the mean accuracy on every random labelled
    subset behind a row, for :meth:`compare`.
    """

    def __init__(self, rows=(), subset_means: dict | None = None):
        super().__init__(rows)
        self.subset_means = dict(subset_means or {})

    def compare(self, a: str, b: str, fraction: float) -> dict:
        """Paired comparison of methods ``a`` and ``b`` on the same labelled subsets.

        Returns ``{"difference": mean of (a - b), "sem": its standard error (0 for one
        subset), "wins": subsets where a scored higher, "subsets": how many}``; accuracies as
        fractions (0.012 = 1.2 points). Both methods saw exactly the same labels on each subset,
        so the subset-to-subset luck cancels in the difference.
        """
        try:
            sa, sb = (np.asarray(self.subset_means[(fraction, m)]) for m in (a, b))
        except KeyError as err:
            known = sorted({m for _, m in self.subset_means})
            raise KeyError(
                f"no scores for {err.args[0]!r}; methods: {known}, fractions: "
                f"{sorted({f for f, _ in self.subset_means})}"
            ) from None
        d = sa - sb
        sem = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
        return {"difference": float(d.mean()), "sem": sem, "wins": int((d > 0).sum()),
                "subsets": len(d)}

    def __str__(self) -> str:
        if not self:
            return "(empty table)"
        cols = list(self[0])
        fmt = [
            (f"{r[c] * 100:.1f}" if isinstance(r[c], float) and c not in ("fraction",)
             else f"{r[c]:g}" if isinstance(r[c], float) else str(r[c]))
            for r in self
            for c in cols
        ]
        cells = [fmt[i * len(cols) : (i + 1) * len(cols)] for i in range(len(self))]
        widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(cols)]
        line = "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |"
        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        body = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
        return "\n".join([line, rule, *body])

    __repr__ = __str__


def _subset(n: int, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = max(1, int(round(fraction * n)))
    return np.sort(rng.permutation(n)[:m])


def train_supervised(
    encoder: nn.Module,
    images: torch.Tensor,
    labels: dict,
    tasks=tuple(TASKS),
    *,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    augment: nn.Module | None = None,
    device=None,
    progress: bool = False,
) -> nn.Module:
    """Train ``encoder`` plus one linear head per task from scratch with cross-entropy.

    The supervised baseline of :func:`label_efficiency`: the same architecture, the same
    augmentations, every task at once (labels < 0 are masked out), ``steps`` AdamW steps.
    Returns a module whose forward gives ``{task: logits [B, n_classes]}``.
    """
    from phys555_cl.augment import GalaxyAugment
    from phys555_cl.encoders import AsinhStretch

    device = torch.device(device or "cpu")
    n_classes = {t: max(2, int(torch.as_tensor(labels[t]).max()) + 1) for t in tasks}
    model = _MultiHead(AsinhStretch(), encoder, n_classes).to(device)
    augment = (augment or GalaxyAugment()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    ys = {t: torch.as_tensor(labels[t]).long() for t in tasks}
    n = len(images)
    bs = min(batch_size, n)
    it = range(steps)
    if progress:
        from phys555_cl.config import progress as bar

        it = bar(it, desc="supervised", leave=False)
    model.train()
    for _ in it:
        idx = torch.randint(n, (bs,), generator=gen)
        x = augment(torch.as_tensor(images[idx]).float(), generator=gen).to(device)
        out = model(x)
        loss = 0.0
        for t in tasks:
            y = ys[t][idx].to(device)
            ok = y >= 0
            if ok.any():
                loss = loss + nn.functional.cross_entropy(out[t][ok], y[ok])
        opt.zero_grad(set_to_none=True)
        if torch.is_tensor(loss):
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


class _MultiHead(nn.Module):
    def __init__(self, normalize: nn.Module, encoder: nn.Module, n_classes: dict):
        super().__init__()
        self.normalize, self.encoder = normalize, encoder
        self.heads = nn.ModuleDict({t: nn.Linear(encoder.out_dim, c) for t, c in n_classes.items()})

    def forward(self, x):
        h = self.encoder(self.normalize(x))
        return {t: head(h) for t, head in self.heads.items()}


@torch.no_grad()
def _supervised_scores(model: _MultiHead, images, labels, tasks, batch_size=256) -> dict:
    model.eval()
    device = next(model.parameters()).device
    preds = {t: [] for t in tasks}
    for start in range(0, len(images), batch_size):
        out = model(torch.as_tensor(images[start : start + batch_size]).float().to(device))
        for t in tasks:
            preds[t].append(out[t].argmax(1).cpu())
    scores = {}
    for t in tasks:
        y, p = torch.as_tensor(labels[t]), torch.cat(preds[t])
        ok = y >= 0
        scores[t] = float((p[ok] == y[ok]).float().mean())
    scores["mean"] = float(np.mean([scores[t] for t in tasks]))
    return scores


def label_efficiency(
    model: nn.Module,
    images: torch.Tensor,
    labels: dict,
    config: dict | None = None,
    *,
    fractions=(0.01, 0.1, 1.0),
    tasks=tuple(TASKS),
    test_fraction: float = 0.5,
    supervised_steps: int = 600,
    raw_pixel_baseline: bool = True,
    repeats: int = 1,
    seed: int = 0,
    device=None,
    progress: bool = True,
) -> ResultTable:
    """SimCLR + linear probe vs the same encoder supervised from scratch vs random init.

    The galaxies are split once into a probe-training part and a test part
    (``test_fraction``). For each fraction of the training part that carries labels, every
    method is fitted on those labels only and scored on the whole test part:

    - ``simclr + linear``: frozen ``h`` of ``model``, logistic regression;
    - ``random init + linear``: the same architecture untrained (seed ``seed``), same probe;
    - ``raw pixels + linear``: asinh-stretched pixels, same probe (only at 100% by default:
      it does not depend on the representation);
    - ``supervised``: the same architecture trained from scratch on the labelled galaxies
      (:func:`train_supervised`, ``supervised_steps`` steps, with augmentations).

    Args:
        model: the trained SimCLR model.
        images, labels: evaluation galaxies (e.g. ``simulate(n, seed=EVAL_SEED)``), never
            seen in training.
        config: the training config (from ``load_checkpoint``) to rebuild the architecture;
            default: a copy of ``model``'s encoder with its weights re-initialised.
        supervised_steps: training steps of the supervised baseline; 0 skips it (fast). The
            default, 600, was chosen on validation galaxies (``simulate(4000, seed=1234)``,
            never the test seed) to give the baseline a fair chance: with 20 labels it
            scored 73.4% after 150 steps, 75.2% after 300 and 75.8% after 600.
        repeats: for every fraction below 1, draw this many different random labelled
            subsets and average the scores over them. With 1% of 2000 galaxies (20 labels,
            about two of them edge-on) one subset can be lucky or unlucky by several points;
            the average is the number to compare.

    Returns:
        :class:`ResultTable` with one row per (fraction, method): ``fraction``, ``labels``
        (galaxies with labels), ``method``, one accuracy per task and their ``mean``
        (averaged over the subsets), ``subsets`` (how many) and ``std`` (the standard
        deviation of ``mean`` from subset to subset; 0 for a single subset).
        ``print(table)`` shows it as Markdown (accuracies in %).
    """
    import copy

    from phys555_cl.train import build_model

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    for f in fractions:
        if not 0 < f <= 1:
            raise ValueError(f"fractions must be in (0, 1], got {f}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive whole number, got {repeats!r}")
    images = torch.as_tensor(images)
    n = len(images)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    lab = {t: torch.as_tensor(labels[t]) for t in tasks}
    lab_tr = {t: v[train_idx] for t, v in lab.items()}
    lab_te = {t: v[test_idx] for t, v in lab.items()}

    def fresh_model():
        torch.manual_seed(seed)
        if config is not None:
            return build_model(config)
        fresh = copy.deepcopy(model)
        for m in fresh.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return fresh

    h = embed(model, images, device=device)
    h_rand = embed(fresh_model(), images, device=device)
    features = {"simclr + linear": h, "random init + linear": h_rand}
    if raw_pixel_baseline:
        features["raw pixels + linear"] = raw_pixels(images)

    table = ResultTable()
    for f in fractions:
        subsets = [_subset(len(train_idx), f, seed + 1 + r) for r in range(repeats if f < 1 else 1)]
        runs: dict[str, list[dict]] = {}
        for sub in subsets:
            tr = {t: v[sub] for t, v in lab_tr.items()}
            for method, feats in features.items():
                if method.startswith("raw") and f != max(fractions):
                    continue
                scores = probe_all(feats[train_idx][sub], tr, feats[test_idx], lab_te, tasks=tasks)
                runs.setdefault(method, []).append(scores)
            if supervised_steps > 0:
                enc = fresh_model().encoder
                sup = train_supervised(
                    enc, images[train_idx][sub], tr, tasks, steps=supervised_steps, seed=seed,
                    device=device, progress=progress,
                )
                runs.setdefault("supervised", []).append(
                    _supervised_scores(sup, images[test_idx], lab_te, tasks)
                )
        for method, scores in runs.items():
            means = [s["mean"] for s in scores]
            table.subset_means[(f, method)] = means
            table.append({
                "fraction": f, "labels": len(subsets[0]), "method": method,
                **{k: float(np.mean([s[k] for s in scores])) for k in scores[0]},
                "subsets": len(scores), "std": float(np.std(means)),
            })
    return table


# ------------------------------------------------------------------------------------------
# UMAP and nearest neighbours
# ------------------------------------------------------------------------------------------


def umap_embedding(h, *, n_neighbors: int = 15, min_dist: float = 0.1, random_state=None,
                   n_components: int = 2) -> np.ndarray:
    """2-D UMAP (McInnes et al. 2018) of standardised ``h``. ``[N, D] -> [N, 2]`` numpy.

    ``random_state=None`` (default) lets umap-learn use every core; an integer makes the
    result reproducible but runs single-threaded (several times slower).
    """
    import warnings

    import umap
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(_np(h))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's "n_jobs overridden by random_state" note
        reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist,
                            n_components=n_components, random_state=random_state)
        return reducer.fit_transform(x)


_CLASS_NAMES = {
    "smooth_or_featured": ("smooth", "featured"),
    "edge_on": ("face-on", "edge-on"),
    "odd": ("not odd", "odd"),
    "odd_feature": ("ring", "irregular", "other", "merger"),
    "redshift_high": ("low z", "high z"),
    "label_tier": ("no label", "spec-z", "spec-z + morphology"),
}


def plot_umap(embedding, labels: dict, key: str, *, ax=None, s: float = 4.0, title=None):
    """Scatter a 2-D embedding coloured by ``labels[key]``; -1 ("not applicable") in grey.

    Integer labels get one colour per class with a legend; float labels a colour bar.
    Returns the matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    if key not in labels:
        raise ValueError(f"no label {key!r}; available: {sorted(labels)}")
    e, y = _np(embedding), _np(labels[key])
    if e.ndim != 2 or e.shape[1] != 2 or len(e) != len(y):
        raise ValueError(f"embedding must be [N, 2] with one label each, got {e.shape}, {y.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
    else:
        fig = ax.figure
    if _is_regression(y):
        sc = ax.scatter(e[:, 0], e[:, 1], c=y, s=s, cmap="viridis", linewidths=0)
        fig.colorbar(sc, ax=ax, label=key)
    else:
        na = y < 0
        if na.any():
            ax.scatter(e[na, 0], e[na, 1], c="lightgrey", s=s, linewidths=0, label="n/a")
        names = _CLASS_NAMES.get(key, ())
        for c in np.unique(y[~na]):
            m = y == c
            name = names[c] if c < len(names) else str(c)
            ax.scatter(e[m, 0], e[m, 1], s=s, linewidths=0, label=name)
        ax.legend(markerscale=3, fontsize=8, frameon=False)
    ax.set_title(title or f"UMAP of h, coloured by {key}")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


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


def plot_neighbours(query_images, gallery_images, indices, similarity=None, *, labels=None,
                    **kwargs):
    """Gallery plot: each row is a query galaxy followed by its nearest neighbours.

    Args:
        query_images: ``[Q, 3, H, W]``; gallery_images: ``[G, 3, H, W]``.
        indices: ``[Q, k]`` from :func:`nearest_neighbours` (similarity ``[Q, k]`` optional,
            shown in the titles).
        labels: optional gallery label dict, shown as captions.
        kwargs: passed to ``phys555_cl.plotting.show_galaxies`` (e.g. ``band_weights``).

    Returns the matplotlib ``Figure``.
    """
    from phys555_cl.plotting import caption, show_galaxies

    idx = torch.as_tensor(indices)
    q, k = idx.shape
    panels, titles = [], []
    for i in range(q):
        panels.append(torch.as_tensor(query_images[i]))
        titles.append("query")
        for j in range(k):
            panels.append(torch.as_tensor(gallery_images[int(idx[i, j])]))
            t = f"{float(similarity[i, j]):.2f}" if similarity is not None else f"#{j + 1}"
            if labels is not None:
                t += "\n" + caption(labels, int(idx[i, j]))
            titles.append(t)
    return show_galaxies(torch.stack(panels), ncols=k + 1, titles=titles, **kwargs)


# ------------------------------------------------------------------------------------------
# command line: the numbers of data/pretrained/README.md
# ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    from phys555_cl.galaxies import simulate
    from phys555_cl.train import load_checkpoint

    parser = argparse.ArgumentParser(
        prog="python -m phys555_cl.evaluate",
        description="Label-efficiency table of a SimCLR checkpoint on held-out simulated galaxies.",
    )
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=4000, help="evaluation galaxies (half for test)")
    parser.add_argument("--seed", type=int, default=EVAL_SEED, help="simulator seed")
    parser.add_argument("--supervised-steps", type=int, default=600,
                        help="training steps of the supervised baseline (0: skip it)")
    parser.add_argument("--repeats", type=int, default=10,
                        help="random labelled subsets averaged for each fraction below 1")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.supervised_steps < 0:
        parser.error(f"--supervised-steps must be 0 (skip) or more, got {args.supervised_steps}")
    t0 = time.perf_counter()
    model, cfg = load_checkpoint(args.checkpoint)
    images, labels = simulate(args.n, size=cfg["image_size"], seed=args.seed)
    table = label_efficiency(model, images, labels, cfg, supervised_steps=args.supervised_steps,
                             repeats=args.repeats)
    print(f"{args.checkpoint}: {args.n} galaxies of seed {args.seed}, "
          f"image_size {cfg['image_size']}, accuracies in % (mean over {args.repeats} random "
          f"labelled subsets below 100%; std: their spread)\n")
    print(table)
    if args.supervised_steps > 0:
        print()
        for f in sorted({r["fraction"] for r in table}):
            c = table.compare("simclr + linear", "supervised", f)
            print(f"{f:.0%} of the labels: simclr + linear - supervised = "
                  f"{100 * c['difference']:+.1f} +- {100 * c['sem']:.1f} points (paired, "
                  f"standard error), simclr ahead on {c['wins']} of {c['subsets']} subsets")
    h = embed(model, images)
    n_test = args.n // 2
    r2 = linear_probe(h[n_test:], labels["redshift"][n_test:], h[:n_test],
                      labels["redshift"][:n_test])
    print(f"\nredshift R^2 of a linear probe on h (all labels): {r2:.3f}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
