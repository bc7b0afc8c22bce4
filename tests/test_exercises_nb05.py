"""Notebook 05's check of the SimCLR training step."""

import pytest
import torch

from phys555_cl import exercises as ex
from phys555_cl.exercises import nb05
from phys555_cl.losses import nt_xent


def test_the_reference_step_passes_and_is_returned():
    assert ex.check_training_step(nb05.training_step_reference) is nb05.training_step_reference


def test_two_forward_passes_are_as_good_as_one():
    def student(model, optimizer, v1, v2, temperature):
        optimizer.zero_grad()
        _, z1 = model(v1)
        _, z2 = model(v2)
        loss = nt_xent(z1, z2, temperature)
        loss.backward()
        optimizer.step()
        return loss.item()

    assert ex.check_training_step(student) is student


def test_a_step_returning_the_loss_tensor_is_told_to_return_a_float(capsys):
    def student(model, optimizer, v1, v2, temperature):
        optimizer.zero_grad()
        _, z = model(torch.cat([v1, v2]))
        loss = nt_xent(*z.chunk(2), temperature)
        loss.backward()
        optimizer.step()
        return loss  # the next cell would fail: Can't call numpy() on Tensor that requires grad

    with pytest.raises(AssertionError) as err:
        ex.check_training_step(student)
    assert "Python float" in str(err.value) and "loss.item()" in str(err.value)
    assert "Well done" not in capsys.readouterr().out


@pytest.mark.parametrize("wrong,words", [
    (nb05._no_zero_grad, "zero_grad"),
    (nb05._no_step, "optimizer.step()"),
    (nb05._on_h, "projection z"),
    (nb05._default_temperature, "temperature"),
    (nb05._same_view, "same view"),
])
def test_typical_mistakes_are_named(wrong, words):
    with pytest.raises(AssertionError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ex.check_training_step(wrong)


def test_not_done_hands_back_the_reference_step(capsys):
    def student(*args):
        raise NotImplementedError

    assert ex.check_training_step(student) is nb05.training_step_reference
    assert "not done yet" in capsys.readouterr().out


def test_the_experiment_check_wants_a_changed_repeatable_pipeline():
    from phys555_cl.augment import GalaxyAugment

    for change in ({"degrees": (0.0, 0.0)}, {"delta_mag": (-2.0, 2.0)}, {"ebv": (0.0, 0.5)}):
        assert ex.check_experiment_augment(lambda c=change: GalaxyAugment(**c)) is not None
    with pytest.raises(ex.CheckFailed, match="exactly the default views"):
        ex.check_experiment_augment(lambda: GalaxyAugment())
    with pytest.raises(ex.CheckFailed, match="not an augmentation pipeline"):
        ex.check_experiment_augment(lambda: 3)
