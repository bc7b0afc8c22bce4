"""The wrong answers and wrong diagnoses found when the checks were tried as a student would
(issue 11): each is now caught, with the hint of *its* mistake and no number that gives the
answer away."""

import pytest
import torch
import torch.nn.functional as F

from phys555_cl import exercises as ex
from phys555_cl.exercises import nb01, nb02, nb04, nb06
from phys555_cl.losses import nt_xent_reference


def _fails_with(check, student):
    with pytest.raises(AssertionError) as err:
        check(student)
    return str(err.value)


def _norm(x):
    return x.pow(2).sum(1).sqrt()


@pytest.mark.parametrize("check, student, words", [
    (ex.check_triplet_loss,
     lambda a, p, n, margin=0.2: torch.relu(_norm(a - p) - _norm(a - n)).mean(),
     "the margin is missing"),
    (ex.check_nt_xent_loops,
     lambda z1, z2, t: nb04._variant(z1.double(), z2.double(), t, mask_positive=True),
     "positive is left out of the denominator"),
    (ex.check_nt_xent_loops,
     lambda z1, z2, t: nb04._variant(z1.double(), z2.double(), t, one_direction=True),
     "only one direction"),
    (ex.check_contrastive_loss,
     lambda d, same, margin=1.0: nb01.contrastive_loss(d, same, 1.0),
     "`margin` argument is not used"),
    (ex.check_flux_to_magnitude, lambda f: 22.5 - torch.log10(f), "the factor 2.5 is missing"),
    (ex.check_redden,
     lambda x, e: x * 10 ** (-e[:, None, None, None]
                             * torch.tensor([3.214, 2.165, 1.211])[None, :, None, None]),
     "the factor 0.4 is missing"),
])
def test_the_well_known_mistakes_are_named(check, student, words):
    assert words in _fails_with(check, student)


def test_a_negated_magnitude_is_called_the_wrong_sign_not_off_by_the_answer():
    text = _fails_with(ex.check_flux_to_magnitude, lambda f: 2.5 * torch.log10(f) - 22.5)
    assert "wrong sign" in text and "15" not in text and "30" not in text


def test_nt_xent_divided_by_n_is_a_factor_of_2_not_off_by_the_answer():
    def loops_over_n(z1, z2, tau):
        return 2 * nt_xent_reference(z1, z2, tau)

    text = _fails_with(ex.check_nt_xent_loops, loops_over_n)
    assert "constant factor of 2" in text and "N pairs instead of the 2N terms" in text


def test_knn_dropping_the_first_neighbour_is_not_called_unnormalised():
    text = _fails_with(ex.check_knn_predict, nb06._first_neighbour_dropped)
    assert "skipped" in text and "not normalised" not in text


def test_a_right_batch_hard_loss_in_another_style_still_passes():
    def student(x, y, margin=0.2):
        d = nb02._safe_pairwise(x)
        same = y[:, None] == y[None]
        pos = same & ~torch.eye(len(y), dtype=torch.bool)
        hp = torch.where(pos, d, torch.full_like(d, -1e9)).max(1).values
        hn = torch.where(~same, d, torch.full_like(d, 1e9)).min(1).values
        valid = pos.any(1) & (~same).any(1)
        return F.relu(hp - hn + margin)[valid].mean()

    assert ex.check_batch_hard_triplet_loss(student) is student


def test_knn_with_collections_counter_and_another_tie_rule_passes():
    from collections import Counter

    def student(train_h, train_y, test_h, k):
        sims = F.cosine_similarity(test_h[:, None, :], train_h[None, :, :], dim=-1)
        out = []
        for row in sims:
            labels = train_y[row.argsort(descending=True)[:k]].tolist()
            out.append(Counter(labels).most_common(1)[0][0])
        return torch.tensor(out)

    assert ex.check_knn_predict(student) is student
