"""Taking a new course version (``git pull``) without losing or breaking a student's notebook.

``python -m phys555_cl.course update`` (``make update``) backs up every student notebook whose
cells were changed, sets uncommitted notebook changes aside, then fetches and merges; see
:func:`update`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from phys555_cl.course.builder import backup, edited_by_student
from phys555_cl.course.paths import REPO

__all__ = ["UpdateError", "update"]


class UpdateError(RuntimeError):
    """The course update could not be taken; the message says why and what to do."""


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``git ARGS`` in ``repo``, output captured.

    Raises:
        UpdateError: git failed and ``check`` is true (the message quotes git's last line).
    """
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and result.returncode:
        raise UpdateError(f"`git {' '.join(args)}` failed: "
                          f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return result


def update(repo: Path = REPO) -> list[tuple[Path, Path]]:
    """Take the new course version (``git pull``) without losing or breaking any notebook.

    1. Every student notebook whose cells you changed is copied to ``notebooks/backups/``
       (as ``make notebooks`` does); notebooks you only ran are not.
    2. Uncommitted changes to ``notebooks/NN_topic.ipynb`` are set aside (the copies keep
       them), so ``git pull`` does not refuse.
    3. The new version is fetched and merged; if you committed your own changes, the student
       notebooks are taken from the course (your versions are in the backups), so no
       notebook is left with merge conflict markers that JupyterLab cannot open.

    Returns ``(notebook, backup copy)`` pairs.

    Raises:
        UpdateError: (nothing merged) ``repo`` is not a git clone with an upstream, a git step
            failed, or the merge conflicts outside the notebooks.
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
    kept = [(nb, backup(nb)) for nb in student if edited_by_student(nb)]
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
