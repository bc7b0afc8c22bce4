"""Grade submitted student notebooks with the exercise checks themselves.

Every submission is copied to a temporary folder and run there, top to bottom, in a fresh
kernel in fast mode (``PHYS555_FAST=1``); the submitted file is only read. The checks record
their outcomes in a JSON file (``PHYS555_CHECK_RESULTS``, see
:mod:`phys555_cl.exercises.core`), so nothing printed is parsed. For every exercise the report
says

- ``right``, ``wrong`` (with the check's message) or ``not done``: what its check found;
- ``not run``: its check never ran, because an earlier cell failed (other than a failed check:
  a wrong exercise does not stop the run), the notebook hit the timeout, or its check call is
  gone;

and for every written answer ``answered`` or ``not answered``. A row for the notebook itself
says whether it ran to the end, stopped, timed out, was made from another version of the
course, or could not be graded at all (another course's notebook, a solution notebook, not a
notebook).

Command line::

    python -m phys555_cl.course grade submissions/*.ipynb --csv grades.csv --timeout 600

Grading runs the students' code with your permissions: for submissions you do not trust, run
it in a container or a virtual machine.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from phys555_cl.course.builder import (
    ANSWER_PROMPT,
    META,
    build_pair,
    cell_exercises,
    is_written_answer,
    notebook_number,
)
from phys555_cl.course.paths import SOURCES
from phys555_cl.project import CHECK_RESULTS_ENV as RESULTS_FILE_ENV

__all__ = ["COLUMNS", "DEFAULT_TIMEOUT", "NOTEBOOK_ROW", "NotGradable", "Row", "built_student",
           "exercise_cells", "exercises_of", "grade", "grade_notebook", "identify",
           "run_notebook", "written_answers"]

COLUMNS = ("notebook", "exercise", "status", "hints", "message")
NOTEBOOK_ROW = "(notebook)"  # the exercise column of the row about the notebook as a whole
DEFAULT_TIMEOUT = 600  # s per notebook, fast mode


@dataclass
class Row:
    """One line of the report: a CSV row."""

    notebook: str
    exercise: str
    status: str
    message: str = ""
    hints: int = 0  # deeper hints the student asked for (ex.hint), as the check recorded


class NotGradable(Exception):
    """The file is not a student notebook of this course; the message says what it is."""


# --------------------------------------------------------------------------------------------
# what the notebook should hold
# --------------------------------------------------------------------------------------------


def built_student(src: Path, built: dict | None = None):
    """The student notebook of ``src`` as this course version builds it (nbformat).

    ``built``: ``{source: student notebook}`` of this grading run; each source is built once
    into it, whatever the number of submissions (``None``: build it now).

    Raises:
        MarkerError: the source's markers are broken.
    """
    if built is None:
        return build_pair(src)[0]
    if src not in built:
        built[src] = build_pair(src)[0]
    return built[src]


def identify(nb, path: Path, built: dict | None = None) -> tuple[Path, str | None]:
    """The course source a student notebook was built from, and a note when the notebook was
    built from another version of it (None when it is this course version's notebook).

    ``built``: see :func:`built_student`.

    Raises:
        NotGradable: ``nb`` is not a student notebook of this course (version).
    """
    made = nb.get("metadata", {}).get(META) or {}
    source = made.get("source") if isinstance(made, dict) else None
    if not isinstance(source, str) or not re.fullmatch(r"notebooks/source/\d\d_\w+\.py", source):
        raise NotGradable(
            f"{path} is not a PHYS-555 contrastive-learning student notebook (it carries no "
            f"phys555 metadata): another course's notebook, a solution notebook, or a copy saved "
            f"by a tool that drops notebook metadata. Ask the student for the notebook they "
            f"worked in, notebooks/NN_topic.ipynb of this course.")
    src = SOURCES / Path(source).name
    if not src.exists():
        raise NotGradable(
            f"{path} was made from {source}, which this version of the course does not "
            f"have: grade it with the course version the student used (git checkout).")
    if made.get("cells_sha1") != built_student(src, built).metadata[META]["cells_sha1"]:
        return src, (f"made from another version of {source} than this course's (older or "
                     f"newer): exercises and checks may differ. For exact grades, grade it "
                     f"with the course version the student used, or ask the student to run "
                     f"`make update` and move their answers over.")
    return src, None


def exercises_of(src: Path) -> list[str]:
    """The exercise numbers checked in a notebook (its ``exercises.nbNN`` module's checks),
    e.g. ``["1.1", "1.2", "1.3"]``.

    Raises:
        ModuleNotFoundError: the notebook has no checks module.
    """
    module = importlib.import_module(
        f"phys555_cl.exercises.nb{notebook_number(src):02d}")
    numbers = {getattr(module, name).exercise for name in dir(module)
               if name.startswith("check_")}
    return sorted(numbers, key=lambda n: tuple(int(p) for p in n.split(".")))


def written_answers(student) -> list[tuple[str, str]]:
    """``(label, question cell text)`` of every written answer of a built student notebook
    (:func:`built_student`), in order.

    The label is the exercise number the builder recorded in the answer cell's metadata, e.g.
    ``"5.2 (written)"``; the question is the cell above it.
    """
    found = []
    for index, cell in enumerate(student.cells):
        if is_written_answer(cell):
            question = student.cells[index - 1].source if index else ""
            found += [(f"{number} (written)", question) for number in cell_exercises(cell)]
    return found


def _answer_rows(nb, student, name: str) -> list[Row]:
    """A row per written answer of the built ``student`` notebook: whether the submission
    ``nb`` fills in the "Your answer here" cell under the question (found by its text)."""
    rows, start = [], 0
    cells = nb.cells
    for label, question in written_answers(student):
        at = next((i for i in range(start, len(cells)) if cells[i].source == question), None)
        if at is None or at + 1 >= len(cells):
            rows.append(Row(name, label, "not found", "its question cell was changed or "
                            "deleted, so the answer cannot be located: read the notebook"))
            continue
        start = at + 1
        answer = cells[at + 1].source.replace(ANSWER_PROMPT, "").strip()
        rows.append(Row(name, label, "answered" if answer else "not answered",
                        "" if answer else "the 'Your answer here' cell was not filled in"))
    return rows


# --------------------------------------------------------------------------------------------
# running it
# --------------------------------------------------------------------------------------------


def _first_line(source: str) -> str:
    """The first non-blank line of a cell, cut to 60 characters: how a report names it."""
    line = next((x.strip() for x in source.splitlines() if x.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


def _error_line(err) -> str:
    """One line for an error: ``Name: message`` of a cell's exception, else its last line."""
    ename, evalue = getattr(err, "ename", ""), getattr(err, "evalue", "")
    if ename:
        return f"{ename}: {(evalue.strip().splitlines() or [''])[0][:200]}"
    return (str(err).strip().splitlines() or [type(err).__name__])[-1][:200]


def exercise_cells(nb, student) -> dict[int, list[str]]:
    """``{cell index in nb: [exercise numbers]}`` of the cells of a submission ``nb`` that
    check the student's own exercises.

    The built ``student`` notebook (:func:`built_student`) says which of its cells hold which
    exercises (the numbers the builder recorded in their metadata); the submission's cell is
    the one holding that cell's check call lines (e.g. ``flux_to_magnitude =
    ex.check_flux_to_magnitude(flux_to_magnitude)``). A notebook may call a check elsewhere
    too (notebook 00 shows a failing check on purpose): only these cells count for the grade.
    """
    found: dict[int, list[str]] = {}
    for cell in student.cells:
        numbers = cell_exercises(cell)
        if cell.cell_type != "code" or not numbers:
            continue
        calls = [x.strip() for x in cell.source.splitlines() if re.search(r"\bex\.check_\w+\(", x)]
        for index, mine in enumerate(nb.cells):
            lines = {x.strip() for x in mine.source.splitlines()}
            if mine.cell_type == "code" and calls and all(c in lines for c in calls):
                found.setdefault(index, []).extend(numbers)
                break
    return found


def _forget(numbers: list[str]) -> str:
    """Kernel code that drops earlier outcomes of these exercises (from a demo cell)."""
    return ("import phys555_cl.exercises.core as _phys555_grading\n"
            f"for _n in {numbers!r}:\n    _phys555_grading.RESULTS.pop(_n, None)\n"
            "del _phys555_grading, _n")


def run_notebook(nb, workdir: Path, results_file: Path, timeout: float,
                 graded: dict[int, list[str]] | None = None) -> tuple[str | None, set[str]]:
    """Execute ``nb`` (in memory) in a fresh fast-mode kernel in ``workdir``; stop at the
    first cell that fails other than by a failed exercise check, or at ``timeout`` seconds.

    ``graded``: :func:`exercise_cells`; before such a cell runs, earlier outcomes of its
    exercises are forgotten, so the results file holds what the student's own cell found.
    Returns (None when every cell ran, else why the run stopped in one line; the exercise
    numbers whose cells ran).
    """
    # deferred: nbclient is slow to import, and only running a notebook needs it
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    graded = graded or {}
    env = {**os.environ, "PHYS555_FAST": "1", "PHYS555_QUIET": "1", "MPLBACKEND": "Agg",
           RESULTS_FILE_ENV: str(results_file)}
    client = NotebookClient(nb, timeout=max(1, int(timeout)), kernel_name="python3",
                            shutdown_kernel="immediate", allow_errors=False,
                            resources={"metadata": {"path": str(workdir)}})
    deadline = time.monotonic() + timeout
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    ran: set[str] = set()
    try:
        # the kernel's own log (e.g. ipykernel's note on TCP transport) is noise here; cell
        # output and errors come back through the notebook protocol, not this stream
        with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):
            for number, (index, cell) in enumerate(code, start=1):
                where = f"code cell {number} (`{_first_line(cell.source)}`)"
                left = deadline - time.monotonic()
                if left <= 0:
                    return f"stopped at the {timeout:g} s timeout before {where}", ran
                client.timeout = max(1, int(left))
                try:
                    if index in graded:
                        client.execute_cell(nbformat.v4.new_code_cell(_forget(graded[index])),
                                            index)
                        results_file.unlink(missing_ok=True)
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    return (f"stopped at the {timeout:g} s timeout in {where} (it was still "
                            f"running: an endless loop, or normal-mode sizes?)"), ran
                except CellExecutionError as err:
                    if err.ename != "CheckFailed":  # a wrong exercise is recorded: go on
                        return f"{where} raised {_error_line(err)}", ran
                ran.update(graded.get(index, []))
    except DeadKernelError as err:
        return (f"the kernel died ({_error_line(err)}): the notebook ran out of memory or "
                f"exited"), ran
    except RuntimeError as err:  # the kernel did not start
        return f"the kernel could not run it: {_error_line(err)}", ran
    return None, ran


def _exercise_rows(name: str, src: Path, found: dict, graded: dict[int, list[str]],
                   ran: set[str], stopped: str | None) -> list[Row]:
    """A row per exercise checked in ``src``'s notebook, from the checks' recorded outcomes
    ``found`` (see :func:`grade_notebook`; ``graded``, ``ran`` and ``stopped`` as
    :func:`run_notebook` used and returned them)."""
    rows = []
    located = {n for numbers in graded.values() for n in numbers}
    for number in exercises_of(src):
        result = found.get(number)
        if number in located and number not in ran:
            result = None  # an outcome from a demo cell, not from the student's own cell
        if result is not None:
            rows.append(Row(name, number, result["status"],
                            result["message"] if result["status"] == "wrong" else "",
                            int(result.get("hints_used") or 0)))
        elif stopped:
            rows.append(Row(name, number, "not run", f"its check never ran: {stopped}"))
        else:
            rows.append(Row(name, number, "not run",
                            f"its check never ran although every cell did: the line that "
                            f"checks Exercise {number} (`... = ex.check_...(...)`) was removed "
                            f"or changed"))
    return rows


def grade_notebook(path: Path, timeout: float = DEFAULT_TIMEOUT,
                   built: dict | None = None) -> list[Row]:
    """Grade one submitted notebook; returns its rows (the notebook row first).

    ``built``: the student notebooks already built in this grading run (see
    :func:`built_student`); the notebook's source is built at most once.
    """
    built = {} if built is None else built
    path = Path(path)
    name = str(path)  # students' files often share a name: the path tells them apart
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        src, version_note = identify(nb, path, built)
    except NotGradable as err:
        return [Row(name, NOTEBOOK_ROW, "not graded", str(err))]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return [Row(name, NOTEBOOK_ROW, "not graded",
                    f"cannot be read as a notebook ({_error_line(err)}): ask the student for the "
                    f".ipynb file they worked in")]
    student = built_student(src, built)
    started = time.perf_counter()
    graded = exercise_cells(nb, student)
    with tempfile.TemporaryDirectory(prefix="phys555-grade-") as tmp:
        copy = Path(tmp) / path.name  # the student's code runs beside a copy, never the original
        copy.write_bytes(path.read_bytes())
        results_file = Path(tmp) / "check_results.json"
        stopped, ran = run_notebook(nb, Path(tmp), results_file, timeout, graded)
        try:
            found = json.loads(results_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = {}
    seconds = time.perf_counter() - started
    if stopped:
        status = "timed out" if "timeout" in stopped else "stopped"
        rows = [Row(name, NOTEBOOK_ROW, status, f"{stopped} after {seconds:.0f} s; the "
                    f"exercises after it are not run")]
    else:
        rows = [Row(name, NOTEBOOK_ROW, "ran", f"every cell ran ({seconds:.0f} s, fast mode)")]
    if version_note:
        rows.append(Row(name, NOTEBOOK_ROW, "other version", version_note))
    rows += _exercise_rows(name, src, found, graded, ran, stopped)
    return rows + _answer_rows(nb, student, name)


def grade(paths: list[Path], timeout: float = DEFAULT_TIMEOUT, csv_path: Path | None = None,
          echo=print) -> list[Row]:
    """Grade every notebook in ``paths``; print a report per notebook (through ``echo``);
    write the CSV (columns :data:`COLUMNS`) when ``csv_path`` is given; return every row.

    Each course notebook is built once for the whole run, however many submissions share it.

    Raises:
        OSError: the CSV cannot be written.
    """
    rows: list[Row] = []
    built: dict = {}  # {source: its student notebook}, shared by every submission
    for path in paths:
        if not Path(path).is_file():
            found = [Row(str(path), NOTEBOOK_ROW, "not graded",
                         f"no such file: {path}")]
        else:
            echo(f"grading {path} ...")
            found = grade_notebook(Path(path), timeout, built)
        for row in found:
            hints = f"{row.hints} hint{'s' * (row.hints != 1)}" if row.hints else ""
            echo(f"  {row.exercise:<16} {row.status:<13} {hints:<8} {row.message}".rstrip())
        rows += found
    if csv_path is not None:
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows([r.notebook, r.exercise, r.status, r.hints, r.message]
                             for r in rows)
        echo(f"wrote {csv_path} ({len(rows)} rows)")
    return rows
