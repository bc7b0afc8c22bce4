"""The fast path behind `phys555_cl.losses`: a fused InfoNCE / NT-Xent kernel and its all-gather.

Private: nothing here is part of the course's API, and nobody needs to read it to follow the
lecture. `losses.nt_xent_textbook` is the slide in four lines (normalise, similarities over tau,
the self-pair removed, cross-entropy against the partner); this module computes the last three
of them, and `losses.info_nce` calls the same kernel.

What it must equal. For z = unit_rows([z1; z2]) (view i's partner is view i + N mod 2N),
``fused_nt_xent(z, partner, 1 / tau)`` is, in value and in gradient,
``losses.nt_xent_textbook(z1, z2, tau)``; and ``fused_info_nce(q, k, targets, 1 / tau, ...)`` is
``F.cross_entropy(q @ k.T / tau, targets)`` (with key i left out of row i's softmax for
``self_offset=0``). tests/test_losses.py pins the first against `nt_xent_textbook`, both against
the slide's loops (`nt_xent_reference`, `info_nce_reference`) to 1e-13 in float64, the gradients
with gradcheck, and the chunked and distributed paths against the full one.

Why it exists. The textbook lines keep the [2N, 2N] logits, the softmax and its gradient
alive at once, with a pass over the whole matrix for each step of the cross-entropy (782 MB of
extra memory at 2N = 8192, D = 128 in benchmarks/bench_ntxent.py, against 287 MB here). Here:

- the softmax cross-entropy is fused into the matrix product (`_InfoNCE`): a log-sum-exp per row
  whose shift comes out of the product itself (`_append_column`), the diagonal set by indexing
  its 2N entries (no mask), one [2N, 2N] buffer kept for backward, and a backward that is just
  the two gradient products. benchmarks/bench_ntxent.py, 2N = 8192 on a CPU: 3.1x faster than
  lightly's `NTXentLoss` (keep it >= 3x).
- chunked (``chunk_size=c``): rows in tiles of c, recomputed in backward, so the extra memory is
  O(c * 2N) instead of O((2N)^2): with c = 256 at 2N = 8192, 31 MB, 9x less than the full path
  (keep it >= 4x).
- distributed (`gather_with_grad`): every process's rows against the embeddings of all
  processes, with the gradients sent back to the process that owns each embedding.
- `unit_rows` normalises correctly at any finite scale (1e-30 or 1e30 in float32), where
  ``F.normalize`` overflows or divides by its eps.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = [
    "compute_dtype", "distributed", "fused_info_nce", "fused_nt_xent", "gather_with_grad",
    "unit_rows"
]

# --------------------------------------------------------------------------------------------
# normalisation at any scale, and the dtype of the logits
# --------------------------------------------------------------------------------------------


def unit_rows(x: torch.Tensor) -> torch.Tensor:
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


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
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


def fused_info_nce(query, keys, targets, scale, self_offset, chunk_size, loss_scale,
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


def fused_nt_xent(z, partner, scale, chunk_size, gather):
    """NT-Xent of unit rows ``z`` [2N, D], the mean over the 2N views: the last three lines of
    ``losses.nt_xent_textbook`` with ``scale = 1 / tau`` (see the module docstring).

    ``gather``: under torch.distributed, this process's rows against the views of every process;
    the value is scaled so that DDP's gradient averaging reproduces the gradient of the loss of
    the whole global batch exactly. A no-op when not distributed.
    """
    if gather and distributed():
        keys, offset = gather_with_grad(z)
        # sum_i l_i * world / (2N_global): DDP averages gradients over the processes, which
        # turns this into exactly the gradient of the global mean over all 2N_global views
        loss_scale = dist.get_world_size() / keys.shape[0]
        return fused_info_nce(z, keys, partner + offset, scale, offset, chunk_size, loss_scale,
                              normalized=True)
    return fused_info_nce(z, None, partner, scale, 0, chunk_size, 1.0 / z.shape[0],
                          normalized=True)


# --------------------------------------------------------------------------------------------
# distributed: all_gather with gradients
# --------------------------------------------------------------------------------------------


def distributed() -> bool:
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
    if not distributed():
        return x, 0
    sizes = _all_sizes(x)
    return _GatherWithGrad.apply(x, sizes), sum(sizes[: dist.get_rank()])
