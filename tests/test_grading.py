"""`python -m phys555_cl.course grade`: submissions run in fresh fast-mode kernels and every
exercise is reported from the checks' recorded outcomes.

The submissions are notebook 00 as students receive it, with answers inserted the way a
student writes them. They are graded together, once, through the command line.
"""

from __future__ import annotations

import copy
import csv
import json
import os
from pathlib import Path

import pytest

from phys555_cl import course
from phys555_cl.course import grading

STUDENT = course.NOTEBOOKS / "00_setup.ipynb"
TODO = 'raise NotImplementedError("Exercise 0.1'
RIGHT = "return 22.5 - 2.5 * torch.log10(flux)"
WRONG = "return 22.5 - 2.5 * torch.log(flux)"  # a listed mistake: the natural logarithm


def _load(path: Path = STUDENT) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _cell(nb: dict, text: str) -> dict:
    return next(c for c in nb["cells"] if text in "".join(c["source"]))


def _solve(nb: dict, body: str) -> dict:
    cell = _cell(nb, TODO)
    lines = "".join(cell["source"]).splitlines()
    cell["source"] = "\n".join(f"    {body}" if TODO in line else line for line in lines)
    return nb


def _answer(nb: dict, text: str) -> dict:
    _cell(nb, course.ANSWER_PROMPT)["source"] = text
    return nb


def _raise_first(nb: dict) -> dict:
    # a student's broken cell above the exercise, below notebook 00's demo of a failing check
    # (which records 0.1 as wrong): the run stops there, and the demo's outcome is not a grade
    index = nb["cells"].index(_cell(nb, "### Exercise 0.1"))
    nb["cells"].insert(index, {"cell_type": "code", "metadata": {}, "outputs": [],
                                   "execution_count": None, "id": "broken",
                                   "source": "magnitudes = fluxes_in_nanomaggies * 2"})
    return nb


def _write(folder: Path, name: str, nb: dict) -> Path:
    path = folder / name / "00_setup.ipynb"  # every student hands in a file of that name
    path.parent.mkdir()
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    submissions = {
        "untouched": _write(folder, "untouched", _load()),
        "right": _write(folder, "right", _answer(_solve(_load(), RIGHT),
                                                 "Fluxes stay linear and can be negative.")),
        "wrong": _write(folder, "wrong", _solve(_load(), WRONG)),
        "raises": _write(folder, "raises", _raise_first(_solve(_load(), RIGHT))),
    }
    before = {k: (p.read_bytes(), os.stat(p).st_mtime_ns) for k, p in submissions.items()}
    table = folder / "report" / "grades.csv"
    builds = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grading, "build_pair",
                      lambda src, *a, **k: builds.append(src) or course.build_pair(src, *a, **k))
        code = course.main(["grade", *map(str, submissions.values()), "--csv", str(table),
                            "--timeout", "300"])
    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    after = {k: (p.read_bytes(), os.stat(p).st_mtime_ns) for k, p in submissions.items()}
    by = {k: {r["exercise"]: r for r in rows if r["notebook"] == str(p)}
          for k, p in submissions.items()}
    return {"code": code, "table": table, "by": by, "before": before, "after": after,
            "builds": builds}


def test_an_untouched_student_notebook_reports_every_exercise_not_done(graded):
    rows = graded["by"]["untouched"]
    assert rows[grading.NOTEBOOK_ROW]["status"] == "ran"
    assert {k: r["status"] for k, r in rows.items() if k != grading.NOTEBOOK_ROW} == {
        "0.1": "not done", "0.2 (written)": "not answered"}


def test_a_right_solution_is_right_and_a_filled_answer_is_answered(graded):
    rows = graded["by"]["right"]
    assert rows["0.1"]["status"] == "right" and rows["0.1"]["message"] == ""
    assert rows["0.2 (written)"]["status"] == "answered"


def test_a_wrong_solution_is_wrong_with_the_checks_message(graded):
    # notebook 00 runs the same check on purpose (a demo cell) before the exercise: only the
    # student's own cell counts, so the right submission above is not marked by the demo
    row = graded["by"]["wrong"]["0.1"]
    assert row["status"] == "wrong"
    assert "torch.log is the natural logarithm" in row["message"]
    assert graded["by"]["wrong"][grading.NOTEBOOK_ROW]["status"] == "ran"


def test_a_cell_raising_before_the_exercises_leaves_them_not_run(graded):
    rows = graded["by"]["raises"]
    assert rows[grading.NOTEBOOK_ROW]["status"] == "stopped"
    assert "NameError" in rows[grading.NOTEBOOK_ROW]["message"]
    assert rows["0.1"]["status"] == "not run"
    assert "fluxes_in_nanomaggies" in rows["0.1"]["message"]


def test_the_csv_has_the_documented_columns_and_the_submissions_are_untouched(graded):
    with open(graded["table"], newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["notebook", "exercise", "status", "hints", "message"]
    assert graded["after"] == graded["before"]
    assert graded["code"] == 0


def test_a_hanging_notebook_is_stopped_at_the_timeout_and_reported(tmp_path):
    nb = _load()
    index = nb["cells"].index(_cell(nb, "from phys555_cl import config"))
    nb["cells"].insert(index + 1, {"cell_type": "code", "metadata": {}, "outputs": [],
                                   "execution_count": None, "id": "hang",
                                   "source": "while True:\n    pass"})
    path = _write(tmp_path, "hangs", nb)
    rows = {r.exercise: r for r in grading.grade([path], timeout=8, echo=lambda *a: None)}
    assert rows[grading.NOTEBOOK_ROW].status == "timed out"
    assert "8 s timeout" in rows[grading.NOTEBOOK_ROW].message
    assert rows["0.1"].status == "not run"


def test_a_notebook_from_another_course_is_not_graded_and_says_why(tmp_path):
    other = _load()
    other["metadata"].pop("phys555")
    path = _write(tmp_path, "other", other)
    text = tmp_path / "essay.ipynb"
    text.write_text("my answers are in the email", encoding="utf-8")
    rows = grading.grade([path, text], echo=lambda *a: None)
    assert [(r.exercise, r.status) for r in rows] == [(grading.NOTEBOOK_ROW, "not graded")] * 2
    assert "not a PHYS-555 contrastive-learning student notebook" in rows[0].message
    assert "cannot be read as a notebook" in rows[1].message
    assert course.main(["grade", str(path)]) == 1


def test_a_notebook_from_another_version_of_the_course_is_named_as_such():
    import nbformat

    nb = nbformat.reads(STUDENT.read_text(encoding="utf-8"), as_version=4)
    assert grading.identify(nb, STUDENT) == (course.SOURCES / "00_setup.py", None)
    nb.metadata["phys555"]["cells_sha1"] = "0" * 40  # built from an older source
    src, note = grading.identify(nb, STUDENT)
    assert src == course.SOURCES / "00_setup.py"
    assert "another version" in note and "make update" in note
    nb.metadata["phys555"]["source"] = "notebooks/source/09_retired.py"
    with pytest.raises(grading.NotGradable, match="grade it with the course version"):
        grading.identify(nb, STUDENT)


def test_every_notebooks_exercise_cells_are_found_in_its_student_notebook():
    for src in course.sources():
        student = course.build_pair(src)[0]
        located = sorted(n for ns in grading.exercise_cells(student, student).values()
                         for n in ns)
        assert located == grading.exercises_of(src), src.name
        assert [label for label, _ in grading.written_answers(student)], src.name


def test_exercises_are_found_by_the_numbers_in_the_metadata_not_by_the_generated_text():
    import nbformat

    built = course.build_pair(course.SOURCES / "00_setup.py")[0]
    [(index, numbers)] = grading.exercise_cells(built, built).items()
    assert numbers == ["0.1"] and grading.written_answers(built)[0][0] == "0.2 (written)"
    # a submission whose raise line the student reworded, and a builder that words it otherwise
    submission = nbformat.reads(STUDENT.read_text(encoding="utf-8"), as_version=4)
    reworded = copy.deepcopy(built)
    for nb in (submission, reworded):
        cell = nb.cells[index]
        assert TODO in cell.source
        cell.source = cell.source.replace(TODO, 'raise NotImplementedError("TODO (ex. zero-one)')
    assert grading.exercise_cells(submission, built) == {index: ["0.1"]}
    assert grading.exercise_cells(submission, reworded) == {index: ["0.1"]}
    assert grading.written_answers(reworded) == grading.written_answers(built)
    for cell in reworded.cells:  # the numbers come from the metadata alone
        cell.metadata.pop("phys555", None)
    assert grading.exercise_cells(submission, reworded) == {}
    assert grading.written_answers(reworded) == []


def test_each_course_notebook_is_built_once_per_grading_run(graded):
    assert graded["builds"] == [course.SOURCES / "00_setup.py"], "4 submissions, 1 build"


def test_grading_never_writes_beside_the_submission(graded):
    for key in ("untouched", "right", "wrong", "raises"):
        path = Path(graded["by"][key][grading.NOTEBOOK_ROW]["notebook"])
        assert sorted(p.name for p in path.parent.iterdir()) == ["00_setup.ipynb"]


def test_the_report_says_how_many_hints_each_exercise_used():
    from phys555_cl.course.paths import SOURCES

    src = sorted(SOURCES.glob("01_*.py"))[0]
    found = {"1.1": {"status": "right", "message": "", "hints_used": 2},
             "1.2": {"status": "wrong", "message": "off", "hints_used": 0}}
    rows = grading._exercise_rows("n.ipynb", src, found, {}, set(), None)
    by = {r.exercise: r for r in rows}
    assert by["1.1"].hints == 2 and by["1.2"].hints == 0 and by["1.3"].status == "not run"
    assert "hints" in grading.COLUMNS
