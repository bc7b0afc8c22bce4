"""Fast mode, notebook sizes, device choice and seeding."""

import random
import zlib

import numpy as np
import pytest
import torch

from phys555_cl import config


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("YES", True),
                                            ("0", False), ("false", False), ("", False)])
def test_fast_mode_reads_the_environment_at_every_call(monkeypatch, value, expected):
    monkeypatch.setenv("PHYS555_FAST", value)
    assert config.fast_mode() is expected


def test_fast_mode_is_off_when_unset(monkeypatch):
    monkeypatch.delenv("PHYS555_FAST", raising=False)
    assert config.fast_mode() is False


def test_a_misspelled_fast_flag_is_an_error_that_says_what_to_write(monkeypatch):
    monkeypatch.setenv("PHYS555_FAST", "maybe")
    with pytest.raises(ValueError, match="1/true/yes"):
        config.fast_mode()


def test_sizes_switch_with_fast_mode(monkeypatch):
    monkeypatch.setenv("PHYS555_FAST", "1")
    fast = config.sizes("05")
    monkeypatch.setenv("PHYS555_FAST", "0")
    normal = config.sizes("05")
    assert fast.fast and not normal.fast
    assert fast.n_galaxies < normal.n_galaxies
    assert fast.epochs <= normal.epochs


def test_every_notebook_has_the_same_keys_in_both_modes():
    for name, modes in config.SIZES.items():
        assert set(modes) == {"fast", "normal"}, name
        assert set(modes["fast"]) == set(modes["normal"]), name


def test_unknown_notebook_sizes_name_the_known_ones():
    with pytest.raises(KeyError, match="Known notebooks"):
        config.sizes("99")


def test_device_falls_back_to_cpu_without_gpus(monkeypatch):
    monkeypatch.delenv("PHYS555_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(config, "_mps_available", lambda: False)
    assert config.device() == torch.device("cpu")


def test_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("PHYS555_DEVICE", raising=False)
    monkeypatch.setattr(config, "_mps_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.device().type == "mps"


def test_device_environment_variable_overrides(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("PHYS555_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")


def test_requesting_an_absent_gpu_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("PHYS555_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        config.device()


def test_seed_everything_repeats_python_numpy_and_torch():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    config.seed_everything(123)
    first = draw()
    config.seed_everything(123)
    assert draw() == first
    g1, g2 = config.seed_everything(5), config.seed_everything(5)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


def test_stable_seed_is_the_crc32_of_its_parts_cut_to_the_bits_asked_for():
    assert config.stable_seed(0, 3, 1, "augment") == zlib.crc32(b"0/3/1/augment")
    assert config.stable_seed("split", 2021, bits=31) == zlib.crc32(b"split/2021") & 0x7FFFFFFF
    seeds = {config.stable_seed(m, 2021, "random", 20, r, bits=31)
             for m in ("supervised", "simclr + fine-tune") for r in range(5)}
    assert len(seeds) == 10 and all(0 <= s < 2**31 for s in seeds)
