"""Checks for notebook 04 (the NT-Xent loss): the slide's loops, then one matrix product."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import nt_xent, nt_xent_reference
from .core import Case, Returns, make_check

__all__ = ["MISTAKES", "check_nt_xent_loops", "check_nt_xent_vectorised"]


def _cases(dtype):
    g = torch.Generator().manual_seed(4)
    return [
        Case("N=4 pairs, D=8, tau=0.5, z1 needs a gradient",
             torch.randn(4, 8, generator=g, dtype=dtype).requires_grad_(),
             torch.randn(4, 8, generator=g, dtype=dtype), 0.5),
        Case("N=3 pairs, D=5, tau=0.1, views of different lengths",
             3.0 * torch.randn(3, 5, generator=g, dtype=dtype),
             0.2 * torch.randn(3, 5, generator=g, dtype=dtype), 0.1),
        Case("N=1 pair (the positive is the only other view), tau=0.7",
             torch.randn(1, 6, generator=g, dtype=dtype),
             torch.randn(1, 6, generator=g, dtype=dtype), 0.7),
        Case("N=16 pairs, D=32, tau=0.2", torch.randn(16, 32, generator=g, dtype=dtype),
             torch.randn(16, 32, generator=g, dtype=dtype), 0.2),
    ]


def _variant(z1, z2, tau, *, mask_self=True, normalize=True, tau_power=1, norm_dim=1,
             divide_by=None, mask_positive=False, one_direction=False):
    """NT-Xent with one thing done wrong, to recognise the usual mistakes."""
    z = torch.cat([z1, z2])
    if normalize:
        z = F.normalize(z, dim=norm_dim)
    s = z @ z.T / tau ** tau_power
    n2 = z.shape[0]
    targets = torch.arange(n2).roll(n2 // 2)
    if mask_self:
        s = s.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
    if mask_positive:  # the positive in the numerator only, not in the denominator
        positive = s[torch.arange(n2), targets]
        others = s.scatter(1, targets[:, None], float("-inf"))
        terms = torch.logsumexp(others, dim=1) - positive
    else:
        terms = F.cross_entropy(s, targets, reduction="none")
    if one_direction:
        return terms[: n2 // 2].mean()
    return terms.sum() / (divide_by(n2) if divide_by else n2)


MISTAKES = [
    (lambda z1, z2, t: _variant(z1, z2, t, mask_self=False),
     "the self-similarity s_ii is still in the denominator; the sum runs over k != i."),
    (lambda z1, z2, t: _variant(z1, z2, t, normalize=False),
     "the embeddings are not normalised: s_ij is a cosine similarity (over tau), not a plain "
     "dot product."),
    (lambda z1, z2, t: _variant(z1, z2, t, norm_dim=0),
     "the normalisation is along the wrong axis: normalise each embedding (each row, dim=1)."),
    (lambda z1, z2, t: _variant(z1, z2, t, tau_power=2),
     "the temperature is applied twice (divide the similarities by tau once)."),
    (lambda z1, z2, t: _variant(z1, z2, t, divide_by=lambda n2: n2 // 2),
     "the average is over N pairs instead of the 2N terms l(2k-1, 2k) and l(2k, 2k-1)."),
    (lambda z1, z2, t: _variant(z1, z2, t, divide_by=lambda n2: 1),
     "the loss is summed, not averaged: divide by 2N."),
    (lambda z1, z2, t: _variant(z1, z2, t, mask_positive=True),
     "the positive is left out of the denominator: the sum over k != i includes the partner "
     "j (only the view itself, k = i, is left out)."),
    (lambda z1, z2, t: _variant(z1, z2, t, one_direction=True),
     "only one direction of each pair is counted: the loss averages l(2k-1, 2k) *and* "
     "l(2k, 2k-1) (each view is once the anchor)."),
]


def _loop_reference(z1, z2, temperature):
    return nt_xent_reference(z1, z2, temperature)


check_nt_xent_loops = make_check(
    "4.1", "NT-Xent with loops", _loop_reference, lambda: _cases(torch.float64),
    atol=1e-8, rtol=1e-8, mistakes=MISTAKES,
    returns=Returns.tensor(scalar=True, dtype=torch.float64, grad=True,
                           why="a loss to train with, computed in float64 like the slide"),
    hints=[
        "Write the slide's three formulas as they stand, with small helper functions; a view "
        "is never in its own sum.",
        "Put the 2N views in a dict keyed 1..2N (z1[k-1] is view 2k-1, z2[k-1] is view 2k), in "
        "float64 (.double()). Define s(i, j), the cosine similarity divided by tau, and "
        "l(i, j), minus the log of exp(s(i, j)) over the sum of exp(s(i, k)) for every k "
        "except i. Add up l(2k-1, 2k) and l(2k, 2k-1) for every k and divide by 2N.",
        "s(i, j) is torch.dot(z[i], z[j]) divided by tau * z[i].norm() * z[j].norm(); the "
        "denominator of l(i, j) is a Python sum of torch.exp(s(i, k)) over "
        "range(1, 2 * N + 1) with k != i; the loss is the sum over k of the two l terms, "
        "divided by 2 * N.",
    ])

check_nt_xent_vectorised = make_check(
    "4.2", "NT-Xent with one matrix product", nt_xent, lambda: _cases(torch.float32),
    atol=1e-5, rtol=1e-5, mistakes=MISTAKES,
    returns=Returns.tensor(scalar=True, dtype="input", grad=True,
                           why="notebook 05 trains SimCLR with this loss"),
    hints=[
        "Normalised views make all the similarities one matrix product; each row is then a "
        "classification whose answer is the partner.",
        "Stack the views into one [2N, D] tensor (torch.cat) and normalise every row "
        "(F.normalize, dim=1); one matrix product divided by tau gives every s_ij. Set the "
        "diagonal to -inf (masked_fill with torch.eye) so a view drops out of its own softmax, "
        "and let F.cross_entropy treat each row as a classification whose target is the column "
        "of its partner.",
        "z = F.normalize(torch.cat([z1, z2]), dim=1); s = z @ z.T / tau with the diagonal "
        "filled with float('-inf'); in the stacked order the partner of row i is row "
        "(i + N) % (2N), and F.cross_entropy(s, targets) already averages over the 2N rows.",
    ])
