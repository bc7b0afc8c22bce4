"""Notebook 04's checks accept the lecture's loss and name each typical mistake."""

import pytest
import torch

from phys555_cl import exercises as ex
from phys555_cl.exercises.nb04 import MISTAKES, _variant
from phys555_cl.losses import nt_xent, nt_xent_reference


def test_the_reference_implementations_pass():
    assert ex.check_nt_xent_loops(nt_xent_reference) is nt_xent_reference
    assert ex.check_nt_xent_vectorised(nt_xent) is nt_xent


def test_a_correct_student_version_passes():
    def student(z1, z2, tau):
        return _variant(z1, z2, tau)

    assert ex.check_nt_xent_vectorised(student) is student


@pytest.mark.parametrize("wrong,message", MISTAKES)
def test_each_typical_mistake_is_named(wrong, message):
    with pytest.raises(AssertionError) as err:
        ex.check_nt_xent_vectorised(wrong)
    assert message in str(err.value)


def test_nt_xent_divided_by_n_is_a_factor_of_2_not_off_by_the_answer():
    def loops_over_n(z1, z2, tau):
        return 2 * nt_xent_reference(z1, z2, tau)

    with pytest.raises(AssertionError) as err:
        ex.check_nt_xent_loops(loops_over_n)
    text = str(err.value)
    assert "constant factor of 2" in text and "N pairs instead of the 2N terms" in text


def test_a_float32_loop_version_is_told_to_use_float64():
    with pytest.raises(AssertionError, match="dtype torch.float32"):
        ex.check_nt_xent_loops(lambda z1, z2, t: nt_xent(z1.float(), z2.float(), t))


def test_not_done_returns_the_reference():
    def student(z1, z2, tau):
        raise NotImplementedError

    assert ex.check_nt_xent_vectorised(student) is nt_xent
    z = torch.randn(3, 4)
    assert torch.isfinite(ex.check_nt_xent_loops(student)(z, z, 0.5))
