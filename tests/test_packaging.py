"""The install files agree with each other and CI runs the README's test command."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not an exact pin NAME==VERSION"
            pins[_name(name)] = version
    return pins


def _env_pip_section() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "phys555-cl"
    return [r.strip() for r in next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))]


def _requirements() -> list[str]:
    project = _pyproject()["project"]
    return [r.strip() for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def test_constraints_pin_every_dependency_at_a_version_pyproject_admits():
    pins = _constraints()
    for requirement in map(Requirement, _requirements()):
        name = _name(requirement.name)
        assert name in pins, f"constraints.txt does not pin {name}: run `make constraints`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's "
            f"{requirement}: widen the range or pin a version inside it"
        )
    assert "phys555-cl" not in pins, "constraints.txt must not pin the course package itself"


def test_constraints_keep_the_course_torch_build():
    pins = _constraints()
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")


def test_environment_yml_pins_pyprojects_packages_at_the_constraints_versions():
    pins = _constraints()
    pip_section = _env_pip_section()
    listed = {_name(r): r for r in pip_section if not r.startswith("-")}
    in_project = {_name(r) for r in _requirements()}
    assert set(listed) == in_project, (
        "environment.yml and pyproject.toml name different packages: only in environment.yml "
        f"{sorted(set(listed) - in_project)}, only in pyproject.toml "
        f"{sorted(in_project - set(listed))}"
    )
    wrong = {name: (req, pins.get(name)) for name, req in listed.items()
             if req.split(";")[0].strip() != f"{req.split('==')[0]}=={pins.get(name)}"}
    assert not wrong, ("environment.yml pins other versions than constraints.txt "
                       f"(environment.yml, constraints.txt): {wrong}")
    assert "-c constraints.txt" in pip_section, "environment.yml must install with the constraints"
    assert any(r.startswith("-e .") for r in pip_section), "environment.yml must install us"


def test_environment_yml_python_is_the_tested_one():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    header = (ROOT / "constraints.txt").read_text()
    tested = re.search(r"Python (\d+\.\d+)", header).group(1)
    assert python == f"python={tested}"


def _dry_run(*args: str) -> str:
    result = subprocess.run(["make", "-n", "-B", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _pip_installs(dry_run: str) -> list[str]:
    joined = dry_run.replace("\\\n", " ")
    return [line for line in joined.splitlines() if "pip install" in line]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_setup_installs_the_tested_versions_by_default():
    (install,) = _pip_installs(_dry_run("setup"))
    assert "-c constraints.txt" in install and '-e ".[dev]"' in install
    (free,) = _pip_installs(_dry_run("setup", "CONSTRAINTS="))
    assert "-c " not in free


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_latest_upgrades_a_separate_environment_without_constraints_and_tests_it():
    dry = _dry_run("latest")
    installs = _pip_installs(dry)
    assert installs and all(".venv-latest/bin/python -m pip" in i for i in installs)
    assert all("--upgrade" in i and "-c " not in i for i in installs)
    assert ".venv-latest/bin/python -m phys555_cl.course check" in dry
    assert ".venv-latest/bin/python -m pytest" in dry and ".venv/bin" not in dry


def _workflow(name: str) -> dict:
    workflow = yaml.safe_load((ROOT / ".github/workflows" / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as True
    return workflow


def test_scheduled_workflow_tries_the_newest_versions():
    workflow = _workflow("latest.yml")
    assert workflow["on"]["schedule"][0]["cron"]
    runs = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    assert any(line.strip() == "make latest" for r in runs for line in r.splitlines())
    assert not any("constraints.txt" in r for r in runs)


def test_ci_installs_torch_at_the_tested_version():
    runs = [s.get("run", "") for job in _workflow("notebooks.yml")["jobs"].values()
            for s in job["steps"]]
    torch_line = next(r for r in runs if "torch" in r)
    assert "-c constraints.txt" in torch_line


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


def test_notebook_00_asks_for_what_pyproject_asks_for(tmp_path):
    from phys555_cl import config

    deps = _pyproject()["project"]["dependencies"]
    expected = {Requirement(d).name: str(next(iter(Requirement(d).specifier))).removeprefix(">=")
                for d in deps}
    assert config.required_versions() == expected  # from the installed metadata
    # a checkout that was never pip-installed reads pyproject.toml itself, extras left out
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = [\n  "torch>=2.4",\n  "tqdm",\n]\n'
        '[project.optional-dependencies]\ndev = ["pytest>=7.4"]\n')
    assert config._dependencies_in_pyproject(str(tmp_path / "pyproject.toml")) == ["torch>=2.4",
                                                                                  "tqdm"]
