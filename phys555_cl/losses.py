"""Contrastive losses: NT-Xent (SimCLR) and InfoNCE (Contrastive Predictive Coding).

The lecture's SimCLR loss, for a minibatch of N samples seen through two augmentations (2N views
z_1 ... z_2N, where z_{2k-1} and z_{2k} are the two views of sample k):

    s_ij = z_i . z_j / (tau |z_i| |z_j|)                                  cosine similarity / tau
    l_ij = -log( exp(s_ij) / sum_{k=1..2N, k != i} exp(s_ik) )            one view vs all others
    L    = 1/(2N) sum_{k=1..N} [ l(2k-1, 2k) + l(2k, 2k-1) ]              both directions, mean

Read `nt_xent_reference` first: it is exactly these three lines written as Python loops. Then
notice that l_ij is a cross-entropy: a softmax over row i of the similarity matrix, with the
positive j as the "class" and the diagonal k = i left out. The textbook vectorisation is

    z = F.normalize(torch.cat([z1, z2]), dim=1)          # [2N, D]; rows k and k + N are a pair
    logits = z @ z.T / tau                               # every s_ij at once
    logits.fill_diagonal_(float("-inf"))                 # k != i
    loss = F.cross_entropy(logits, torch.arange(2 * N).roll(N))

`nt_xent` gives the same number faster and in less memory: `_InfoNCE` fuses the softmax
cross-entropy into the matrix product (a log-sum-exp per row whose shift comes out of the product
itself), keeps a single [2N, 2N] buffer, and its backward is just the two gradient products.

InfoNCE (van den Oord et al. 2018) is the same loss with explicit queries and keys: each query has
one positive key among many; `info_nce` is the shared core and `nt_xent` calls it.

Three ways to compute the same value:

- full (default): one [M, K] matrix, the fused cross-entropy, float32 logits;
- chunked (`chunk_size=c`): rows in tiles of c with recomputation in backward, so the extra memory
  is O(c * K) instead of O(M * K) (same `_InfoNCE`, recompute=True);
- distributed (`gather=True`): every process's rows against the embeddings of all processes, with
  gradients sent back to the process that owns each embedding (`gather_with_grad`).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = [
    "nt_xent",
    "NTXentLoss",
    "nt_xent_reference",
    "info_nce",
    "InfoNCELoss",
    "info_nce_reference",
    "gather_with_grad",
]


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
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise ValueError(f"chunk_size must be None or an integer >= 1, got {chunk_size!r}.")
    if chunk_size < 1:
        raise ValueError(
            f"chunk_size must be None or an integer >= 1, got {chunk_size}. "
            "Use None for the full (fastest) computation."
        )
    return int(chunk_size)


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


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Every row of ``x`` [n, D] divided by its length, right at any finite scale.

    ``F.normalize`` squares the entries: in float32 a row of length ~1e19 overflows to inf (the
    row becomes 0) and one below ~1e-12 is divided by the eps instead of its length, so both
    silently turn into "no direction". Dividing each row by its largest entry first (exact up to
    rounding, since a direction does not depend on the scale) keeps the sum of squares between
    1 and D. A row of zeros has no direction: it stays 0 (cosine similarity 0 with every row)
    and gets a zero gradient, not the 1/eps ~ 1e12 of ``F.normalize``. NaN or inf entries give
    NaN.
    """
    with torch.no_grad():  # a per-row constant: the direction's gradient is unchanged by it
        peak = x.abs().amax(dim=1, keepdim=True)
        nonzero = peak > 0
        peak = torch.where(nonzero, peak, torch.ones_like(peak))
    return torch.where(nonzero, F.normalize(x / peak, dim=1), torch.zeros_like(x))


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    # float64 stays float64 (exact tests); everything else (float16, bfloat16, float32) -> float32
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


# --------------------------------------------------------------------------------------------
# the shared core: a fused, row-tiled softmax cross-entropy
# --------------------------------------------------------------------------------------------


def _tile_logits(q_rows, keys, start, self_offset, out=None):
    """Logits [c, K] = q_rows @ keys.T of the rows start .. start+c-1, with each row's own key at
    -inf if requested (only the c self-entries are indexed: no [c, K] mask is built)."""
    logits = torch.mm(q_rows, keys.t(), out=out)
    if self_offset is not None:
        rows = torch.arange(q_rows.shape[0], device=q_rows.device)
        logits[rows, rows + (self_offset + start)] = float("-inf")
    return logits


def _append_column(x: torch.Tensor, value) -> torch.Tensor:
    """[n, D] -> [n, D + 1] with `value` (a number or an [n] tensor) as the last column.

    With q' = [q, -m] and k' = [k, 1], q' . k' = q . k - m: the shift of a log-sum-exp comes out
    of the matrix product itself, with no extra pass over the [M, K] logits."""
    column = x.new_empty(x.shape[0], 1)
    column[:, 0] = value
    return torch.cat([x, column], dim=1)


class _InfoNCE(torch.autograd.Function):
    """sum_i loss_scale * -log softmax(scale * query @ keys.T)[i, targets[i]], fused.

    Rows are processed in tiles of `tile_rows` (all M rows at once on the full path). For each
    tile: one matrix product, the self-entries set to -inf, exp, row sum: a numerically safe
    log-sum-exp per row, lse_i = m_i + log sum_j exp(logit_ij - m_i), where m_i is the row max,
    or the constant `bound` when the logits are known to lie in [-bound, bound] (cosine
    similarities / tau) and exp(-2 bound) cannot underflow; the constant shift is folded into the
    matrix product (`_append_column`), so a tile costs one product, one exp and one sum.
    (On a 2-core CPU shared with other jobs, every extra pass or small op costs a scheduler
    wait, which is why the full path is one tile and the passes are counted so carefully.)

    - recompute=False (full): exp(logit - m) of every row is kept for backward ([M, K], the only
      large buffer) with the row sums; backward is then the two gradient matrix products.
    - recompute=True (chunked): only the log-sum-exp of each row [M] is kept; backward recomputes
      each tile's softmax as exp(logits - lse) (one product, one exp), so the largest temporary
      is one [tile_rows, K] tile.

    Backward: with P = softmax and G = loss_scale * (P - onehot(targets)),
    grad_query = scale * G @ keys and grad_keys = scale * G.T @ query. Row factors (1 / row sum,
    loss_scale, scale) are applied to the [c, D] operands, and the onehot is written into the M
    target entries of the [M, K] buffer, which are restored afterwards (backward may run twice).
    `keys=None` means keys = query (SimCLR): one gradient buffer, one matrix to read.
    """

    @staticmethod
    def forward(ctx, query, keys, targets, scale, self_offset, tile_rows, recompute, loss_scale,
                bound):
        shared = keys is None
        keys = query if shared else keys
        M, K = query.shape[0], keys.shape[0]
        if bound is None:
            q_fwd, k_fwd, shift = query * scale, keys, query.new_empty(M)
        else:  # logits - bound straight out of the matrix product
            q_fwd, k_fwd = _append_column(query * scale, -bound), _append_column(keys, 1.0)
            shift = None
        row_sum = query.new_empty(M)
        positive = query.new_empty(M)  # logit of the positive key, minus the shift
        exps = None if recompute else query.new_empty(M, K)
        for start in range(0, M, tile_rows):
            stop = min(start + tile_rows, M)
            out = None if recompute else exps[start:stop]
            logits = _tile_logits(q_fwd[start:stop], k_fwd, start, self_offset, out=out)
            if bound is None:
                torch.amax(logits, dim=1, out=shift[start:stop])
                logits.sub_(shift[start:stop, None])
            rows = torch.arange(stop - start, device=query.device)
            positive[start:stop] = logits[rows, targets[start:stop]]
            torch.sum(logits.exp_(), dim=1, out=row_sum[start:stop])  # tile := exp(logit - m)
            del logits
        lse = row_sum.log()  # log-sum-exp minus the shift
        loss = (lse - positive).sum() * loss_scale
        lse += bound if bound is not None else shift
        ctx.save_for_backward(query, None if shared else keys, targets,
                              lse if recompute else row_sum)
        ctx.exps = exps  # not save_for_backward: backward edits (and restores) M of its entries
        ctx.self_offset, ctx.tile_rows, ctx.recompute = self_offset, tile_rows, recompute
        ctx.loss_scale, ctx.scale, ctx.shared = loss_scale, scale, shared
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        query, keys, targets, saved = ctx.saved_tensors
        shared = ctx.shared
        keys = query if shared else keys
        grad_q = torch.zeros_like(query) if ctx.needs_input_grad[0] else None
        if shared:
            grad_k = grad_q  # one buffer collects both terms
        else:
            grad_k = torch.zeros_like(keys) if ctx.needs_input_grad[1] else None
        coef = grad_output * (ctx.loss_scale * ctx.scale)
        M, tile_rows = query.shape[0], ctx.tile_rows
        all_rows = torch.arange(M, device=query.device)
        if ctx.recompute:
            # softmax = exp(logits - lse) = exp([q * scale, -lse] . [k, 1]); the common factor
            # coef is applied once at the end
            k_bwd, minus_lse = _append_column(keys, 1.0), -saved[:, None]
            for start in range(0, M, tile_rows):
                stop = min(start + tile_rows, M)
                q_bwd = torch.cat([query[start:stop] * ctx.scale, minus_lse[start:stop]], dim=1)
                G = _tile_logits(q_bwd, k_bwd, start, ctx.self_offset).exp_()
                rows = torch.arange(stop - start, device=query.device)
                G[rows, targets[start:stop]] -= 1.0  # G = softmax - onehot
                if grad_q is not None:
                    grad_q[start:stop].addmm_(G, keys)
                if grad_k is not None:
                    grad_k.addmm_(G.t(), query[start:stop])
                del G
            if grad_q is not None:
                grad_q.mul_(coef)
            if grad_k is not None and grad_k is not grad_q:
                grad_k.mul_(coef)
            return (grad_q, None if shared else grad_k) + (None,) * 7

        # full: softmax - onehot = (exps - row_sum * onehot) / row_sum: edit the M target
        # entries of the saved exps for the two products, then put them back exactly
        exps, row_sum = ctx.exps, saved
        kept = exps[all_rows, targets]
        exps[all_rows, targets] = kept - row_sum
        row_coef = (coef / row_sum)[:, None]  # the row factors go to the [c, D] side
        try:
            for start in range(0, M, tile_rows):
                stop = min(start + tile_rows, M)
                G = exps[start:stop]
                if grad_q is not None:
                    grad_q[start:stop].addcmul_(torch.mm(G, keys), row_coef[start:stop])
                if grad_k is not None:
                    grad_k.addmm_(G.t(), query[start:stop] * row_coef[start:stop])
        finally:
            exps[all_rows, targets] = kept  # exactly as before: backward can run again
        return (grad_q, None if shared else grad_k) + (None,) * 7


def _info_nce_core(query, keys, targets, scale, self_offset, chunk_size, loss_scale,
                   normalized=False):
    """sum_i loss_scale * -log softmax(query @ keys.T * scale)[i, targets[i]].

    `keys=None`: the keys are the queries. `self_offset`: None, or key `self_offset + i` is left
    out of row i's softmax. `normalized`: rows are unit vectors, so |logits| <= scale. Inputs
    must already be in the compute dtype (float32 or float64).
    """
    if chunk_size is None:  # one tile: the [M, K] buffer is kept for backward anyway
        tile_rows, recompute = query.shape[0], False
    else:
        tile_rows, recompute = chunk_size, True
    # exp(logit - scale) >= exp(-2 scale) stays a normal float (float32: down to exp(-87))
    limit = 600.0 if query.dtype == torch.float64 else 80.0
    bound = float(scale) if normalized and 2 * scale <= limit else None
    return _InfoNCE.apply(query, keys, targets, scale, self_offset, tile_rows, recompute,
                          loss_scale, bound)


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

    dtype = _compute_dtype(query, keys)
    with torch.autocast(query.device.type, enabled=False):
        q, k = query.to(dtype), keys.to(dtype)
        if normalize:
            q, k = _unit_rows(q), _unit_rows(k)
        self_offset = 0 if exclude_self else None
        targets = targets.to(device=q.device, dtype=torch.long)
        return _info_nce_core(q, k, targets, 1.0 / temperature, self_offset, chunk_size, 1.0 / M,
                              normalized=normalize)


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
# distributed: all_gather with gradients
# --------------------------------------------------------------------------------------------


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_sizes(x: torch.Tensor) -> list[int]:
    """Number of rows on every process (they may differ, e.g. a smaller last batch)."""
    n = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    return [int(s) for s in sizes]


class _GatherWithGrad(torch.autograd.Function):
    """Concatenate every process's rows (sizes may differ); backward returns each process the
    summed gradient of its own rows (every process's loss depends on every embedding)."""

    @staticmethod
    def forward(ctx, x, sizes):
        # pad to the largest size: all_gather needs equal shapes
        padded = x.new_zeros((max(sizes),) + tuple(x.shape[1:]))
        padded[: x.shape[0]] = x
        out = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(out, padded)
        rank = dist.get_rank()
        ctx.start, ctx.stop = sum(sizes[:rank]), sum(sizes[: rank + 1])
        return torch.cat([o[:s] for o, s in zip(out, sizes)])

    @staticmethod
    def backward(ctx, grad):
        # every process's loss used every row: the gradient of a row is the sum over processes
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All-gather rows from every process, keeping the autograd graph.

    Processes may hold different numbers of rows (e.g. a smaller last batch): the sizes are
    gathered first and the rows padded for the exchange. In backward, the gradients that every
    process computed for a row are summed and handed to the process that owns the row. Without
    torch.distributed (or with a single process) this returns `(x, 0)`.

    Args:
        x: [n_local, ...] this process's rows.

    Returns:
        gathered: [n_total, ...] the rows of process 0, 1, 2, ... in order.
        offset: index in `gathered` of this process's first row.
    """
    if not _distributed():
        return x, 0
    sizes = _all_sizes(x)
    return _GatherWithGrad.apply(x, sizes), sum(sizes[: dist.get_rank()])


# --------------------------------------------------------------------------------------------
# NT-Xent (SimCLR)
# --------------------------------------------------------------------------------------------


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

    How: the 2N views are normalised and stacked, [z1; z2]; one matrix product gives every s_ij;
    the 2N diagonal entries (k = i) are set to -inf, without a [2N, 2N] mask; row i's positive
    is row i + N (mod 2N); a fused softmax cross-entropy gives the l's (`info_nce` with
    exclude_self=True is the same computation). The order of the views does not change L, so
    stacking [z1; z2] instead of interleaving them (2k-1, 2k) gives the same number. Logits are
    float32 (float64 for float64 inputs) even under autocast.

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
    in float32, see `_unit_rows`). A row of zeros has no direction: it counts as similarity 0 to
    every view and gets a zero gradient. NaN or inf in z1 or z2 give a NaN loss.

    Raises:
        ValueError: if z1 or z2 is not 2-D, their shapes differ, N = 0, temperature <= 0 or
            chunk_size < 1.

    Example:
        >>> z1, z2 = torch.randn(256, 128), torch.randn(256, 128)   # projection-head outputs
        >>> loss = nt_xent(z1, z2, temperature=0.5)
        >>> loss_big_batch = nt_xent(z1, z2, temperature=0.5, chunk_size=128)  # same value
    """
    _check_matrix("z1", z1)
    _check_matrix("z2", z2)
    if z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape [N, D] (z1[k] and z2[k] are the two views of "
            f"sample k), got z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)}."
        )
    n = z1.shape[0]
    if n == 0:
        raise ValueError("nt_xent needs at least one sample, got N = 0 (empty batch).")
    scale = 1.0 / _check_temperature(temperature)
    chunk_size = _check_chunk_size(chunk_size)

    dtype = _compute_dtype(z1, z2)
    with torch.autocast(z1.device.type, enabled=False):
        z = _unit_rows(torch.cat([z1, z2]).to(dtype))  # [2N, D] unit vectors, at any scale
        # positive of view i is view i + N (mod 2N): z1[k] <-> z2[k]
        targets = torch.arange(2 * n, device=z.device).roll(n)
        if gather and _distributed():
            keys, offset = gather_with_grad(z)
            # sum_i l_i * world / (2N_global): DDP averages gradients over the processes, which
            # turns this into exactly the gradient of the global mean over all 2N_global views
            loss_scale = dist.get_world_size() / keys.shape[0]
            return _info_nce_core(z, keys, targets + offset, scale, offset, chunk_size, loss_scale,
                                  normalized=True)
        return _info_nce_core(z, None, targets, scale, 0, chunk_size, 1.0 / (2 * n),
                              normalized=True)



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
