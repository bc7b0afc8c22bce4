"""The notebook builder: from one source per notebook, a student version and a solution version.

Sources are ``notebooks/source/NN_topic.py`` in jupytext percent format, with every exercise's
solution between solution markers (see :mod:`phys555_cl.course.markers`). Then:

- the **student notebook** ``notebooks/NN_topic.ipynb`` has every code region replaced by
  ``raise NotImplementedError("Exercise N.M: <hint>")`` at the marker's indentation and every
  markdown region by a "Your answer here" cell; no outputs and no solution text anywhere;
- the **solution notebook** (``build/solutions/`` by default) is the source with the marker
  lines removed.

Student notebooks are never paired with their sources: a student's edits must never reach a
source, so the builder writes ``.ipynb`` files with no jupytext metadata. A student notebook
records its source and a fingerprint of its cells (notebook metadata ``phys555``), so a rebuild
or an update can tell whether a student edited it (:func:`edited_by_student`), and grading can
tell which course version it came from; each exercise cell records its exercise numbers (cell
metadata ``phys555``: ``{"exercises": ["3.1"]}``), which grading reads.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import nbformat

from phys555_cl.course.colab import (
    FROM_PYPROJECT,
    CloudRun,
    FromPyproject,
    add_cloud_run,
    chosen_cloud_run,
)
from phys555_cl.course.markers import find_regions, line_key, parse_marker, solution_lines
from phys555_cl.course.paths import NOTEBOOKS, SOLUTIONS, SOURCES, shown, sources
from phys555_cl.fileio import atomic_write_text

__all__ = ["ANSWER_PROMPT", "META", "STUDENT_NOTE", "backup", "build", "build_pair",
           "cell_exercises", "dumps", "edited_by_student", "is_written_answer", "leaks",
           "notebook_number", "stale"]

# The metadata key of what the builder records: in a student notebook's metadata, its source
# and the fingerprint of its cells; in an exercise cell's metadata, the exercise numbers
# ({"exercises": ["3.1"]}, and "written": true for a "Your answer here" cell), which grading
# reads instead of the generated text.
META = "phys555"

ANSWER_PROMPT = ("**Your answer here.** *(Double-click this cell, replace this line with your "
                 "answer, then press Shift+Enter.)*")
STUDENT_NOTE = ("*This is the student version of this notebook, generated from "
                "`notebooks/source/{name}.py`. Complete each exercise where it says "
                "`raise NotImplementedError`; the check right after tells you whether it is "
                "right. If you skip one, the check uses the reference solution so the rest "
                "of the notebook still runs.*")


def notebook_number(path: Path) -> int:
    """``NN`` of ``NN_topic.py`` as an int (the N of exercise N.M).

    Raises:
        ValueError: the name does not start with a number and ``_``.
    """
    m = re.match(r"^(\d+)_", path.name)
    if not m:
        raise ValueError(f"{path}: notebook sources must be named NN_topic.py (e.g. "
                         f"01_distances_and_siamese.py).")
    return int(m.group(1))


def _read_percent(text: str):
    """A jupytext percent-format source as an nbformat notebook (cells in order)."""
    import jupytext  # deferred: slow to import, and only building needs it (not `update`)

    return jupytext.reads(text, fmt="py:percent")


def cell_exercises(cell) -> list[str]:
    """The exercise numbers the builder recorded in a cell's metadata, e.g. ``["3.1"]``; ``[]``
    for a cell that holds no exercise (or was not made by the builder)."""
    made = cell.get("metadata", {}).get(META)
    return list(made.get("exercises", [])) if isinstance(made, dict) else []


def is_written_answer(cell) -> bool:
    """True for a "Your answer here" cell of a written exercise, as the builder recorded it."""
    made = cell.get("metadata", {}).get(META)
    return isinstance(made, dict) and made.get("written") is True


def _next_exercise(number: int, counter: list[int]) -> str:
    """Advance ``counter[0]``, the notebook's exercise count (code and written together), and
    return the new exercise's number ``"N.M"``."""
    counter[0] += 1
    return f"{number}.{counter[0]}"


def _student_code(lines: list[str], number: int,
                  counter: list[int]) -> tuple[list[str], list[str]]:
    """The student version of a code cell's lines, and the numbers of its exercises: each
    solution region becomes a numbered ``raise NotImplementedError("Exercise N.M: <hint>")``
    (``counter``: see :func:`_next_exercise`)."""
    out: list[str] = []
    exercises: list[str] = []
    hint: str | None = None
    inside = False
    for line in lines:
        m = parse_marker(line)
        if m and m["kind"] == "HINT:":
            hint = m["rest"].strip()
        elif m and m["kind"] == "BEGIN SOLUTION":
            inside = True
            exercises.append(_next_exercise(number, counter))
            text = f"Exercise {exercises[-1]}: {hint or 'complete this function.'}"
            indent = m["indent"]
            out.append(f"{indent}# YOUR CODE HERE: replace the next line with your solution.")
            out.append(f"{indent}raise NotImplementedError({json.dumps(text)})")
            hint = None
        elif m and m["kind"] == "END SOLUTION":
            inside = False
        elif not inside:
            out.append(line)
    return out, exercises


def _student_markdown(lines: list[str], number: int,
                      counter: list[int]) -> list[tuple[list[str], str | None]]:
    """Split a markdown cell into ``(lines, exercise number or None)`` pieces; an answer
    region becomes its own answer cell (:data:`ANSWER_PROMPT`) with its exercise's number
    (``counter``: see :func:`_next_exercise`)."""
    pieces: list[tuple[list[str], str | None]] = [([], None)]
    inside = False
    for line in lines:
        m = parse_marker(line)
        if m and m["kind"] == "BEGIN SOLUTION":
            inside = True
            pieces.append(([ANSWER_PROMPT], _next_exercise(number, counter)))
            pieces.append(([], None))
        elif m and m["kind"] == "END SOLUTION":
            inside = False
        elif m and m["kind"] == "HINT:":
            continue
        elif not inside:
            pieces[-1][0].append(line)
    return [p for p in pieces if any(s.strip() for s in p[0])]


def _strip_markers(lines: list[str]) -> list[str]:
    """The lines that are not markers: a solution cell's text."""
    return [line for line in lines if not parse_marker(line)]


def _clean_notebook(nb, name: str, variant: str):
    """Deterministic, output-free notebook with no jupytext pairing metadata; a student one
    (``variant == "student"``) records its source and the fingerprint of its cells. Of the
    cells' metadata only their tags and the builder's :data:`META` are kept."""
    cells = []
    for index, cell in enumerate(nb.cells):
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        tags = list(cell.get("metadata", {}).get("tags", []))
        meta = {"tags": tags} if tags else {}
        if META in cell.get("metadata", {}):
            meta[META] = dict(cell.metadata[META])
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
        out.metadata[META] = {"source": f"notebooks/source/{name}.py",
                                   "cells_sha1": _cells_sha1(out.cells)}
    out.nbformat, out.nbformat_minor = 4, 5
    return out


def _cells_sha1(cells) -> str:
    """The fingerprint of a notebook's cells: the SHA-1 of their texts (not their outputs)."""
    texts = [c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in cells]
    return hashlib.sha1(json.dumps(texts).encode()).hexdigest()


def edited_by_student(path: Path) -> bool:
    """True when a student notebook's cells differ from what the builder wrote.

    Running a notebook (outputs, execution counts) does not count as an edit; changing,
    adding or deleting a cell does.
    """
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        built = nb.get("metadata", {}).get(META, {}).get("cells_sha1")
        return built != _cells_sha1(nb.get("cells", []))
    except (OSError, ValueError, TypeError, AttributeError):
        return True  # unreadable or not ours: keep a copy rather than lose it


def backup(path: Path) -> Path:
    """Copy a student notebook to ``backups/NN_topic-<date>[-k].ipynb`` beside it; return the
    copy's path (never overwrites an earlier copy).

    Raises:
        OSError: the notebook cannot be read or the copy cannot be written.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.parent / "backups" / f"{path.stem}-{stamp}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    counter = 1
    while target.exists():
        counter += 1
        target = target.with_name(f"{path.stem}-{stamp}-{counter}.ipynb")
    target.write_bytes(path.read_bytes())
    return target


def build_pair(source: Path, cloud: CloudRun | None | FromPyproject = FROM_PYPROJECT):
    """Return ``(student_notebook, solution_notebook)`` (nbformat objects) for one source.

    Each exercise cell of the student notebook records its exercise numbers in its metadata
    (:data:`META`; read them with :func:`cell_exercises` and :func:`is_written_answer`).
    ``cloud``: the Colab setting (default: :func:`cloud_run` of ``pyproject.toml``); with one,
    the student notebook gets the "Open in Colab" badge on top and the setup cell as its first
    code cell; ``None`` builds without them.

    Raises:
        MarkerError: the source's solution markers are broken (the message names file:line).
        ValueError: the source is not named ``NN_topic.py``.
        CourseConfigError: ``pyproject.toml``'s cloud-run setting cannot be used.
    """
    cloud = chosen_cloud_run(cloud)
    text = source.read_text(encoding="utf-8")
    find_regions(text, str(shown(source)))
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
            body, exercises = _student_code(lines, number, counter)
            stu.source = "\n".join(body)
            if exercises:
                stu.metadata[META] = {"exercises": exercises}
            student.cells.append(stu)
        elif cell.cell_type == "markdown":
            for piece, exercise in _student_markdown(lines, number, counter):
                stu = nbformat.v4.new_markdown_cell("\n".join(piece))
                if exercise:
                    stu.metadata[META] = {"exercises": [exercise], "written": True}
                student.cells.append(stu)
        else:  # raw cells pass through
            student.cells.append(nbformat.from_dict(dict(cell)))
    note = nbformat.v4.new_markdown_cell(STUDENT_NOTE.format(name=name))
    insert_at = 1 if student.cells and student.cells[0].cell_type == "markdown" else 0
    student.cells.insert(insert_at, note)
    if cloud is not None:
        add_cloud_run(student, cloud, name)
    return _clean_notebook(student, name, "student"), _clean_notebook(solution, name, "solution")


def dumps(nb) -> str:
    """The text of a notebook file as the builder writes it (nbformat's JSON, a final newline)."""
    return nbformat.writes(nb) + "\n"

def build(source_dir: Path = SOURCES, student_dir: Path = NOTEBOOKS,
          solution_dir: Path | None = SOLUTIONS, write_student: bool = True,
          cloud: CloudRun | None | FromPyproject = FROM_PYPROJECT) -> list[Path]:
    """Write the student (and solution) notebooks for every source; return written paths.

    Every source is validated before anything is written, so a marker error leaves all
    notebooks as they were. A student notebook whose cells were edited since it was built is
    copied to ``notebooks/backups/`` before it is replaced, so no student work is lost.

    Raises:
        MarkerError: a source's markers are broken; nothing is written.
        CourseConfigError: ``pyproject.toml``'s cloud-run setting cannot be used.
    """
    cloud = chosen_cloud_run(cloud)
    if cloud is not None and cloud.badge_url("x") is None:
        print(f"note: {cloud.repository} is not a github.com repository, so the notebooks get "
              f"the Colab setup cell but no \"Open in Colab\" badge (Colab opens notebooks "
              f"from GitHub only).")
    pairs = [(src, *build_pair(src, cloud)) for src in sources(source_dir)]
    written = []
    for src, student, solution in pairs:
        if write_student:
            target = Path(student_dir) / f"{src.stem}.ipynb"
            text = dumps(student)
            if target.exists() and target.read_text(encoding="utf-8") != text \
                    and edited_by_student(target):
                kept = backup(target)
                print(f"{target.name} has your edits: a copy is kept as {kept} before the "
                      f"notebook is rebuilt from its source.")
            atomic_write_text(target, text)
            written.append(target)
        if solution_dir is not None:
            target = Path(solution_dir) / f"{src.stem}.ipynb"
            atomic_write_text(target, dumps(solution))
            written.append(target)
    return written


def stale(source_dir: Path = SOURCES, student_dir: Path = NOTEBOOKS) -> list[str]:
    """Problems with the committed student notebooks: stale, missing, or orphaned; one line
    each (``[]`` when every notebook matches its source).

    Raises:
        MarkerError: a source's markers are broken.
    """
    problems = []
    names = set()
    for src in sources(source_dir):
        names.add(src.stem)
        target = Path(student_dir) / f"{src.stem}.ipynb"
        expected = dumps(build_pair(src)[0])
        if not target.exists():
            problems.append(f"missing: {target} (source {src.name})")
        elif target.read_text(encoding="utf-8") != expected:
            problems.append(f"stale: {target} does not match {src.name}")
    for nb in sorted(Path(student_dir).glob("[0-9][0-9]_*.ipynb")):
        if nb.stem not in names:
            problems.append(f"orphaned: {nb} has no source notebooks/source/{nb.stem}.py")
    return problems


def leaks(source_dir: Path = SOURCES, student_dir: Path = NOTEBOOKS) -> list[str]:
    """Student notebooks that hold any line of a solution region of their source: one line
    each, naming the notebook's cell and the source's line.

    Raises:
        MarkerError: a source's markers are broken.
    """
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
                if line_key(line) in secret:
                    problems.append(f"solution text: {target} cell {index} holds line "
                                    f"{secret[line_key(line)]} of a solution region of "
                                    f"{src.name}")
                    break
    return problems
