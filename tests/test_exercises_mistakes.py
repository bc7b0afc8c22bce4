"""Every check's list of typical mistakes, run as a student would write them.

A mistake's hint is only worth giving when it can be told apart: each listed mistake must differ
from the reference and from every other listed mistake on at least one case, and the check must
catch it with its *own* hint (and no other). Every check also declares the types it requires.
"""

import functools
import re

import pytest

from phys555_cl import exercises as ex

CHECKS = [getattr(ex, name) for name in ex.__all__ if name.startswith("check_")]
IDS = [check.exercise for check in CHECKS]
MISTAKES = [(check, i) for check in CHECKS for i in range(len(check.mistakes))]


@functools.cache
def _outcome(check, index):
    """What the check says about its listed mistake number ``index`` (run once per session)."""
    return check.evaluate(check.mistakes[index][0])


def _differs(check, a, b, cases):
    """Is there a case where both a and b are defined and their values differ?"""
    for x, y, case in zip(a, b, cases):
        if isinstance(x, BaseException) or isinstance(y, BaseException):
            continue
        if check.matches(x, y, case) is False and check.matches(y, x, case) is False:
            return True
    return False


def test_every_exercise_of_the_course_has_a_check():
    assert sorted(IDS) == ["0.1", "1.1", "1.2", "1.3", "2.1", "2.2", "3.1", "3.2", "4.1", "4.2",
                           "5.1", "5.2", "6.1", "6.2", "7.1", "7.2"]


#: Exercises whose answer is the student's own choice (an experiment), so there is no wrong
#: formula to recognise: their checks test what makes the choice usable instead.
OPEN_EXERCISES = {"5.2"}


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_every_check_lists_at_least_four_typical_mistakes(check):
    if check.exercise in OPEN_EXERCISES:
        pytest.skip("an experiment: any changed, repeatable pipeline is right")
    assert len(check.mistakes) >= 4


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_every_check_declares_the_types_it_requires(check):
    from phys555_cl.exercises import nb05

    if check.exercise in OPEN_EXERCISES:  # its comparison checks for a two_views pipeline
        pytest.skip("an experiment returns an augmentation pipeline, checked by its comparison")
    returns = nb05.RETURNS if check is ex.check_training_step else check.returns
    assert returns is not None and returns.describe()


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_every_mistake_differs_from_the_reference_and_from_every_other_mistake(check):
    cases = list(check.cases())
    reference = check.outputs(check.reference, cases)
    outputs = [check.outputs(wrong, cases) for wrong, _ in check.mistakes]
    for i, (_, message) in enumerate(check.mistakes):
        assert _differs(check, outputs[i], reference, cases), f"same as the reference: {message}"
        for j in range(i + 1, len(outputs)):
            assert _differs(check, outputs[i], outputs[j], cases), (
                f"no case separates: {message!r} and {check.mistakes[j][1]!r}")


@pytest.mark.parametrize("check, index", MISTAKES,
                         ids=[f"{c.exercise}-{i}" for c, i in MISTAKES])
def test_every_typical_mistake_is_caught_with_its_own_hint(check, index):
    message = check.mistakes[index][1]
    outcome = _outcome(check, index)
    assert outcome.status == "wrong"
    assert message.rstrip(".") in outcome.message, outcome.message
    for j, (_, other) in enumerate(check.mistakes):
        if j != index and other.rstrip(".") not in message:
            assert other.rstrip(".") not in outcome.message, (other, outcome.message)


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_no_message_of_a_typical_mistake_prints_an_expected_value(check):
    cases = list(check.cases())
    numbers = set()
    for value in check.outputs(check.reference, cases):
        if isinstance(value, dict):
            value = list(value.values())
        flat = value if isinstance(value, list) else [value]
        for v in flat:
            for x in (v.detach().flatten().tolist() if hasattr(v, "detach") else [v]):
                if isinstance(x, float) and abs(x) > 1e-3:
                    numbers.add(f"{x:.3g}")
    fixed_text = [check.name] + [case.description for case in cases] + [
        message.rstrip(".") for _, message in check.mistakes]
    for index in range(len(check.mistakes)):
        text = re.sub(r"\(tolerance[^)]*\)", "", _outcome(check, index).message)
        for words in fixed_text:
            text = text.replace(words, "")
        printed = set(re.findall(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?(?![\d%])", text))
        assert not printed & numbers, (printed & numbers, text)


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_the_reference_passes_every_check(check):
    assert check.evaluate(check.reference).status == "right"
