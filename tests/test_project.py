"""The repository's root and its pyproject.toml, read in one place (phys555_cl.project)."""

from __future__ import annotations

import sys

import pytest

from phys555_cl import config, project

TOML = """[project]
name = 'x'
license = { text = "MIT" }
authors = [{ name = "someone" }]
dependencies = [
    "torch>=2.4",  # a comment with "quotes"
    # "not a dependency"
    "tqdm",
]

[project.optional-dependencies]
dev = ["pytest>=7.4", "galsim>=2.5; sys_platform != 'win32'"]

[project.urls]
Repository = "https://github.com/OWNER/phys555-cl"

[tool.phys555]
branch = "2026"  # the badges' branch
"""


def test_the_root_holds_the_package_and_pyproject():
    assert (project.REPO / "phys555_cl" / "project.py").is_file()
    assert project.PYPROJECT == project.REPO / "pyproject.toml" and project.PYPROJECT.is_file()


def test_data_lives_under_the_root(monkeypatch):
    monkeypatch.delenv("PHYS555_DATA", raising=False)
    assert config.data_dir() == str(project.REPO / "data")


def _leaves(tree: dict, keys: tuple = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*keys, key))
        else:
            yield (*keys, key), value


@pytest.mark.parametrize("path", ["course's", "example"])
def test_without_tomllib_the_settings_the_course_reads_are_the_same(tmp_path, monkeypatch, path):
    if path == "example":
        (tmp_path / "pyproject.toml").write_text(TOML, encoding="utf-8")
        path = tmp_path / "pyproject.toml"
    else:
        path = project.PYPROJECT
    full = project.read_pyproject(path)
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10
    subset = project.read_pyproject(path)
    for keys, value in _leaves(subset):  # everything it reads, it reads as tomllib does
        node = full
        for key in keys:
            node = node[key]
        assert node == value, keys
    assert subset["project"]["dependencies"] == full["project"]["dependencies"]
    assert subset["project"]["optional-dependencies"] == full["project"]["optional-dependencies"]
    assert "authors" not in subset["project"] and "license" not in subset["project"]
    if path != project.PYPROJECT:
        assert subset["project"]["urls"] == {"Repository": "https://github.com/OWNER/phys555-cl"}
        assert subset["tool"] == {"phys555": {"branch": "2026"}}
