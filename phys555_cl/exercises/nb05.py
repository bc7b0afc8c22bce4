"""Checks for notebook 05 (SimCLR on galaxies): one training step, and the student's own
augmentation experiment."""

from __future__ import annotations

import torch
from torch import nn

from ..augment import GalaxyAugment
from ..encoders import SimCLR
from ..galaxies import simulate
from ..losses import nt_xent
from ..train import simclr_step
from .core import Case, ContractError, Returns, make_check

__all__ = [
    "RETURNS", "check_experiment_augment", "check_training_step",
    "experiment_augment_reference", "training_step_reference"
]

#: The reference step is the package's own: the loop of ``phys555_cl.train`` calls it too, so
#: one training step lives in one place. ``simclr_step(model, optimizer, v1, v2, temperature)``
#: zeroes the gradients, computes NT-Xent on the embeddings ``z`` of ``model(cat([v1, v2]))``
#: (never on h), steps the optimizer and returns the loss as a Python float.
training_step_reference = simclr_step


class _Flat(nn.Module):
    out_dim = 12

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 12), nn.ReLU())

    def forward(self, x):
        return self.net(x)


#: What a step returns: the training loop stores it and formats it with f"{loss:.3f}"; a tensor
#: that still needs its graph would keep every step's graph alive and break .numpy() later.
RETURNS = Returns.python_float(why="the training loop stores it in `history` and plots it")


def _scenario(step, seed: int, temperature: float, n: int):
    """Two steps of ``step`` on a tiny model without BatchNorm (so one forward pass on both
    views and two separate passes give the same numbers); returns what the check compares.
    Raises ContractError when a step does not return a Python float."""
    torch.manual_seed(seed)
    model = SimCLR(_Flat(), nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8)),
                   normalize=nn.Identity())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(seed + 1)
    losses = []
    for _ in range(2):
        v1 = torch.randn(n, 3, 4, 4, generator=g)
        v2 = v1 + 0.3 * torch.randn(n, 3, 4, 4, generator=g)
        loss = step(model, optimizer, v1, v2, temperature)
        problem = RETURNS.problem(loss)
        if problem:
            raise ContractError(problem)
        losses.append(loss)
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    return {"losses returned by two steps": torch.tensor(losses),
            "model parameters after two steps": params}


def _cases():
    return [Case("8 pairs, tau = 0.2", 0, 0.2, 8), Case("3 pairs, tau = 0.5", 1, 0.5, 3)]


def _variant(model, optimizer, v1, v2, temperature, *, zero_grad=True, step=True, use_h=False,
             second_view=True, tau=None):
    """The training step with one thing done wrong, to recognise the usual mistakes."""
    if zero_grad:
        optimizer.zero_grad()
    h1, z1 = model(v1)
    h2, z2 = model(v2 if second_view else v1)
    a, b = (h1, h2) if use_h else (z1, z2)
    loss = nt_xent(a, b, temperature if tau is None else tau(temperature))
    loss.backward()
    if step:
        optimizer.step()
    return loss.item()


def _no_zero_grad(*args):
    return _variant(*args, zero_grad=False)


def _no_step(*args):
    return _variant(*args, step=False)


def _on_h(*args):
    return _variant(*args, use_h=True)


def _default_temperature(*args):
    return _variant(*args, tau=lambda t: 0.5)  # nt_xent's default temperature


def _same_view(*args):
    return _variant(*args, second_view=False)


def _interleaved_split(model, optimizer, v1, v2, temperature):
    optimizer.zero_grad()
    _, z = model(torch.cat([v1, v2]))
    z1, z2 = z[::2], z[1::2]
    loss = nt_xent(z1, z2, temperature)
    loss.backward()
    optimizer.step()
    return loss.item()


def _run_scenario(step, case):
    return _scenario(step, *case.args)


check_training_step = make_check(
    "5.1", "SimCLR training step", training_step_reference, _cases, atol=1e-5, rtol=1e-4,
    run=_run_scenario,
    mistakes=[
        (_no_zero_grad,
         "optimizer.zero_grad() is missing: without it the gradients of earlier steps pile up."),
        (_no_step,
         "the parameters never change: call loss.backward() and then optimizer.step()."),
        (_on_h,
         "the loss is computed on h; SimCLR puts the loss on the projection z = g(h)."),
        (_default_temperature,
         "the `temperature` argument is not used: nt_xent fell back on its default "
         "temperature."),
        (_same_view,
         "both embeddings come from the same view: use v1 for z1 and v2 for z2."),
        (_interleaved_split,
         "the embeddings are split wrongly: the concatenated batch holds all of v1's views "
         "first and then all of v2's, so z1 is its first half and z2 its second half, not "
         "every other row."),
    ],
    hints=[
        "One ordinary gradient step on NT-Xent between the projections of the two views of "
        "each galaxy.",
        "Four steps: clear the old gradients with the optimizer; run the model on both views "
        "(one pass on the concatenated batch, or two passes) and keep z, not h; the loss is "
        "nt_xent between the v1 embeddings and the v2 embeddings at the given temperature; "
        "backpropagate and let the optimizer step. Return the loss as a Python float, not a "
        "tensor.",
        "model(torch.cat([v1, v2])) returns (h, z) for all 2B views, v1's first, so z.chunk(2) "
        "gives z1 and z2; the loss is nt_xent(z1, z2, temperature). Put optimizer.zero_grad() "
        "before and loss.backward(), optimizer.step() after, and return loss.item().",
    ],
)


# --------------------------------------------------------------------------------------------
# 5.2: the student's own experiment (an augmentation pipeline with one setting changed)
# --------------------------------------------------------------------------------------------


def experiment_augment_reference():
    """One possible answer: the default pipeline without rotations."""
    return GalaxyAugment(degrees=(0.0, 0.0))


def _experiment_cases():
    return [Case("no arguments")]


def _views(augment, seed: int):
    """Two views of 4 fixed simulated galaxies from ``augment`` with a seeded generator."""
    images, _ = simulate(4, size=32, seed=505)
    return augment.two_views(images, generator=torch.Generator().manual_seed(seed))


def _compare_experiment(got, expected, case) -> str | None:
    """The pipeline must make views like GalaxyAugment does, repeatably, and not the default's
    views (the experiment needs something changed). Any change is right: it is the student's
    experiment, so the reference's own choice is never required."""
    if not hasattr(got, "two_views"):
        return (f"it returned {type(got).__name__}, not an augmentation pipeline: return "
                f"GalaxyAugment(...) with the one setting you want to change.")
    try:
        first, again = _views(got, 0), _views(got, 0)
    except Exception as err:  # noqa: BLE001 - any failure is the student's to see
        return f"making two views with it failed ({type(err).__name__}: {err})."
    if not (isinstance(first, tuple) and len(first) == 2
            and all(isinstance(v, torch.Tensor) and v.shape == (4, 3, 32, 32) for v in first)):
        return "two_views did not return two image batches of the input's shape."
    if not all(torch.equal(a, b) for a, b in zip(first, again)):
        return ("the same generator gave different views: draw every random number from the "
                "generator passed to two_views, so a run can be repeated.")
    default = _views(GalaxyAugment(), 0)
    if all(torch.equal(a, b) for a, b in zip(first, default)):
        return ("it makes exactly the default views: change one setting of GalaxyAugment "
                "(its docstring lists them), so the experiment has something to compare.")
    return None


check_experiment_augment = make_check(
    "5.2", "an augmentation experiment", experiment_augment_reference, _experiment_cases,
    compare=_compare_experiment,
    hints=[
        "An experiment changes one thing at a time; pick the invariance you want to test.",
        "Start from the default pipeline and change a single setting: turn one augmentation "
        "off, or widen its range well beyond the default. Before running, write down which "
        "probes you expect to move and which way.",
        "Return GalaxyAugment with one keyword argument set, for example the rotation range "
        "degrees set to (0.0, 0.0), or delta_mag set to (-2.0, 2.0) for a wide brightness "
        "change; help(GalaxyAugment) lists the keywords and their defaults.",
    ],
)
