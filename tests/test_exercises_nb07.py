"""Notebook 07's checks: InfoNCE (7.1), and the CPC prediction step (7.2) that calls it.

7.2 calls the student's `info_nce_loss` by its global name, as the notebook does; the check runs
it with the reference of 7.1 and says when 7.1 is not right yet.
"""

import pytest
import torch
import torch.nn.functional as F

from phys555_cl import exercises as ex
from phys555_cl.exercises import nb07


def _fails_with(check, student):
    with pytest.raises(AssertionError) as err:
        check(student)
    return str(err.value)


def info_nce_loss(query, keys, targets, temperature=1.0):  # the student's 7.1, right
    return F.cross_entropy(query @ keys.T / temperature, targets)


def prediction_loss(z, c, W, k, temperature=1.0):  # the student's 7.2, calling 7.1 by name
    B, L, D = z.shape
    predictions = (c[:, : L - k] @ W.T).reshape(-1, D)
    targets = (torch.arange(B)[:, None] * L + torch.arange(L - k)[None, :] + k).reshape(-1)
    return info_nce_loss(predictions, z.reshape(B * L, D), targets, temperature)


def wrong_info_nce_loss(query, keys, targets, temperature=1.0):
    return 2 * F.cross_entropy(query @ keys.T / temperature, targets)


def test_a_right_7_2_after_a_right_7_1_passes():
    assert ex.check_info_nce(info_nce_loss) is info_nce_loss
    assert ex.check_prediction_loss(prediction_loss) is prediction_loss


def test_a_right_7_2_after_a_wrong_7_1_is_not_blamed_and_names_7_1(monkeypatch):
    monkeypatch.setitem(globals(), "info_nce_loss", wrong_info_nce_loss)
    text = _fails_with(ex.check_prediction_loss, prediction_loss)
    assert ("Exercise 7.1 is not right yet: 7.2 was checked with the reference `info_nce_loss`; "
            "fix 7.1 first") in text
    assert "is right with the reference" in text and "off by" not in text
    assert globals()["info_nce_loss"] is wrong_info_nce_loss, "the student's name is restored"
    assert ex.results()["7.2"]["status"] == "right"


def test_a_wrong_7_2_after_a_wrong_7_1_says_what_is_wrong_with_7_2_and_names_7_1(monkeypatch):
    monkeypatch.setitem(globals(), "info_nce_loss", wrong_info_nce_loss)
    text = _fails_with(ex.check_prediction_loss,
                       lambda z, c, W, k, temperature=1.0: 1.1 * prediction_loss(z, c, W, k,
                                                                                  temperature))
    assert "off by 10%" in text and "Exercise 7.1 is not right yet" in text
    assert text.index("off by") < text.index("Exercise 7.1 is not right yet")


def test_an_unfinished_7_1_handed_back_as_the_reference_is_not_mentioned(monkeypatch, capsys):
    def unfinished(query, keys, targets, temperature=1.0):
        raise NotImplementedError

    monkeypatch.setitem(globals(), "info_nce_loss", ex.check_info_nce(unfinished))
    assert info_nce_loss is nb07.info_nce_loss
    assert ex.check_prediction_loss(prediction_loss) is prediction_loss
    assert "Exercise 7.1 is not right yet" not in capsys.readouterr().out


def test_key_i_left_out_is_not_blamed_for_other_wrong_answers():
    # the "key i is left out of row i" mistake gives inf on case 1, so it must not match there
    for student in (wrong_info_nce_loss, lambda q, k, t, temperature=1.0: info_nce_loss(
            q, k, t, temperature) + 0.3):
        text = _fails_with(ex.check_info_nce, student)
        assert "left out of row i" not in text and "case 1 of" in text


@pytest.mark.parametrize("mistake, words", [
    (nb07._summed, "summed over queries"),
    (nb07._cosine, "cosine similarities"),
    (nb07._self_excluded, "left out of row i"),
])
def test_info_nce_mistakes_get_their_own_hint(mistake, words):
    text = _fails_with(ex.check_info_nce, mistake)
    assert words in text
    if words != "left out of row i":
        assert "left out of row i" not in text


def test_a_detached_info_nce_is_told_to_keep_the_gradient():
    text = _fails_with(ex.check_info_nce, lambda q, k, t, temperature=1.0: info_nce_loss(
        q.detach(), k, t, temperature))
    assert "carries no gradient" in text and "typical mistake" not in text


def test_a_prediction_step_without_gradient_is_caught():
    text = _fails_with(ex.check_prediction_loss, lambda *a, **kw: prediction_loss(*a, **kw)
                       .detach())
    assert "carries no gradient" in text
