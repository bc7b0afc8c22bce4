"""Cloud run on Google Colab: the "Open in Colab" badge and the setup cell of student notebooks.

When ``pyproject.toml`` names the course repository (``[project.urls] Repository``, and
optionally ``[tool.phys555] branch``), every student notebook starts with an "Open in Colab"
badge (for a github.com repository) and its first code cell sets the course up on Colab (clone,
install, change into it); that cell does nothing anywhere else. Without a repository URL there
is neither.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from phys555_cl.project import PYPROJECT, read_pyproject

__all__ = ["COLAB_BADGE", "COLAB_SETUP", "FROM_PYPROJECT", "CloudRun", "CourseConfigError",
           "FromPyproject",
           "add_cloud_run", "chosen_cloud_run", "cloud_run", "colab_setup_code"]

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
    ``[tool.phys555] branch``, default ``main``), or None when no repository is named.

    Raises:
        CourseConfigError: ``Repository`` is not something ``git clone`` can be given.
        OSError: ``pyproject`` cannot be read.
    """
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


class FromPyproject:
    """The type of :data:`FROM_PYPROJECT`."""

    def __repr__(self) -> str:
        return "FROM_PYPROJECT"


#: ``cloud=`` default of the builders: read :func:`cloud_run` from ``pyproject.toml``.
FROM_PYPROJECT = FromPyproject()


def chosen_cloud_run(cloud: CloudRun | None | FromPyproject) -> CloudRun | None:
    """``cloud`` itself, or :func:`cloud_run` of ``pyproject.toml`` for :data:`FROM_PYPROJECT`.

    Raises:
        CourseConfigError: see :func:`cloud_run`.
    """
    return cloud_run() if isinstance(cloud, FromPyproject) else cloud


def add_cloud_run(student, cloud: CloudRun, name: str) -> None:
    """Give a student notebook (nbformat, changed in place) the Colab setup cell as its first
    code cell and, for a github.com repository, the "Open in Colab" badge on top; ``name`` is
    the notebook's ``NN_topic``."""
    first_code = next((i for i, c in enumerate(student.cells) if c.cell_type == "code"),
                      len(student.cells))
    student.cells.insert(first_code, nbformat.v4.new_code_cell(colab_setup_code(cloud)))
    url = cloud.badge_url(name)
    if url:
        student.cells.insert(0, nbformat.v4.new_markdown_cell(
            f"[![Open In Colab]({COLAB_BADGE})]({url})"))
