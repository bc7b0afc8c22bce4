"""Checks for notebook 02 (metric learning: triplets and hard negatives).

- 2.1 ``triplet_loss(anchor, positive, negative, margin)``: the mean over triplets of
  ``max(0, d(a, p) - d(a, n) + margin)`` with the plain Euclidean distance (Schroff et al. 2015);
- 2.2 ``batch_hard_triplet_loss(embeddings, labels, margin)``: every embedding an anchor, with its
  farthest positive (not itself) and closest negative, averaged over the anchors that have both
  (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss", arXiv:1703.07737).

The references are those of :mod:`phys555_cl.distances`; the typical mistakes are variants of it.

Both checks also make sure the student's loss has a finite gradient (a square root at a zero
distance gives NaN gradients, which would silently ruin the training cell of the notebook).
"""

from __future__ import annotations

import torch

from .. import distances
from .core import Case, Returns, compare_outputs, make_check

__all__ = [
    "batch_hard_triplet_loss", "check_batch_hard_triplet_loss", "check_triplet_loss",
    "triplet_loss"
]

# --------------------------------------------------------------------------------------------
# references (the formulas exactly as the notebook writes them)
# --------------------------------------------------------------------------------------------


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).sum(1).sqrt()


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = 0.2) -> torch.Tensor:
    """Mean of ``max(0, ||a - p|| - ||a - n|| + margin)``. Inputs ``[B, D]`` -> scalar."""
    return distances.triplet_loss(anchor, positive, negative, margin)


def _safe_pairwise(x: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """``[B, D] -> [B, B]`` Euclidean distances with a finite gradient at zero distance."""
    sq = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    if squared:
        return sq
    zero = sq <= 0
    return torch.where(zero, 0.0, sq.masked_fill(zero, 1.0).sqrt())


def _masks(labels: torch.Tensor):
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor,
                            margin: float = 0.2) -> torch.Tensor:
    """Batch-hard triplet loss. embeddings ``[B, D]``, labels ``[B]`` int -> scalar.

    Mean over the anchors with at least one positive and one negative of
    ``max(0, max_{p != a, y_p = y_a} d(a, p) - min_{y_n != y_a} d(a, n) + margin)``.
    """
    return distances.batch_hard_triplet_loss(embeddings, labels, margin, mining="hard")


# --------------------------------------------------------------------------------------------
# gradient check shared by both exercises
# --------------------------------------------------------------------------------------------


def _leaves(out: torch.Tensor) -> list[torch.Tensor]:
    """The leaf tensors (inputs that require grad) that ``out`` was computed from."""
    found, seen, stack = [], set(), [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            found.append(fn.variable)
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return found


def _compare_with_gradient(got, expected, case, atol=1e-5, rtol=1e-4):
    problem = compare_outputs(got, expected, atol=atol, rtol=rtol)
    if problem or not isinstance(got, torch.Tensor) or got.grad_fn is None:
        return problem
    leaves = _leaves(got)
    if leaves:
        grads = torch.autograd.grad(got, leaves, allow_unused=True)
        if any(g is not None and not torch.isfinite(g).all() for g in grads):
            return ("the value is right but its gradient contains NaN/inf: a square root at a "
                    "zero distance (e.g. an embedding and itself, or two identical embeddings) "
                    "has an infinite slope. Use distances.pairwise_distances, or mask the zero "
                    "distances before the square root")
    return None


# --------------------------------------------------------------------------------------------
# 2.1 triplet loss
# --------------------------------------------------------------------------------------------


def _triplet_cases():
    g = torch.Generator().manual_seed(21)
    a, p, n = (torch.randn(6, 4, generator=g) for _ in range(3))
    near = torch.randn(5, 3, generator=g)
    easy_p = near + 0.05 * torch.randn(5, 3, generator=g)
    easy_n = near + 3.0 * torch.randn(5, 3, generator=g)
    a3, p3, n3 = (torch.randn(8, 16, generator=g) * 0.3 for _ in range(3))
    return [
        Case("8 triplets in 16-D, margin 1.0", a3.requires_grad_(), p3, n3, 1.0),
        Case("6 random triplets in 4-D, margin 1.0", a.requires_grad_(), p, n, 1.0),
        Case("5 triplets in 3-D, most of them easy, margin 0.5", near.requires_grad_(), easy_p,
             easy_n, 0.5),
    ]


check_triplet_loss = make_check(
    "2.1", "triplet loss", triplet_loss, _triplet_cases, compare=_compare_with_gradient,
    returns=Returns.tensor(scalar=True, grad=True, why="the embedding network trains on it"),
    mistakes=[
        (lambda a, p, n, m=0.2: torch.relu((a - p).pow(2).sum(1) - (a - n).pow(2).sum(1) + m)
         .mean(),
         "squared distances: this notebook's triplet loss uses the plain Euclidean distance "
         "||a - p||_2 (take the square root)."),
        (lambda a, p, n, m=0.2: (_norm(a - p) - _norm(a - n) + m).mean(),
         "the max(0, .) is missing: satisfied (easy) triplets must cost 0, not a negative "
         "amount."),
        (lambda a, p, n, m=0.2: torch.relu(_norm(a - p) - _norm(a - n) + m).sum(),
         "a sum over the triplets: the loss is the *mean* over the batch."),
        (lambda a, p, n, m=0.2: torch.relu(_norm(a - n) - _norm(a - p) + m).mean(),
         "positive and negative are swapped: the loss should grow when the *positive* is far "
         "from the anchor, and shrink when the negative is (the positive should end up "
         "closer)."),
        (lambda a, p, n, m=0.2: torch.relu(_norm(a - p) - _norm(a - n) - m).mean(),
         "the margin has the wrong sign: a triplet should cost something until the negative "
         "is farther than the positive *by at least* the margin, not already when it is a "
         "margin closer."),
        (lambda a, p, n, m=0.2: torch.relu(_norm(a - p) - _norm(p - n) + m).mean(),
         "the negative's distance is measured from the positive: both distances are from the "
         "anchor, d(a, p) and d(a, n)."),
        (lambda a, p, n, m=0.2: torch.relu((a - p).norm() - (a - n).norm() + m),
         "the norm runs over the whole batch: every triplet (row) needs its own distance."),
        (lambda a, p, n, m=0.2: torch.relu(_norm(a - p) - _norm(a - n)).mean(),
         "the margin is missing: without it the loss stops as soon as the negative is a hair "
         "farther than the positive."),
    ],
    hints=[
        "A triplet costs something until the negative is farther from the anchor than the "
        "positive by at least the margin.",
        "Compute one plain (not squared) Euclidean distance per row, anchor to positive and "
        "anchor to negative, by reducing over the D features. The violation is the first "
        "distance minus the second plus the margin; clamp it at 0 (torch.relu) so satisfied "
        "triplets cost nothing, and average over the B triplets.",
        "(anchor - positive).norm(dim=1) is d(a, p) for every row, shape [B]; likewise d(a, n). "
        "torch.relu(x) is max(0, x); the loss is .mean() of relu of d(a, p) - d(a, n) + "
        "margin.",
    ],
)

# --------------------------------------------------------------------------------------------
# 2.2 batch-hard mining
# --------------------------------------------------------------------------------------------


def _batch_hard_cases():
    g = torch.Generator().manual_seed(22)
    x1 = torch.randn(8, 3, generator=g)
    y1 = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    x2 = torch.randn(9, 4, generator=g)
    y2 = torch.tensor([2, 0, 1, 0, 2, 1, 5, 0, 1])  # class 5 has a single member...
    x2[6] = x2[0] + 0.05 * torch.randn(4, generator=g)  # ...close to a galaxy of class 2
    x3 = torch.randn(6, 2, generator=g) * 0.5
    x3[3] = x3[0]  # two identical embeddings: a zero distance between different rows
    y3 = torch.tensor([0, 1, 2, 0, 1, 2])
    return [
        Case("8 embeddings in 3-D, 2 classes of 4, margin 0.2", x1.requires_grad_(), y1, 0.2),
        Case("9 embeddings, 4 classes, one class with a single member (no positive), margin "
             "0.5", x2.requires_grad_(), y2, 0.5),
        Case("6 embeddings in 2-D, 3 classes of 2, two identical embeddings, margin 1.0",
             x3.requires_grad_(), y3, 1.0),
    ]


def _bh_variant(x, y, m, *, self_pos=False, fill_zero=False, easiest=False, squared=False,
                all_anchors=False, reduce="mean"):
    d = _safe_pairwise(x, squared=squared)
    pos, neg = _masks(y)
    if self_pos:
        pos = pos | torch.eye(len(y), dtype=torch.bool)
    if fill_zero:
        hp, hn = (d * pos).amax(1), (d * neg).amin(1)
    elif easiest:
        hp = d.masked_fill(~pos, float("inf")).amin(1)
        hn = d.masked_fill(~neg, float("-inf")).amax(1)
    else:
        hp = d.masked_fill(~pos, float("-inf")).amax(1)
        hn = d.masked_fill(~neg, float("inf")).amin(1)
    valid = torch.ones_like(y, dtype=torch.bool) if all_anchors else pos.any(1) & neg.any(1)
    loss = torch.relu(hp[valid] - hn[valid] + m)
    return loss.sum() if reduce == "sum" else loss.mean()


check_batch_hard_triplet_loss = make_check(
    "2.2", "batch-hard triplet loss", batch_hard_triplet_loss, _batch_hard_cases,
    compare=_compare_with_gradient,
    returns=Returns.tensor(scalar=True, grad=True, why="the embedding network trains on it"),
    mistakes=[
        (lambda x, y, m=0.2: _bh_variant(x, y, m, self_pos=True),
         "self-pairs are not masked: an anchor counts as its own positive (distance 0). Remove "
         "the diagonal from the positives, so an anchor without another galaxy of its class is "
         "skipped."),
        (lambda x, y, m=0.2: _bh_variant(x, y, m, fill_zero=True),
         "the masked-out entries were set to 0 (e.g. d * mask) before the min: the hardest "
         "negative then becomes 0. Masked-out entries must be unable to win: +inf before a "
         "min, -inf before a max."),
        (lambda x, y, m=0.2: _bh_variant(x, y, m, easiest=True),
         "these are the *easiest* triplets: the hardest positive is the *farthest* one (max) "
         "and the hardest negative the *closest* one (min)."),
        (lambda x, y, m=0.2: _bh_variant(x, y, m, squared=True),
         "squared distances: use the plain Euclidean distance (distances.pairwise_distances)."),
        (lambda x, y, m=0.2: _bh_variant(x, y, m, all_anchors=True),
         "the mean runs over all B anchors: average only over the anchors that have a positive "
         "and a negative in the batch."),
        (lambda x, y, m=0.2: _bh_variant(x, y, m, reduce="sum"),
         "a sum over the anchors: the loss is the *mean* over the valid anchors."),
    ],
    hints=[
        "Each anchor meets its farthest same-class embedding and its closest other-class one; "
        "mask out the rest, itself included.",
        "Get all B x B distances with distances.pairwise_distances. Compare the labels with "
        "themselves by broadcasting to get a [B, B] same-class mask; the positives are that "
        "mask without the diagonal (torch.eye), the negatives its complement. Per row, take the "
        "max over the positives and the min over the negatives, with the masked-out entries "
        "set to -inf and +inf (never 0). Average the clamped violations over the anchors that "
        "have both a positive and a negative.",
        "same = labels[:, None] == labels[None, :]; pos = same & ~torch.eye(B, dtype=torch.bool);"
        " d.masked_fill(~pos, float('-inf')).amax(1) is each hardest positive, and .amin(1) "
        "after filling the non-negatives with +inf each hardest negative; the valid anchors are "
        "pos.any(1) & neg.any(1).",
    ],
)
