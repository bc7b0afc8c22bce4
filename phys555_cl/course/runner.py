"""Running the course's notebooks: headless runs with HTML, the checked cells' recorded outputs,
and the copies nbval tests.

Checked cells: a code cell whose first line is ``# NBVAL_CHECK_OUTPUT`` must print the same
thing in every run. Sources cannot hold outputs, so :func:`record` executes the solution
notebooks in fast mode and stores those cells' outputs in ``notebooks/source/
expected_outputs.json`` (keyed by the cell's text, so editing a checked cell asks for a new
recording). For the tests, :func:`nbval_copies` writes the student and solution notebooks with
the recorded outputs filled in, and nbval compares every checked cell against them
(``--nbval-lax`` checks only those cells). :func:`run` executes every solution notebook and
renders it to HTML (``make course``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import nbformat

from phys555_cl import config
from phys555_cl.course.builder import build_pair, dumps
from phys555_cl.course.markers import MarkerError
from phys555_cl.course.paths import COURSE_OUT, EXPECTED, NBVAL_OUT, NOTEBOOKS, SOURCES, sources
from phys555_cl.fileio import atomic_write_text

__all__ = ["CHECK_MARK", "checked_cells", "load_expected", "missing_records", "nbval_copies",
           "record", "run"]

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


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
    # deferred: nbclient is slow to import, and only running a notebook needs it
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
    """The outputs nbval compares (stdout and plain-text results), in the form it stores."""
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            kept.append({"output_type": "stream", "name": "stdout", "text": out["text"]})
        elif out.get("output_type") == "execute_result" and "text/plain" in out.get("data", {}):
            kept.append({"output_type": "execute_result", "execution_count": 1, "metadata": {},
                         "data": {"text/plain": out["data"]["text/plain"]}})
    return kept


def record(only: list[str] | None = None, path: Path = EXPECTED) -> int:
    """Execute solution notebooks in fast mode and store their checked cells' outputs in
    ``path``; ``only``: notebook numbers or names (``["03", "05"]``), default all.

    Returns the number of notebooks that failed (their earlier records are kept).

    Raises:
        MarkerError: a source's markers are broken.
    """
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
    """Checked cells of the sources that have no recorded output, one line each.

    Raises:
        MarkerError: a source's markers are broken.
    """
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
    """Write the student and solution notebooks with the recorded outputs in their checked
    cells to ``out_dir/student/`` and ``out_dir/solutions/``; return the written paths.

    Raises:
        MarkerError: a checked cell has no recorded output (run ``make record``), or a
            source's markers are broken.
    """
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
            atomic_write_text(target, dumps(nb))
            written.append(target)
    return written


def run(out_dir: Path = COURSE_OUT, only: list[str] | None = None,
        timeout: int | None = None) -> int:
    """Execute every solution notebook in order, headless; write executed copies and HTML.

    ``only``: notebook numbers or names (``["03", "05"]``), default all; ``timeout``: seconds
    per cell (default 300 in fast mode, 1800 in normal mode). Prints a summary table; returns
    the number of notebooks that failed.

    Raises:
        MarkerError: a source's markers are broken.
    """
    from nbconvert import HTMLExporter  # deferred: slow to import, and only `run` needs it

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
        atomic_write_text(out_dir / f"{src.stem}.ipynb", dumps(nb))
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
