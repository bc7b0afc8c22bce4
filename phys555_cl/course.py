"""The notebook system: one source per notebook, a student version and a solution version.

Sources are ``notebooks/source/NN_topic.py`` in jupytext percent format. Exercise solutions sit
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines (nbgrader's markers); an optional
``### HINT: ...`` line right above ``### BEGIN SOLUTION`` gives the hint. Then:

- the **student notebook** ``notebooks/NN_topic.ipynb`` has every code region replaced by
  ``raise NotImplementedError("Exercise N.M: <hint>")`` at the marker's indentation and every
  markdown region by a "Your answer here" cell; no outputs and no solution text anywhere;
- the **solution notebook** (``build/solutions/`` by default) is the source with the marker
  lines removed.

Command line::

    python -m phys555_cl.course build [--solutions DIR] [--no-student]   # write notebooks
    python -m phys555_cl.course check                                    # stale student notebooks?
    python -m phys555_cl.course run [--out build/course] [--only NN ...]  # execute + HTML
    python -m phys555_cl.course record [--only NN ...]  # expected output of checked cells
    python -m phys555_cl.course nbval-copies [--out build/nbval]         # what nbval runs
    python -m phys555_cl.course update      # git pull the new course version, backups first
    python -m phys555_cl.course grade NOTEBOOK... [--csv PATH] [--timeout S]  # see grading.py

Checked cells: a code cell whose first line is ``# NBVAL_CHECK_OUTPUT`` must print the same
thing in every run. Sources cannot hold outputs, so ``record`` executes the solution notebooks
in fast mode and stores those cells' outputs in ``notebooks/source/expected_outputs.json``
(keyed by the cell's text, so editing a checked cell asks for a new recording). For the tests,
``nbval-copies`` writes the student and solution notebooks with the recorded outputs filled in,
and nbval compares every checked cell against them (``--nbval-lax`` checks only those cells).

Student notebooks are never paired with their sources: a student's edits must never reach a
source, so the builder writes ``.ipynb`` files with no jupytext metadata.

Cloud run: when ``pyproject.toml`` names the course repository (``[project.urls] Repository``),
every student notebook starts with an "Open in Colab" badge (for a github.com repository) and
its first code cell sets the course up on Google Colab (clone, install, change into it); it does
nothing anywhere else. Without a repository URL there is neither.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from phys555_cl.fileio import atomic_write_text
from phys555_cl.project import PYPROJECT, REPO, read_pyproject

NOTEBOOKS = REPO / "notebooks"
SOURCES = NOTEBOOKS / "source"
SOLUTIONS = REPO / "build" / "solutions"
COURSE_OUT = REPO / "build" / "course"
NBVAL_OUT = REPO / "build" / "nbval"
EXPECTED = SOURCES / "expected_outputs.json"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"

# The markers, exactly: "### BEGIN SOLUTION" / "### END SOLUTION" (three #, capitals, nothing
# after), "# ### ..." inside a markdown cell, and "### HINT: text" directly above a BEGIN.
_MARKER = re.compile(r"^(?P<indent>\s*)(?:#\s+)?###\s?(?:(?P<kind>BEGIN SOLUTION|END SOLUTION)\s*"
                     r"|(?P<hint>HINT:)(?P<rest>.*))$")
# Anything that looks like one (any case, any number of #, stray words) but is not: an error,
# since a misspelled marker would copy its solution into the student notebook.
_NEAR_MISS = re.compile(r"^\s*#[#\s]*(?:begin|end)[\s_-]*solutions?\b", re.IGNORECASE)
_CELL = re.compile(r"^# %%")
ANSWER_PROMPT = ("**Your answer here.** *(Double-click this cell, replace this line with your "
                 "answer, then press Shift+Enter.)*")
STUDENT_NOTE = ("*This is the student version of this notebook, generated from "
                "`notebooks/source/{name}.py`. Complete each exercise where it says "
                "`raise NotImplementedError`; the check right after tells you whether it is "
                "right. If you skip one, the check uses the reference solution so the rest "
                "of the notebook still runs.*")


class MarkerError(ValueError):
    """Unbalanced, nested or misplaced solution markers; the message names file and line."""


@dataclass
class Region:
    """One solution region of a source file (1-based line numbers)."""

    begin: int
    end: int
    hint: str | None


def _marker(line: str) -> dict | None:
    """``{"kind", "indent", "rest"}`` of a marker line (kind "BEGIN SOLUTION", "END SOLUTION"
    or "HINT:"), or None."""
    m = _MARKER.match(line)
    if not m:
        return None
    return {"kind": m["kind"] or "HINT:", "indent": m["indent"], "rest": m["rest"] or ""}


def find_regions(text: str, filename: str = "<source>") -> list[Region]:
    """Validate the markers of a source file and list its solution regions.

    Raises :class:`MarkerError` naming ``filename:line`` for a nested ``BEGIN``, an ``END``
    without ``BEGIN``, a region left open at a cell boundary or at the end of the file, a
    ``HINT`` that is not directly above a ``BEGIN``, and a near-miss marker (``## Begin
    Solution``, ``### END SOLUTION here``, ...) that would leak its solution.
    """
    regions: list[Region] = []
    open_at: int | None = None
    open_hint: str | None = None
    pending_hint: tuple[int, str] | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if _CELL.match(line) and open_at is not None:
            raise MarkerError(
                f"{filename}:{open_at}: '### BEGIN SOLUTION' is not closed before the next "
                f"cell starts at line {lineno}; add '### END SOLUTION' inside the same cell."
            )
        m = _marker(line)
        if not m and _NEAR_MISS.match(line):
            raise MarkerError(
                f"{filename}:{lineno}: {line.strip()!r} looks like a solution marker but is not "
                f"one, so the solution under it would reach the student notebook; write exactly "
                f"'### BEGIN SOLUTION' or '### END SOLUTION' (three #, capitals, nothing after; "
                f"'# ### ...' in a markdown cell)."
            )
        if pending_hint is not None and not (m and m["kind"] == "BEGIN SOLUTION"):
            raise MarkerError(
                f"{filename}:{pending_hint[0]}: '### HINT:' must be the line directly above "
                f"'### BEGIN SOLUTION'."
            )
        if not m:
            continue
        kind = m["kind"]
        if kind == "HINT:":
            if open_at is not None:
                raise MarkerError(f"{filename}:{lineno}: '### HINT:' inside a solution region "
                                  f"(opened at line {open_at}); put it above the region.")
            pending_hint = (lineno, m["rest"].strip())
        elif kind == "BEGIN SOLUTION":
            if open_at is not None:
                raise MarkerError(
                    f"{filename}:{lineno}: nested '### BEGIN SOLUTION' (the region opened at "
                    f"line {open_at} is not closed yet)."
                )
            open_at = lineno
            open_hint = pending_hint[1] if pending_hint else None
            pending_hint = None
        else:
            if open_at is None:
                raise MarkerError(f"{filename}:{lineno}: '### END SOLUTION' without a "
                                  f"'### BEGIN SOLUTION' before it.")
            regions.append(Region(open_at, lineno, open_hint))
            open_at, open_hint = None, None
    if open_at is not None:
        raise MarkerError(f"{filename}:{open_at}: '### BEGIN SOLUTION' is never closed; add "
                          f"'### END SOLUTION'.")
    if pending_hint is not None:
        raise MarkerError(f"{filename}:{pending_hint[0]}: '### HINT:' must be the line "
                          f"directly above '### BEGIN SOLUTION'.")
    return regions


def notebook_number(path: Path) -> int:
    """``NN`` of ``NN_topic.py`` as an int (the N of exercise N.M)."""
    m = re.match(r"^(\d+)_", path.name)
    if not m:
        raise ValueError(f"{path}: notebook sources must be named NN_topic.py (e.g. "
                         f"01_distances_and_siamese.py).")
    return int(m.group(1))


def _read_percent(text: str):
    import jupytext

    return jupytext.reads(text, fmt="py:percent")


def _student_code(lines: list[str], number: int, counter: list[int]) -> list[str]:
    out: list[str] = []
    hint: str | None = None
    inside = False
    for line in lines:
        m = _marker(line)
        if m and m["kind"] == "HINT:":
            hint = m["rest"].strip()
        elif m and m["kind"] == "BEGIN SOLUTION":
            inside = True
            counter[0] += 1
            text = f"Exercise {number}.{counter[0]}: {hint or 'complete this function.'}"
            indent = m["indent"]
            out.append(f"{indent}# YOUR CODE HERE: replace the next line with your solution.")
            out.append(f"{indent}raise NotImplementedError({json.dumps(text)})")
            hint = None
        elif m and m["kind"] == "END SOLUTION":
            inside = False
        elif not inside:
            out.append(line)
    return out


def _student_markdown(lines: list[str], counter: list[int]) -> list[list[str]]:
    """Split a markdown cell into pieces; an answer region becomes its own answer cell."""
    pieces: list[list[str]] = [[]]
    inside = False
    for line in lines:
        m = _marker(line)
        if m and m["kind"] == "BEGIN SOLUTION":
            inside = True
            counter[0] += 1
            pieces.append([ANSWER_PROMPT])
            pieces.append([])
        elif m and m["kind"] == "END SOLUTION":
            inside = False
        elif m and m["kind"] == "HINT:":
            continue
        elif not inside:
            pieces[-1].append(line)
    return [p for p in pieces if any(s.strip() for s in p)]


def _strip_markers(lines: list[str]) -> list[str]:
    return [line for line in lines if not _marker(line)]


def _clean_notebook(nb, name: str, variant: str):
    """Deterministic, output-free notebook with no jupytext pairing metadata."""
    import nbformat

    cells = []
    for index, cell in enumerate(nb.cells):
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        tags = list(cell.get("metadata", {}).get("tags", []))
        meta = {"tags": tags} if tags else {}
        cell_id = hashlib.sha1(f"{name}/{variant}/{index}".encode()).hexdigest()[:12]
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(source, metadata=meta)
        else:
            new = nbformat.v4.new_markdown_cell(source, metadata=meta)
        new["id"] = cell_id
        cells.append(new)
    out = nbformat.v4.new_notebook(cells=cells)
    out.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    }
    if variant == "student":
        # lets a later build tell whether a student has edited this copy (see build())
        out.metadata["phys555"] = {"source": f"notebooks/source/{name}.py",
                                   "cells_sha1": _cells_sha1(out.cells)}
    out.nbformat, out.nbformat_minor = 4, 5
    return out


def _cells_sha1(cells) -> str:
    texts = [c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in cells]
    return hashlib.sha1(json.dumps(texts).encode()).hexdigest()


def edited_by_student(path: Path) -> bool:
    """True when a student notebook's cells differ from what the builder wrote.

    Running a notebook (outputs, execution counts) does not count as an edit; changing,
    adding or deleting a cell does.
    """
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        built = nb.get("metadata", {}).get("phys555", {}).get("cells_sha1")
        return built != _cells_sha1(nb.get("cells", []))
    except (OSError, ValueError, TypeError, AttributeError):
        return True  # unreadable or not ours: keep a copy rather than lose it


def _backup(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.parent / "backups" / f"{path.stem}-{stamp}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    counter = 1
    while target.exists():
        counter += 1
        target = target.with_name(f"{path.stem}-{stamp}-{counter}.ipynb")
    target.write_bytes(path.read_bytes())
    return target


# --------------------------------------------------------------------------------------------
# cloud run (Google Colab)
# --------------------------------------------------------------------------------------------

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
_GITHUB = re.compile(r"^(?:https://|git@)github\.com[/:](?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)"
                     r"(?:\.git)?/?$")


class CourseConfigError(ValueError):
    """A course setting in ``pyproject.toml`` that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class CloudRun:
    """Where a notebook opened on Colab fetches the course from.

    ``repository`` is anything ``git clone`` accepts; the "Open in Colab" badge needs a
    github.com repository (Colab opens notebooks from GitHub) and links to ``branch``.
    """

    repository: str
    branch: str = "main"

    @property
    def folder(self) -> str:
        """The folder the clone goes to (the repository's name), e.g. ``phys555-cl``."""
        name = self.repository.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        return name.removesuffix(".git") or "course"

    def badge_url(self, notebook: str) -> str | None:
        """Colab's address of ``notebooks/<notebook>.ipynb`` on GitHub; None off GitHub."""
        m = _GITHUB.match(self.repository)
        if not m:
            return None
        return (f"https://colab.research.google.com/github/{m['owner']}/{m['repo']}/blob/"
                f"{self.branch}/notebooks/{notebook}.ipynb")


def cloud_run(pyproject: Path = PYPROJECT) -> CloudRun | None:
    """The cloud-run setting of ``pyproject.toml``: ``[project.urls] Repository`` (and
    ``[tool.phys555] branch``, default ``main``), or None when no repository is named."""
    settings = read_pyproject(pyproject)
    url = settings.get("project", {}).get("urls", {}).get("Repository")
    if not url:
        return None
    if not isinstance(url, str) or any(c in url for c in "\"'\n\\") or url.startswith("-"):
        raise CourseConfigError(f"{pyproject}: [project.urls] Repository = {url!r} is not a "
                                f"repository address; write the URL students clone, e.g. "
                                f"Repository = \"https://github.com/OWNER/phys555-cl\".")
    branch = settings.get("tool", {}).get("phys555", {}).get("branch", "main")
    return CloudRun(url, branch)


COLAB_SETUP = '''# Google Colab: this cell fetches the course and installs it (about a minute,
# once per session). Anywhere else (your laptop, JupyterLab, the tests) it does nothing.
import importlib.util
import os
import subprocess
import sys

COURSE_REPOSITORY = {repository}


def _on_colab() -> bool:
    if "google.colab" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


def _setup_step(what: str, command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        said = (done.stderr or done.stdout).strip()[-600:]
        raise RuntimeError(f"Colab setup could not {{what}}: {{said}}"
                           f"\\nCheck that this runtime is connected to the internet and that "
                           f"{{COURSE_REPOSITORY}} is public, then run this cell again.")


if _on_colab():
    _course = os.environ.get("PHYS555_COURSE_DIR") or os.path.abspath({folder})
    if not os.path.isdir(os.path.join(_course, ".git")):
        _setup_step("clone the course",
                    ["git", "clone", "--quiet", "--depth", "1", COURSE_REPOSITORY, _course])
    # Colab's own PyTorch (with its GPU build) stays; the rest comes from pyproject.toml
    _setup_step("install the course", [sys.executable, "-m", "pip", "install", "--quiet",
                                       "-e", _course])
    if _course not in sys.path:  # importable now, without restarting the runtime
        sys.path.insert(0, _course)
    os.chdir(_course)
    os.environ["PHYS555_COURSE_DIR"] = _course
    print(f"Colab: the course from {{COURSE_REPOSITORY}} is installed in {{_course}}. For a GPU, "
          f"choose Runtime > Change runtime type > GPU before you run anything (a new runtime "
          f"starts: run this cell again).")'''


def colab_setup_code(cloud: CloudRun) -> str:
    """The first code cell of a student notebook when the course names its repository."""
    return COLAB_SETUP.format(repository=json.dumps(cloud.repository),
                              folder=json.dumps(cloud.folder))


class _FromPyproject:
    def __repr__(self) -> str:
        return "FROM_PYPROJECT"


#: ``cloud=`` default of the builders: read :func:`cloud_run` from ``pyproject.toml``.
FROM_PYPROJECT = _FromPyproject()


def _add_cloud_run(student, cloud: CloudRun, name: str) -> None:
    import nbformat

    first_code = next((i for i, c in enumerate(student.cells) if c.cell_type == "code"),
                      len(student.cells))
    student.cells.insert(first_code, nbformat.v4.new_code_cell(colab_setup_code(cloud)))
    url = cloud.badge_url(name)
    if url:
        student.cells.insert(0, nbformat.v4.new_markdown_cell(
            f"[![Open In Colab]({COLAB_BADGE})]({url})"))


def build_pair(source: Path, cloud: CloudRun | None | _FromPyproject = FROM_PYPROJECT):
    """Return ``(student_notebook, solution_notebook)`` (nbformat objects) for one source.

    ``cloud``: the Colab setting (default: :func:`cloud_run` of ``pyproject.toml``); with one,
    the student notebook gets the "Open in Colab" badge on top and the setup cell as its first
    code cell; ``None`` builds without them.
    """
    import nbformat

    if isinstance(cloud, _FromPyproject):
        cloud = cloud_run()

    text = source.read_text(encoding="utf-8")
    find_regions(text, str(source.relative_to(REPO) if source.is_relative_to(REPO) else source))
    number = notebook_number(source)
    nb = _read_percent(text)
    name = source.stem

    solution = nbformat.v4.new_notebook()
    student = nbformat.v4.new_notebook()
    counter = [0]
    for cell in nb.cells:
        lines = cell.source.split("\n")
        sol = nbformat.from_dict(dict(cell))
        sol.source = "\n".join(_strip_markers(lines))
        solution.cells.append(sol)
        if cell.cell_type == "code":
            stu = nbformat.from_dict(dict(cell))
            stu.source = "\n".join(_student_code(lines, number, counter))
            student.cells.append(stu)
        elif cell.cell_type == "markdown":
            for piece in _student_markdown(lines, counter):
                student.cells.append(nbformat.v4.new_markdown_cell("\n".join(piece)))
        else:  # raw cells pass through
            student.cells.append(nbformat.from_dict(dict(cell)))
    note = nbformat.v4.new_markdown_cell(STUDENT_NOTE.format(name=name))
    insert_at = 1 if student.cells and student.cells[0].cell_type == "markdown" else 0
    student.cells.insert(insert_at, note)
    if cloud is not None:
        _add_cloud_run(student, cloud, name)
    return _clean_notebook(student, name, "student"), _clean_notebook(solution, name, "solution")


def _dumps(nb) -> str:
    import nbformat

    return nbformat.writes(nb) + "\n"


def sources(source_dir: Path = SOURCES) -> list[Path]:
    """The notebook sources, in course order."""
    return sorted(p for p in Path(source_dir).glob("[0-9][0-9]_*.py"))


def build(source_dir: Path = SOURCES, student_dir: Path = NOTEBOOKS,
          solution_dir: Path | None = SOLUTIONS, write_student: bool = True,
          cloud: CloudRun | None | _FromPyproject = FROM_PYPROJECT) -> list[Path]:
    """Write the student (and solution) notebooks for every source; return written paths.

    Every source is validated before anything is written, so a marker error leaves all
    notebooks as they were. A student notebook whose cells were edited since it was built is
    copied to ``notebooks/backups/`` before it is replaced, so no student work is lost.
    """
    if isinstance(cloud, _FromPyproject):
        cloud = cloud_run()
    if cloud is not None and cloud.badge_url("x") is None:
        print(f"note: {cloud.repository} is not a github.com repository, so the notebooks get "
              f"the Colab setup cell but no \"Open in Colab\" badge (Colab opens notebooks "
              f"from GitHub only).")
    pairs = [(src, *build_pair(src, cloud)) for src in sources(source_dir)]
    written = []
    for src, student, solution in pairs:
        if write_student:
            target = Path(student_dir) / f"{src.stem}.ipynb"
            text = _dumps(student)
            if target.exists() and target.read_text(encoding="utf-8") != text \
                    and edited_by_student(target):
                kept = _backup(target)
                print(f"{target.name} has your edits: a copy is kept as {kept} before the "
                      f"notebook is rebuilt from its source.")
            atomic_write_text(target, text)
            written.append(target)
        if solution_dir is not None:
            target = Path(solution_dir) / f"{src.stem}.ipynb"
            atomic_write_text(target, _dumps(solution))
            written.append(target)
    return written


def stale(source_dir: Path = SOURCES, student_dir: Path = NOTEBOOKS) -> list[str]:
    """Problems with the committed student notebooks: stale, missing, or orphaned."""
    problems = []
    names = set()
    for src in sources(source_dir):
        names.add(src.stem)
        target = Path(student_dir) / f"{src.stem}.ipynb"
        expected = _dumps(build_pair(src)[0])
        if not target.exists():
            problems.append(f"missing: {target} (source {src.name})")
        elif target.read_text(encoding="utf-8") != expected:
            problems.append(f"stale: {target} does not match {src.name}")
    for nb in sorted(Path(student_dir).glob("[0-9][0-9]_*.ipynb")):
        if nb.stem not in names:
            problems.append(f"orphaned: {nb} has no source notebooks/source/{nb.stem}.py")
    return problems


def _line_key(line: str) -> str:
    """A line as it reads in a code or markdown cell: no indentation, no leading ``#``."""
    return line.strip().lstrip("#").strip()


def solution_lines(text: str, filename: str = "<source>") -> dict[str, int]:
    """The lines that exist only inside solution regions: ``{line key: source line}``.

    Lines that also appear outside every region (``return x``, blank lines, ...) are left out:
    they belong in the student notebook too.
    """
    lines = text.splitlines()
    inside: dict[str, int] = {}
    in_region = set()
    for region in find_regions(text, filename):
        for lineno in range(region.begin + 1, region.end):
            in_region.add(lineno)
            inside.setdefault(_line_key(lines[lineno - 1]), lineno)
    outside = {_line_key(line) for n, line in enumerate(lines, 1) if n not in in_region}
    return {key: n for key, n in inside.items() if key and key not in outside}


def leaks(source_dir: Path = SOURCES, student_dir: Path = NOTEBOOKS) -> list[str]:
    """Student notebooks that hold any line of a solution region of their source."""
    problems = []
    for src in sources(source_dir):
        target = Path(student_dir) / f"{src.stem}.ipynb"
        if not target.exists():
            continue
        secret = solution_lines(src.read_text(encoding="utf-8"), src.name)
        try:
            cells = json.loads(target.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError, AttributeError):
            continue  # reported as stale
        for index, cell in enumerate(cells):
            text = cell.get("source", "")
            for line in (text if isinstance(text, str) else "".join(text)).splitlines():
                if _line_key(line) in secret:
                    problems.append(f"solution text: {target} cell {index} holds line "
                                    f"{secret[_line_key(line)]} of a solution region of "
                                    f"{src.name}")
                    break
    return problems


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and result.returncode:
        raise UpdateError(f"`git {' '.join(args)}` failed: "
                          f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return result


class UpdateError(RuntimeError):
    """The course update could not be taken; the message says why and what to do."""


def update(repo: Path = REPO) -> list[tuple[Path, Path]]:
    """Take the new course version (``git pull``) without losing or breaking any notebook.

    1. Every student notebook whose cells you changed is copied to ``notebooks/backups/``
       (as ``make notebooks`` does); notebooks you only ran are not.
    2. Uncommitted changes to ``notebooks/NN_topic.ipynb`` are set aside (the copies keep
       them), so ``git pull`` does not refuse.
    3. The new version is fetched and merged; if you committed your own changes, the student
       notebooks are taken from the course (your versions are in the backups), so no
       notebook is left with merge conflict markers that JupyterLab cannot open.

    Returns ``(notebook, backup copy)`` pairs. Raises :class:`UpdateError` (nothing merged)
    when ``repo`` is not a git clone with an upstream, or when the merge conflicts outside the
    notebooks.
    """
    repo = Path(repo)
    if _git(repo, "rev-parse", "--is-inside-work-tree", check=False).returncode:
        raise UpdateError(f"{repo} is not a git clone of the course, so it cannot be updated "
                          f"with git; download the new version and copy your notebooks over.")
    if _git(repo, "rev-parse", "--abbrev-ref", "@{u}", check=False).returncode:
        raise UpdateError("this copy of the course has no upstream branch to update from; "
                          "clone the course again with `git clone URL`, or set one with "
                          "`git branch --set-upstream-to=origin/main`.")
    notebooks = repo / "notebooks"
    student = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    kept = [(nb, _backup(nb)) for nb in student if edited_by_student(nb)]
    changed = _git(repo, "status", "--porcelain", "--", "notebooks/").stdout.splitlines()
    modified = [line[3:] for line in changed if line[:2].strip() and not line.startswith("??")
                and line[3:].endswith(".ipynb") and "/backups/" not in line]
    if modified:
        _git(repo, "checkout", "HEAD", "--", *modified)
    _git(repo, "fetch", "--quiet")
    if _git(repo, "merge-base", "--is-ancestor", "HEAD", "@{u}", check=False).returncode == 0:
        _git(repo, "merge", "--ff-only", "--quiet", "@{u}")
        return kept
    merged = _git(repo, "merge", "--no-edit", "-X", "theirs", "@{u}", check=False)
    if merged.returncode:
        _git(repo, "merge", "--abort", check=False)
        raise UpdateError("the update conflicts with changes you committed outside the "
                          "notebooks (e.g. in notebooks/source/ or phys555_cl/); nothing was "
                          "merged. Ask your instructor, or keep your changes elsewhere and run "
                          "`git reset --hard @{u}` (this discards them).")
    upstream = [f"notebooks/{nb.name}" for nb in student
                if _git(repo, "cat-file", "-e", f"@{{u}}:notebooks/{nb.name}",
                        check=False).returncode == 0]
    if upstream:
        _git(repo, "checkout", "@{u}", "--", *upstream)
        if _git(repo, "diff", "--cached", "--quiet", check=False).returncode:
            _git(repo, "commit", "--quiet", "-m", "Course update: student notebooks as the "
                 "course ships them (my versions are in notebooks/backups/)")
    return kept


def checked_cells(nb) -> list[tuple[int, str]]:
    """``(index, key)`` of every code cell whose first line is ``# NBVAL_CHECK_OUTPUT``."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK):
            found.append((index, hashlib.sha1(cell.source.encode()).hexdigest()[:16]))
    return found


def load_expected(path: Path = EXPECTED) -> dict:
    """The recorded outputs of the checked cells: ``{notebook: {cell key: [outputs]}}``."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _execute(nb, timeout: int) -> str:
    """Run a notebook in place with a fresh kernel; return "ok" or a one-line failure."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        # the kernel's own log (e.g. ipykernel's note on TCP transport) is noise here; cell
        # output and errors come back through the notebook protocol, not this stream
        client.execute(stderr=subprocess.DEVNULL)
    except CellExecutionError as err:
        return "FAILED: " + (str(err).strip().splitlines() or ["error"])[-1][:100]
    except Exception as err:  # kernel died, timeout...
        return f"FAILED: {type(err).__name__}: {err}"[:110]
    return "ok"


def _comparable(outputs) -> list[dict]:
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            kept.append({"output_type": "stream", "name": "stdout", "text": out["text"]})
        elif out.get("output_type") == "execute_result" and "text/plain" in out.get("data", {}):
            kept.append({"output_type": "execute_result", "execution_count": 1, "metadata": {},
                         "data": {"text/plain": out["data"]["text/plain"]}})
    return kept


def record(only: list[str] | None = None, path: Path = EXPECTED) -> int:
    """Execute solution notebooks in fast mode and store their checked cells' outputs."""
    os.environ["PHYS555_FAST"] = "1"
    expected = load_expected(path)
    failed = 0
    for src in sources():
        if only and not any(src.stem.startswith(o) for o in only):
            continue
        nb = build_pair(src)[1]
        cells = checked_cells(nb)
        if not cells:
            expected.pop(src.stem, None)
            continue
        started = time.perf_counter()
        status = _execute(nb, timeout=600)
        print(f"  {src.stem:<40} {len(cells)} checked cell(s)  "
              f"{time.perf_counter() - started:6.1f} s  {status}", flush=True)
        if status != "ok":
            failed += 1
            continue
        expected[src.stem] = {key: _comparable(nb.cells[i].outputs) for i, key in cells}
    atomic_write_text(Path(path), json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return failed


def missing_records(path: Path = EXPECTED, source_dir: Path = SOURCES) -> list[str]:
    """Checked cells of the sources that have no recorded output."""
    expected = load_expected(path)
    problems = []
    for src in sources(source_dir):
        nb = build_pair(src)[1]
        for index, key in checked_cells(nb):
            if key not in expected.get(src.stem, {}):
                problems.append(f"unrecorded: cell {index} of {src.name} is marked "
                                f"{CHECK_MARK} but its output is not recorded")
    return problems


def nbval_copies(out_dir: Path = NBVAL_OUT) -> list[Path]:
    """Student and solution notebooks with the recorded outputs in their checked cells."""
    import nbformat

    expected = load_expected()
    written = []
    for src in sources():
        for variant, nb in zip(("student", "solutions"), build_pair(src)):
            for index, key in checked_cells(nb):
                outputs = expected.get(src.stem, {}).get(key)
                if outputs is None:
                    raise MarkerError(f"{src.name}: cell {index} is marked {CHECK_MARK} but "
                                      f"has no recorded output; run `make record`.")
                nb.cells[index].outputs = [nbformat.from_dict(o) for o in outputs]
                nb.cells[index].execution_count = 1
            target = Path(out_dir) / variant / f"{src.stem}.ipynb"
            atomic_write_text(target, _dumps(nb))
            written.append(target)
    return written


def run(out_dir: Path = COURSE_OUT, only: list[str] | None = None,
        timeout: int | None = None) -> int:
    """Execute every solution notebook in order, headless; write executed copies and HTML.

    Prints a summary table; returns the number of notebooks that failed.
    """
    import nbformat
    from nbconvert import HTMLExporter

    from . import config

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timeout = timeout or (300 if config.fast_mode() else 1800)
    pairs = [(src, build_pair(src)[1]) for src in sources()]
    if only:
        pairs = [(s, nb) for s, nb in pairs if any(s.stem.startswith(o) for o in only)]
    mode = "fast" if config.fast_mode() else "normal"
    print(f"Running {len(pairs)} notebook(s) in {mode} mode; results in {out_dir}/", flush=True)
    rows = []
    for src, nb in pairs:
        started = time.perf_counter()
        status = _execute(nb, timeout)
        elapsed = time.perf_counter() - started
        atomic_write_text(out_dir / f"{src.stem}.ipynb", _dumps(nb))
        html, _ = HTMLExporter().from_notebook_node(nbformat.from_dict(nb))
        atomic_write_text(out_dir / f"{src.stem}.html", html)
        rows.append((src.stem, elapsed, status))
        print(f"  {src.stem:<40} {elapsed:7.1f} s  {status}", flush=True)
    width = max([len(r[0]) for r in rows] + [8])
    print(f"\n{'notebook':<{width}}  {'time':>8}  status")
    for name, elapsed, status in rows:
        print(f"{name:<{width}}  {elapsed:7.1f}s  {status}")
    failed = sum(1 for r in rows if r[2] != "ok")
    total = sum(r[1] for r in rows)
    print(f"{'total':<{width}}  {total:7.1f}s  {len(rows) - failed} ok, {failed} failed")
    return failed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m phys555_cl.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the student and solution notebooks")
    b.add_argument("--solutions", type=Path, default=SOLUTIONS,
                   help=f"where solution notebooks go (default {SOLUTIONS.relative_to(REPO)})")
    b.add_argument("--no-student", action="store_true",
                   help="write only the solution notebooks (leave notebooks/ untouched)")
    sub.add_parser("check", help="fail when a student notebook is stale or missing")
    r = sub.add_parser("run", help="execute the solution notebooks and render HTML")
    r.add_argument("--out", type=Path, default=COURSE_OUT)
    r.add_argument("--only", nargs="*", help="notebook numbers or names to run, e.g. 03 05")
    rec = sub.add_parser("record", help="record the outputs of the # NBVAL_CHECK_OUTPUT cells")
    rec.add_argument("--only", nargs="*", help="notebook numbers or names, e.g. 03 05")
    sub.add_parser("update", help="take the new course version (git pull), backing up every "
                                  "notebook you changed")
    nbv = sub.add_parser("nbval-copies", help="notebooks with recorded outputs, for nbval")
    nbv.add_argument("--out", type=Path, default=NBVAL_OUT)
    g = sub.add_parser("grade", help="run submitted student notebooks (fast mode, each in a "
                                     "fresh kernel) and report every exercise; runs the "
                                     "students' code: use a container or VM for untrusted files")
    g.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    g.add_argument("--csv", type=Path, help="also write notebook, exercise, status, message here")
    g.add_argument("--timeout", type=float, default=600,
                   help="seconds per notebook before it is stopped (default 600)")
    return parser


def _shown(path: Path):
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def _report(title: str, items, advice: str) -> None:
    if items:
        print(title, file=sys.stderr)
        for p in items:
            print(f"  {p}", file=sys.stderr)
        print(advice, file=sys.stderr)


def _cmd_check() -> int:
    leaked, problems, unrecorded = leaks(), stale(), missing_records()
    _report("Student notebooks hold solution text:", leaked,
            "Check the markers of those solution regions in notebooks/source/, then run "
            "`make notebooks` and commit the result.")
    _report("Student notebooks are out of date with their sources:", problems,
            "Run `make notebooks` (python -m phys555_cl.course build) and commit the result.")
    _report("Checked cells without a recorded output:", unrecorded,
            "Run `make record` and commit notebooks/source/expected_outputs.json.")
    if problems or unrecorded or leaked:
        return 1
    print(f"All {len(sources())} student notebooks are up to date and every checked "
          f"cell has a recorded output.")
    return 0


def _cmd_update() -> int:
    try:
        kept = update()
    except UpdateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for notebook, copy in kept:
        print(f"{notebook.name} has your edits: a copy is kept as {_shown(copy)}")
    where = _shown(NOTEBOOKS / "backups")
    print(f"Course updated. {len(kept)} notebook(s) you changed are backed up in {where}/"
          if kept else "Course updated. You had not changed any notebook: no backups "
          "were needed.")
    return 0


def _cmd_grade(parser, args) -> int:
    from .grading import NOTEBOOK_ROW, grade

    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    rows = grade(args.notebooks, timeout=args.timeout, csv_path=args.csv)
    return 1 if any(r.exercise == NOTEBOOK_ROW and r.status == "not graded" for r in rows) else 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            written = build(solution_dir=args.solutions, write_student=not args.no_student)
            for path in written:
                print(f"wrote {_shown(path)}")
            return 0
        if args.command == "check":
            return _cmd_check()
        if args.command == "update":
            return _cmd_update()
        if args.command == "record":
            return 1 if record(args.only) else 0
        if args.command == "grade":
            return _cmd_grade(parser, args)
        if args.command == "nbval-copies":
            for path in nbval_copies(args.out):
                print(f"wrote {_shown(path)}")
            return 0
        return 1 if run(args.out, args.only) else 0
    except (MarkerError, CourseConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
