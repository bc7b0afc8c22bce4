"""Specification of phys555_cl._checks: one integer check, one way of saying what is wrong."""

import numpy as np
import pytest

from phys555_cl._checks import check_int


def test_python_and_numpy_integers_come_back_as_python_ints():
    assert check_int("n", 3) == 3
    value = check_int("n", np.int64(7), 1)
    assert value == 7 and type(value) is int


@pytest.mark.parametrize("value", [True, 3.0, "3", None, -1])
def test_booleans_floats_strings_none_and_too_small_values_are_refused(value):
    with pytest.raises(ValueError, match=r"n must be a non-negative integer, got"):
        check_int("n", value)


@pytest.mark.parametrize("minimum, unit, allow_none, expected", [
    (0, "", False, "seed must be a non-negative integer, got -2"),
    (1, "", False, "seed must be a positive integer, got -2"),
    (8, "pixels", False, "seed must be an integer >= 8 pixels, got -2"),
    (1, "", True, "seed must be None or an integer >= 1, got -2"),
])
def test_the_message_names_the_argument_what_was_expected_and_the_value(minimum, unit,
                                                                        allow_none, expected):
    with pytest.raises(ValueError) as err:
        check_int("seed", -2, minimum, unit=unit, allow_none=allow_none)
    assert str(err.value) == expected


def test_none_passes_only_when_allowed_and_a_hint_says_what_to_do():
    assert check_int("chunk_size", None, 1, allow_none=True) is None
    with pytest.raises(ValueError, match=r"got 0\. Use None for the full computation\.$"):
        check_int("chunk_size", 0, 1, allow_none=True, hint="Use None for the full computation.")
