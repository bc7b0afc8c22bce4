"""Watch the representation learn: a kNN accuracy of h and the contrastive top-1 accuracy.

A falling NT-Xent loss says the views of a galaxy are found among the others; it does not say
that ``h`` is getting better for anything a scientist asks. Two numbers, measured while
SimCLR trains (every epoch of :func:`phys555_cl.train.train_simclr`), say more:

- **kNN accuracy of h** (as lightly and solo-learn monitor it): a few hundred labelled
  validation galaxies, simulated from their own seed (:data:`MONITOR_SEED`, apart from the
  training seeds 0, 1, ..., the evaluation seeds 2021-2024 and the validation seeds 1234-1237
  that chose the recipe), are embedded; each galaxy of one half is classified by its k = 20
  most cosine-similar galaxies of the other half, each voting with weight
  ``exp(cos / 0.1)`` (Wu et al. 2018), so nearer neighbours count more. No training of a
  classifier, a few milliseconds; it rises when galaxies with the same answer to a slide
  question move together in h. Tasks: :data:`MONITOR_TASKS`.
- **Contrastive top-1 accuracy** (as UvA tutorial 17 shows it): of the 2N views of a training
  batch, the fraction whose most similar other view (cosine of z) is its own partner: what
  NT-Xent rewards, 1/(2N - 1) by chance.

::

    monitor = RepresentationMonitor(image_size=32)
    monitor.knn(model)                         # {"smooth_or_featured": 0.83, "odd": 0.74}
    contrastive_top1(z1, z2)                   # 0.41
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from phys555_cl.evaluate import embed, knn_predict
from phys555_cl.galaxies import simulate

__all__ = [
    "KNN_K", "KNN_TEMPERATURE", "MONITOR_GALAXIES", "MONITOR_SEED", "MONITOR_TASKS",
    "RepresentationMonitor", "contrastive_top1", "knn_accuracy", "monitor_galaxies"
]

#: Simulator seed of the monitor's labelled galaxies (used for nothing else).
MONITOR_SEED = 4242
#: The slide questions the kNN accuracy is measured on (labels of ``simulate()``).
MONITOR_TASKS = ("smooth_or_featured", "odd")
#: Galaxies simulated for the monitor: half are the kNN's neighbours, half are classified.
MONITOR_GALAXIES = 512
KNN_K = 20
KNN_TEMPERATURE = 0.1


@torch.no_grad()
def contrastive_top1(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Fraction of the 2N views whose most cosine-similar other view is their partner.

    Shapes: ``z1, z2 [N, D]`` (view k of ``z1`` and view k of ``z2`` are partners) -> a
    0-d tensor on their device (no synchronisation; ``float()`` it when needed). Chance is
    ``1 / (2N - 1)``.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be [N, D], got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))  # a view is not its own neighbour
    n = len(z1)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return (sim.argmax(dim=1) == partner).float().mean()


@torch.no_grad()
def knn_accuracy(train_h: torch.Tensor, train_y: torch.Tensor, test_h: torch.Tensor,
                 test_y: torch.Tensor, *, k: int = KNN_K,
                 temperature: float = KNN_TEMPERATURE) -> float:
    """Weighted kNN accuracy with cosine similarity (the monitor of Wu et al. 2018).

    Every test row is classified by its ``k`` most cosine-similar training rows, each voting
    for its label with weight ``exp(similarity / temperature)`` (:func:`evaluate.knn_predict`).
    Rows labelled -1 ("does not apply") are left out on both sides.

    Shapes: ``train_h [N, D], train_y [N], test_h [M, D], test_y [M] -> float`` in [0, 1].
    """
    keep, use = train_y >= 0, test_y >= 0
    if not keep.any() or not use.any():
        raise ValueError("no labelled rows to compare: every label is -1")
    predicted = knn_predict(train_h[keep], train_y[keep], test_h[use], k,
                            temperature=temperature)
    return float((predicted.cpu() == test_y[use].cpu()).float().mean())


@lru_cache(maxsize=2)
def monitor_galaxies(n: int, image_size: int) -> tuple[torch.Tensor, dict]:
    """The monitor's labelled galaxies: ``simulate(n, size=image_size, seed=MONITOR_SEED)``
    images and the labels of :data:`MONITOR_TASKS` (kept, so a second run does not simulate
    them again; do not modify them)."""
    images, labels = simulate(n, size=image_size, seed=MONITOR_SEED)
    return images, {task: labels[task] for task in MONITOR_TASKS}


class RepresentationMonitor:
    """The kNN accuracy of ``h`` on the monitor's galaxies, and the contrastive top-1 accuracy
    of the training batches seen since the last :meth:`end_epoch`.

    Args:
        image_size: side of the simulated galaxies (the size the model trains on).
        device: where to embed them (default: where the model is).
        n: galaxies simulated (seed :data:`MONITOR_SEED`); half neighbours, half classified.
    """

    def __init__(self, image_size: int, device=None, n: int = MONITOR_GALAXIES):
        started = time.perf_counter()
        if n < 4:
            raise ValueError(f"the monitor needs at least 4 galaxies, got n={n}")
        self.images, self.labels = monitor_galaxies(n, image_size)
        self.half = n // 2
        self.device = device
        self._correct = self._views = None
        self.seconds = time.perf_counter() - started  # time spent by the monitor so far
        self._reported = 0.0  # ... of which end_epoch has reported

    def observe(self, z1: torch.Tensor, z2: torch.Tensor) -> None:
        """Count the contrastive top-1 hits of one training batch (no synchronisation)."""
        started = time.perf_counter()
        hits = contrastive_top1(z1, z2) * (2 * len(z1))
        self._correct = hits if self._correct is None else self._correct + hits
        self._views = (self._views or 0) + 2 * len(z1)
        self.seconds += time.perf_counter() - started

    def knn(self, model: nn.Module) -> dict[str, float]:
        """kNN accuracy of ``h`` for every task of :data:`MONITOR_TASKS`; the model is left
        in eval mode (put it back with ``model.train()``)."""
        started = time.perf_counter()
        h = embed(model, self.images, device=self.device)
        a, b = slice(0, self.half), slice(self.half, None)
        scores = {task: knn_accuracy(h[a], y[a], h[b], y[b]) for task, y in self.labels.items()}
        self.seconds += time.perf_counter() - started
        return scores

    def end_epoch(self, model: nn.Module) -> dict:
        """``{"knn_accuracy": {task: accuracy}, "contrastive_top1": fraction or None,
        "monitor_seconds": its cost since the last call}`` for the epoch that ended; starts
        counting the next one. The model is left in eval mode."""
        top1 = None
        if self._views:
            top1 = float(self._correct) / self._views
        self._correct = self._views = None
        knn = self.knn(model)
        spent, self._reported = self.seconds - self._reported, self.seconds
        return {"knn_accuracy": knn, "contrastive_top1": top1, "monitor_seconds": spent}

    @staticmethod
    def postfix(stats: dict) -> dict:
        """Short progress-bar fields for ``stats`` (what :meth:`end_epoch` returned)."""
        shown = {f"knn_{task[:6]}": f"{acc:.2f}" for task, acc in stats["knn_accuracy"].items()}
        if stats["contrastive_top1"] is not None:
            shown["top1"] = f"{stats['contrastive_top1']:.2f}"
        return shown
