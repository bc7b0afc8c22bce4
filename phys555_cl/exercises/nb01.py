"""Checks for notebook 01 (distances and Siamese networks).

- 1.1 ``pairwise_distances(a, b)``: all Euclidean distances ``[N, M]`` without loops;
- 1.2 ``choose_threshold(d, same)``: the threshold T of the rule ``d < T => same`` with the best
  accuracy (any T in the best interval is right, so the check compares accuracies, not T);
- 1.3 ``contrastive_loss(d, same, margin)``: Hadsell, Chopra & LeCun (2006), the mean over pairs
  of ``y d^2 / 2 + (1 - y) max(0, m - d)^2 / 2``.

The references are those of :mod:`phys555_cl.distances`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import distances
from .core import Case, Returns, compare_outputs, make_check

__all__ = [
    "check_choose_threshold", "check_contrastive_loss", "check_pairwise_distances",
    "choose_threshold", "contrastive_loss", "pairwise_distances"
]

# --------------------------------------------------------------------------------------------
# references: the package's implementations, with the exercises' signatures
# --------------------------------------------------------------------------------------------


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``D[i, j] = ||a[i] - b[j]||_2``. a ``[N, D]``, b ``[M, D]`` -> ``[N, M]`` (dtype of a)."""
    return distances.pairwise_distances(a, b)


def _accuracy(d: torch.Tensor, same: torch.Tensor, threshold: float) -> float:
    return float(((d < threshold) == same).double().mean())


def choose_threshold(d: torch.Tensor, same: torch.Tensor) -> float:
    """The T with the best accuracy of ``d < T => same`` (a midpoint between sorted distances,
    or just below / above all of them). d ``[P]`` float, same ``[P]`` bool -> float."""
    return distances.choose_threshold(d, same)


def contrastive_loss(d: torch.Tensor, same: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean over pairs of ``y d^2 / 2 + (1 - y) max(0, margin - d)^2 / 2``. d, same ``[P]``."""
    return distances.contrastive_loss(d, same, margin)


# --------------------------------------------------------------------------------------------
# 1.1 pairwise distances
# --------------------------------------------------------------------------------------------


def _pairwise_cases():
    g = torch.Generator().manual_seed(11)
    a = torch.randn(3, 4, generator=g)
    b = torch.randn(5, 4, generator=g)
    sq = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    x64 = torch.randn(4, 6, generator=g, dtype=torch.float64) * 3
    return [
        Case("3 points against 5 points in 4-D", a, b),
        Case("4 points against 4 other points in 2-D (a square result)", *sq),
        Case("4 points in 6-D against themselves, float64 (zeros on the diagonal)", x64,
             x64.clone()),
        Case("one point against 6 points in 1-D", torch.tensor([[0.5]]),
             torch.tensor([[0.0], [1.0], [-2.0], [0.5], [3.0], [-0.25]])),
    ]


def _pairwise_compare(got, expected, case):
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.is_floating_point():
        if torch.isnan(got).any() and not torch.isnan(expected).any():
            return ("the result contains NaN. With the expansion |a|^2 + |b|^2 - 2 a.b, rounding "
                    "can make a squared distance slightly negative (for identical points): "
                    "clamp it at 0 (.clamp_min(0)) before the square root")
    return compare_outputs(got, expected, atol=1e-5, rtol=1e-4)


check_pairwise_distances = make_check(
    "1.1", "pairwise distances", pairwise_distances, _pairwise_cases,
    compare=_pairwise_compare,
    returns=Returns.tensor(dtype="input", why="the next cells compare it with a threshold"),
    mistakes=[
        (lambda a, b: (a[:, None, :] - b[None, :, :]).pow(2).sum(-1),
         "these are *squared* distances: take the square root at the end."),
        (lambda a, b: pairwise_distances(a, b).T,
         "rows and columns are swapped: entry [i, j] compares a[i] with b[j], so the result "
         "is [N, M] (your result is the transpose)."),
        (lambda a, b: (a[:, None, :] - b[None, :, :]).pow(2).sum(1).sqrt(),
         "the sum runs over the wrong axis: the broadcast differences have shape [N, M, D], and "
         "a distance sums over the D features, not over the M points."),
        (lambda a, b: (a[:, None, :] - b[None, :, :]).abs().sum(-1),
         "this is the L1 (Manhattan) distance, a sum of absolute differences, not the "
         "Euclidean (L2) distance."),
        (lambda a, b: (a[:, None, :] - b[None, :, :]).pow(2).mean(-1).sqrt(),
         "a mean over the features instead of a sum: the Euclidean distance sums the squared "
         "differences."),
    ],
    hints=[
        "Compare every row of a with every row of b at once, on an N by M by D grid of "
        "differences, then reduce over the D features.",
        "Insert size-1 axes (indexing with None) so that a looks [N, 1, D] and b [1, M, D]; "
        "their difference broadcasts to [N, M, D]. Square it, sum over the last axis and take "
        "the square root. The faster route expands |a - b|^2 = |a|^2 + |b|^2 - 2 a.b with one "
        "matrix product; clamp it at 0 before the square root.",
        "a[:, None, :] - b[None, :, :] is the [N, M, D] grid of differences; .pow(2), "
        ".sum(dim=-1) and .sqrt() turn it into [N, M]. (Expansion: the row norms squared, "
        "broadcast as a column and a row, minus 2 * a @ b.T, then .clamp_min(0).)",
    ],
)

# --------------------------------------------------------------------------------------------
# 1.2 choosing the threshold
# --------------------------------------------------------------------------------------------


def _threshold_cases():
    g = torch.Generator().manual_seed(12)
    d_sep = torch.tensor([0.3, 0.5, 0.9, 1.1, 1.6, 2.0, 2.4, 3.0])
    same_sep = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    same_mix = torch.rand(40, generator=g) < 0.5
    d_mix = torch.where(same_mix, 1.0, 2.0) + 0.7 * torch.randn(40, generator=g)
    d_ties = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0])
    same_ties = torch.tensor([1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    d_unb = torch.rand(25, generator=g) * 4
    same_unb = d_unb < 3.3
    return [
        Case("8 pairs that a threshold separates perfectly", d_sep, same_sep),
        Case("40 overlapping pairs (same near 1, different near 2)", d_mix, same_mix),
        Case("7 pairs with tied distances", d_ties, same_ties),
        Case("25 pairs, most of them 'same'", d_unb, same_unb),
        Case("8 pairs with only two different distances (many ties)",
             torch.tensor([0.0, 0.0, 2.0, 0.0, 2.0, 2.0, 2.0, 2.0]),
             torch.tensor([1, 0, 0, 1, 1, 1, 1, 0], dtype=torch.bool)),
    ]


def _as_float(t):
    if isinstance(t, torch.Tensor) and t.numel() == 1:
        return float(t.item())
    if isinstance(t, np.ndarray) and t.size == 1:
        return float(t.item())
    if isinstance(t, (int, float, np.number)) and not isinstance(t, bool):
        return float(t)
    return None


def _threshold_compare(got, expected, case):
    threshold = _as_float(got)
    if threshold is None:
        kind = f"a tensor of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor) \
            else f"a {type(got).__name__}"
        return f"T should be one number (a float), but it is {kind}"
    if not math.isfinite(threshold):
        return f"T is {threshold}, not a finite number"
    (d, same), _ = case.inputs()
    n = len(d)
    mine = round(_accuracy(d, same, threshold) * n)
    best = round(_accuracy(d, same, expected) * n)
    if mine >= best:
        return None
    text = (f"with your T = {threshold:.4g}, the rule d < T classifies {mine} of {n} pairs "
            f"correctly, and another threshold gets {best - mine} more right")
    if round(float(((d <= threshold) == same).double().mean()) * n) >= best:
        text += (". Your T sits exactly on a distance, and d < T calls that pair 'different': "
                 "put T between two distances (e.g. their midpoint)")
    return text


def _same_classification(got, wrong, case):
    """Two thresholds are the same answer when d < T classifies every pair the same way."""
    mine, theirs = _as_float(got), _as_float(wrong)
    if theirs is None or not math.isfinite(theirs):
        return None
    if mine is None or not math.isfinite(mine):
        return False
    d = case.args[0]
    return bool(torch.equal(d < mine, d < theirs))


def _counts(d, same):
    """Sorted distances and, for k = 0..P, how many pairs "the first k are same" gets right."""
    d_sorted, order = torch.sort(d.double())
    s = same[order].double()
    zero = s.new_zeros(1)
    correct = torch.cat([zero, s.cumsum(0)]) + (1 - s).sum() - torch.cat([zero,
                                                                         (1 - s).cumsum(0)])
    return d_sorted, correct


def _cut(d_sorted, k):
    if k == 0:
        return float(d_sorted[0]) - 1.0
    if k == len(d_sorted):
        return float(d_sorted[-1]) + 1.0
    return float(0.5 * (d_sorted[k - 1] + d_sorted[k]))


def _ignores_ties(d, same):
    d_sorted, correct = _counts(d, same)
    return _cut(d_sorted, int(correct.argmax()))


def _index_not_threshold(d, same):
    d_sorted, correct = _counts(d, same)
    correct[1:-1][d_sorted[1:] == d_sorted[:-1]] = -1
    return float(int(correct.argmax()))


def _reversed_rule(d, same):
    """The best T for the rule d > T => same (reading the rule backwards)."""
    d_sorted, correct = _counts(d, ~same)
    correct[1:-1][d_sorted[1:] == d_sorted[:-1]] = -1
    return _cut(d_sorted, int(correct.argmax()))


def _best_accuracy(d, same):
    return _accuracy(d, same, choose_threshold(d, same))


check_choose_threshold = make_check(
    "1.2", "choosing the threshold T", choose_threshold, _threshold_cases,
    compare=_threshold_compare, same=_same_classification,
    returns=Returns.number(why="the next cells print it and classify new pairs with it"),
    mistakes=[
        (lambda d, s: float(d.mean()),
         "this is the mean distance, which is not the best threshold in general: try a "
         "threshold between every two consecutive sorted distances and keep the best."),
        (lambda d, s: float(d.median()),
         "this is the median distance, which is not the best threshold in general: try a "
         "threshold between every two consecutive sorted distances and keep the best."),
        (_reversed_rule,
         "T looks chosen for the reversed rule d > T => same: a *small* distance means "
         "'same', so count the 'same' pairs below T."),
        (_index_not_threshold,
         "this is the number k of pairs called 'same' (an index into the sorted distances), "
         "not a distance: return the threshold between sorted[k-1] and sorted[k]."),
        (_ignores_ties,
         "T cuts between two equal distances, which no threshold can do: skip the candidates "
         "where sorted[k-1] == sorted[k]."),
        (_best_accuracy,
         "this is the best accuracy, not the threshold that gives it: return T."),
    ],
    hints=[
        "Only the order of the distances matters: try the thresholds between neighbouring "
        "sorted distances and keep the best.",
        "Sort the distances (torch.sort) and put the labels in the same order. Candidate k calls "
        "the first k sorted pairs 'same': it gets right the 'same' pairs among the first k and "
        "the 'different' pairs after them; torch.cumsum counts both for every k at once. Take "
        "the best k (argmax), skip cuts between two equal distances, and return a T between "
        "sorted distance k-1 and k.",
        "With s the sorted labels as floats, the pairs right for cut k are cumsum(s) up to k "
        "plus the 'different' pairs after k, i.e. the total of (1 - s) minus cumsum(1 - s) up "
        "to k (prepend a 0 for k = 0). For the best k, T is the midpoint of sorted[k-1] and "
        "sorted[k], or a little below (k = 0) or above (k = P) every distance.",
    ],
)

# --------------------------------------------------------------------------------------------
# 1.3 contrastive loss
# --------------------------------------------------------------------------------------------


def _contrastive_cases():
    g = torch.Generator().manual_seed(13)
    d1 = (2 * torch.rand(6, generator=g)).requires_grad_()
    s1 = torch.tensor([1, 0, 1, 0, 0, 1], dtype=torch.bool)
    d2 = torch.tensor([0.2, 0.4, 1.5, 2.5, 0.7]).requires_grad_()
    s2 = torch.tensor([1, 0, 0, 0, 1], dtype=torch.bool)
    d3 = (4 * torch.rand(9, generator=g)).requires_grad_()
    s3 = torch.rand(9, generator=g) < 0.5
    return [
        Case("6 pairs, margin 1", d1, s1, 1.0),
        Case("5 pairs, two different pairs beyond the margin 1", d2, s2, 1.0),
        Case("9 pairs, margin 2.5", d3, s3, 2.5),
    ]


def _y(same, d):
    return same.to(d.dtype)


def _half_mean(terms):
    return 0.5 * terms.mean()


check_contrastive_loss = make_check(
    "1.3", "contrastive loss", contrastive_loss, _contrastive_cases,
    returns=Returns.tensor(scalar=True, grad=True, why="the Siamese network trains on it"),
    mistakes=[
        (lambda d, s, m=1.0: _half_mean((1 - _y(s, d)) * d ** 2
                                        + _y(s, d) * torch.relu(m - d) ** 2),
         "same and different are swapped: the same pairs (y = 1) are the ones pulled together "
         "(their cost grows with d), the different pairs the ones pushed out to the margin."),
        (lambda d, s, m=1.0: _half_mean(_y(s, d) * d ** 2 + (1 - _y(s, d)) * (m - d) ** 2),
         "the clamp at 0 is missing: a different pair beyond the margin (d > m) must cost "
         "nothing, yet squaring a negative m - d makes it cost again."),
        (lambda d, s, m=1.0: _half_mean(_y(s, d) * d + (1 - _y(s, d)) * torch.relu(m - d)),
         "neither term is squared: the loss is quadratic in the distance, for same pairs "
         "and for different pairs inside the margin."),
        (lambda d, s, m=1.0: _half_mean(_y(s, d) * d ** 2
                                        + (1 - _y(s, d)) * torch.relu(m - d ** 2)),
         "the margin is compared with d^2: it is compared with the distance d itself, and "
         "the square comes after the clamp."),
        (lambda d, s, m=1.0: 0.5 * (_y(s, d) * d ** 2 + (1 - _y(s, d)) * torch.relu(m - d) ** 2)
         .sum(),
         "a sum over pairs: the loss is the *mean* over the P pairs."),
        (lambda d, s, m=1.0: 2 * contrastive_loss(d, s, m),
         "the factor 1/2 is missing (each term is halved, as in Hadsell et al.'s paper)."),
        (lambda d, s, m=1.0: contrastive_loss(d, s, 1.0),
         "the `margin` argument is not used (your margin is always 1)."),
    ],
    hints=[
        "Same pairs are pulled together; different pairs are pushed apart, but only until "
        "they are a margin apart.",
        "Turn `same` into y, a float tensor of 1s and 0s, so that one expression covers both "
        "kinds of pair: y picks the same-pair cost (half the squared distance), 1 - y the "
        "different-pair cost (half the square of the margin minus d, clamped at 0 with "
        "torch.relu first). Average over the P pairs with .mean(), which keeps the gradient.",
        "y = same.to(d.dtype); torch.relu(margin - d) is max(0, m - d); combine y * d**2 and "
        "(1 - y) * (that clamp)**2, multiply by 0.5 and take .mean().",
    ],
)
