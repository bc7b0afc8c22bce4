"""The notebook system: one source per notebook, a student version and a solution version.

One module per job:

- ``paths``: where sources, student notebooks, build folders and recorded outputs live;
- ``markers``: the solution markers of a source, parsed and checked (``find_regions``);
- ``builder``: the student and solution notebooks (``build_pair``, ``build``; each exercise
  cell records its exercise numbers in its metadata, ``cell_exercises``), and whether the
  committed ones are fresh (``stale``) and free of solution text (``leaks``);
- ``colab``: the "Open in Colab" badge and setup cell (``cloud_run`` from pyproject.toml);
- ``updater``: taking a new course version with backups first (``update``);
- ``runner``: headless runs with HTML (``run``), the checked cells' recorded outputs
  (``record``) and the copies nbval tests (``nbval_copies``);
- ``grading``: grading submitted student notebooks (``grade``), the exercises located by the
  numbers the builder recorded;
- ``cli`` and ``__main__``: ``python -m phys555_cl.course build|check|run|record|nbval-copies|
  update|grade`` (``make notebooks``, ``make test``, ``make course``...).

The names below are the package's public interface, e.g. ``course.build_pair(source)``.
"""

from phys555_cl.course.builder import (
    ANSWER_PROMPT,
    META,
    STUDENT_NOTE,
    build,
    build_pair,
    cell_exercises,
    edited_by_student,
    is_written_answer,
    leaks,
    notebook_number,
    stale,
)
from phys555_cl.course.cli import main
from phys555_cl.course.colab import (
    COLAB_BADGE,
    FROM_PYPROJECT,
    CloudRun,
    CourseConfigError,
    cloud_run,
    colab_setup_code,
)
from phys555_cl.course.markers import MarkerError, Region, find_regions, solution_lines
from phys555_cl.course.paths import (
    COURSE_OUT,
    EXPECTED,
    NBVAL_OUT,
    NOTEBOOKS,
    REPO,
    SOLUTIONS,
    SOURCES,
    sources,
)
from phys555_cl.course.runner import (
    CHECK_MARK,
    checked_cells,
    load_expected,
    missing_records,
    nbval_copies,
    record,
    run,
)
from phys555_cl.course.updater import UpdateError, update

__all__ = [
    "ANSWER_PROMPT", "CHECK_MARK", "COLAB_BADGE", "COURSE_OUT", "EXPECTED", "FROM_PYPROJECT",
    "META", "NBVAL_OUT", "NOTEBOOKS", "REPO", "SOLUTIONS", "SOURCES", "STUDENT_NOTE",
    "CloudRun", "CourseConfigError", "MarkerError", "Region", "UpdateError", "build",
    "build_pair", "cell_exercises", "checked_cells", "cloud_run", "colab_setup_code",
    "edited_by_student", "find_regions", "is_written_answer", "leaks", "load_expected", "main",
    "missing_records", "nbval_copies", "notebook_number", "record", "run", "solution_lines",
    "sources", "stale", "update",
]
