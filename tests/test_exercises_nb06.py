"""Notebook 06's check of the k-nearest-neighbour classifier."""

import pytest

from phys555_cl import exercises as ex
from phys555_cl.exercises import nb06


def test_the_reference_passes():
    assert ex.check_knn_predict(nb06.knn_predict_reference) is nb06.knn_predict_reference


@pytest.mark.parametrize("wrong,words", [
    (nb06._euclidean, "Euclidean"),
    (nb06._dot, "not normalised"),
    (nb06._farthest, "least"),
])
def test_typical_mistakes_are_named(wrong, words):
    with pytest.raises(AssertionError, match=words):
        ex.check_knn_predict(wrong)


def test_returning_float_predictions_is_reported():
    with pytest.raises(AssertionError, match="dtype"):
        ex.check_knn_predict(lambda *a: nb06.knn_predict_reference(*a).float())
