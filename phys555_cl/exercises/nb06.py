"""Checks for notebook 06 (galaxy representations): a k-nearest-neighbour classifier, and a
paired comparison from the study's records."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from phys555_cl.evaluate import knn_predict
from phys555_cl.study_results import ResultTable

from .core import Case, Returns, make_check

__all__ = [
    "check_knn_predict", "check_paired_difference", "knn_predict_reference",
    "paired_difference_reference"
]


def knn_predict_reference(train_h, train_y, test_h, k):
    """Majority vote of the ``k`` most cosine-similar training galaxies.

    Shapes: ``train_h [N, D]``, ``train_y [N]`` int64 classes 0..C-1, ``test_h [M, D]`` ->
    ``[M]`` int64 predicted classes. Ties go to the smaller class index.
    """
    return knn_predict(train_h, train_y, test_h, k)


def _clusters(g, n, d, n_classes, scale):
    """Labelled points: classes differ in direction, and each point has a random length, so
    the cosine and the Euclidean neighbours differ."""
    centres = torch.randn(n_classes, d, generator=g)
    y = torch.randint(0, n_classes, (n,), generator=g)
    direction = centres[y] + 0.9 * torch.randn(n, d, generator=g)
    length = torch.exp(scale * torch.randn(n, 1, generator=g))
    return direction * length, y


def _cases():
    g = torch.Generator().manual_seed(6)
    h2, y2 = _clusters(g, 60, 5, 2, 1.5)
    q2, _ = _clusters(g, 15, 5, 2, 1.5)
    h4, y4 = _clusters(g, 80, 8, 4, 1.0)
    q4, _ = _clusters(g, 10, 8, 4, 1.0)
    return [
        Case("2 classes, k = 7", h2, y2, q2, 7),
        Case("2 classes, k = 1", h2, y2, q2, 1),
        Case("4 classes, k = 1", h4, y4, q4, 1),
        Case("3 classes, k = 5 (no tied votes)", *_three_classes(), 5),
    ]


def _three_classes():
    """3 classes where no test galaxy's 5 nearest neighbours tie, so any way of breaking ties
    (argmax, torch.mode, collections.Counter) is right."""
    g = torch.Generator().manual_seed(60)
    h, y = _clusters(g, 60, 6, 3, 1.0)
    q, _ = _clusters(g, 12, 6, 3, 1.0)
    return h, y, q


def _euclidean(train_h, train_y, test_h, k):
    neighbours = torch.cdist(test_h, train_h).topk(k, dim=1, largest=False).indices
    votes = F.one_hot(train_y[neighbours], num_classes=int(train_y.max()) + 1).sum(dim=1)
    return votes.argmax(dim=1)


def _dot(train_h, train_y, test_h, k):
    neighbours = (test_h @ train_h.T).topk(k, dim=1).indices
    votes = F.one_hot(train_y[neighbours], num_classes=int(train_y.max()) + 1).sum(dim=1)
    return votes.argmax(dim=1)


def _farthest(train_h, train_y, test_h, k):
    similarity = F.normalize(test_h, dim=1) @ F.normalize(train_h, dim=1).T
    neighbours = similarity.topk(k, dim=1, largest=False).indices
    votes = F.one_hot(train_y[neighbours], num_classes=int(train_y.max()) + 1).sum(dim=1)
    return votes.argmax(dim=1)


def _vote(train_y, neighbours):
    votes = F.one_hot(train_y[neighbours], num_classes=int(train_y.max()) + 1).sum(dim=1)
    return votes.argmax(dim=1)


def _first_neighbour_dropped(train_h, train_y, test_h, k):
    similarity = F.normalize(test_h, dim=1) @ F.normalize(train_h, dim=1).T
    return _vote(train_y, similarity.topk(k + 1, dim=1).indices[:, 1:])


def _k_ignored(train_h, train_y, test_h, k):
    similarity = F.normalize(test_h, dim=1) @ F.normalize(train_h, dim=1).T
    return train_y[similarity.argmax(dim=1)]


def _mean_label(train_h, train_y, test_h, k):
    similarity = F.normalize(test_h, dim=1) @ F.normalize(train_h, dim=1).T
    neighbours = similarity.topk(k, dim=1).indices
    return train_y[neighbours].double().mean(dim=1).round().long()


check_knn_predict = make_check(
    "6.1", "k-nearest-neighbour classifier", knn_predict_reference, _cases,
    returns=Returns.tensor(dtype=torch.int64,
                           why="the next cells compare the predictions with integer labels"),
    mistakes=[
        (_euclidean, "these are Euclidean neighbours: normalise h first (cosine similarity), "
                     "so that a galaxy's brightness, which scales h, does not decide."),
        (_dot, "the dot product is not normalised: divide by the lengths (F.normalize) to get "
               "the cosine similarity."),
        (_farthest, "these are the *least* similar galaxies: the neighbours are the ones "
                    "with the *largest* cosine similarity."),
        (_first_neighbour_dropped,
         "the most similar training galaxy is skipped: the test galaxies are not in the "
         "training set, so the first of the top k is a real neighbour; keep all k."),
        (_k_ignored,
         "only the single nearest neighbour votes: the k most similar galaxies should vote, "
         "and the majority wins."),
        (_mean_label,
         "the labels are averaged: a class number is a name, not a quantity, so count the votes "
         "of each class and take the class with the most."),
    ],
    hints=[
        "A majority vote of the k most similar labelled galaxies, comparing directions, not "
        "lengths; count votes, do not average labels.",
        "Normalise the rows of train_h and test_h (F.normalize, dim=1) so that one matrix "
        "product gives the [M, N] cosine similarities; topk along dim=1 gives the indices of "
        "the k nearest training galaxies; look up their labels, count the votes of every class "
        "(F.one_hot, then a sum over the k neighbours) and take the class with the most votes "
        "(argmax).",
        "similarity = F.normalize(test_h, dim=1) @ F.normalize(train_h, dim=1).T; "
        "similarity.topk(k, dim=1).indices is [M, k]; F.one_hot(train_y[neighbours], "
        "num_classes=C) summed over dim=1 is [M, C] with C = train_y.max() + 1; argmax(dim=1) "
        "of that is the answer.",
    ],
)


# --------------------------------------------------------------------------------------------
# 6.2: a paired comparison from the study's records
# --------------------------------------------------------------------------------------------


def paired_difference_reference(records, method, versus, labels):
    """Mean paired difference ``method - versus`` of the ``mean`` accuracy at one label count,
    and its 95% Student-t interval, over the (population, subset) pairs where both methods
    were scored: ``(mean, low, high)`` as Python floats (fractions, not points).

    The study's own :meth:`phys555_cl.study_results.ResultTable.compare`, so the notebook's
    tables and the exercise use one definition."""
    c = ResultTable(list(records)).compare(method, versus, labels, metric="mean")
    return (c["difference"], c["low"], c["high"])


def _record(population, subset, method, labels, mean):
    return {"protocol": "random", "population": population, "labels": labels,
            "subset": subset, "method": method, "no_labels": [], "mean": mean}


def _records(seed, pairs, shift, spread, labels=20, extra=True):
    """Synthetic study records: ``pairs`` (population, subset) pairs where method "a" scores
    ``shift`` above "b" on average with a shared per-pair luck, plus records of other label
    counts and methods that must be left out, and an unpaired record."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(pairs):
        pop, sub = 2021 + i % 4, i // 4
        luck = 0.6 + 0.1 * float(torch.randn((), generator=g))
        noise = spread * float(torch.randn((), generator=g))
        out += [_record(pop, sub, "a", labels, luck + shift + noise),
                _record(pop, sub, "b", labels, luck),
                _record(pop, sub, "c", labels, luck + 0.3),
                _record(pop, sub, "a", 200, luck + 0.5)]
    if extra:
        out.append(_record(2099, 0, "a", labels, 0.99))  # no partner in "b": not a pair
    return out


def _paired_cases():
    return [
        Case("20 pairs, a ahead by about 2 points", _records(1, 20, 0.02, 0.015), "a", "b", 20),
        Case("6 pairs, no real difference", _records(2, 6, 0.0, 0.02), "a", "b", 20),
        Case("3 pairs, a behind", _records(3, 3, -0.03, 0.01, labels=5), "a", "b", 5),
    ]


def _by_pair(records, method, labels):
    return {(r["population"], r["subset"]): r["mean"] for r in records
            if r["method"] == method and r["labels"] == labels}


def _interval(d, half_width):
    mean = float(d.mean())
    return (mean, mean - half_width, mean + half_width)


def _paired(records, method, versus, labels):
    a, b = _by_pair(records, method, labels), _by_pair(records, versus, labels)
    return torch.tensor([a[k] - b[k] for k in sorted(a) if k in b], dtype=torch.float64)


def _normal_quantile(records, method, versus, labels):
    d = _paired(records, method, versus, labels)
    return _interval(d, 1.96 * float(d.std()) / len(d) ** 0.5)


def _population_std(records, method, versus, labels):
    d = _paired(records, method, versus, labels)
    t = float(_T975[len(d) - 1])
    return _interval(d, t * float(d.std(correction=0)) / len(d) ** 0.5)


def _unpaired(records, method, versus, labels):
    d = _paired(records, method, versus, labels)
    a = torch.tensor([r for r in _by_pair(records, method, labels).values()], dtype=torch.float64)
    b = torch.tensor([r for r in _by_pair(records, versus, labels).values()], dtype=torch.float64)
    t = float(_T975[len(d) - 1])
    return _interval(d, t * (float(a.var()) / len(a) + float(b.var()) / len(b)) ** 0.5)


def _no_sqrt(records, method, versus, labels):
    d = _paired(records, method, versus, labels)
    return _interval(d, float(_T975[len(d) - 1]) * float(d.std()) / len(d))


#: Student's t, 97.5% quantile, for 1-30 degrees of freedom (index = degrees of freedom)
_T975 = [float("nan"), 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
         2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


check_paired_difference = make_check(
    "6.2", "a paired comparison", paired_difference_reference, _paired_cases,
    atol=1e-6, rtol=1e-4,
    returns=Returns.numbers(3, why="the next cell prints the mean and the interval's ends"),
    mistakes=[
        (_normal_quantile, "the interval uses the normal distribution's 1.96; with this few "
                           "pairs the standard error is itself uncertain, which Student's t "
                           "with n - 1 degrees of freedom accounts for."),
        (_population_std, "the standard deviation divides by n; the sample's standard "
                          "deviation of the differences divides by n - 1."),
        (_unpaired, "the interval is that of two independent samples; the point of pairing is "
                    "that each pair shares its luck, so the spread to use is that of the "
                    "differences."),
        (_no_sqrt, "the standard error divides the spread by n; it shrinks as the square root "
                   "of the number of pairs."),
    ],
    hints=[
        "Pair each score of one method with the other method's score on the same labelled "
        "galaxies, then work with the differences alone.",
        "Keep the records of the label count asked for; index each method's mean accuracy by "
        "its population and subset; take the differences for the keys both have; their mean, "
        "and a 95% interval from their standard error and Student's t with n - 1 degrees of "
        "freedom.",
        "Two dicts keyed by (population, subset) give the pairs; d.std(ddof=1) / sqrt(n) is the "
        "standard error, scipy.stats.t.ppf(0.975, n - 1) the factor; return "
        "(mean, mean - half_width, mean + half_width) as floats.",
    ],
)
