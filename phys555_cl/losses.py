"""Contrastive losses: NT-Xent (SimCLR) and InfoNCE (Contrastive Predictive Coding).

The lecture's SimCLR loss, for a minibatch of N samples seen through two augmentations (2N views
z_1 ... z_2N, where z_{2k-1} and z_{2k} are the two views of sample k):

    s_ij = z_i . z_j / (tau |z_i| |z_j|)                                  cosine similarity / tau
    l_ij = -log( exp(s_ij) / sum_{k=1..2N, k != i} exp(s_ik) )            one view vs all others
    L    = 1/(2N) sum_{k=1..N} [ l(2k-1, 2k) + l(2k, 2k-1) ]              both directions, mean

l_ij is a cross-entropy: a softmax over row i of the similarity matrix, with the positive j as
the "class" and the diagonal k = i left out. Vectorised, it is the four lines of
`nt_xent_textbook`, the first function below: normalise, every s_ij at once as one matrix
product, the self-pairs removed, cross-entropy against the partner view.

`nt_xent_reference` is the same three lines of the slide written as Python loops. InfoNCE (van den
Oord et al. 2018) is the same loss with explicit queries and keys: each query has one positive
key among many (`info_nce`).

`nt_xent` is `nt_xent_textbook` with the argument checks, and with its last three lines handed to
a fused kernel that gives the same number faster and in less memory (private, in
`phys555_cl/_info_nce_kernel.py`, which must equal `nt_xent_textbook`): one [2N, 2N] buffer
instead of about three; `chunk_size=c` computes c rows at a time so the extra memory is
O(c * 2N); `gather=True` takes the negatives from every process under torch.distributed
(`gather_with_grad`). `info_nce` uses the same kernel.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from phys555_cl import _info_nce_kernel as _kernel
from phys555_cl._checks import check_int
from phys555_cl._info_nce_kernel import gather_with_grad

__all__ = [
    "nt_xent_textbook",
    "nt_xent",
    "NTXentLoss",
    "nt_xent_reference",
    "info_nce",
    "InfoNCELoss",
    "info_nce_reference",
    "gather_with_grad",
]


# --------------------------------------------------------------------------------------------
# NT-Xent (SimCLR)
# --------------------------------------------------------------------------------------------


def nt_xent_textbook(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent as the textbook vectorises the slide: four lines, the loss `nt_xent` computes.

    Row i of ``z`` is view i, and its partner is view i + N (mod 2N): z1[k] <-> z2[k]. The slide
    interleaves the views (2k-1, 2k) instead; the order does not change L. No argument checks,
    no speed tricks: this is what `nt_xent` (and the fused kernel behind it) must equal, and the
    tests check that they do.

    Shapes: ``z1 [N, D]``, ``z2 [N, D]`` -> scalar.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # [2N, D]: the 2N views as unit vectors
    logits = z @ z.T / temperature  # [2N, 2N]: every s_ij at once
    logits.fill_diagonal_(float("-inf"))  # k != i: a view is not its own negative
    return F.cross_entropy(logits, torch.arange(len(z), device=z.device).roll(len(z1)))


def nt_xent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 0.5,
    *,
    chunk_size: int | None = None,
    gather: bool = False,
) -> torch.Tensor:
    """NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR.

    Chen, Kornblith, Norouzi, Hinton 2020, "A Simple Framework for Contrastive Learning of Visual
    Representations", arXiv:2002.05709. Exactly the lecture's

        L = 1/(2N) sum_k [l(2k-1, 2k) + l(2k, 2k-1)],
        l_ij = -log(exp(s_ij) / sum_{k != i} exp(s_ik)),  s_ij = z_i.z_j / (tau |z_i| |z_j|).

    The order of the views does not change L, so stacking [z1; z2] (partner of view i: view
    i + N) instead of interleaving them (2k-1, 2k) gives the same number. The value and
    gradient are those of `nt_xent_textbook(z1, z2, temperature)`, in less time and memory
    (and right at any scale, see below). Logits are float32 (float64 for float64 inputs) even
    under autocast.

    Args:
        z1: [N, D] embeddings of the first view of each sample.
        z2: [N, D] embeddings of the second view; z1[k] and z2[k] come from sample k.
        temperature: tau > 0 (SimCLR uses 0.1 to 0.5).
        chunk_size: None (fastest), or compute c rows of the [2N, 2N] similarity matrix at a time
            with recomputation in backward: extra memory O(c * 2N) instead of O((2N)^2).
        gather: under torch.distributed, compare this process's views with the views of every
            process (all negatives of the global batch); gradients flow back to the process owning
            each embedding. Processes may hold different batch sizes. The value returned on each
            process is scaled so that DDP's gradient averaging reproduces the gradient of the loss
            of the whole global batch exactly; the mean of the values over processes is that loss.
            A no-op (plain local loss) when not distributed.

    Returns:
        Scalar tensor (float32, or float64 for float64 inputs).

    Scale: the value and gradient are right for embeddings of any finite length (1e-30 or 1e30
    in float32, see `_info_nce_kernel.unit_rows`). A row of zeros has no direction: it counts
    as similarity 0 to every view and gets a zero gradient. NaN or inf in z1 or z2 give a NaN
    loss.

    Raises:
        ValueError: if z1 or z2 is not 2-D, their shapes differ, N = 0, temperature <= 0 or
            chunk_size < 1.

    Example:
        >>> z1, z2 = torch.randn(256, 128), torch.randn(256, 128)   # projection-head outputs
        >>> loss = nt_xent(z1, z2, temperature=0.5)
        >>> loss_big_batch = nt_xent(z1, z2, temperature=0.5, chunk_size=128)  # same value
    """
    n = _check_views(z1, z2)
    tau = _check_temperature(temperature)
    chunk_size = _check_chunk_size(chunk_size)
    with torch.autocast(z1.device.type, enabled=False):  # float32 logits even under autocast
        # normalise: the 2N views as unit vectors (right at any scale), [z1; z2]
        z = _kernel.unit_rows(torch.cat([z1, z2]).to(_kernel.compute_dtype(z1, z2)))  # [2N, D]
        # the partner of view i is view i + N (mod 2N): z1[k] <-> z2[k]
        partner = torch.arange(2 * n, device=z.device).roll(n)
        # the last three lines of nt_xent_textbook (z @ z.T / tau, the diagonal at -inf,
        # cross-entropy against the partner), fused: no mask, one [2N, 2N] buffer, tiles of
        # chunk_size rows, negatives from every process with gather (_info_nce_kernel.py)
        return _kernel.fused_nt_xent(z, partner, 1.0 / tau, chunk_size, gather)


def nt_xent_reference(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent written as the lecture's loops (slow: for tests, the notebook, and reading).

    The views are numbered as on the slide, from 1: view 2k-1 is z1[k-1] and view 2k is z2[k-1],
    the two augmentations of sample k. Computed in float64.

        s(i, j) = z_i . z_j / (tau |z_i| |z_j|)
        l(i, j) = -log( exp(s(i, j)) / sum_{k=1..2N, k != i} exp(s(i, k)) )
        L       = 1/(2N) sum_{k=1..N} [ l(2k-1, 2k) + l(2k, 2k-1) ]

    (The slide writes the last sum up to 2N; it runs over the N positive pairs, as in Algorithm 1
    of Chen et al. 2020, which is what the factor 1/(2N) averages: 2N terms.)

    Args:
        z1: [N, D] first views. z2: [N, D] second views. temperature: tau > 0.

    Returns:
        Scalar float64 tensor, equal to `nt_xent(z1, z2, temperature)`.
    """
    N = z1.shape[0]
    tau = temperature
    z = {}  # z[i] for i = 1 .. 2N, as on the slide
    for k in range(1, N + 1):
        z[2 * k - 1] = z1[k - 1].double()
        z[2 * k] = z2[k - 1].double()

    def s(i, j):
        return torch.dot(z[i], z[j]) / (tau * z[i].norm() * z[j].norm())

    def l(i, j):  # noqa: E743 (the slide's name)
        denominator = sum(torch.exp(s(i, k)) for k in range(1, 2 * N + 1) if k != i)
        return -torch.log(torch.exp(s(i, j)) / denominator)

    L = sum(l(2 * k - 1, 2 * k) + l(2 * k, 2 * k - 1) for k in range(1, N + 1))
    return L / (2 * N)


class NTXentLoss(nn.Module):
    """NT-Xent loss of SimCLR as a module: `NTXentLoss(temperature)(z1, z2)`.

    Chen et al. 2020, arXiv:2002.05709. See `nt_xent` for the formula and the options.

    Args:
        temperature: tau > 0.
        chunk_size: None, or rows per tile (extra memory O(chunk_size * 2N)).
        gather: take negatives from every process under torch.distributed (no-op otherwise).

    Shapes:
        z1, z2: [N, D], the projection-head outputs of the two views of N samples.
        output: scalar.

    Example:
        >>> criterion = NTXentLoss(temperature=0.5)
        >>> z1, z2 = model(view1), model(view2)        # doctest: +SKIP
        >>> loss = criterion(z1, z2)                   # doctest: +SKIP
    """

    def __init__(self, temperature: float = 0.5, chunk_size: int | None = None,
                 gather: bool = False):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.chunk_size = _check_chunk_size(chunk_size)
        self.gather = gather

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent(z1, z2, self.temperature, chunk_size=self.chunk_size, gather=self.gather)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, chunk_size={self.chunk_size}, gather={self.gather}"


# --------------------------------------------------------------------------------------------
# InfoNCE (CPC): explicit queries and keys
# --------------------------------------------------------------------------------------------


def info_nce(
    query: torch.Tensor,
    keys: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float = 1.0,
    normalize: bool = False,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """InfoNCE loss: each query must pick out its positive key among all keys.

    The loss of Contrastive Predictive Coding (van den Oord, Li, Vinyals 2018, "Representation
    Learning with Contrastive Predictive Coding", arXiv:1807.03748), and the core of NT-Xent.

        logits[i, j] = query[i] . keys[j] / temperature   (cosine similarity if normalize=True)
        loss = mean_i  -log softmax(logits[i])[targets[i]]

    Logits are computed in float32 (float64 if an input is float64) whatever the input dtype, with
    autocast disabled, so float16/bfloat16 embeddings are safe.

    Args:
        query: [M, D] queries (e.g. CPC predictions W_k c_t).
        keys: [K, D] keys (e.g. the encoded future z_{t+k} of every sequence in the batch).
        targets: [M] int64, index in `keys` of each query's positive key.
        temperature: > 0, divides the logits.
        normalize: if True, queries and keys are L2-normalised first (cosine similarity).
        exclude_self: if True, M must equal K and key i is left out of row i's softmax
            denominator (as in SimCLR, where a view is never its own negative); then
            targets[i] != i is required.
        chunk_size: None for one [M, K] logit matrix; an integer c computes c rows at a time and
            recomputes them in backward, so the extra memory is O(c * K). Same value and gradients.

    Returns:
        Scalar tensor (float32, or float64 for float64 inputs): the mean loss over the M queries.

    Raises:
        ValueError: for non-2-D inputs, mismatched embedding sizes, targets of the wrong shape,
            dtype or range, temperature <= 0, chunk_size < 1, or exclude_self with M != K or a
            target equal to its own row.

    Example:
        >>> query, keys = torch.randn(8, 16), torch.randn(32, 16)
        >>> targets = torch.arange(8)              # query i belongs with key i
        >>> loss = info_nce(query, keys, targets, temperature=0.1, normalize=True)
    """
    M, temperature, chunk_size = _check_info_nce(query, keys, targets, temperature, chunk_size,
                                                 exclude_self)
    dtype = _kernel.compute_dtype(query, keys)
    with torch.autocast(query.device.type, enabled=False):  # float32 logits even under autocast
        q, k = query.to(dtype), keys.to(dtype)
        if normalize:
            q, k = _kernel.unit_rows(q), _kernel.unit_rows(k)
        self_offset = 0 if exclude_self else None
        targets = targets.to(device=q.device, dtype=torch.long)
        # cross_entropy(q @ k.T / temperature, targets), fused (see phys555_cl/_info_nce_kernel.py)
        return _kernel.fused_info_nce(q, k, targets, 1.0 / temperature, self_offset, chunk_size,
                                      1.0 / M, normalized=normalize)


def info_nce_reference(query, keys, targets, *, temperature=1.0, normalize=False,
                       exclude_self=False):
    """InfoNCE written as loops, one query at a time (slow; for tests and reading).

    Same arguments and value as `info_nce` (without chunking), computed in float64.

    Args:
        query: [M, D]. keys: [K, D]. targets: [M] index of each query's positive key.

    Returns:
        Scalar float64 tensor: mean over queries of -log(exp(s_pos) / sum_j exp(s_j)).
    """
    query, keys = query.double(), keys.double()
    total = 0.0
    for i in range(query.shape[0]):
        scores = []
        for j in range(keys.shape[0]):
            if exclude_self and j == i:
                continue  # a query is never compared with itself
            s = torch.dot(query[i], keys[j])
            if normalize:
                s = s / (query[i].norm() * keys[j].norm())
            scores.append((j, s / temperature))
        numerator = torch.exp(dict(scores)[int(targets[i])])
        denominator = sum(torch.exp(s) for _, s in scores)
        total = total - torch.log(numerator / denominator)
    return total / query.shape[0]


class InfoNCELoss(nn.Module):
    """`info_nce` as a module. See `info_nce` for the arguments and shapes.

    Example:
        >>> criterion = InfoNCELoss(temperature=0.1, normalize=True)
        >>> loss = criterion(torch.randn(8, 16), torch.randn(32, 16), torch.arange(8))
    """

    def __init__(self, temperature: float = 1.0, normalize: bool = False,
                 exclude_self: bool = False, chunk_size: int | None = None):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.normalize = normalize
        self.exclude_self = exclude_self
        self.chunk_size = _check_chunk_size(chunk_size)

    def forward(self, query, keys, targets):
        return info_nce(query, keys, targets, temperature=self.temperature,
                        normalize=self.normalize, exclude_self=self.exclude_self,
                        chunk_size=self.chunk_size)

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, normalize={self.normalize}, "
                f"exclude_self={self.exclude_self}, chunk_size={self.chunk_size}")


# --------------------------------------------------------------------------------------------
# argument checks (errors speak to a student: what was wrong, what was expected)
# --------------------------------------------------------------------------------------------


def _check_temperature(temperature) -> float:
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(
                f"temperature must be a single positive number, got a tensor of shape "
                f"{tuple(temperature.shape)}."
            )
        temperature = temperature.item()
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
    temperature = float(temperature)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"temperature must be a finite number > 0, got {temperature}. "
            "Typical SimCLR values are 0.1 to 0.5."
        )
    return temperature


def _check_chunk_size(chunk_size) -> int | None:
    return check_int("chunk_size", chunk_size, 1, allow_none=True,
                     hint="Use None for the full (fastest) computation.")


def _check_matrix(name: str, x) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.dim() != 2:
        raise ValueError(
            f"{name} must be 2-D [batch, embedding_dim], got shape {tuple(x.shape)}. "
            "Flatten the embeddings first, e.g. z.flatten(1)."
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}.")


def _check_views(z1, z2) -> int:
    """N, after checking that z1 and z2 are the [N, D] embeddings of N >= 1 pairs of views."""
    _check_matrix("z1", z1)
    _check_matrix("z2", z2)
    if z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape [N, D] (z1[k] and z2[k] are the two views of "
            f"sample k), got z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)}."
        )
    if z1.shape[0] == 0:
        raise ValueError("nt_xent needs at least one sample, got N = 0 (empty batch).")
    return z1.shape[0]


def _check_info_nce(query, keys, targets, temperature, chunk_size, exclude_self):
    """``(M, temperature, chunk_size)`` after checking every argument of :func:`info_nce`."""
    _check_matrix("query", query)
    _check_matrix("keys", keys)
    if query.shape[1] != keys.shape[1]:
        raise ValueError(
            f"query and keys must have the same embedding size, got query {tuple(query.shape)} "
            f"and keys {tuple(keys.shape)}."
        )
    M, K = query.shape[0], keys.shape[0]
    if M == 0 or K == 0:
        raise ValueError(f"info_nce needs at least one query and one key, got M={M}, K={K}.")
    if not isinstance(targets, torch.Tensor) or targets.shape != (M,):
        got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a tensor of shape [M] = ({M},), got {got}.")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise ValueError(
            f"targets must hold integer key indices (int64), got dtype {targets.dtype}."
        )
    tmin, tmax = int(targets.min()), int(targets.max())
    if tmin < 0 or tmax >= K:
        raise ValueError(
            f"targets must be key indices in [0, {K - 1}], got values from {tmin} to {tmax}."
        )
    temperature = _check_temperature(temperature)
    chunk_size = _check_chunk_size(chunk_size)
    if exclude_self:
        if M != K:
            raise ValueError(
                f"exclude_self=True needs as many queries as keys (key i is query i's self), "
                f"got M={M} queries and K={K} keys."
            )
        bad = (targets == torch.arange(M, device=targets.device)).nonzero().flatten()
        if bad.numel():
            raise ValueError(
                f"with exclude_self=True a query's positive cannot be its own key, but "
                f"targets[i] == i for rows {bad[:10].tolist()}."
            )
    return M, temperature, chunk_size
