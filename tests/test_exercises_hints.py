"""Hints that teach (issue 21): the first hint names the idea without code, ``ex.hint("N.M")``
goes one level deeper per call, and how many hints were used is recorded with the check."""

import json
import re

import pytest
import torch

from phys555_cl import course
from phys555_cl import exercises as ex
from phys555_cl.exercises import core, make_check

CHECKS = {check.exercise: check for check in
          (getattr(ex, name) for name in ex.__all__ if name.startswith("check_"))}
ALL_NUMBERS = ["0.1", "1.1", "1.2", "1.3", "2.1", "2.2", "3.1", "3.2", "4.1", "4.2", "5.1", "5.2",
               "6.1", "6.2", "7.1", "7.2"]


def _hint_lines() -> dict[str, str]:
    """``{"1.1": text}``: the ``### HINT:`` line of every exercise, numbered as the builder
    numbers them (every solution region of a notebook counts, code or markdown)."""
    found = {}
    for path in sorted(course.SOURCES.glob("[0-9]*.py")):
        number = course.notebook_number(path)
        for index, region in enumerate(course.find_regions(path.read_text(), path.name), 1):
            if region.hint is not None:
                found[f"{number}.{index}"] = region.hint
    return found


HINT_LINES = _hint_lines()

# What code looks like in a hint: brackets, assignments and operators, attribute or method
# access (a.b), snake_case names, and the libraries by name.
CODE = [
    (r"[()\[\]{}]", "a bracket"),
    (r"=", "an assignment or comparison"),
    (r"\*", "a ** or * operator"),
    (r"@", "a matrix product"),
    (r"[`\"]", "quoted code"),
    (r"\b[A-Za-z_]\w*\.[A-Za-z_]", "an attribute or method call"),
    (r"\b[A-Za-z]\w*_\w+", "a snake_case name"),
    (r"\btorch\b|\bnumpy\b|\bnp\b|\bF\b", "a library"),
]

# The first hints before issue 21: each one gave code away, and the patterns must say so.
OLD_HINTS = [
    "use torch.log10; brighter objects have smaller magnitudes.",
    "broadcast a[:, None, :] - b[None, :, :], square, sum over the last axis, sqrt.",
    'sort d; a T between sorted[k-1] and sorted[k] calls the first k pairs "same".',
    "y = same.float(); the mean of 0.5 * (y * d**2 + (1 - y) * relu(margin - d)**2).",
    "d_ap = (anchor - positive).norm(dim=1); then relu(d_ap - d_an + margin).mean().",
    "positives: same & ~eye; masked_fill(~mask, -inf).amax(1), (+inf).amin(1).",
    "draw B flips and B angles with torch.rand(B, generator=generator); build theta [B, 2, 3]; "
    "affine_grid + grid_sample.",
    "factor = 10 ** (-0.4 * ebv[:, None, None, None] * R_GRZ[None, :, None, None])",
    "put the 2N views in a dict z[1..2N], define s(i, j) and l(i, j), then average 2N terms.",
    "z = normalize(cat([z1, z2])); s = z @ z.T / tau; diagonal -> -inf; cross_entropy with "
    "targets (i + N) % 2N.",
    "zero_grad; (h, z) = model(cat([v1, v2])); loss = nt_xent(z1, z2, temperature); backward; "
    "step.",
    "cosine similarity (F.normalize, then @), topk(k, dim=1), one_hot votes, argmax.",
    "one matrix product gives all M x K logits; F.cross_entropy picks each row's target.",
    "predictions c[:, :L-k] @ W.T; keys z.reshape(B*L, D); targets b*L + t + k.",
]


def _code_in(text: str) -> list[str]:
    return [f"{what} ({m.group(0)!r})" for pattern, what in CODE
            for m in [re.search(pattern, text)] if m]


@pytest.fixture
def fresh(monkeypatch):
    """No hint shown and no check recorded yet in this process."""
    monkeypatch.setattr(core, "HINTS_USED", {})
    monkeypatch.setattr(core, "RESULTS", {})


# ---------------------------------------------------------------- the first hint: the idea


def test_every_exercise_has_a_hint_line_and_three_levels_of_hints():
    assert sorted(HINT_LINES) == ALL_NUMBERS == sorted(CHECKS)
    assert sorted(core.CHECKS, key=core._sort_key) == ALL_NUMBERS
    for number, check in CHECKS.items():
        assert len(check.hints) == 3, number
        assert len(set(check.hints)) == 3, f"{number}: two levels say the same"


@pytest.mark.parametrize("number", ALL_NUMBERS)
def test_the_first_hint_is_the_hint_line_of_the_notebook(number):
    assert CHECKS[number].hints[0] == HINT_LINES[number]


@pytest.mark.parametrize("number", ALL_NUMBERS)
def test_a_first_hint_names_the_idea_without_code(number):
    assert _code_in(HINT_LINES[number]) == [], HINT_LINES[number]


@pytest.mark.parametrize("old", OLD_HINTS)
def test_the_code_patterns_catch_every_first_hint_of_before(old):
    assert _code_in(old)


@pytest.mark.parametrize("number", ALL_NUMBERS)
def test_the_student_notebook_raises_with_the_first_hint(number):
    notebook = next(course.NOTEBOOKS.glob(f"{int(number.split('.')[0]):02d}_*.ipynb"))
    code = "".join("".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"]
                   if cell["cell_type"] == "code")
    message = json.dumps(f"Exercise {number}: {HINT_LINES[number]}")
    assert f"raise NotImplementedError({message})" in code


# ---------------------------------------------------------------- deeper hints on request


def test_each_call_prints_the_next_level_then_says_there_are_no_more(fresh, capsys):
    hints = CHECKS["1.1"].hints
    printed = []
    for _ in range(5):
        ex.hint("1.1")
        printed.append(capsys.readouterr().out)
    for level in range(3):
        assert f"Exercise 1.1, hint {level + 1} of 3" in printed[level]
        assert hints[level] in printed[level]
        for other in set(range(3)) - {level}:
            assert hints[other] not in printed[level]
    assert "the idea" in printed[0] and "the approach" in printed[1]
    assert 'ex.hint("1.1") again for hint 2' in printed[0] and "last hint" in printed[2]
    for after in printed[3:]:
        assert "no more hints" in after and "lecture's formula" in after
        assert not any(h in after for h in hints)
    assert core.HINTS_USED == {"1.1": 3}, "levels seen are counted, calls after the last not"


def test_each_exercise_counts_its_own_hints(fresh, capsys):
    ex.hint("4.1")
    ex.hint("4.2")
    ex.hint("4.2")
    out = capsys.readouterr().out
    assert CHECKS["4.1"].hints[0] in out and CHECKS["4.2"].hints[1] in out
    assert CHECKS["4.1"].hints[1] not in out
    assert core.HINTS_USED == {"4.1": 1, "4.2": 2}


@pytest.mark.parametrize("spelling", [1.1, "1.1", " 1.1 ", "Exercise 1.1", "exercise 1.1"])
def test_the_number_may_be_written_as_a_student_would(fresh, capsys, spelling):
    ex.hint(spelling)
    assert CHECKS["1.1"].hints[0] in capsys.readouterr().out


@pytest.mark.parametrize("unknown", ["9.9", "0.2", "1", 8.1, ""])
def test_an_unknown_exercise_is_a_plain_error_listing_the_valid_ones(fresh, unknown):
    with pytest.raises(ValueError) as err:
        ex.hint(unknown)
    text = str(err.value)
    assert f"no exercise {unknown!r}" in text
    assert ", ".join(ALL_NUMBERS) in text
    assert core.HINTS_USED == {}


def test_hints_are_declared_as_a_list_of_texts():
    with pytest.raises(TypeError, match="list of texts"):
        make_check("9.1", "t", abs, lambda: [], hints="one string")
    with pytest.raises(ValueError, match="hint 2 is empty"):
        make_check("9.1", "t", abs, lambda: [], hints=["the idea", "  "])


def test_a_check_without_hints_says_so(fresh, monkeypatch, capsys):
    monkeypatch.setitem(core.CHECKS, "9.1", make_check("9.1", "no hints", abs, lambda: []))
    ex.hint("9.1")
    assert "has no hints" in capsys.readouterr().out
    assert core.HINTS_USED == {}


# ---------------------------------------------------------------- hints_used in the results


def _unfinished(*args, **kwargs):
    raise NotImplementedError


def test_the_results_record_the_hints_used_also_after_the_check_ran(fresh, monkeypatch,
                                                                   tmp_path, capsys):
    path = tmp_path / "results.json"
    monkeypatch.setenv(core.RESULTS_FILE_ENV, str(path))
    ex.check_flux_to_magnitude(_unfinished)
    assert ex.results()["0.1"]["hints_used"] == 0
    assert json.loads(path.read_text())["0.1"]["hints_used"] == 0

    ex.hint("0.1")
    assert ex.results()["0.1"]["hints_used"] == 1
    assert json.loads(path.read_text())["0.1"]["hints_used"] == 1, "the file is rewritten too"
    assert ex.results()["0.1"]["status"] == "not done", "a hint changes nothing else"

    ex.check_flux_to_magnitude(lambda f: 22.5 - 2.5 * torch.log10(f))
    ex.hint("0.1")
    record = ex.results()["0.1"]
    assert record["status"] == "right" and record["hints_used"] == 2
    assert json.loads(path.read_text())["0.1"]["hints_used"] == 2


def test_hints_asked_before_the_check_ran_are_in_its_first_result(fresh, capsys):
    ex.hint("2.1")
    ex.hint("2.1")
    assert "2.1" not in ex.results(), "a hint alone is not a check result"
    ex.check_triplet_loss(_unfinished)
    assert ex.results()["2.1"]["hints_used"] == 2
    assert ex.results()["2.1"]["status"] == "not done"


def test_every_result_has_the_hints_used_field(fresh, capsys):
    ex.check_knn_predict(_unfinished)
    record = ex.results()["6.1"]
    assert set(record) == {"exercise", "title", "status", "message", "hints_used"}
    assert record["hints_used"] == 0
