"""Checks for notebook 06 (galaxy representations): a k-nearest-neighbour classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .core import Case, Returns, make_check


def knn_predict_reference(train_h, train_y, test_h, k):
    """Majority vote of the ``k`` most cosine-similar training galaxies.

    Shapes: ``train_h [N, D]``, ``train_y [N]`` int64 classes 0..C-1, ``test_h [M, D]`` ->
    ``[M]`` int64 predicted classes. Ties go to the smaller class index.
    """
    similarity = F.normalize(test_h, dim=1) @ F.normalize(train_h, dim=1).T  # [M, N]
    neighbours = similarity.topk(k, dim=1).indices  # [M, k]
    votes = F.one_hot(train_y[neighbours], num_classes=int(train_y.max()) + 1).sum(dim=1)
    return votes.argmax(dim=1)


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
