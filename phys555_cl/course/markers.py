"""The solution markers of a notebook source, parsed and checked.

In ``notebooks/source/NN_topic.py`` an exercise's solution sits between ``### BEGIN SOLUTION``
and ``### END SOLUTION`` (``# ### ...`` in a markdown cell); an optional ``### HINT: text`` line
right above ``### BEGIN SOLUTION`` gives the hint. A marker that is misspelled, unbalanced,
nested or misplaced stops the build with ``file:line``, since it would otherwise copy a solution
into the student notebook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MarkerError", "Region", "find_regions", "line_key", "parse_marker",
           "solution_lines"]

# The markers, exactly: "### BEGIN SOLUTION" / "### END SOLUTION" (three #, capitals, nothing
# after), "# ### ..." inside a markdown cell, and "### HINT: text" directly above a BEGIN.
_MARKER = re.compile(r"^(?P<indent>\s*)(?:#\s+)?###\s?(?:(?P<kind>BEGIN SOLUTION|END SOLUTION)\s*"
                     r"|(?P<hint>HINT:)(?P<rest>.*))$")
# Anything that looks like one (any case, any number of #, stray words) but is not: an error,
# since a misspelled marker would copy its solution into the student notebook.
_NEAR_MISS = re.compile(r"^\s*#[#\s]*(?:begin|end)[\s_-]*solutions?\b", re.IGNORECASE)
_CELL = re.compile(r"^# %%")


class MarkerError(ValueError):
    """Unbalanced, nested or misplaced solution markers; the message names file and line."""


@dataclass
class Region:
    """One solution region of a source file: the lines of its BEGIN and END markers (1-based)
    and its hint (None without a ``### HINT:`` line)."""

    begin: int
    end: int
    hint: str | None


def parse_marker(line: str) -> dict | None:
    """``{"kind", "indent", "rest"}`` of a marker line, or None for any other line.

    ``kind`` is ``"BEGIN SOLUTION"``, ``"END SOLUTION"`` or ``"HINT:"``; ``indent`` the
    marker's indentation; ``rest`` the hint's text (``""`` for the other two).
    """
    m = _MARKER.match(line)
    if not m:
        return None
    return {"kind": m["kind"] or "HINT:", "indent": m["indent"], "rest": m["rest"] or ""}


def find_regions(text: str, filename: str = "<source>") -> list[Region]:
    """Validate the markers of a source file and list its solution regions, in order.

    Raises:
        MarkerError: naming ``filename:line`` for a nested ``BEGIN``, an ``END`` without
            ``BEGIN``, a region left open at a cell boundary or at the end of the file, a
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
        m = parse_marker(line)
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


def line_key(line: str) -> str:
    """A line as it reads in a code or markdown cell: no indentation, no leading ``#``."""
    return line.strip().lstrip("#").strip()


def solution_lines(text: str, filename: str = "<source>") -> dict[str, int]:
    """The lines that exist only inside solution regions: ``{line key: source line}``.

    Lines that also appear outside every region (``return x``, blank lines, ...) are left out:
    they belong in the student notebook too.

    Raises:
        MarkerError: the markers of ``text`` are broken (see :func:`find_regions`).
    """
    lines = text.splitlines()
    inside: dict[str, int] = {}
    in_region = set()
    for region in find_regions(text, filename):
        for lineno in range(region.begin + 1, region.end):
            in_region.add(lineno)
            inside.setdefault(line_key(lines[lineno - 1]), lineno)
    outside = {line_key(line) for n, line in enumerate(lines, 1) if n not in in_region}
    return {key: n for key, n in inside.items() if key and key not in outside}
