"""Notebook 06's check of the k-nearest-neighbour classifier."""

from collections import Counter

import pytest
import torch
import torch.nn.functional as F

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


def test_knn_dropping_the_first_neighbour_is_not_called_unnormalised():
    with pytest.raises(AssertionError) as err:
        ex.check_knn_predict(nb06._first_neighbour_dropped)
    text = str(err.value)
    assert "skipped" in text and "not normalised" not in text


def test_knn_with_collections_counter_and_another_tie_rule_passes():
    def student(train_h, train_y, test_h, k):
        sims = F.cosine_similarity(test_h[:, None, :], train_h[None, :, :], dim=-1)
        out = []
        for row in sims:
            labels = train_y[row.argsort(descending=True)[:k]].tolist()
            out.append(Counter(labels).most_common(1)[0][0])
        return torch.tensor(out)

    assert ex.check_knn_predict(student) is student


def test_the_paired_comparison_check_accepts_a_numpy_solution_and_names_the_usual_slips():
    import numpy as np
    from scipy.stats import t

    from phys555_cl.exercises import nb06

    def mine(records, method, versus, labels):
        def by_pair(m):
            return {(r["population"], r["subset"]): r["mean"] for r in records
                    if r["method"] == m and r["labels"] == labels}

        a, b = by_pair(method), by_pair(versus)
        d = np.array([a[k] - b[k] for k in sorted(a) if k in b])
        half = t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        return float(d.mean()), float(d.mean() - half), float(d.mean() + half)

    assert ex.check_paired_difference(mine) is mine
    for slip, words in [(nb06._normal_quantile, "1.96"), (nb06._population_std, "n - 1"),
                        (nb06._unpaired, "independent samples"), (nb06._no_sqrt, "square root")]:
        with pytest.raises(ex.CheckFailed, match=words):
            ex.check_paired_difference(slip)
