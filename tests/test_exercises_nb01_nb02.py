"""The exercise checks of notebooks 01 (distances, Siamese) and 02 (metric learning).

For every check: the reference passes, a student's correct version written another way passes,
an unfinished exercise hands back the reference, and each typical mistake is named.
"""

import pytest
import torch

from phys555_cl import exercises as ex
from phys555_cl.exercises import nb01, nb02

CHECKS = [
    (ex.check_pairwise_distances, nb01.pairwise_distances),
    (ex.check_choose_threshold, nb01.choose_threshold),
    (ex.check_contrastive_loss, nb01.contrastive_loss),
    (ex.check_triplet_loss, nb02.triplet_loss),
    (ex.check_batch_hard_triplet_loss, nb02.batch_hard_triplet_loss),
]
IDS = ["1.1", "1.2", "1.3", "2.1", "2.2"]


def _fails_with(check, student):
    with pytest.raises(AssertionError) as err:
        check(student)
    return str(err.value)


@pytest.mark.parametrize("check, reference", CHECKS, ids=IDS)
def test_the_reference_passes(check, reference, capsys):
    assert check(reference) is reference
    assert "correct on all" in capsys.readouterr().out


@pytest.mark.parametrize("check, reference", CHECKS, ids=IDS)
def test_an_unfinished_exercise_hands_back_the_reference(check, reference, capsys):
    def unfinished(*args, **kwargs):
        raise NotImplementedError("Exercise: hint")

    assert check(unfinished) is reference
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("check", [c for c, _ in CHECKS if c.mistakes], ids=lambda c: c.exercise)
def test_every_typical_mistake_is_named(check):
    for wrong_fn, message in check.mistakes:
        text = _fails_with(check, wrong_fn)
        assert "typical mistake" in text and message in text, (message, text)


# ---------------------------------------------------------------- 1.1 pairwise distances


def test_pairwise_distances_with_cdist_or_the_clamped_expansion_pass(capsys):
    def expansion(a, b):
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return sq.clamp_min(0).sqrt()

    for student in (torch.cdist, expansion):
        assert ex.check_pairwise_distances(student) is student  # the student's own, kept
        assert "correct on all" in capsys.readouterr().out


def test_pairwise_distances_without_the_clamp_is_told_to_clamp():
    def unclamped(a, b):  # what an unclamped expansion gives where rounding goes below 0
        out = torch.cdist(a, b)
        return torch.where(out == 0, torch.nan, out)

    text = _fails_with(ex.check_pairwise_distances, unclamped)
    assert "NaN" in text and "clamp" in text


def test_pairwise_distances_with_a_python_loop_still_pass_but_a_wrong_dtype_does_not():
    def loops(a, b):
        return torch.stack([torch.stack([(x - y).norm() for y in b]) for x in a])

    assert ex.check_pairwise_distances(loops) is loops
    text = _fails_with(ex.check_pairwise_distances, lambda a, b: torch.cdist(a.float(),
                                                                              b.float()))
    assert "dtype" in text


# ---------------------------------------------------------------- 1.2 threshold


def test_any_threshold_in_the_best_interval_passes():
    def lowest_best(d, same):  # a distance value just above the best cut, with d < T
        best = nb01.choose_threshold(d, same)
        above = d[d >= best]
        return float(above.min()) if len(above) else best

    assert ex.check_choose_threshold(lowest_best) is lowest_best

    def as_a_tensor(d, same):
        return torch.tensor(nb01.choose_threshold(d, same))

    assert ex.check_choose_threshold(as_a_tensor) is as_a_tensor


def test_a_threshold_on_a_distance_with_less_or_equal_is_told_to_move_between_distances():
    def on_the_distance(d, same):  # best for the rule d <= T
        return max((t for t in d.tolist()),
                   key=lambda t: (((d <= t) == same).float().mean().item(), -t))

    text = _fails_with(ex.check_choose_threshold, on_the_distance)
    assert "sits exactly on a distance" in text


def test_a_threshold_for_the_reversed_rule_is_named():
    def reversed_rule(d, same):  # the best midpoint for d > T => same, written with a loop
        d_sorted = sorted(set(d.tolist()))
        candidates = [d_sorted[0] - 1.0] + [(a + b) / 2 for a, b in zip(d_sorted, d_sorted[1:])]
        candidates.append(d_sorted[-1] + 1.0)
        return max(candidates, key=lambda t: ((d > t) == same).float().mean().item())

    text = _fails_with(ex.check_choose_threshold, reversed_rule)
    assert "reversed rule" in text


def test_the_index_k_instead_of_the_threshold_is_not_called_the_reversed_rule():
    def index_k(d, same):
        best = nb01.choose_threshold(d, same)
        return float((d < best).sum())

    text = _fails_with(ex.check_choose_threshold, index_k)
    assert "reversed rule" not in text
    assert "number k of pairs" in text


def test_a_threshold_outside_the_distances_gets_no_hint_that_does_not_fit():
    text = _fails_with(ex.check_choose_threshold, lambda d, s: float(d.max()) + 10.0)
    assert "typical mistake" not in text


def test_the_mean_distance_is_named_and_no_threshold_value_is_revealed():
    text = _fails_with(ex.check_choose_threshold, lambda d, s: d.mean())
    assert "mean distance" in text
    for case in nb01._threshold_cases():
        assert f"{nb01.choose_threshold(*case.args):.3f}" not in text


def test_a_cut_between_two_equal_distances_is_caught():
    def ignores_ties(d, same):
        d_sorted, order = torch.sort(d)
        s = same[order].float()
        zero = s.new_zeros(1)
        below = torch.cat([zero, s.cumsum(0)])
        correct = below + (1 - s).sum() - torch.cat([zero, (1 - s).cumsum(0)])
        k = int(correct.argmax())
        if k in (0, len(d)):
            return float(d_sorted[0]) - 1.0 if k == 0 else float(d_sorted[-1]) + 1.0
        return float(0.5 * (d_sorted[k - 1] + d_sorted[k]))

    text = _fails_with(ex.check_choose_threshold, ignores_ties)
    assert "many ties" in text and "sits exactly on a distance" in text
    assert "two equal distances" in text


def test_a_threshold_that_is_not_a_number_is_explained():
    text = _fails_with(ex.check_choose_threshold, lambda d, s: d)
    assert "one number" in text


# ---------------------------------------------------------------- 1.3 contrastive loss


def test_contrastive_loss_written_with_clamp_and_where_passes():
    def student(d, same, margin=1.0):
        return torch.where(same, d ** 2, (margin - d).clamp(min=0) ** 2).mean() / 2

    assert ex.check_contrastive_loss(student) is student


def test_contrastive_loss_without_gradient_is_told_to_keep_it():
    text = _fails_with(ex.check_contrastive_loss,
                       lambda d, s, m=1.0: nb01.contrastive_loss(d.detach(), s, m))
    assert "gradient" in text


# ---------------------------------------------------------------- 2.1 triplet loss


def test_triplet_loss_with_pairwise_distance_passes():
    def student(a, p, n, margin=0.2):
        d = torch.nn.functional.pairwise_distance
        return torch.clamp(d(a, p, eps=0) - d(a, n, eps=0) + margin, min=0).mean()

    assert ex.check_triplet_loss(student) is student


# ---------------------------------------------------------------- 2.2 batch-hard mining


def test_batch_hard_with_a_loop_over_anchors_passes():
    def student(x, y, margin=0.2):
        terms = []
        for a in range(len(y)):
            pos = [(x[a] - x[p]).norm() for p in range(len(y)) if p != a and y[p] == y[a]]
            neg = [(x[a] - x[n]).norm() for n in range(len(y)) if y[n] != y[a]]
            if pos and neg:
                terms.append(torch.relu(torch.stack(pos).max() - torch.stack(neg).min() + margin))
        return torch.stack(terms).mean()

    assert ex.check_batch_hard_triplet_loss(student) is student


def test_a_right_batch_hard_loss_in_another_style_still_passes():
    def student(x, y, margin=0.2):
        d = nb02._safe_pairwise(x)
        same = y[:, None] == y[None]
        pos = same & ~torch.eye(len(y), dtype=torch.bool)
        hp = torch.where(pos, d, torch.full_like(d, -1e9)).max(1).values
        hn = torch.where(~same, d, torch.full_like(d, 1e9)).min(1).values
        valid = pos.any(1) & (~same).any(1)
        return torch.relu(hp - hn + margin)[valid].mean()

    assert ex.check_batch_hard_triplet_loss(student) is student


def test_batch_hard_with_nan_gradients_is_told_about_the_square_root():
    def student(x, y, margin=0.2):  # right values, sqrt of an exact 0 for identical rows
        d = (x[:, None] - x[None]).pow(2).sum(-1).sqrt()
        same = y[:, None] == y[None]
        pos = same & ~torch.eye(len(y), dtype=torch.bool)
        hp = d.masked_fill(~pos, -float("inf")).amax(1)
        hn = d.masked_fill(same, float("inf")).amin(1)
        valid = pos.any(1) & (~same).any(1)
        return torch.relu(hp - hn + margin)[valid].mean()

    text = _fails_with(ex.check_batch_hard_triplet_loss, student)
    assert "gradient contains NaN" in text and "square root" in text
    assert "self-pairs" not in text
    assert "typical mistake" not in text, "a gradient problem gets no value hint"


def test_the_reference_batch_hard_loss_has_finite_gradients_for_identical_embeddings():
    x = torch.zeros(4, 3, requires_grad=True)
    loss = nb02.batch_hard_triplet_loss(x, torch.tensor([0, 0, 1, 1]), 0.5)
    loss.backward()
    assert loss.item() == pytest.approx(0.5)
    assert torch.isfinite(x.grad).all()
