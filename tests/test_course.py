"""The notebook builder: student and solution versions, marker errors, freshness check."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phys555_cl import course
from phys555_cl.course import runner
from phys555_cl.fileio import atomic_write_text

SOURCE = '''# %% [markdown]
# # 03 · A tiny notebook

# %%
import math

# %%
def area(r):
    """Area of a disk."""
    if r < 0:
        raise ValueError("negative radius")
    ### HINT: pi r squared
    ### BEGIN SOLUTION
    secret_solution_line = math.pi * r ** 2
    return secret_solution_line
    ### END SOLUTION


def circumference(r):
    ### BEGIN SOLUTION
    return 2 * math.pi * r  # another_secret
    ### END SOLUTION

# %% [markdown]
# Why is the area quadratic?
#
# ### BEGIN SOLUTION
# Because of scaling: the_markdown_secret.
# ### END SOLUTION
#
# Next section.
'''


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "source"
    src.mkdir()
    (src / "03_tiny.py").write_text(SOURCE)
    return tmp_path, src


def _build(tmp_path, src):
    return course.build(source_dir=src, student_dir=tmp_path / "nb",
                        solution_dir=tmp_path / "sol")


def _code(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    return nb, [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_solution_regions_become_numbered_not_implemented_errors(tree):
    tmp_path, src = tree
    _build(tmp_path, src)
    nb, code = _code(tmp_path / "nb" / "03_tiny.ipynb")
    body = "".join(code[1]["source"])
    assert '    raise NotImplementedError("Exercise 3.1: pi r squared")' in body
    assert '    raise NotImplementedError("Exercise 3.2: complete this function.")' in body
    assert 'raise ValueError("negative radius")' in body, "code outside regions is kept"
    compile(body, "cell", "exec")  # the student cell is valid Python


def test_each_exercise_cell_records_its_exercise_numbers_in_its_metadata(tree):
    tmp_path, src = tree
    _build(tmp_path, src)
    nb = json.loads((tmp_path / "nb" / "03_tiny.ipynb").read_text())
    made = {i: c["metadata"]["phys555"] for i, c in enumerate(nb["cells"])
            if "phys555" in c["metadata"]}
    code = next(i for i, c in enumerate(nb["cells"]) if "def area" in "".join(c["source"]))
    answer = next(i for i, c in enumerate(nb["cells"])
                  if "".join(c["source"]) == course.ANSWER_PROMPT)
    assert made == {code: {"exercises": ["3.1", "3.2"]},
                    answer: {"exercises": ["3.3"], "written": True}}
    assert course.cell_exercises(nb["cells"][code]) == ["3.1", "3.2"]
    assert course.is_written_answer(nb["cells"][answer])
    assert not course.is_written_answer(nb["cells"][code])
    assert course.cell_exercises(nb["cells"][0]) == []
    solution = json.loads((tmp_path / "sol" / "03_tiny.ipynb").read_text())
    assert not any("phys555" in c["metadata"] for c in solution["cells"])


def test_no_solution_text_anywhere_in_the_student_notebook(tree):
    tmp_path, src = tree
    _build(tmp_path, src)
    text = (tmp_path / "nb" / "03_tiny.ipynb").read_text()
    for secret in ["secret_solution_line", "another_secret", "the_markdown_secret",
                   "BEGIN SOLUTION", "END SOLUTION", "HINT:", "jupytext"]:
        assert secret not in text


def test_student_notebook_has_no_outputs_and_a_visible_answer_cell(tree):
    tmp_path, src = tree
    _build(tmp_path, src)
    nb, code = _code(tmp_path / "nb" / "03_tiny.ipynb")
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert course.ANSWER_PROMPT in markdown
    assert any("Next section." in m for m in markdown)


def test_solution_notebook_is_the_source_without_markers(tree):
    tmp_path, src = tree
    _build(tmp_path, src)
    text = (tmp_path / "sol" / "03_tiny.ipynb").read_text()
    assert "secret_solution_line" in text and "the_markdown_secret" in text
    assert "BEGIN SOLUTION" not in text and "HINT:" not in text
    assert "NotImplementedError" not in text


def test_building_twice_gives_identical_files(tree):
    tmp_path, src = tree
    _build(tmp_path, src)
    first = (tmp_path / "nb" / "03_tiny.ipynb").read_bytes()
    _build(tmp_path, src)
    assert (tmp_path / "nb" / "03_tiny.ipynb").read_bytes() == first


def test_check_detects_stale_missing_and_orphaned_notebooks(tree):
    tmp_path, src = tree
    assert any(p.startswith("missing") for p in course.stale(src, tmp_path / "nb"))
    _build(tmp_path, src)
    assert course.stale(src, tmp_path / "nb") == []
    (src / "03_tiny.py").write_text(SOURCE.replace("Area of a disk", "Area of a circle"))
    problems = course.stale(src, tmp_path / "nb")
    assert problems == [f"stale: {tmp_path / 'nb' / '03_tiny.ipynb'} does not match 03_tiny.py"]
    (tmp_path / "nb" / "09_gone.ipynb").write_text("{}")
    assert any("orphaned" in p and "09_gone" in p for p in course.stale(src, tmp_path / "nb"))


@pytest.mark.parametrize("text,line,what", [
    ("# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n", 3, "never closed"),
    ("# %%\ndef f():\n    return 1\n    ### END SOLUTION\n", 4, "without"),
    ("# %%\ndef f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n",
     4, "nested"),
    ("# %%\ndef f():\n    ### BEGIN SOLUTION\n\n# %%\nx = 1\n### END SOLUTION\n", 3,
     "not closed before the next cell"),
    ("# %%\ndef f():\n    ### HINT: h\n    return 1\n", 3, "directly above"),
])
def test_unbalanced_or_nested_markers_name_file_and_line(tmp_path, text, line, what):
    src = tmp_path / "source"
    src.mkdir()
    (src / "05_bad.py").write_text(text)
    with pytest.raises(course.MarkerError, match=rf"05_bad.py:{line}: .*{what}"):
        course.build(source_dir=src, student_dir=tmp_path / "nb", solution_dir=None)
    assert not (tmp_path / "nb").exists(), "nothing is written when a source is broken"


def test_cli_check_exits_nonzero_naming_each_problem(tree, monkeypatch, capsys):
    tmp_path, src = tree
    monkeypatch.setattr(course, "SOURCES", src)
    monkeypatch.setattr(course, "NOTEBOOKS", tmp_path / "nb")
    (src / "04_other.py").write_text("# %%\nx = 1\n")
    monkeypatch.setattr(course.stale, "__defaults__", (src, tmp_path / "nb"))
    assert course.main(["check"]) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "03_tiny" in err and "04_other" in err and "make notebooks" in err


def test_committed_student_notebooks_are_fresh():
    result = subprocess.run([sys.executable, "-m", "phys555_cl.course", "check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


CHECKED = '''# %%
x = 2

# %%
# NBVAL_CHECK_OUTPUT
print(x * 21)
'''


def test_checked_cells_need_a_recorded_output(tmp_path, monkeypatch):
    src = tmp_path / "source"
    src.mkdir()
    (src / "01_checked.py").write_text(CHECKED)
    monkeypatch.setattr(course, "SOURCES", src)
    expected = tmp_path / "expected.json"
    problems = course.missing_records(expected, src)
    assert len(problems) == 1 and "01_checked.py" in problems[0]


def test_nbval_copies_carry_the_recorded_output_in_both_versions(tmp_path, monkeypatch):
    src = tmp_path / "source"
    src.mkdir()
    (src / "01_checked.py").write_text(CHECKED)
    monkeypatch.setattr(course, "SOURCES", src)
    monkeypatch.setattr(course.sources, "__defaults__", (src,))
    nb = course.build_pair(src / "01_checked.py")[1]
    [(index, key)] = course.checked_cells(nb)
    recorded = {"01_checked": {key: [{"output_type": "stream", "name": "stdout",
                                      "text": "42\n"}]}}
    monkeypatch.setattr(runner, "load_expected", lambda path=None: recorded)
    written = course.nbval_copies(tmp_path / "out")
    assert len(written) == 2
    for path in written:
        cell = json.loads(path.read_text())["cells"]
        code = [c for c in cell if c["cell_type"] == "code"]
        assert "".join(code[-1]["outputs"][0]["text"]) == "42\n"
        assert code[-1]["execution_count"] == 1, "nbval only compares cells that have run"


def test_executing_a_notebook_reports_ok_or_the_error():
    import nbformat

    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    assert runner._execute(good, timeout=60) == "ok"
    assert good.cells[0].outputs[0]["text"] == "42\n"
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    status = runner._execute(bad, timeout=60)
    assert status.startswith("FAILED") and "ZeroDivisionError" in status


def test_rebuilding_keeps_a_copy_of_a_students_edits(tree, capsys):
    tmp_path, src = tree
    _build(tmp_path, src)
    target = tmp_path / "nb" / "03_tiny.ipynb"
    nb = json.loads(target.read_text())
    assert not course.edited_by_student(target)
    nb["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran"}]
    target.write_text(json.dumps(nb))
    assert not course.edited_by_student(target), "running a notebook is not an edit"
    nb["cells"][2]["source"] = "def area(r):\n    return 3.14159 * r * r  # my answer\n"
    target.write_text(json.dumps(nb))
    assert course.edited_by_student(target)
    _build(tmp_path, src)
    backups = list((tmp_path / "nb" / "backups").glob("03_tiny-*.ipynb"))
    assert len(backups) == 1 and "my answer" in backups[0].read_text()
    assert "has your edits" in capsys.readouterr().out
    assert "my answer" not in target.read_text()
    _build(tmp_path, src)
    assert len(list((tmp_path / "nb" / "backups").glob("*.ipynb"))) == 1, "no edit, no copy"


# ------------------------------------------------------------------------------------------
# solution text never reaches a student notebook
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("marker", [
    "    ### Begin Solution",
    "    ## BEGIN SOLUTION",
    "    #### BEGIN SOLUTION",
    "    # begin solution",
    "    ### BEGIN SOLUTIONS",
    "    ### BEGIN_SOLUTION",
    "    # END  SOLUTION here",
    "    ### END SOLUTION here",
    "    ### End Solution",
    "# ## BEGIN SOLUTION",
])
def test_a_near_miss_marker_is_an_error_naming_file_and_line(tmp_path, marker):
    src = tmp_path / "source"
    src.mkdir()
    text = ("# %%\nimport math\n\n# %%\ndef area(r):\n    ### BEGIN SOLUTION\n"
            "    return math.pi * r ** 2\n    ### END SOLUTION\n\n\ndef twice(x):\n"
            f"{marker}\n    return 2 * x\n")
    (src / "05_near.py").write_text(text)
    with pytest.raises(course.MarkerError, match=r"05_near.py:12: .*not one.*### BEGIN SOLUTION"):
        course.build(source_dir=src, student_dir=tmp_path / "nb", solution_dir=None)
    assert not (tmp_path / "nb").exists()


def test_exact_markers_in_code_and_markdown_still_build(tree):
    tmp_path, src = tree
    _build(tmp_path, src)
    assert course.leaks(src, tmp_path / "nb") == []


def test_check_fails_when_a_student_notebook_holds_a_solution_line(tree, monkeypatch, capsys):
    tmp_path, src = tree
    _build(tmp_path, src)
    target = tmp_path / "nb" / "03_tiny.ipynb"
    nb = json.loads(target.read_text())
    nb["cells"][-1]["source"] += "\nBecause of scaling: the_markdown_secret."
    target.write_text(json.dumps(nb))
    problems = course.leaks(src, tmp_path / "nb")
    assert len(problems) == 1 and "03_tiny.py" in problems[0] and "line 28" in problems[0]
    monkeypatch.setattr(course, "SOURCES", src)
    monkeypatch.setattr(course, "NOTEBOOKS", tmp_path / "nb")
    monkeypatch.setattr(course.stale, "__defaults__", (src, tmp_path / "nb"))
    monkeypatch.setattr(course.leaks, "__defaults__", (src, tmp_path / "nb"))
    monkeypatch.setattr(course.missing_records, "__defaults__", (course.EXPECTED, src))
    assert course.main(["check"]) == 1
    assert "solution text" in capsys.readouterr().err


def test_solution_lines_leave_out_lines_that_also_appear_outside_regions():
    lines = course.solution_lines(SOURCE)
    assert "secret_solution_line = math.pi * r ** 2" in lines
    assert "return secret_solution_line" in lines
    assert "Because of scaling: the_markdown_secret." in lines
    assert "import math" not in lines and "" not in lines


def test_rebuilt_notebooks_respect_the_umask(tree):
    tmp_path, src = tree
    old = os.umask(0o022)
    try:
        written = _build(tmp_path, src)
    finally:
        os.umask(old)
    assert written and all(os.stat(p).st_mode & 0o777 == 0o644 for p in written)
    old = os.umask(0o077)
    try:
        atomic_write_text(tmp_path / "page.html", "<html></html>")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "page.html").st_mode & 0o777 == 0o600


# ------------------------------------------------------------------------------------------
# taking course updates (a local bare repository stands in for the course's server)
# ------------------------------------------------------------------------------------------


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture
def course_clones(tmp_path, monkeypatch):
    """(instructor clone, student clone) of a bare 'server' repository holding a course."""
    for key, value in (("GIT_AUTHOR_NAME", "t"), ("GIT_AUTHOR_EMAIL", "t@example.org"),
                       ("GIT_COMMITTER_NAME", "t"), ("GIT_COMMITTER_EMAIL", "t@example.org"),
                       ("GIT_CONFIG_GLOBAL", os.devnull), ("GIT_CONFIG_NOSYSTEM", "1")):
        monkeypatch.setenv(key, value)
    server = tmp_path / "server.git"
    _git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(server))
    teacher = tmp_path / "teacher"
    _git(tmp_path, "clone", "--quiet", str(server), str(teacher))
    src = teacher / "notebooks" / "source"
    src.mkdir(parents=True)
    (src / "03_tiny.py").write_text(SOURCE)
    course.build(source_dir=src, student_dir=teacher / "notebooks", solution_dir=None)
    _git(teacher, "add", ".")
    _git(teacher, "commit", "--quiet", "-m", "course v1")
    _git(teacher, "push", "--quiet", "origin", "HEAD:main")
    student = tmp_path / "student"
    _git(tmp_path, "clone", "--quiet", str(server), str(student))
    return teacher, student


def _publish_new_version(teacher):
    src = teacher / "notebooks" / "source"
    (src / "03_tiny.py").write_text(SOURCE.replace("Next section.", "Next section (v2)."))
    course.build(source_dir=src, student_dir=teacher / "notebooks", solution_dir=None)
    _git(teacher, "commit", "--quiet", "-am", "course v2")
    _git(teacher, "push", "--quiet", "origin", "HEAD:main")


def _edit(notebook):
    nb = json.loads(notebook.read_text())
    nb["cells"][2]["source"] = "def area(r):\n    return 3.14159 * r * r  # my answer\n"
    notebook.write_text(json.dumps(nb))


def test_update_backs_up_edited_notebooks_and_takes_the_new_version(course_clones):
    teacher, student = course_clones
    notebook = student / "notebooks" / "03_tiny.ipynb"
    _edit(notebook)
    _publish_new_version(teacher)
    kept = course.update(student)
    assert [n for n, _ in kept] == [notebook]
    assert "my answer" in kept[0][1].read_text() and kept[0][1].parent.name == "backups"
    assert notebook.read_text() == (teacher / "notebooks" / "03_tiny.ipynb").read_text()
    assert "v2" in (student / "notebooks" / "source" / "03_tiny.py").read_text()


def test_update_after_committing_an_edit_leaves_no_conflicted_notebook(course_clones):
    teacher, student = course_clones
    notebook = student / "notebooks" / "03_tiny.ipynb"
    _edit(notebook)
    _git(student, "commit", "--quiet", "-am", "my work")
    teacher_nb = teacher / "notebooks" / "03_tiny.ipynb"
    nb = json.loads(teacher_nb.read_text())  # the course changes the very same cell
    _publish_new_version(teacher)
    assert nb != json.loads(teacher_nb.read_text())
    kept = course.update(student)
    assert len(kept) == 1 and "my answer" in kept[0][1].read_text()
    json.loads(notebook.read_text())  # a notebook JupyterLab can open
    assert notebook.read_text() == teacher_nb.read_text()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                            cwd=student, capture_output=True, text=True).stdout
    assert status == ""


def test_update_of_an_unchanged_copy_needs_no_backup(course_clones):
    teacher, student = course_clones
    _publish_new_version(teacher)
    assert course.update(student) == []
    assert not (student / "notebooks" / "backups").exists()


def test_update_outside_a_git_clone_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(course.UpdateError, match="not a git clone"):
        course.update(tmp_path)


def test_update_cli_says_where_the_backups_are(course_clones, monkeypatch, capsys):
    teacher, student = course_clones
    _edit(student / "notebooks" / "03_tiny.ipynb")
    _publish_new_version(teacher)
    monkeypatch.setattr(course, "NOTEBOOKS", student / "notebooks")
    monkeypatch.setattr(course.update, "__defaults__", (student,))
    assert course.main(["update"]) == 0
    out = capsys.readouterr().out
    assert "03_tiny.ipynb has your edits" in out and "notebooks/backups/" in out


def test_make_update_runs_the_course_update():
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed (Windows): `python -m phys555_cl.course update`")
    result = subprocess.run(["make", "-n", "update"], cwd=course.REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0 and "-m phys555_cl.course update" in result.stdout
