"""Notebook 00's check of exercise 0.1, fluxes to AB magnitudes."""

import pytest
import torch

from phys555_cl import exercises as ex


def test_a_negated_magnitude_is_called_the_wrong_sign_not_off_by_the_answer():
    with pytest.raises(AssertionError) as err:
        ex.check_flux_to_magnitude(lambda f: 2.5 * torch.log10(f) - 22.5)
    text = str(err.value)
    assert "wrong sign" in text and "15" not in text and "30" not in text
