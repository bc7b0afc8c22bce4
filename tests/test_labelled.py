"""Specification of phys555_cl.labelled: the networks the payoff study trains on labels."""

import pytest
import torch

from phys555_cl.augment import GalaxyAugment
from phys555_cl.labelled import predict, train_on_labels


def test_distillation_student_learns_the_teachers_answers_on_unlabelled_galaxies(galaxies,
                                                                                  tiny_model):
    images, labels = galaxies
    tasks = ("smooth_or_featured",)
    teacher = train_on_labels(tiny_model().encoder, images, labels, tasks, steps=80,
                              batch_size=32, seed=1, lr=3e-3)
    answers = predict(teacher, images)["smooth_or_featured"]
    few = {"smooth_or_featured": torch.full((160,), -1)}
    few["smooth_or_featured"][:2] = torch.as_tensor(answers[:2])
    kw = dict(steps=200, batch_size=32, seed=2, lr=3e-3)
    student = train_on_labels(tiny_model().encoder, images, few, tasks, teacher=teacher,
                              unlabelled=images, **kw)
    alone = train_on_labels(tiny_model().encoder, images, few, tasks, **kw)
    agree = (predict(student, images)["smooth_or_featured"] == answers).mean()
    agree_alone = (predict(alone, images)["smooth_or_featured"] == answers).mean()
    assert agree > 0.75 and agree > agree_alone + 0.05


def test_the_same_seed_trains_the_same_network_and_unlabelled_rows_are_masked(galaxies, tiny_model):
    images, labels = galaxies
    y = labels["smooth_or_featured"].clone()
    y[80:] = -1  # half the galaxies carry no label
    kw = dict(tasks=("smooth_or_featured",), steps=3, batch_size=16, seed=4)
    a = predict(train_on_labels(tiny_model().encoder, images, {"smooth_or_featured": y}, **kw),
                images)["smooth_or_featured"]
    b = predict(train_on_labels(tiny_model().encoder, images, {"smooth_or_featured": y}, **kw),
                images)["smooth_or_featured"]
    assert a.dtype.kind == "i" and a.shape == (160,) and (a == b).all()


def test_no_label_at_all_or_no_step_is_refused(galaxies, tiny_model):
    images, _ = galaxies
    none = {"smooth_or_featured": torch.full((160,), -1)}
    with pytest.raises(ValueError, match="no galaxy carries a label"):
        train_on_labels(tiny_model().encoder, images, none, ("smooth_or_featured",), steps=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        train_on_labels(tiny_model().encoder, images, none, ("smooth_or_featured",), steps=0)


class _Hidden(torch.nn.Module):
    """GalaxyAugment behind another module's face: it measures the sky noise every step."""

    def __init__(self):
        super().__init__()
        self.inner = GalaxyAugment()

    def forward(self, x, generator=None):
        return self.inner(x, generator=generator)


def test_the_sky_noise_measured_once_trains_the_network_measured_every_step(galaxies,
                                                                            tiny_model):
    images, labels = galaxies
    y = {"smooth_or_featured": labels["smooth_or_featured"][:40]}
    kw = dict(tasks=("smooth_or_featured",), steps=3, batch_size=8, seed=5,
              unlabelled=images[40:], unlabelled_batch_size=8)
    teacher = train_on_labels(tiny_model().encoder, images[:40], y, steps=2,
                              tasks=("smooth_or_featured",))
    once = train_on_labels(tiny_model().encoder, images[:40], y, teacher=teacher, **kw)
    every = train_on_labels(tiny_model().encoder, images[:40], y, teacher=teacher,
                            augment=_Hidden(), **kw)
    for a, b in zip(once.state_dict().values(), every.state_dict().values()):
        assert torch.equal(a, b)


class _OwnForward(GalaxyAugment):
    """A student's subclass that changed ``forward`` (no ``sigma``): it must still work."""

    def forward(self, x, generator=None):
        return super().forward(x, generator=generator)


def test_an_augmentation_whose_forward_takes_no_sky_noise_still_trains(galaxies, tiny_model):
    images, labels = galaxies
    y = {"smooth_or_featured": labels["smooth_or_featured"][:40]}
    kw = dict(tasks=("smooth_or_featured",), steps=2, batch_size=8, seed=6)
    mine = train_on_labels(tiny_model().encoder, images[:40], y, augment=_OwnForward(), **kw)
    default = train_on_labels(tiny_model().encoder, images[:40], y, **kw)
    for a, b in zip(mine.state_dict().values(), default.state_dict().values()):
        assert torch.equal(a, b)
