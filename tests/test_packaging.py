"""The install files agree with each other and CI runs the README's test command."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = _pyproject()["project"]
    wanted = {r.strip() for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "phys555-cl"
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {r.strip() for r in pip_section if not r.startswith("-e")}
    in_env, in_project = {_name(r) for r in listed}, {_name(r) for r in wanted}
    assert in_env == in_project, (
        "environment.yml and pyproject.toml name different packages: only in environment.yml "
        f"{sorted(in_env - in_project)}, only in pyproject.toml {sorted(in_project - in_env)}"
    )
    assert listed == wanted, "version bounds differ between environment.yml and pyproject.toml"
    assert any(r.startswith("-e .") for r in pip_section), "environment.yml must install us"


def test_pyproject_admits_the_course_torch_build_and_has_the_extras():
    project = _pyproject()["project"]
    assert project["requires-python"] == ">=3.10"
    deps = {_name(r): r for r in project["dependencies"]}
    for needed in ["torch", "torchvision", "numpy", "matplotlib", "scikit-learn", "umap-learn",
                   "astropy", "scikit-image", "h5py", "tqdm", "ipywidgets", "jupyterlab",
                   "jupytext", "nbval", "nbformat", "nbclient"]:
        assert needed in deps, f"{needed} missing from pyproject.toml dependencies"
    assert deps["torch"] == "torch>=2.4"
    extras = project["optional-dependencies"]
    assert {_name(r) for r in extras["dev"]} >= {"pytest", "ruff"}
    assert {_name(r) for r in extras["bench"]} >= {"lightly", "pytorch-metric-learning"}


def test_ci_workflow_runs_make_test_on_python_311():
    workflow = yaml.safe_load((ROOT / ".github/workflows/notebooks.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    runs = [s.get("run", "") for s in steps]
    assert any(line.strip() == "make test" for r in runs for line in r.splitlines())
    versions = [s["with"]["python-version"] for s in steps if "setup-python" in s.get("uses", "")]
    assert versions == ["3.11"]
    assert any("ubuntu" in job["runs-on"] for job in workflow["jobs"].values())


def test_ci_script_calls_make_test():
    script = (ROOT / ".ci/run").read_text()
    assert "make test" in script


def test_makefile_has_the_readme_targets():
    makefile = (ROOT / "Makefile").read_text()
    for target in ["course", "test", "lab", "notebooks"]:
        assert re.search(rf"^{target}:", makefile, re.M), f"make {target} is missing"
    readme = (ROOT / "README.md").read_text()
    for command in ["make course", "make test", "make lab"]:
        assert command in readme
