"""Notebook 03's checks: per-image random rotation + flip, and reddening."""

import math

import pytest
import torch
import torch.nn.functional as F

from phys555_cl import exercises as ex
from phys555_cl.augment import DECAM_EXTINCTION, RandomAffine, redden
from phys555_cl.exercises.nb03 import rotate_flip_reference


def _rotate(x, angles):
    cos, sin, zero = angles.cos(), angles.sin(), torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, sin, zero], -1), torch.stack([-sin, cos, zero], -1)], 1)
    return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False),
                         align_corners=False)


def test_the_reference_passes():
    assert ex.check_rotate_flip(rotate_flip_reference) is rotate_flip_reference


def test_a_student_version_with_its_own_random_order_passes():
    def student(x, generator):
        b = x.shape[0]
        angles = torch.rand(b, generator=generator) * 2 * math.pi
        flip = torch.rand(b, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-2), x)  # an up-down mirror is fine
        return _rotate(x, angles)

    assert ex.check_rotate_flip(student) is student


def test_one_draw_for_the_whole_batch_is_caught():
    def student(x, generator):
        angle = torch.rand(1, generator=generator) * 2 * math.pi
        return _rotate(x.flip(-1), angle.expand(x.shape[0]))

    with pytest.raises(AssertionError, match="for \\*every\\* image"):
        ex.check_rotate_flip(student)


def test_quarter_turns_only_are_caught():
    def student(x, generator):
        k = torch.randint(0, 4, (x.shape[0],), generator=generator)
        return torch.stack([torch.rot90(im, int(kk), dims=(-2, -1)) for im, kk in zip(x, k)])

    with pytest.raises(AssertionError, match="multiples of 90 degrees"):
        ex.check_rotate_flip(student)


def test_a_missing_flip_is_caught():
    def student(x, generator):
        return RandomAffine(max_shift=0, scale=(1, 1))(x, generator=generator)

    with pytest.raises(AssertionError, match="mirrored"):
        ex.check_rotate_flip(student)


def test_a_rotation_about_the_corner_is_caught():
    def student(x, generator):
        angles = torch.rand(x.shape[0], generator=generator) * 2 * math.pi
        cos, sin = angles.cos(), angles.sin()
        theta = torch.stack([torch.stack([cos, sin, 1 - cos], -1),
                             torch.stack([-sin, cos, 1 + sin], -1)], 1)
        return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False),
                             align_corners=False)

    with pytest.raises(AssertionError, match="flux"):
        ex.check_rotate_flip(student)


def test_ignoring_the_generator_is_caught_before_success_is_printed(capsys):
    def student(x, generator):
        return rotate_flip_reference(x, None)

    with pytest.raises(AssertionError, match="same state gave different views"):
        ex.check_rotate_flip(student)
    assert "Well done" not in capsys.readouterr().out


def test_the_package_reddening_is_the_reference_and_mistakes_are_named():
    assert ex.check_redden.reference is redden  # augment.redden, which RandomReddening calls
    assert ex.check_redden(redden) is redden
    with pytest.raises(AssertionError, match="fainter"):
        r = torch.tensor(DECAM_EXTINCTION)[:, None, None]
        ex.check_redden(lambda x, e: x * 10 ** (0.4 * e[:, None, None, None] * r))
    with pytest.raises(AssertionError, match="R_b are missing"):
        ex.check_redden(lambda x, e: x * 10 ** (-0.4 * e[:, None, None, None]))


def test_not_done_returns_the_references():
    def student(*args):
        raise NotImplementedError

    assert ex.check_rotate_flip(student) is rotate_flip_reference
    assert ex.check_redden(student) is redden
