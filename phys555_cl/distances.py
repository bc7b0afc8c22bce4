"""Learning similarity with a distance: Siamese networks, thresholds, contrastive, triplet losses.

The lecture's starting point: a network f_theta maps a sample to a vector, and

    d_theta(x1, x2) = || f_theta(x1) - f_theta(x2) ||_2

measures how similar two samples are. A Siamese network computes it with one shared f_theta; a
threshold T turns it into a classifier (d < T means "same class"); the contrastive loss (Hadsell,
Chopra, LeCun 2006) and the triplet loss (Schroff et al. 2015) train f_theta so that the distance
means something. The SimCLR loss, which needs no labels at all, is in `phys555_cl.losses`; the
supervised contrastive loss (Khosla et al. 2020) at the end of this module is SimCLR's loss with
the labels brought back.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn

__all__ = [
    "euclidean_distance",
    "pairwise_distances",
    "cosine_similarity",
    "pairwise_cosine_similarity",
    "SiameseNetwork",
    "choose_threshold",
    "threshold_scores",
    "contrastive_loss",
    "triplet_loss",
    "batch_hard_triplet_loss",
    "supervised_contrastive_loss",
]


def _check_same_shape(name1, x1, name2, x2):
    for name, x in ((name1, x1), (name2, x2)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
        if x.dim() < 1:
            raise ValueError(f"{name} must have at least one dimension (features last), got a "
                             f"0-d tensor.")
    if x1.shape != x2.shape:
        raise ValueError(f"{name1} and {name2} must have the same shape (row i of one is compared "
                         f"with row i of the other), got {tuple(x1.shape)} and "
                         f"{tuple(x2.shape)}.")


def _check_2d(name, x):
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2-D tensor [N, D], got {got}.")


def _check_margin(margin) -> float:
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not margin >= 0:
        raise ValueError(f"margin must be a number >= 0, got {margin!r}.")
    return float(margin)


def _safe_sqrt(sq: torch.Tensor) -> torch.Tensor:
    """sqrt with gradient 0 (not inf/NaN) where the argument is 0: d(sqrt(x))/dx = inf at x = 0."""
    zero = sq <= 0
    return torch.where(zero, torch.zeros_like(sq), sq.masked_fill(zero, 1.0).sqrt())


# --------------------------------------------------------------------------------------------
# distances and similarities
# --------------------------------------------------------------------------------------------


def euclidean_distance(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between matched rows, ||x1[i] - x2[i]||_2.

    The gradient is 0 (not NaN) where two rows are identical.

    Args:
        x1: [N, D] (or any [..., D]). x2: same shape.

    Returns:
        [N] (or [...]) distances.

    Example:
        >>> euclidean_distance(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
        tensor([5.])
    """
    _check_same_shape("x1", x1, "x2", x2)
    return _safe_sqrt((x1 - x2).pow(2).sum(-1))


def pairwise_distances(x: torch.Tensor, y: torch.Tensor | None = None, *,
                       squared: bool = False) -> torch.Tensor:
    """All Euclidean distances between the rows of x and the rows of y, without Python loops.

    Uses ||x_i - y_j||^2 = ||x_i||^2 + ||y_j||^2 - 2 x_i . y_j (one matrix product), clamped at 0
    against rounding; with y = None the diagonal is exactly 0 and has a zero (not NaN) gradient.
    Distances do not change when every row is shifted or when all are scaled (and scaled back),
    so the rows are first centred on their common mean and divided by their largest entry:
    otherwise the expansion cancels on offset data (x = 1000 + 0.01 * randn gives mostly 0 in
    float32) and overflows or underflows for entries beyond about 1e19 or below 1e-19.

    Args:
        x: [N, D]. y: [M, D], or None for y = x.
        squared: return squared distances.

    Returns:
        [N, M] matrix with entry [i, j] = ||x[i] - y[j]||_2.
    """
    _check_2d("x", x)
    same = y is None
    y = x if same else y
    _check_2d("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features, got x {tuple(x.shape)} "
                         f"and y {tuple(y.shape)}.")
    with torch.no_grad():  # d(x, y) = s * d((x - c) / s, (y - c) / s) for constants c and s
        both = x if same else torch.cat([x, y])
        centre = both.mean(0) if len(both) else both.new_zeros(both.shape[1])
        spread = (both - centre).abs().amax() if both.numel() else both.new_ones(())
        spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    x = (x - centre) / spread
    y = x if same else (y - centre) / spread
    sq = x.pow(2).sum(1)[:, None] + y.pow(2).sum(1)[None, :] - 2 * x @ y.T
    sq = sq.clamp_min(0)
    if same:
        sq = sq - torch.diag_embed(sq.diagonal())  # exactly 0 on the diagonal
    return sq * spread**2 if squared else _safe_sqrt(sq) * spread


def cosine_similarity(x1: torch.Tensor, x2: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of matched rows, x1[i] . x2[i] / (|x1[i]| |x2[i]|).

    Args:
        x1: [N, D] (or any [..., D]). x2: same shape. eps: guards zero vectors.

    Returns:
        [N] (or [...]) similarities in [-1, 1].
    """
    _check_same_shape("x1", x1, "x2", x2)
    return torch.nn.functional.cosine_similarity(x1, x2, dim=-1, eps=eps)


def pairwise_cosine_similarity(x: torch.Tensor, y: torch.Tensor | None = None,
                               eps: float = 1e-8) -> torch.Tensor:
    """All cosine similarities: [i, j] = x[i] . y[j] / (|x[i]| |y[j]|).

    Args:
        x: [N, D]. y: [M, D], or None for y = x.

    Returns:
        [N, M] similarities.
    """
    _check_2d("x", x)
    y = x if y is None else y
    _check_2d("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features, got x {tuple(x.shape)} "
                         f"and y {tuple(y.shape)}.")
    xn = x / x.norm(dim=1, keepdim=True).clamp_min(eps)
    yn = y / y.norm(dim=1, keepdim=True).clamp_min(eps)
    return xn @ yn.T


# --------------------------------------------------------------------------------------------
# Siamese network
# --------------------------------------------------------------------------------------------


class SiameseNetwork(nn.Module):
    """d(x1, x2) = ||f(x1) - f(x2)||_2 with one shared encoder f (Bromley et al. 1993).

    "Siamese": both inputs go through the *same* module, so the weights are shared by
    construction and the distance is symmetric.

    Args:
        encoder: any module mapping a batch [N, ...] to embeddings [N, D] (outputs with more
            dimensions are flattened).

    Shapes:
        forward(x1, x2): x1, x2 [N, ...] -> distances [N].
        embed(x): [N, ...] -> [N, D].

    Example:
        >>> net = SiameseNetwork(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16)))
        >>> d = net(torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8))   # [4]
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise ValueError(f"encoder must be a torch.nn.Module, got {type(encoder).__name__}.")
        self.encoder = encoder

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): [N, ...] -> [N, D] (the package's one name for a model's representation, as
        ``SimCLR.representation``). ``embed`` is the same method."""
        return self.encoder(x).flatten(1)

    embed = representation  # the name notebooks 01 and 02 use

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        if x1.shape != x2.shape:
            raise ValueError(f"x1 and x2 must have the same shape, got {tuple(x1.shape)} and "
                             f"{tuple(x2.shape)}.")
        z = self.representation(torch.cat([x1, x2]))  # one pass: BatchNorm sees both inputs alike
        z1, z2 = z.chunk(2)
        return euclidean_distance(z1, z2)


# --------------------------------------------------------------------------------------------
# the threshold classifier d < T
# --------------------------------------------------------------------------------------------


def _as_1d_numpy(name, x, dtype):
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of pairs, got shape {arr.shape}.")
    return arr.astype(dtype)


def choose_threshold(distances, same) -> float:
    """The threshold T with the best accuracy of the rule "d < T means same".

    Every T between two consecutive sorted distances gives the same predictions, so only those
    intervals (and below / above all distances) are tried; T is the midpoint of the best one
    (the first one on ties).

    Args:
        distances: [P] distances of P labelled pairs (tensor or array).
        same: [P] bool (or 0/1), True where the pair is of the same class.

    Returns:
        T as a float.

    Example:
        >>> choose_threshold(torch.tensor([0.25, 0.5, 1.0, 1.5]), torch.tensor([1, 1, 0, 0]))
        0.75
    """
    d = _as_1d_numpy("distances", distances, np.float64)
    s = _as_1d_numpy("same", same, np.float64)
    if d.shape != s.shape:
        raise ValueError(f"distances and same must have the same length, got {d.shape[0]} and "
                         f"{s.shape[0]}.")
    order = np.argsort(d, kind="stable")
    d, s = d[order], s[order]
    # with T just above the k smallest distances: the k first are called "same"
    correct = (np.concatenate([[0], np.cumsum(s)])
               + (1 - s).sum() - np.concatenate([[0], np.cumsum(1 - s)]))
    # T can only sit between *different* distances: drop the cuts inside runs of ties
    allowed = np.ones(len(d) + 1, dtype=bool)
    allowed[1:-1] = d[1:] > d[:-1]
    k = int(np.argmax(np.where(allowed, correct, -1)))
    if k == 0:
        return float(d[0] - 1.0)
    if k == len(d):
        return float(d[-1] + 1.0)
    return float(0.5 * (d[k - 1] + d[k]))


def threshold_scores(distances, same, threshold: float) -> dict:
    """How good the rule "d < threshold means same" is, and the ROC curve of all thresholds.

    Args:
        distances: [P] distances of P labelled pairs. same: [P] bool.
        threshold: T.

    Returns:
        dict with
            accuracy: fraction of pairs classified correctly by d < T;
            true_positive_rate: fraction of "same" pairs with d < T;
            false_positive_rate: fraction of "different" pairs with d < T;
            roc_auc: area under the ROC curve (scikit-learn, score = -d: the probability that a
                random "same" pair is closer than a random "different" pair);
            fpr, tpr, thresholds: the ROC curve (numpy arrays; thresholds in distance units,
                a pair counts as "same" when d <= threshold).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    d = _as_1d_numpy("distances", distances, np.float64)
    s = _as_1d_numpy("same", same, bool)
    if d.shape != s.shape:
        raise ValueError(f"distances and same must have the same length, got {d.shape[0]} and "
                         f"{s.shape[0]}.")
    pred = d < float(threshold)
    n_same, n_diff = s.sum(), (~s).sum()
    scores = {
        "accuracy": float((pred == s).mean()),
        "true_positive_rate": float((pred & s).sum() / n_same) if n_same else float("nan"),
        "false_positive_rate": float((pred & ~s).sum() / n_diff) if n_diff else float("nan"),
        "roc_auc": float("nan"),
    }
    if n_same and n_diff:  # a ROC curve needs both classes
        fpr, tpr, thr = roc_curve(s, -d)
        scores.update(roc_auc=float(roc_auc_score(s, -d)), fpr=fpr, tpr=tpr, thresholds=-thr)
    return scores


# --------------------------------------------------------------------------------------------
# losses on distances
# --------------------------------------------------------------------------------------------


def contrastive_loss(distances: torch.Tensor, same: torch.Tensor,
                     margin: float = 1.0) -> torch.Tensor:
    """Contrastive loss of Hadsell, Chopra & LeCun 2006 ("Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR), with the paper's factors 1/2:

        same pair:       d^2 / 2                  (pulled together)
        different pair:  max(0, margin - d)^2 / 2 (pushed apart until they are margin apart)

    averaged over the pairs. (The paper's label Y = 0 means similar; here `same` = True.)

    Args:
        distances: [P] distances d of P pairs (e.g. from `SiameseNetwork`).
        same: [P] bool or 0/1, True for pairs of the same class.
        margin: m >= 0; different pairs farther apart than m cost nothing.

    Returns:
        Scalar: the mean over the P pairs.
    """
    if not isinstance(distances, torch.Tensor) or distances.dim() != 1:
        got = tuple(distances.shape) if isinstance(distances, torch.Tensor) else distances
        raise ValueError(f"distances must be a 1-D tensor [P], got {got}.")
    same = torch.as_tensor(same, device=distances.device)
    if same.shape != distances.shape:
        raise ValueError(f"same must have the shape of distances {tuple(distances.shape)}, got "
                         f"{tuple(same.shape)}.")
    margin = _check_margin(margin)
    y = same.to(distances.dtype)
    return 0.5 * (y * distances.pow(2) + (1 - y) * torch.relu(margin - distances).pow(2)).mean()


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = 0.2) -> torch.Tensor:
    """Triplet loss (Schroff, Kalenichenko, Philbin 2015, FaceNet, arXiv:1503.03832), with the
    plain Euclidean distance (as in Hermans et al. 2017):

        mean over triplets of max(0, d(a, p) - d(a, n) + margin)

    Args:
        anchor, positive, negative: [B, D]; positive[i] has the class of anchor[i], negative[i]
            another class.
        margin: >= 0, how much closer the positive must be than the negative.

    Returns:
        Scalar. For triplets mined from a labelled batch, see `batch_hard_triplet_loss`.
    """
    _check_same_shape("anchor", anchor, "positive", positive)
    _check_same_shape("anchor", anchor, "negative", negative)
    margin = _check_margin(margin)
    d_ap = euclidean_distance(anchor, positive)
    d_an = euclidean_distance(anchor, negative)
    return torch.relu(d_ap - d_an + margin).mean()


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2,
                            *, mining: str = "hard") -> torch.Tensor:
    """Triplet loss with the triplets mined from a labelled batch.

    mining="hard" (batch-hard, Hermans, Beyer, Leibe 2017, "In Defense of the Triplet Loss",
    arXiv:1703.07737): every embedding is an anchor with its *farthest* positive (same label, not
    itself) and its *closest* negative; the mean of max(0, d_ap - d_an + margin) over the anchors
    that have at least one positive and one negative.

    mining="semi-hard" (Schroff et al. 2015): every (anchor, positive) pair, with the closest
    negative that is still farther than the positive (d_ap < d_an); if there is none, the
    farthest negative. The mean over the pairs whose anchor has a negative.

    Args:
        embeddings: [B, D]. labels: [B] integer class of each embedding.
        margin: >= 0.
        mining: "hard" or "semi-hard".

    Returns:
        Scalar (0 with a zero gradient if no anchor has both a positive and a negative).
    """
    _check_2d("embeddings", embeddings)
    labels = torch.as_tensor(labels, device=embeddings.device)
    if labels.shape != (embeddings.shape[0],):
        raise ValueError(f"labels must have shape [B] = ({embeddings.shape[0]},), got "
                         f"{tuple(labels.shape)}.")
    if mining not in ("hard", "semi-hard"):
        raise ValueError(f"mining must be 'hard' or 'semi-hard', got {mining!r}.")
    margin = _check_margin(margin)
    d = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    if mining == "hard":
        hardest_pos = d.masked_fill(~pos, float("-inf")).amax(1)
        hardest_neg = d.masked_fill(~neg, float("inf")).amin(1)
        valid = pos.any(1) & neg.any(1)
        losses = torch.relu(hardest_pos - hardest_neg + margin)[valid]
    else:
        d_ap = d[:, :, None]  # [anchor, positive, 1]
        d_an = d[:, None, :]  # [anchor, 1, negative]
        negative = neg[:, None, :]
        semi = negative & (d_an > d_ap)  # [anchor, positive, negative]
        closest_farther = d_an.masked_fill(~semi, float("inf")).amin(2)
        farthest = d.masked_fill(~neg, float("-inf")).amax(1, keepdim=True).expand_as(d)
        d_neg = torch.where(semi.any(2), closest_farther, farthest)
        valid = pos & neg.any(1, keepdim=True)
        losses = torch.relu(d - d_neg + margin)[valid]
    if losses.numel() == 0:
        return embeddings.sum() * 0.0
    return losses.mean()


def supervised_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor,
                                temperature: float = 0.5) -> torch.Tensor:
    """Supervised contrastive loss, SupCon (Khosla et al. 2020, "Supervised Contrastive
    Learning", NeurIPS, arXiv:2004.11362, the L_out of their eq. 2): every embedding with the
    same label is a positive.

    With u = embeddings / |embeddings| and s_ia = u_i . u_a / tau, for every anchor i

        l_i = -1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a != i} exp(s_ia) ),

    P(i) the other rows with the label of row i; the loss is the mean of l_i over the anchors
    that have at least one positive (the paper writes the sum over anchors; the mean keeps the
    scale of `losses.nt_xent`). When the labels only say which rows are two views of the same
    sample (every label exactly twice), P(i) is the partner alone and this is exactly NT-Xent.

    Args:
        embeddings: [B, D] (several views of a sample, or several samples of a class, in any
            order).
        labels: [B] integer class of each row.
        temperature: tau > 0.

    Returns:
        Scalar (0 with a zero gradient if no row has a positive).
    """
    _check_2d("embeddings", embeddings)
    labels = torch.as_tensor(labels, device=embeddings.device)
    if labels.shape != (embeddings.shape[0],):
        raise ValueError(f"labels must have shape [B] = ({embeddings.shape[0]},), got "
                         f"{tuple(labels.shape)}.")
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}.")
    u = nn.functional.normalize(embeddings, dim=1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=u.device)
    logits = (u @ u.T / temperature).masked_fill(eye, float("-inf"))  # a != i
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    n_positive = positive.sum(dim=1)
    has_positive = n_positive > 0
    if not bool(has_positive.any()):
        return embeddings.sum() * 0.0
    per_anchor = log_prob.masked_fill(~positive, 0.0).sum(dim=1)[has_positive]
    return -(per_anchor / n_positive[has_positive]).mean()
