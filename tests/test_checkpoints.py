"""Specification of phys555_cl.checkpoints: atomic saves, safe loading, clear errors, RNG state."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from phys555_cl.checkpoints import (
    CHECKPOINT_FORMAT,
    RECREATE_COMMAND,
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    read_checkpoint,
    restore_rng_state,
    save_checkpoint,
    write_history,
)


def test_an_interrupted_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = str(tmp_path / "checkpoint.pt")
    save_checkpoint(path, {"version": 1})

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # torch.save is handed the open temporary file
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"version": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert os.listdir(tmp_path) == ["checkpoint.pt"]  # no temporary file left behind


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="phys555_cl.train"):
        load_checkpoint(str(tmp_path / "nope.pt"))


def test_damaged_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(str(path))


def test_a_foreign_pytorch_file_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a phys555_cl"):
        load_checkpoint(str(path))


def test_history_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "history.json"
    write_history(str(path), {"name": "fast"}, {"loss": [1.0]})

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_history(str(path), {"name": "fast"}, {"loss": [1.0, 0.5]})
    monkeypatch.undo()
    assert json.loads(path.read_text())["loss"] == [1.0]
    assert os.listdir(tmp_path) == ["history.json"]


# ------------------------------------------------------------------------------------------
# safe checkpoints: tensors and plain values only, loaded with weights_only=True
# ------------------------------------------------------------------------------------------


class _Payload:
    """Pickles as a call to open(marker, "w"): loading it unsafely would create the marker."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_payload_checkpoint(path, marker):
    """A file that looks like a phys555 checkpoint but runs code when unpickled."""
    torch.save({"format": CHECKPOINT_FORMAT, "config": _Payload(marker)}, path)


def test_loading_a_crafted_checkpoint_runs_nothing(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "shared.pt"
    write_payload_checkpoint(path, marker)
    for load in (load_checkpoint, read_checkpoint):
        with pytest.raises(CheckpointError, match="could run code") as err:
            load(str(path))
        assert "python -m phys555_cl.train --config" in str(err.value)
    assert not marker.exists()


def test_an_old_checkpoint_with_numpy_objects_says_how_to_recreate_it(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "rng": {"numpy": np.zeros(3)}}, path)
    with pytest.raises(CheckpointError, match="old-format") as err:
        load_checkpoint(str(path))
    assert RECREATE_COMMAND in str(err.value) and "\n" not in str(err.value)


def test_a_text_file_is_not_called_a_damaged_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("my notes, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint at all"):
        load_checkpoint(str(path))


def test_resume_exact_after_random_streams_were_stored_as_plain_values(tmp_path):
    random.seed(5), np.random.seed(5)
    state = capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(6), np.random.seed(6), torch.manual_seed(6)
    save_checkpoint(str(tmp_path / "rng.pt"), {"rng": state})
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


@pytest.mark.parametrize("name, recipe", [("compact", "default"), ("reference", "reference")])
def test_the_shipped_checkpoints_load_safely_and_are_their_recipes(name, recipe):
    from phys555_cl import course
    from phys555_cl.checkpoints import PRETRAINED_NAMES
    from phys555_cl.train import make_config

    path = course.REPO / "data" / "pretrained" / PRETRAINED_NAMES[name]
    assert path.stat().st_size <= 20e6  # the budget of a shipped model (issue 20)
    state = torch.load(path, weights_only=True)  # raises if anything but plain values inside
    model, cfg = load_checkpoint(str(path))
    assert cfg["epochs_done"] == state["epoch"] == cfg["epochs"] and cfg["image_size"] == 32
    # trained by the named recipe, every setting of it (README: how it was made)
    expected = make_config(recipe)
    differ = {k: (cfg.get(k), v) for k, v in expected.items() if cfg.get(k) != v}
    assert not differ, f"{path.name} differs from --config {recipe}: {differ}"


def _cli(args, cwd, timeout=120):
    env = {**os.environ, "PHYS555_QUIET": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_train_resume_on_a_crafted_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "run").mkdir()
    write_payload_checkpoint(tmp_path / "run" / "checkpoint.pt", marker)
    proc = _cli(["phys555_cl.train", "--config", "fast", "--out", "run", "--resume"], tmp_path)
    assert proc.returncode == 2 and not marker.exists()
    assert proc.stderr.count("\n") == 1 and "could run code" in proc.stderr  # one line


def test_study_on_a_crafted_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    write_payload_checkpoint(tmp_path / "shared.pt", marker)
    proc = _cli(["phys555_cl.study", "shared.pt"], tmp_path)  # the loader runs first
    assert proc.returncode != 0 and not marker.exists()
    assert "could run code" in proc.stderr


def test_the_payload_would_run_if_loaded_unsafely(tmp_path):
    """The crafted file is a real threat: the old weights_only=False load runs it."""
    marker = tmp_path / "pwned"
    write_payload_checkpoint(tmp_path / "shared.pt", marker)
    torch.load(tmp_path / "shared.pt", weights_only=False)
    assert marker.exists()
