"""Specification of phys555_cl.train: the SimCLR loop, checkpoints, resume, Ctrl-C, torchrun."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from phys555_cl import train
from phys555_cl.train import (
    CheckpointError,
    load_checkpoint,
    make_config,
    save_checkpoint,
    train_simclr,
)

TINY = dict(width=4, hidden_dim=16, proj_dim=8, batch_size=16, epochs=2, image_size=16,
            warmup_epochs=0.0, lr=5e-3)


def tiny_images(n=64, size=16, seed=0):
    """Blobs of different sizes, elongations and colours plus noise: cheap stand-in galaxies."""
    g = torch.Generator().manual_seed(seed)
    r = torch.arange(size) - (size - 1) / 2
    yy, xx = r[:, None], r[None, :]
    sx = 1 + 3 * torch.rand(n, 1, 1, generator=g)
    sy = 1 + 3 * torch.rand(n, 1, 1, generator=g)
    blob = torch.exp(-(xx**2 / (2 * sx**2) + yy**2 / (2 * sy**2)))
    colour = 0.5 + torch.rand(n, 3, 1, 1, generator=g)
    return colour * blob[:, None] + 0.02 * torch.randn(n, 3, size, size, generator=g)


def run(tmp_path=None, name="run", **kw):
    out = str(tmp_path / name) if tmp_path is not None else None
    return train_simclr("fast", images=tiny_images(), out=out, progress=False, device="cpu",
                        **{**TINY, **kw})


def test_a_few_training_steps_lower_the_loss():
    from phys555_cl.augment import GalaxyAugment
    from phys555_cl.losses import nt_xent

    x = tiny_images()

    def fixed_loss(model):
        v1, v2 = GalaxyAugment()(x, torch.Generator().manual_seed(9)), GalaxyAugment()(
            x, torch.Generator().manual_seed(10))
        model.train()  # batch statistics, as in training
        with torch.no_grad():
            return nt_xent(model(v1)[1], model(v2)[1], 0.2).item()

    torch.manual_seed(0)
    before = fixed_loss(train.build_model(make_config("fast", **TINY)))
    model, history = run(epochs=8, lr=1e-2)
    assert len(history["loss"]) == 8 * 4
    assert fixed_loss(model) < before - 0.05


def test_history_has_one_entry_per_step_and_per_epoch(tmp_path):
    _, history = run(tmp_path)
    assert history["step"] == list(range(1, 9))
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert all(e["images_per_s"] > 0 for e in history["epochs"])
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["loss"] == history["loss"] and saved["config"]["image_size"] == 16


def test_checkpoint_holds_model_optimizer_scheduler_rng_epoch_config(tmp_path):
    run(tmp_path)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    for key in ("model", "optimizer", "scheduler", "rng", "epoch", "config", "history"):
        assert key in state
    assert state["epoch"] == 2 and state["step"] == 0


def test_load_checkpoint_returns_the_model_and_its_config(tmp_path):
    trained, _ = run(tmp_path)
    model, cfg = load_checkpoint(str(tmp_path / "run" / "checkpoint.pt"))
    assert cfg["image_size"] == 16 and cfg["epochs_done"] == 2
    x = tiny_images(8)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], trained(x)[0])


def test_resume_after_max_steps_repeats_the_uninterrupted_run(tmp_path):
    _, straight = run(tmp_path, "straight")
    run(tmp_path, "pieces", max_steps=3)  # stops inside the first epoch
    model, resumed = run(tmp_path, "pieces", resume=True)
    assert resumed["step"] == straight["step"]
    torch.testing.assert_close(resumed["loss"], straight["loss"])


def test_ctrl_c_saves_and_resume_continues_with_the_same_rng_stream(tmp_path, monkeypatch):
    _, straight = run(tmp_path, "straight", epochs=3)
    calls = {"n": 0}
    real = train.nt_xent

    def interrupt_on_sixth_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "nt_xent", interrupt_on_sixth_step)
    _, partial = run(tmp_path, "ctrl_c", epochs=3)  # returns cleanly, does not raise
    assert len(partial["loss"]) == 5
    state = torch.load(tmp_path / "ctrl_c" / "checkpoint.pt", weights_only=False)
    assert (state["epoch"], state["step"]) == (1, 1)
    monkeypatch.setattr(train, "nt_xent", real)
    _, resumed = run(tmp_path, "ctrl_c", epochs=3, resume=True)
    torch.testing.assert_close(resumed["loss"], straight["loss"])


def test_more_epochs_can_be_added_on_resume(tmp_path):
    run(tmp_path, epochs=1)
    _, history = run(tmp_path, epochs=2, resume=True)
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]


def test_an_interrupted_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = str(tmp_path / "checkpoint.pt")
    save_checkpoint(path, {"version": 1})

    def dies_halfway(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"version": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"version": 1}
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


def test_resuming_with_another_config_names_the_difference(tmp_path):
    run(tmp_path, epochs=1)
    with pytest.raises(CheckpointError, match="temperature"):
        run(tmp_path, epochs=1, resume=True, temperature=0.7)


def test_an_existing_checkpoint_is_not_overwritten_without_resume(tmp_path):
    run(tmp_path, epochs=1)
    with pytest.raises(FileExistsError, match="--resume"):
        run(tmp_path, epochs=1)


def test_unknown_options_and_configs_are_refused():
    with pytest.raises(ValueError, match="default"):
        make_config("huge")
    with pytest.raises(ValueError, match="learning_rate"):
        make_config("fast", learning_rate=1.0)


def _tiny_cli_script(tmp_path):
    script = tmp_path / "tiny_train.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from phys555_cl import train
        train.CONFIGS["fast"].update({TINY!r}, n_train=64, epochs=1)
        sys.exit(train.main(sys.argv[1:]))
    """))
    return script


def test_cli_trains_and_refuses_a_damaged_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(train.CONFIGS, "fast", {**train.CONFIGS["fast"], **TINY, "n_train": 64,
                                                "epochs": 1})
    monkeypatch.setenv("PHYS555_QUIET", "1")
    out = str(tmp_path / "cli")
    assert train.main(["--config", "fast", "--out", out]) == 0
    (tmp_path / "cli" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert train.main(["--config", "fast", "--out", out, "--resume"]) == 2
    assert "damaged" in capsys.readouterr().err


def test_two_process_torchrun_on_cpu(tmp_path):
    script = _tiny_cli_script(tmp_path)
    out = tmp_path / "ddp"
    env = {**os.environ, "PHYS555_QUIET": "1", "OMP_NUM_THREADS": "1"}
    env.pop("PHYS555_DEVICE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), "--config", "fast", "--out", str(out)]
    proc = subprocess.run(cmd, env={**env, "CUDA_VISIBLE_DEVICES": ""}, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model, cfg = load_checkpoint(str(out / "checkpoint.pt"))
    history = json.loads((out / "history.json").read_text())
    # 64 galaxies, 32 per process, global batch 16 = 8 per process: 4 steps
    assert len(history["loss"]) == 4
    assert sorted(os.listdir(out)) == ["checkpoint.pt", "history.json"]
