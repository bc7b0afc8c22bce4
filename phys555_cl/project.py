"""The repository's own facts, in one place: where its root is and what ``pyproject.toml`` says.

``REPO`` is the folder that holds ``phys555_cl/``, ``notebooks/``, ``data/`` and
``pyproject.toml`` (the course is installed with ``pip install -e``, so the package never moves
away from them). :func:`read_pyproject` is the one reader of ``pyproject.toml``: the standard
library's ``tomllib`` where there is one (Python 3.11+), else a parser for the small part of
TOML the course reads (tables, strings, arrays of strings), since the course supports 3.10.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["CHECK_RESULTS_ENV", "PYPROJECT", "REPO", "read_pyproject"]

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = REPO / "pyproject.toml"
#: Environment variable naming the JSON file every exercise check rewrites with its results
#: (read by ``phys555_cl.course.grading``; here so that grading need not import torch).
CHECK_RESULTS_ENV = "PHYS555_CHECK_RESULTS"

_TABLE = re.compile(r"^\[\s*([\w.-]+)\s*\]\s*(?:#.*)?$")
_KEY = re.compile(r"^([\w-]+)\s*=\s*(.*)$")
# one token of a value: a "string", a 'string', a comment, the end of an array, an inline table
_TOKEN = re.compile(r"\"([^\"]*)\"|'([^']*)'|(#.*)|(\])|(\{)")


def read_pyproject(path: Path | str = PYPROJECT) -> dict:
    """``pyproject.toml`` as nested dicts, e.g. ``read_pyproject()["project"]["dependencies"]``.

    On Python 3.10 (no ``tomllib``) only tables, ``key = "string"`` and arrays of strings
    (``key = ["a", "b"]``, over several lines too) are read; anything else is left out.

    Raises:
        OSError: the file cannot be read.
        tomllib.TOMLDecodeError: the file is not valid TOML (Python 3.11+).
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        import tomllib  # stdlib from 3.11; looked up per call, so a test can hide it as on 3.10
    except ModuleNotFoundError:
        return _read_toml_subset(text)
    return tomllib.loads(text)


def _array(first: str, lines) -> list[str] | None:
    """The strings of an array whose text starts with ``first`` (after its ``[``) and may go
    on over the next of ``lines`` (an iterator); None for an array of inline tables."""
    items: list[str] = []
    line: str | None = first
    while line is not None:
        for token in _TOKEN.finditer(line):
            kind = token.lastindex  # the group that matched: 1, 2 strings, 3 comment, 4 ], 5 {
            if kind in (1, 2):
                items.append(token.group(kind))
            elif kind == 3:
                break
            else:
                return items if kind == 4 else None
        line = next(lines, None)
    return items


def _read_toml_subset(text: str) -> dict:
    """The tables, strings and arrays of strings of a TOML text (see :func:`read_pyproject`)."""
    found: dict = {}
    table = found
    lines = iter(text.splitlines())
    for line in lines:
        line = line.strip()
        header, pair = _TABLE.match(line), _KEY.match(line)
        if header:
            table = found
            for part in header.group(1).split("."):
                table = table.setdefault(part, {})
        elif pair and pair.group(2).startswith("["):
            items = _array(pair.group(2)[1:], lines)
            if items is not None:
                table[pair.group(1)] = items
        elif pair:
            value = _TOKEN.match(pair.group(2))
            if value and value.lastindex in (1, 2):
                table[pair.group(1)] = value.group(value.lastindex)
    return found
