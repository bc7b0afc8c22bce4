"""Cloud run: the "Open in Colab" badge and the Colab setup cell of the student notebooks.

The setup cell is executed here with a faked ``google.colab`` module and a local git repository
as the course's "remote" (a file:// clone in a temporary folder); pip is faked, so nothing is
installed and nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from phys555_cl import course

SETUP = course.SOURCES / "00_setup.py"
GITHUB = "https://github.com/example-course/phys555-cl"


def _sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def _setup_code(nb) -> str:
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source == course.colab_setup_code(course.CloudRun(_repository(first.source)))
    return first.source


def _repository(code: str) -> str:
    line = next(x for x in code.splitlines() if x.startswith("COURSE_REPOSITORY = "))
    return line.split(" = ", 1)[1].strip('"')


def _git(*args, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                    "-c", "init.defaultBranch=main", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def remote(tmp_path) -> Path:
    """A small git repository standing in for the course on GitHub."""
    repo = tmp_path / "remote" / "phys555-cl-course"
    (repo / "phys555_cl").mkdir(parents=True)
    (repo / "phys555_cl" / "__init__.py").write_text("MARKER = 'cloned'\n")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    _git("init", "-q", cwd=repo)
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "course", cwd=repo)
    return repo


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """A faked Colab runtime: ``google.colab`` imported, /content as the working folder, pip
    recorded instead of run. Yields the list of every command the cell ran."""
    google = types.ModuleType("google")
    google.colab = types.ModuleType("google.colab")
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google.colab)
    content = tmp_path / "content"
    content.mkdir()
    monkeypatch.chdir(content)
    monkeypatch.setenv("PHYS555_COURSE_DIR", "")
    monkeypatch.setattr(sys, "path", list(sys.path))
    commands = []
    real_run = subprocess.run

    def run(command, *args, **kwargs):
        commands.append(list(command))
        if command[1:4] == ["-m", "pip", "install"]:
            return subprocess.CompletedProcess(command, 0, "", "")
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    return commands


def test_without_a_repository_url_there_is_no_badge_and_no_setup_cell(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project]\nname = 'phys555-cl'\n")
    assert course.cloud_run(pyproject) is None
    student = course.build_pair(SETUP, cloud=None)[0]
    text = "\n".join(source for _, source in _sources(student))
    assert "colab" not in text.lower() and "COURSE_REPOSITORY" not in text


def test_the_committed_notebooks_follow_pyproject(tmp_path):
    # the course names no repository today, so the committed notebooks have neither
    assert course.cloud_run() is None
    assert _sources(course.build_pair(SETUP)[0]) == _sources(course.build_pair(SETUP, None)[0])


@pytest.mark.parametrize("tomllib", ["standard library", "missing (Python 3.10)"])
def test_cloud_run_reads_the_repository_and_branch_from_pyproject(tmp_path, monkeypatch,
                                                                  tomllib):
    if tomllib.startswith("missing"):
        monkeypatch.setitem(sys.modules, "tomllib", None)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[project]\nname = 'phys555-cl'\n\n[project.urls]\nRepository = "
                         f"\"{GITHUB}\"\n\n[tool.phys555]\nbranch = \"2026\"\n")
    assert course.cloud_run(pyproject) == course.CloudRun(GITHUB, "2026")


def test_a_repository_that_is_not_an_address_is_refused_with_what_to_write(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project.urls]\nRepository = \"--upload-pack=touch /tmp/x\"\n")
    with pytest.raises(course.CourseConfigError, match="write the URL students clone"):
        course.cloud_run(pyproject)


def test_with_a_github_url_the_badge_is_on_top_and_the_setup_cell_is_the_first_code_cell():
    plain = course.build_pair(SETUP, cloud=None)[0]
    student = course.build_pair(SETUP, cloud=course.CloudRun(GITHUB))[0]
    top = student.cells[0]
    assert top.cell_type == "markdown"
    assert top.source == (f"[![Open In Colab]({course.COLAB_BADGE})](https://colab.research."
                          f"google.com/github/example-course/phys555-cl/blob/main/notebooks/"
                          f"00_setup.ipynb)")
    code = _setup_code(student)
    assert _repository(code) == GITHUB
    rest = [cell for cell in _sources(student)[1:] if cell != ("code", code)]
    assert rest == _sources(plain), "the cloud run adds two cells and changes no other"
    solution = course.build_pair(SETUP, cloud=course.CloudRun(GITHUB))[1]
    assert "COURSE_REPOSITORY" not in "".join(c.source for c in solution.cells)


def test_the_setup_cell_does_nothing_off_colab(monkeypatch, tmp_path):
    assert "google.colab" not in sys.modules
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def no_commands(*args, **kwargs):
        raise AssertionError(f"the setup cell ran {args} off Colab")

    monkeypatch.setattr(subprocess, "run", no_commands)
    path_before = list(sys.path)
    exec(_setup_code(course.build_pair(SETUP, cloud=course.CloudRun(GITHUB))[0]), {})
    assert Path.cwd() == tmp_path and sys.path == path_before
    assert list(tmp_path.iterdir()) == []


def test_the_setup_cell_on_colab_clones_installs_and_changes_into_the_course(remote, colab,
                                                                             tmp_path, capsys):
    url = remote.as_uri()  # file:///.../phys555-cl-course
    student = course.build_pair(SETUP, cloud=course.CloudRun(url))[0]
    assert "Open In Colab" not in student.cells[0].source  # not GitHub: Colab cannot open it
    code = _setup_code(student)
    exec(code, {})
    clone = tmp_path / "content" / "phys555-cl-course"
    assert (clone / ".git").is_dir()
    assert (clone / "phys555_cl" / "__init__.py").read_text() == "MARKER = 'cloned'\n"
    assert colab[0][:2] == ["git", "clone"] and url in colab[0]
    assert colab[1] == [sys.executable, "-m", "pip", "install", "--quiet", "-e", str(clone)]
    assert Path.cwd() == clone and sys.path[0] == str(clone)
    assert "installed in" in capsys.readouterr().out

    exec(code, {})  # run again (e.g. after a restart of the kernel): no second clone
    assert [c[:2] for c in colab].count(["git", "clone"]) == 1
    assert Path.cwd() == clone and not (clone / "phys555-cl-course").exists()


def test_a_failed_clone_on_colab_says_what_to_check(colab, tmp_path):
    missing = (tmp_path / "no-such-course").as_uri()
    code = _setup_code(course.build_pair(SETUP, cloud=course.CloudRun(missing))[0])
    with pytest.raises(RuntimeError, match="(?s)could not clone the course.*run this cell again"):
        exec(code, {})
    assert not any(c[1:4] == ["-m", "pip", "install"] for c in colab)
