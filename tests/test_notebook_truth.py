"""Every number a notebook's prose discusses is printed by the run, or cites where it comes from.

A markdown cell that states a measured quantity literally ("accuracy 0.83", "R² = 0.08", "+1.5
points", "thousands of times slower") goes stale the moment the simulator, the model or the
machine changes, and a student then reads a sentence that the output above it contradicts.
The prose should point at the printed value ("the accuracy above") or cite the file and the
command that reproduce it (`data/pretrained/README.md`, `python -m ...`, `benchmarks/...`).
This test flags the guarded phrases in markdown cells that cite nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SOURCES = sorted((Path(__file__).parents[1] / "notebooks" / "source").glob("[0-9][0-9]_*.py"))

#: Phrases that state a measured number; extend the list when a new kind slips through.
GUARDED = [
    (r"\baccurac(?:y|ies)\s+(?:of\s+|is\s+|was\s+|gave\s+|around\s+)?\d?\.\d", "an accuracy"),
    (r"\b\d\.\d+\s+against\s+\d\.\d+", "a pair of measured values"),
    (r"R(?:²|\^2|\$\^2\$)\s*(?:=|of)\s*-?\d?\.\d", "an R^2"),
    (r"(?:rho|ρ|\\rho)[^.\n]{0,40}\b(?:from|to|of)\s+-?\d?\.\d", "a correlation"),
    (r"[+−-]\d+(?:\.\d+)?\s+points\b", "a difference in points"),
    (r"\b(?:thousands|hundreds|millions)\s+of\s+times\s+(?:slower|faster)", "a speed ratio"),
    (r"\b\d+(?:\.\d+)?\s*[x×]\s+(?:slower|faster)", "a speed ratio"),
    (r"\binterval\s+\[?[+−-]?\d", "an interval"),
    (r"\btop-1\s+(?:accuracy\s+)?(?:of\s+)?\d?\.\d", "a top-1 accuracy"),
]
#: A cell that names where its numbers come from may quote them.
CITES = re.compile(r"data/pretrained/README\.md|`python (?:-m )?[\w./]+|benchmarks/\w+\.py")


def _markdown_cells(path: Path) -> list[tuple[int, str]]:
    """(first line number, text) of each markdown cell of a jupytext percent source."""
    cells, current, start, in_markdown = [], [], 0, False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("# %%"):
            if in_markdown and current:
                cells.append((start, "\n".join(current)))
            current, start, in_markdown = [], number + 1, "[markdown]" in line
        elif in_markdown:
            current.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    if in_markdown and current:
        cells.append((start, "\n".join(current)))
    return cells


def stale_literals(path: Path) -> list[str]:
    """``file:line: phrase (what)`` for each guarded phrase in a markdown cell citing nothing."""
    found = []
    for start, text in _markdown_cells(path):
        if CITES.search(text):
            continue
        for pattern, what in GUARDED:
            for match in re.finditer(pattern, text):
                line = start + text[:match.start()].count("\n")
                found.append(f"{path.name}:{line}: '{match.group(0)}' ({what})")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem[:2] for p in SOURCES])
def test_markdown_states_no_measured_number_without_its_source(path):
    found = stale_literals(path)
    assert not found, (
        "Markdown states measured numbers literally; point at the printed value ('the "
        "accuracy above') or cite data/pretrained/README.md / the command that reproduces "
        "it:\n  " + "\n  ".join(found))


def test_the_guard_catches_the_phrases_it_is_for(tmp_path):
    source = tmp_path / "99_x.py"
    source.write_text(
        "# %% [markdown]\n# The loops are thousands of times slower; accuracy 0.83 here,\n"
        "# R² = 0.08, fine-tuning is +1.5 points ahead, interval -0.1 to +2.6.\n"
        "# %%\nprint(1)\n# %% [markdown]\n# In data/pretrained/README.md: accuracy 0.83.\n",
        encoding="utf-8")
    found = stale_literals(source)
    assert len(found) == 5 and all(":2:" in f or ":3:" in f for f in found)


def test_the_survey_limits_the_notebooks_state_are_the_simulators():
    """A magnitude limit in prose ("r < 17.0", "r = 19.5") is one the simulator uses."""
    from phys555_cl.galaxy_catalogue import IMAGING_LIMIT, MORPHOLOGY_LIMIT, SPEC_LIMIT

    limits = {IMAGING_LIMIT, MORPHOLOGY_LIMIT, SPEC_LIMIT}
    wrong = []
    for path in SOURCES:
        for start, text in _markdown_cells(path):
            for match in re.finditer(r"\$?\br\s*(?:<|=|\\le|≤)\s*(1\d(?:\.\d+)?)\b", text):
                if float(match.group(1)) not in limits:
                    line = start + text[:match.start()].count("\n")
                    wrong.append(f"{path.name}:{line}: '{match.group(0)}'")
    assert not wrong, (f"limits not among the simulator's {sorted(limits)}: " + "; ".join(wrong))


def test_notebook_06_describes_the_reference_recipe_it_loads():
    """06 says how its model's recipe differs from 05's (more unlabelled galaxies); the
    configs say so too, and nothing else differs (nor does 06 claim another temperature)."""
    from phys555_cl.train import make_config

    reference, default = make_config("reference"), make_config("default")
    prose = "\n".join(text for _, text in _markdown_cells(
        next(p for p in SOURCES if p.name.startswith("06_"))))
    words = {2: "twice", 4: "four times", 8: "eight times", 16: "sixteen times"}
    ratio = reference["n_train"] / default["n_train"]
    differ = {k for k in reference if reference[k] != default.get(k)} - {"name"}
    assert differ == {"n_train"}
    assert f"{reference['n_train']:,}" in prose and f"{default['n_train']:,}" in prose
    assert f"{words[ratio]} as many unlabelled galaxies" in prose
    assert not re.search(r"temperature of [0-9.]+ instead of", prose)
    assert f"temperature of {default['temperature']:g}" in prose


def test_notebook_05_quotes_the_shipped_models_training_run():
    """05's sentence on the monitor (kNN accuracy of h and contrastive top-1 per epoch) is the
    history the shipped checkpoint carries, to the two decimals it prints."""
    import torch

    from phys555_cl.train import pretrained_path

    epochs = torch.load(pretrained_path("compact"), map_location="cpu",
                        weights_only=True)["history"]["epochs"]
    smooth = [e["knn_accuracy"]["smooth_or_featured"] for e in epochs]
    odd = [e["knn_accuracy"]["odd"] for e in epochs]
    top1 = [e["contrastive_top1"] for e in epochs]
    prose = " ".join(" ".join(text.split()) for _, text in _markdown_cells(
        next(p for p in SOURCES if p.name.startswith("05_"))))
    said = (f"`smooth_or_featured` was {smooth[0]:.2f} after one epoch, {smooth[1]:.2f} after "
            f"two, and stayed at {min(smooth[2:]):.2f}-{max(smooth[2:]):.2f} for the other "
            f"eighteen while the contrastive top-1 climbed from {top1[0]:.2f} to {top1[-1]:.2f}; "
            f"`odd` stayed at {min(odd):.2f}-{max(odd):.2f} throughout")
    assert len(epochs) == 20 and said in prose
