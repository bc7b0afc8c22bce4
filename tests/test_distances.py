"""Specification of phys555_cl.distances, against hand-computed cases."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from phys555_cl.distances import (
    SiameseNetwork,
    batch_hard_triplet_loss,
    choose_threshold,
    contrastive_loss,
    cosine_similarity,
    euclidean_distance,
    pairwise_cosine_similarity,
    pairwise_distances,
    supervised_contrastive_loss,
    threshold_scores,
    triplet_loss,
)

# ---------------------------------------------------------------------------------------------
# distances and similarities
# ---------------------------------------------------------------------------------------------


def test_euclidean_distance_of_matched_rows():
    x1 = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, -1.0]])
    x2 = torch.tensor([[3.0, 4.0], [1.0, 1.0], [-1.0, 3.0]])
    torch.testing.assert_close(euclidean_distance(x1, x2), torch.tensor([5.0, 0.0, 5.0]))


def test_euclidean_distance_has_a_zero_not_nan_gradient_for_identical_rows():
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    euclidean_distance(x, x.detach().clone()).sum().backward()
    assert torch.equal(x.grad, torch.zeros(1, 2))


def test_pairwise_distances_hand_computed():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    y = torch.tensor([[0.0, 0.0], [0.0, 4.0], [6.0, 8.0]])
    expected = torch.tensor([[0.0, 4.0, 10.0], [5.0, 3.0, 5.0]])
    torch.testing.assert_close(pairwise_distances(x, y), expected)
    torch.testing.assert_close(pairwise_distances(x, y, squared=True), expected ** 2)


def test_pairwise_distances_match_a_loop_and_torch_cdist():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64)
    loops = torch.tensor([[float((x[i] - y[j]).norm()) for j in range(4)] for i in range(5)],
                         dtype=torch.float64)
    torch.testing.assert_close(pairwise_distances(x, y), loops)
    torch.testing.assert_close(pairwise_distances(x, y), torch.cdist(x, y))


def test_pairwise_distances_of_a_set_with_itself_is_symmetric_with_a_zero_diagonal():
    x = 100 * torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    x.requires_grad_()
    d = pairwise_distances(x)
    assert torch.equal(d.diagonal(), torch.zeros(6))
    torch.testing.assert_close(d, d.T)
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_cosine_similarity_hand_computed():
    x1 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    x2 = torch.tensor([[0.0, 3.0], [2.0, 2.0], [-1.0, 0.0]])
    torch.testing.assert_close(cosine_similarity(x1, x2), torch.tensor([0.0, 1.0, -1.0]))
    expected = torch.tensor([[0.0, 1 / math.sqrt(2), -1.0], [1 / math.sqrt(2), 1.0,
                             -1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2), -1.0]])
    torch.testing.assert_close(pairwise_cosine_similarity(x1, x2), expected)


@pytest.mark.parametrize("fn", [euclidean_distance, cosine_similarity])
def test_matched_row_functions_reject_different_shapes(fn):
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(3, 3\)"):
        fn(torch.randn(2, 3), torch.randn(3, 3))


def test_pairwise_functions_reject_mismatched_features():
    for fn in (pairwise_distances, pairwise_cosine_similarity):
        with pytest.raises(ValueError, match=r"same number of features.*\(2, 3\).*\(4, 2\)"):
            fn(torch.randn(2, 3), torch.randn(4, 2))
        with pytest.raises(ValueError, match=r"2-D.*\(3,\)"):
            fn(torch.randn(3))


# ---------------------------------------------------------------------------------------------
# Siamese network
# ---------------------------------------------------------------------------------------------


def test_siamese_network_is_the_distance_between_shared_embeddings():
    encoder = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        encoder.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    net = SiameseNetwork(encoder)
    x1 = torch.tensor([[0.0, 0.0, 7.0], [1.0, 1.0, 0.0]])
    x2 = torch.tensor([[3.0, 4.0, -2.0], [1.0, 1.0, 5.0]])
    torch.testing.assert_close(net(x1, x2), torch.tensor([5.0, 0.0]))
    assert list(net.parameters()) == list(encoder.parameters())  # one set of shared weights


def test_siamese_network_is_symmetric_and_flattens_image_embeddings():
    net = SiameseNetwork(nn.Conv2d(3, 2, 3))
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)
    assert net.embed(a).shape == (4, 2 * 3 * 3)
    torch.testing.assert_close(net(a, b), net(b, a))


def test_siamese_network_rejects_a_non_module_and_mismatched_inputs():
    with pytest.raises(ValueError, match="nn.Module.*function"):
        SiameseNetwork(lambda x: x)
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(3, 3\)"):
        SiameseNetwork(nn.Identity())(torch.randn(2, 3), torch.randn(3, 3))


# ---------------------------------------------------------------------------------------------
# threshold
# ---------------------------------------------------------------------------------------------


def test_choose_threshold_separates_separable_pairs_at_the_midpoint():
    d = torch.tensor([1.5, 0.25, 1.0, 0.5])
    same = torch.tensor([False, True, False, True])
    assert choose_threshold(d, same) == 0.75


def test_choose_threshold_maximises_accuracy_on_overlapping_pairs():
    # sorted: 0.1 s, 0.2 d, 0.3 s, 0.4 s, 0.5 d, 0.6 d: the best cut (5 of 6) is between 0.4, 0.5
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    same = np.array([1, 0, 1, 1, 0, 0], dtype=bool)
    assert choose_threshold(d, same) == pytest.approx(0.45)


def test_choose_threshold_never_cuts_between_tied_distances():
    # a tie at 2.0 with one "same" and two "different": T must be below or above all three
    d = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0, 3.0])
    same = torch.tensor([1, 1, 1, 0, 0, 0], dtype=torch.bool)
    t = choose_threshold(d, same)
    assert t == pytest.approx(1.5)
    assert threshold_scores(d, same, t)["accuracy"] == pytest.approx(5 / 6)


def test_choose_threshold_all_same_or_all_different():
    d = torch.tensor([0.2, 0.7, 0.4])
    assert choose_threshold(d, torch.ones(3, dtype=torch.bool)) > 0.7
    assert choose_threshold(d, torch.zeros(3, dtype=torch.bool)) < 0.2


def test_threshold_scores_hand_computed():
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    same = np.array([1, 0, 1, 1, 0, 0], dtype=bool)
    scores = threshold_scores(d, same, 0.45)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    assert scores["true_positive_rate"] == pytest.approx(1.0)
    assert scores["false_positive_rate"] == pytest.approx(1 / 3)
    # (same, different) pairs with the same pair closer: 3 + 2 + 2 = 7 of 9
    assert scores["roc_auc"] == pytest.approx(7 / 9)
    assert scores["fpr"][0] == 0 and scores["tpr"][-1] == 1
    assert np.all(np.diff(scores["thresholds"][1:]) >= 0)  # distance thresholds increase


def test_threshold_functions_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="same length.*3 and 2"):
        choose_threshold(torch.rand(3), torch.tensor([True, False]))
    with pytest.raises(ValueError, match="same length.*3 and 2"):
        threshold_scores(torch.rand(3), torch.tensor([True, False]), 0.5)


# ---------------------------------------------------------------------------------------------
# contrastive loss
# ---------------------------------------------------------------------------------------------


def test_contrastive_loss_hand_computed_with_the_papers_one_half():
    d = torch.tensor([0.5, 2.0, 0.25, 1.5])
    same = torch.tensor([True, True, False, False])
    # same: 0.5^2/2, 2^2/2; different (margin 1): (1-0.25)^2/2, max(0, 1-1.5)^2/2 = 0
    expected = (0.125 + 2.0 + 0.28125 + 0.0) / 4
    assert contrastive_loss(d, same, margin=1.0).item() == pytest.approx(expected)


def test_contrastive_loss_is_zero_for_close_same_pairs_and_far_different_pairs():
    d = torch.tensor([0.0, 3.0])
    assert contrastive_loss(d, torch.tensor([1, 0]), margin=2.0).item() == 0.0


def test_contrastive_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"1-D.*\(2, 2\)"):
        contrastive_loss(torch.rand(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"shape of distances \(3,\).*\(2,\)"):
        contrastive_loss(torch.rand(3), torch.ones(2))
    with pytest.raises(ValueError, match="margin.*-1"):
        contrastive_loss(torch.rand(3), torch.ones(3), margin=-1)


# ---------------------------------------------------------------------------------------------
# triplet losses
# ---------------------------------------------------------------------------------------------


def test_triplet_loss_hand_computed():
    anchor = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    negative = torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    # d_ap = 1, 3; d_an = 2, 2; margin 0.5: max(0, -0.5) = 0 and max(0, 1.5) = 1.5
    assert triplet_loss(anchor, positive, negative, margin=0.5).item() == pytest.approx(0.75)


def test_triplet_loss_rejects_mismatched_shapes_and_negative_margin():
    with pytest.raises(ValueError, match="anchor and negative"):
        triplet_loss(torch.rand(2, 3), torch.rand(2, 3), torch.rand(3, 3))
    with pytest.raises(ValueError, match="margin"):
        triplet_loss(torch.rand(2, 3), torch.rand(2, 3), torch.rand(2, 3), margin=-0.1)


# four points on a line: class 0 at x = 0 and 1, class 1 at x = 1.5 and 4
LINE = torch.tensor([[0.0], [1.0], [1.5], [4.0]])
LINE_LABELS = torch.tensor([0, 0, 1, 1])


def test_batch_hard_triplet_loss_hand_computed():
    # anchor 0: hardest positive 1 (d 1), closest negative 1.5 (d 1.5): max(0, 1 - 1.5 + 1) = 0.5
    # anchor 1: positive d 1, negative d 0.5: 1.5
    # anchor 2: positive 4 (d 2.5), negative 1 (d 0.5): 3.0
    # anchor 3: positive d 2.5, negative 1 (d 3): 0.5
    loss = batch_hard_triplet_loss(LINE, LINE_LABELS, margin=1.0)
    assert loss.item() == pytest.approx((0.5 + 1.5 + 3.0 + 0.5) / 4)


def test_batch_hard_skips_anchors_without_a_positive():
    x = torch.cat([LINE, torch.tensor([[10.0]])])
    labels = torch.cat([LINE_LABELS, torch.tensor([7])])  # the only member of class 7
    loss = batch_hard_triplet_loss(x, labels, margin=1.0)
    assert loss.item() == pytest.approx((0.5 + 1.5 + 3.0 + 0.5) / 4)


def test_batch_semi_hard_triplet_loss_hand_computed():
    # (anchor, positive) pairs: (0,1) d 1: negatives at 1.5, 4 -> closest farther 1.5: 0.5
    # (1,0) d 1: negatives at 0.5, 3 -> closest farther 3: max(0, 1 - 3 + 1) = 0
    # (2,3) d 2.5: negatives at 1.5, 0.5, none farther -> the farthest, 1.5: 2.0
    # (3,2) d 2.5: negatives at 4, 3 -> closest farther 3: 0.5
    loss = batch_hard_triplet_loss(LINE, LINE_LABELS, margin=1.0, mining="semi-hard")
    assert loss.item() == pytest.approx((0.5 + 0.0 + 2.0 + 0.5) / 4)


def test_batch_triplet_losses_have_finite_gradients_with_identical_embeddings():
    x = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    for mining in ("hard", "semi-hard"):
        loss = batch_hard_triplet_loss(x, torch.tensor([0, 1, 0, 1]), mining=mining)
        (grad,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(grad).all()


def test_batch_triplet_loss_without_any_valid_anchor_is_zero_and_differentiable():
    x = torch.randn(3, 2, requires_grad=True)
    loss = batch_hard_triplet_loss(x, torch.tensor([0, 0, 0]))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros(3, 2))


def test_batch_triplet_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"labels.*\(4,\).*\(3,\)"):
        batch_hard_triplet_loss(torch.rand(4, 2), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="mining.*'easy'"):
        batch_hard_triplet_loss(torch.rand(4, 2), torch.tensor([0, 1, 0, 1]), mining="easy")


def test_pairwise_distances_of_offset_data_match_float64_differences():
    g = torch.Generator().manual_seed(0)
    x = 1000 + 0.01 * torch.randn(6, 8, generator=g)  # un-normalised physical features
    y = 1000 + 0.01 * torch.randn(5, 8, generator=g)
    for a, b in ((x, None), (x, y)):
        b64 = a.double() if b is None else b.double()
        exact = (a.double()[:, None] - b64[None]).norm(dim=-1)
        got = pairwise_distances(a, b).double()
        assert (got - exact).abs().max() < 1e-5 * exact.median()


@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1e12, 1e20, 1e30])
def test_pairwise_distances_at_extreme_scales_match_float64_differences(scale):
    g = torch.Generator().manual_seed(1)
    x, y = scale * torch.randn(6, 8, generator=g), scale * torch.randn(5, 8, generator=g)
    exact = (x.double()[:, None] - y.double()[None]).norm(dim=-1)
    torch.testing.assert_close(pairwise_distances(x, y).double(), exact, rtol=1e-5, atol=0)


def test_pairwise_distances_gradient_is_that_of_the_differences_on_offset_data():
    g = torch.Generator().manual_seed(2)
    x = (1000 + 0.01 * torch.randn(5, 3, generator=g, dtype=torch.float64)).requires_grad_()
    pairwise_distances(x).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    diff = x2[:, None] - x2[None]
    off = ~torch.eye(5, dtype=torch.bool)
    diff[off].norm(dim=-1).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)


# ---------------------------------------------------------------------------------------------
# supervised contrastive loss (SupCon)
# ---------------------------------------------------------------------------------------------


def test_supervised_contrastive_loss_with_pair_labels_is_nt_xent():
    from phys555_cl.losses import nt_xent

    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    pair = torch.arange(6).repeat(2)  # row k and row k + 6 are the two views of sample k
    for tau in (0.1, 0.5):
        torch.testing.assert_close(supervised_contrastive_loss(torch.cat([z1, z2]), pair, tau),
                                   nt_xent(z1, z2, temperature=tau))


def test_supervised_contrastive_loss_hand_computed():
    # three unit vectors, labels A, A, B, tau = 1; the B row has no positive and is skipped
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    # anchor 0: s = (., 0, -1); anchor 1: s = (0, ., 0); log-probability of the partner
    l0 = -(0.0 - math.log(math.exp(0.0) + math.exp(-1.0)))
    l1 = -(0.0 - math.log(math.exp(0.0) + math.exp(0.0)))
    assert supervised_contrastive_loss(u, labels, temperature=1.0).item() == pytest.approx(
        (l0 + l1) / 2, rel=1e-6)


def test_supervised_contrastive_loss_averages_over_all_positives_and_ignores_row_order():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(12, 4, generator=g)
    labels = torch.tensor([0, 1, 2] * 4)
    order = torch.randperm(12, generator=g)
    loss = supervised_contrastive_loss(z, labels)
    torch.testing.assert_close(supervised_contrastive_loss(z[order], labels[order]), loss)
    # anchor 0 by hand: positives are rows 3, 6, 9
    u = torch.nn.functional.normalize(z, dim=1)
    s = u @ u.T / 0.5
    log_prob = s[0, 1:] - torch.logsumexp(s[0, 1:], dim=0)
    by_hand = -log_prob[[2, 5, 8]].mean()
    per_anchor = []
    for i in range(12):
        others = [a for a in range(12) if a != i]
        lp = s[i, others] - torch.logsumexp(s[i, others], dim=0)
        per_anchor.append(-lp[[k for k, a in enumerate(others) if labels[a] == labels[i]]].mean())
    assert per_anchor[0].item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert loss.item() == pytest.approx(torch.stack(per_anchor).mean().item(), rel=1e-5)


def test_supervised_contrastive_loss_gradients_and_errors():
    z = torch.tensor([[1.0, 0.0]]).repeat(4, 1).requires_grad_(True)  # identical rows
    supervised_contrastive_loss(z, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(z.grad).all()
    unique = torch.randn(3, 2, requires_grad=True)
    loss = supervised_contrastive_loss(unique, torch.tensor([0, 1, 2]))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(unique.grad, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="labels must have shape"):
        supervised_contrastive_loss(torch.randn(3, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="temperature"):
        supervised_contrastive_loss(torch.randn(3, 2), torch.tensor([0, 0, 1]), temperature=0)
    with pytest.raises(ValueError, match="2-D"):
        supervised_contrastive_loss(torch.randn(3), torch.tensor([0, 0, 1]))
