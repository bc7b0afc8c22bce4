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
import sys
from pathlib import Path

from phys555_cl.course.builder import build, leaks, stale
from phys555_cl.course.colab import CourseConfigError
from phys555_cl.course.grading import DEFAULT_TIMEOUT, NOTEBOOK_ROW, grade
from phys555_cl.course.markers import MarkerError
from phys555_cl.course.paths import COURSE_OUT, NBVAL_OUT, SOLUTIONS, shown, sources
from phys555_cl.course.runner import missing_records, nbval_copies, record, run
from phys555_cl.course.updater import UpdateError, update

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per job (see this module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m phys555_cl.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the student and solution notebooks")
    b.add_argument("--solutions", type=Path, default=SOLUTIONS,
                   help=f"where solution notebooks go (default {shown(SOLUTIONS)})")
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
    g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds per notebook before it is stopped (default {DEFAULT_TIMEOUT})")
    return parser


def _report(title: str, items, advice: str) -> None:
    """Print ``title``, each of ``items`` and ``advice`` to stderr; nothing when no items."""
    if items:
        print(title, file=sys.stderr)
        for p in items:
            print(f"  {p}", file=sys.stderr)
        print(advice, file=sys.stderr)


def _cmd_check() -> int:
    """``check``: 1 (and what to do) when a student notebook leaks solution text, is stale or
    missing, or a checked cell has no recorded output; else 0."""
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
    """``update``: take the new course version; 1 (with the reason) when it cannot be taken."""
    try:
        kept = update()
    except UpdateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for notebook, copy in kept:
        print(f"{notebook.name} has your edits: a copy is kept as {shown(copy)}")
    print(f"Course updated. {len(kept)} notebook(s) you changed are backed up in "
          f"{shown(kept[0][1].parent)}/" if kept else "Course updated. You had not changed any "
          "notebook: no backups were needed.")
    return 0


def _cmd_grade(parser, args) -> int:
    """``grade``: 1 when a file could not be graded, else 0; exits 2 for a bad ``--timeout``."""
    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    rows = grade(args.notebooks, timeout=args.timeout, csv_path=args.csv)
    return 1 if any(r.exercise == NOTEBOOK_ROW and r.status == "not graded" for r in rows) else 0


def main(argv: list[str] | None = None) -> int:
    """Run one command (``argv``, default ``sys.argv[1:]``); return the exit status: 0 done,
    1 a problem found or a step failed, 2 a broken source or course setting (one ``error:``
    line on stderr)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            written = build(solution_dir=args.solutions, write_student=not args.no_student)
            for path in written:
                print(f"wrote {shown(path)}")
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
                print(f"wrote {shown(path)}")
            return 0
        return 1 if run(args.out, args.only) else 0
    except (MarkerError, CourseConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
