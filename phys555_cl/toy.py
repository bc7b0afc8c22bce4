"""A tiny self-supervised problem that trains in about a second on a CPU, to watch collapse.

Galaxies and a CNN take minutes; the question "does this loss collapse?" needs seconds. Here:

- `ToyProblem`: inputs of `dim` numbers, each input made from `latent_dim` hidden factors
  scattered around one of `n_classes` cluster centres (x = tanh(u A), u the factors, A a fixed
  random matrix). A *view* of an input is a noisy re-measurement of it in which each number is
  missing (set to 0) with probability 1/4: `two_views(x)` gives the positive pairs;
- `toy_encoder`: a two-layer MLP, dim -> 128 -> 16 (Linear, BatchNorm, ReLU, Linear), the
  "encoder + projection head" in one; `toy_predictor` is the small MLP that BYOL and SimSiam
  put on one branch;
- `train_toy(loss_fn, encoder, steps=...)`: Adam on `loss_fn(encoder(v1), encoder(v2))` for
  batches of fresh inputs, recording `geometry.alignment`, `geometry.uniformity` and the mean
  `geometry.dimension_std` of the embedding of a fixed evaluation set as it trains;
- `plot_geometry(runs)`: the three curves of several runs side by side.

Everything runs on the CPU (the networks are far too small to gain from a GPU) and is
deterministic for given seeds. Notebooks 04 (alignment alone vs NT-Xent) and 05 (SimSiam with
and without its stop-gradient) use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from phys555_cl._checks import check_int
from phys555_cl.geometry import alignment, dimension_std, uniformity

__all__ = ["ToyProblem", "toy_encoder", "toy_predictor", "train_toy", "plot_geometry",
           "EVAL_SEED"]

#: Seed of the evaluation inputs and views every run is measured on (never used for training).
EVAL_SEED = 12345


class ToyProblem:
    """Inputs with hidden structure, and the two-view augmentation that makes positive pairs.

    Args:
        dim: numbers per input.
        latent_dim: hidden factors per input.
        n_classes: cluster centres of the hidden factors (the "kinds" of input; no loss here
            uses them, they are there to be probed).
        seed: fixes the centres and the mixing matrix A, i.e. *which* problem this is. The
            inputs themselves are drawn by `sample` from the generator it is given.
    """

    def __init__(self, dim: int = 32, latent_dim: int = 8, n_classes: int = 8, seed: int = 0):
        self.dim = check_int("dim", dim, 1)
        self.latent_dim = check_int("latent_dim", latent_dim, 1)
        self.n_classes = check_int("n_classes", n_classes, 1)
        g = torch.Generator().manual_seed(check_int("seed", seed))
        self.centres = 2.0 * torch.randn(self.n_classes, self.latent_dim, generator=g)
        self.mixing = torch.randn(self.latent_dim, self.dim, generator=g) / self.latent_dim ** 0.5

    def sample(self, n: int, generator: torch.Generator | None = None):
        """``n`` inputs and their classes: x ``[n, dim]`` float32, y ``[n]`` int64."""
        n = check_int("n", n, 1)
        y = torch.randint(self.n_classes, (n,), generator=generator)
        u = self.centres[y] + torch.randn(n, self.latent_dim, generator=generator)
        return torch.tanh(u @ self.mixing), y

    def two_views(self, x: torch.Tensor, generator: torch.Generator | None = None, *,
                  noise: float = 0.3, drop: float = 0.25):
        """Two independent views of every row of ``x`` ``[n, dim]``: each adds Gaussian noise of
        standard deviation ``noise`` and sets each number to 0 with probability ``drop``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor [n, {self.dim}], got {got}.")
        views = []
        for _ in range(2):
            keep = (torch.rand(x.shape, generator=generator) >= drop).to(x.dtype)
            views.append((x + noise * torch.randn(x.shape, generator=generator)) * keep)
        return views[0], views[1]


def toy_encoder(in_dim: int = 32, hidden: int = 128, out_dim: int = 16, seed: int = 0) -> nn.Module:
    """Linear(in_dim, hidden), BatchNorm1d, ReLU, Linear(hidden, out_dim), initialised from
    ``seed`` (two encoders with the same seed start with the same weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int("seed", seed))
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                             nn.Linear(hidden, out_dim))


def toy_predictor(dim: int = 16, hidden: int = 32, seed: int = 0) -> nn.Module:
    """The predictor of BYOL / SimSiam at toy scale: Linear(dim, hidden), BatchNorm1d, ReLU,
    Linear(hidden, dim), initialised from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int("seed", seed) + 1)
        return nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                             nn.Linear(hidden, dim))


def train_toy(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], encoder: nn.Module,
              *, steps: int, extra_modules: Iterable[nn.Module] = (),
              problem: ToyProblem | None = None, batch_size: int = 256, lr: float = 3e-3,
              seed: int = 0, record_every: int = 10, n_eval: int = 512) -> dict:
    """Train ``encoder`` (and ``extra_modules``, e.g. a predictor) with Adam on the toy problem.

    Every step draws ``batch_size`` fresh inputs and two views of each, and minimises
    ``loss_fn(encoder(v1), encoder(v2))``; a loss that needs more networks (a predictor)
    closes over them and passes them in ``extra_modules`` so that Adam trains them too.

    Every ``record_every`` steps (and at steps 0 and ``steps``) the encoder, in eval mode,
    embeds ``n_eval`` evaluation inputs and their two views (drawn from `EVAL_SEED`, the same
    for every run) and the history records, for the embeddings z1, z2 of the two views:
    ``alignment(z1, z2)``, ``uniformity(z1)`` and ``dimension_std(z1).mean()``.

    Returns:
        ``{"step": [...], "alignment": [...], "uniformity": [...], "std": [...]}`` (floats at
        the recorded steps), ``"loss"`` (the training loss of every step) and ``"out_dim"``.
    """
    steps = check_int("steps", steps, 1)
    record_every = check_int("record_every", record_every, 1)
    batch_size = check_int("batch_size", batch_size, 2)
    problem = problem or ToyProblem()
    modules = [encoder, *extra_modules]
    optimizer = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=lr)
    train_gen = torch.Generator().manual_seed(check_int("seed", seed))
    eval_gen = torch.Generator().manual_seed(EVAL_SEED)
    eval_x, _ = problem.sample(check_int("n_eval", n_eval, 2), eval_gen)
    eval_v1, eval_v2 = problem.two_views(eval_x, eval_gen)
    history = {"step": [], "alignment": [], "uniformity": [], "std": [], "loss": []}

    def record(step):
        for m in modules:
            m.eval()
        with torch.no_grad():
            z1, z2 = encoder(eval_v1), encoder(eval_v2)
        history["step"].append(step)
        history["alignment"].append(alignment(z1, z2).item())
        history["uniformity"].append(uniformity(z1).item())
        history["std"].append(dimension_std(z1).mean().item())
        for m in modules:
            m.train()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small are fastest on one thread
    try:
        for m in modules:
            m.train()
        for step in range(steps):
            if step % record_every == 0:
                record(step)
            x, _ = problem.sample(batch_size, train_gen)
            v1, v2 = problem.two_views(x, train_gen)
            loss = loss_fn(encoder(v1), encoder(v2))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
        record(steps)
        for m in modules:
            m.eval()
        with torch.no_grad():
            history["out_dim"] = encoder(eval_v1[:2]).shape[1]
    finally:
        torch.set_num_threads(threads)
    return history


def plot_geometry(runs: dict, *, title: str = ""):
    """Alignment, uniformity and per-dimension std against the step, one line per run.

    ``runs`` maps a name to a `train_toy` history. The std panel has a dashed line at
    1 / sqrt(D) (D the embedding size): the value for embeddings spread like an isotropic
    Gaussian. Returns the matplotlib ``Figure`` (it does not call ``plt.show()``).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = [("alignment", "alignment (lower: views closer)"),
              ("uniformity", "uniformity (lower: more spread out)"),
              ("std", "std per dimension of z/|z| (0: collapsed)")]
    for ax, (key, label) in zip(axes, panels):
        for name, history in runs.items():
            ax.plot(history["step"], history[key], label=name)
        ax.set_xlabel("training step")
        ax.set_title(label, fontsize=10)
    out_dims = {history["out_dim"] for history in runs.values()}
    if len(out_dims) == 1:
        d = out_dims.pop()
        axes[2].axhline(d ** -0.5, color="grey", ls="--", lw=1, label=f"1/sqrt(D), D = {d}")
    axes[2].set_ylim(bottom=0)
    axes[1].set_ylim(top=0.05)
    axes[2].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
