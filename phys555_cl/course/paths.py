"""Where the course's files live: sources, student notebooks, build folders, recorded outputs."""

from __future__ import annotations

from pathlib import Path

from phys555_cl.project import REPO

__all__ = ["COURSE_OUT", "EXPECTED", "NBVAL_OUT", "NOTEBOOKS", "REPO", "SOLUTIONS", "SOURCES",
           "shown", "sources"]

NOTEBOOKS = REPO / "notebooks"  # the student notebooks, generated and committed
SOURCES = NOTEBOOKS / "source"  # the one source of each notebook, with solutions
SOLUTIONS = REPO / "build" / "solutions"
COURSE_OUT = REPO / "build" / "course"  # `course run`: executed notebooks and HTML
NBVAL_OUT = REPO / "build" / "nbval"  # `course nbval-copies`: what nbval runs
EXPECTED = SOURCES / "expected_outputs.json"  # the recorded outputs of the checked cells


def sources(source_dir: Path = SOURCES) -> list[Path]:
    """The notebook sources ``NN_topic.py`` of ``source_dir``, in course order."""
    return sorted(p for p in Path(source_dir).glob("[0-9][0-9]_*.py"))


def shown(path: Path) -> Path:
    """``path`` as a message shows it: relative to the repository when it is inside it."""
    path = Path(path)
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path
