"""Checks for notebook 07 (Contrastive Predictive Coding): the InfoNCE loss and the prediction
step. The references are the package's `losses.info_nce` and `cpc.cpc_prediction_loss`; the
`mistakes` are the wrong versions students typically write, so a failing check can say which.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..cpc import cpc_prediction_loss
from ..losses import info_nce
from .core import BuildsOn, Case, Returns, make_check

__all__ = ["check_info_nce", "check_prediction_loss", "info_nce_loss", "prediction_loss"]

# --------------------------------------------------------------------------------------------
# Exercise 7.1: InfoNCE.
# --------------------------------------------------------------------------------------------


def info_nce_loss(query, keys, targets, temperature=1.0):
    """Reference for Exercise 7.1: mean_i -log softmax(query @ keys.T / temperature)[i, t_i].

    query [M, D], keys [K, D], targets [M] int64 -> scalar."""
    return info_nce(query, keys, targets, temperature=temperature)


def _log_probs_rows(query, keys, temperature, dim=1):
    return F.log_softmax(query @ keys.T / temperature, dim=dim)


def _pick(log_probs, targets):
    return -log_probs[torch.arange(len(targets)), targets].mean()


def _wrong_axis(query, keys, targets, temperature=1.0):
    return _pick(_log_probs_rows(query, keys, temperature, dim=0), targets)


def _temperature_twice(query, keys, targets, temperature=1.0):
    return _pick(_log_probs_rows(query, keys, temperature**2), targets)


def _temperature_missing(query, keys, targets, temperature=1.0):
    return _pick(_log_probs_rows(query, keys, 1.0), targets)


def _temperature_multiplied(query, keys, targets, temperature=1.0):
    return _pick(_log_probs_rows(query, keys, 1.0 / temperature), targets)


def _diagonal_positive(query, keys, targets, temperature=1.0):
    return _pick(_log_probs_rows(query, keys, temperature), torch.arange(len(targets)))


def _positive_excluded(query, keys, targets, temperature=1.0):
    logits = query @ keys.T / temperature
    rows = torch.arange(len(targets))
    positive = logits[rows, targets]
    negatives = logits.clone()
    negatives[rows, targets] = float("-inf")
    return (torch.logsumexp(negatives, dim=1) - positive).mean()


def _self_excluded(query, keys, targets, temperature=1.0):
    logits = (query @ keys.T / temperature).clone()
    rows = torch.arange(len(targets))
    logits[rows, rows] = float("-inf")  # NT-Xent's k != i, which InfoNCE does not have
    return _pick(F.log_softmax(logits, dim=1), targets)


def _cosine(query, keys, targets, temperature=1.0):
    logits = F.normalize(query, dim=1) @ F.normalize(keys, dim=1).T / temperature
    return _pick(F.log_softmax(logits, dim=1), targets)


def _summed(query, keys, targets, temperature=1.0):
    return _pick(_log_probs_rows(query, keys, temperature), targets) * len(targets)


def _info_nce_cases():
    g = torch.Generator().manual_seed(7)
    return [
        Case("4 queries, 4 keys, positive of query i is key i",
             torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.arange(4)),
        Case("6 queries, 10 keys, shuffled positives, temperature 0.5",
             torch.randn(6, 5, generator=g), torch.randn(10, 5, generator=g),
             torch.tensor([7, 2, 9, 0, 4, 4]), temperature=0.5),
        Case("8 queries, 8 keys, positives 3 rows away, temperature 0.2",
             torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g),
             (torch.arange(8) + 3) % 8, temperature=0.2),
        Case("query that needs a gradient, 3 queries, 7 keys, temperature 2",
             torch.randn(3, 6, generator=g).requires_grad_(), torch.randn(7, 6, generator=g),
             torch.tensor([6, 0, 3]), temperature=2.0),
    ]


check_info_nce = make_check(
    "7.1", "the InfoNCE loss", info_nce_loss, _info_nce_cases, atol=1e-5,
    returns=Returns.tensor(scalar=True, grad=True, why="CPC trains through it in 7.2"),
    mistakes=[
        (_wrong_axis, "the softmax runs over the wrong axis: each *query* (row) chooses among "
                      "all keys, so normalise along dim=1."),
        (_temperature_twice, "the temperature is applied twice (divide the scores by it once)."),
        (_temperature_missing, "the temperature is missing: divide the scores by it."),
        (_temperature_multiplied, "the scores are multiplied by the temperature; divide them."),
        (_diagonal_positive, "the positive is taken on the diagonal (key i for query i); the "
                             "positive of query i is key targets[i]."),
        (_positive_excluded, "the positive is left out of the denominator; in InfoNCE the "
                             "softmax runs over all keys, the positive included."),
        (_self_excluded, "key i is left out of row i (SimCLR's k != i); InfoNCE excludes "
                         "nothing: every key is a candidate."),
        (_summed, "the losses are summed over queries; take their mean."),
        (_cosine, "the scores are cosine similarities: InfoNCE here scores with the plain dot "
                  "product (do not normalise)."),
    ],
    hints=[
        "Each query must pick out its own positive among all the keys: a softmax "
        "classification over the keys.",
        "Score every query against every key with one matrix product and divide by the "
        "temperature: an [M, K] table of logits, one row per query. Each row is then a "
        "classification over the K keys whose correct class is targets[i]: F.cross_entropy "
        "applies the softmax along each row, picks that column and averages over the queries. "
        "Do not normalise, and leave nothing out of the denominator.",
        "logits = query @ keys.T / temperature has shape [M, K]; F.cross_entropy(logits, "
        "targets) is the mean over the rows of -log softmax(logits)[i, targets[i]], which is "
        "InfoNCE.",
    ],
)

# --------------------------------------------------------------------------------------------
# Exercise 7.2: the prediction step of CPC.
# --------------------------------------------------------------------------------------------


def prediction_loss(z, c, W, k, temperature=1.0):
    """Reference for Exercise 7.2: InfoNCE of W_k c_t against all B*L latents, positive
    z_{t+k}. z [B, L, D], c [B, L, H], W [D, H], k int -> scalar."""
    return cpc_prediction_loss(z, c, W, k, temperature=temperature)


def _with_targets(z, c, W, k, temperature, query_times, target_times, batch_offset=True):
    B, L, D = z.shape
    prediction = c[:, query_times] @ W.T
    offset = (torch.arange(B)[:, None] * L) if batch_offset else torch.zeros(B, 1, dtype=int)
    targets = (offset + target_times[None, :]).reshape(-1)
    return info_nce(prediction.reshape(-1, D), z.reshape(B * L, D), targets,
                    temperature=temperature)


def _target_shift(shift):
    def wrong(z, c, W, k, temperature=1.0):
        L = z.shape[1]
        t = torch.arange(L - k)
        return _with_targets(z, c, W, k, temperature, t, t + shift(k))
    return wrong


def _predict_the_past(z, c, W, k, temperature=1.0):
    L = z.shape[1]
    t = torch.arange(L - k)
    return _with_targets(z, c, W, k, temperature, t + k, t)


def _no_batch_offset(z, c, W, k, temperature=1.0):
    L = z.shape[1]
    t = torch.arange(L - k)
    return _with_targets(z, c, W, k, temperature, t, t + k, batch_offset=False)


def _same_time_negatives_only(z, c, W, k, temperature=1.0):
    B, L, _ = z.shape
    losses = [info_nce(c[:, t] @ W.T, z[:, t + k], torch.arange(B), temperature=temperature)
              for t in range(L - k)]
    return torch.stack(losses).mean()


def _same_sequence_negatives_only(z, c, W, k, temperature=1.0):
    B, L, _ = z.shape
    t = torch.arange(L - k)
    losses = [info_nce(c[b, : L - k] @ W.T, z[b], t + k, temperature=temperature)
              for b in range(B)]
    return torch.stack(losses).mean()


def _prediction_cases():
    g = torch.Generator().manual_seed(77)

    def inputs(B, L, D, H):
        return (torch.randn(B, L, D, generator=g), torch.randn(B, L, H, generator=g),
                torch.randn(D, H, generator=g) / H**0.5)

    return [
        Case("B=2 sequences, L=5 windows, D=3, H=6, k=2", *inputs(2, 5, 3, 6), 2),
        Case("B=3, L=6, D=4, H=5, k=1", *inputs(3, 6, 4, 5), 1),
        Case("B=4, L=8, D=5, H=4, k=3, temperature 0.5", *inputs(4, 8, 5, 4), 3,
             temperature=0.5),
        Case("B=2, L=4, D=3, H=3, k=3 (a single prediction per sequence)",
             *inputs(2, 4, 3, 3), 3),
        Case("B=3, L=5, D=4, H=4, k=2, z and W need a gradient",
             *(t.requires_grad_() if i != 1 else t for i, t in enumerate(inputs(3, 5, 4, 4))),
             2),
    ]


check_prediction_loss = make_check(
    "7.2", "the CPC prediction step", prediction_loss, _prediction_cases, atol=1e-5,
    returns=Returns.tensor(scalar=True, grad=True, why="the CPC model trains on it"),
    builds_on=[BuildsOn("info_nce_loss", lambda: check_info_nce)],
    mistakes=[
        (_target_shift(lambda k: k - 1), "off by one: the target of W_k c_t is z_{t+k}, "
                                         "not z_{t+k-1}."),
        (_target_shift(lambda k: 0), "the target is z_t itself: the prediction must be "
                                     "aligned with the latent k windows *later*."),
        (_predict_the_past, "prediction and target are swapped in time: c_{t+k} is used to "
                            "predict z_t; predict the future z_{t+k} from c_t."),
        (_no_batch_offset, "the target index forgets the sequence: in the flattened keys, "
                           "each sequence's L windows come after those of the sequences "
                           "before it."),
        (_same_time_negatives_only, "the negatives are only the other sequences at the same "
                                    "time; use every window of every sequence as a key."),
        (_same_sequence_negatives_only, "the negatives are only other times of the same "
                                        "sequence; use every window of every sequence."),
    ],
    hints=[
        "The context at time t predicts the latent k windows later, against every window of "
        "the batch; find where the true future sits.",
        "Only the contexts t = 0 .. L-k-1 have a future inside their sequence: take those, "
        "apply W (a matrix product with its transpose) and flatten them to [B(L-k), D]. The "
        "keys are all B L latents, flattened to [B L, D]. The target of the prediction made at "
        "(b, t) is the row of z at (b, t + k) in the flattened keys. Then call your "
        "info_nce_loss from 7.1.",
        "predictions: c[:, :L - k] @ W.T, reshaped to (-1, D); keys: z.reshape(B * L, D); z at "
        "(b, t + k) is row b * L + t + k of the keys, so build the targets for every b and t "
        "with torch.arange and broadcasting, flattened in the order of the predictions; then "
        "info_nce_loss(predictions, keys, targets, temperature).",
    ],
)
