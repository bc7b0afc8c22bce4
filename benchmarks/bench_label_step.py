"""What one step of a network trained on labels costs, by minibatch (issue 20, item 5).

The payoff study is bound by the networks it trains on labels; a step's cost grows with its
minibatch: labelled galaxies (up to ``RECIPE["batch_size"]``) plus, for the distillation
student, ``RECIPE["distill_unlabelled"]`` unlabelled ones. This times
``labelled.train_on_labels`` on the compact model's encoder, one thread (as each worker
process of the study has on 2 cores), at the minibatches the study uses, two ways in the same
run:

- ``noise every step``: the augmentation measures each galaxy's sky noise at every step (as
  before; the augmentation is wrapped so that ``train_on_labels`` cannot see it is a
  ``GalaxyAugment``);
- ``noise once``: ``train_on_labels`` measures it once per galaxy (the present code). The
  networks are the same to the bit (``tests/test_labelled.py``).

The two ways alternate, repeat after repeat, so that the machine's load is the same for both::

    python benchmarks/bench_label_step.py [--steps 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from phys555_cl.augment import GalaxyAugment
from phys555_cl.checkpoints import load_checkpoint
from phys555_cl.galaxies import simulate
from phys555_cl.labelled import RECIPE, train_on_labels

#: (labelled, unlabelled) galaxies per step: 5 labels per task (about 18 galaxies), 20 or
#: more labels per task (64), and the distillation student's with 16, 32 or 64 unlabelled.
MINIBATCHES = ((18, 0), (64, 0), (18, 16), (64, 16), (64, 32), (64, 64))


class NoiseEveryStep(nn.Module):
    """The default augmentation, measuring the sky noise itself at every step."""

    def __init__(self):
        super().__init__()
        self.inner = GalaxyAugment()

    def forward(self, x, generator=None):
        return self.inner(x, generator=generator)


class Clock:
    """A stand-in for the progress bar ``train_on_labels`` moves on once per step: it notes
    when each step ended, so that the set-up before the first step is not counted."""

    def __init__(self):
        self.ends = []

    def update(self, n: int = 1):
        self.ends.append(time.perf_counter())


def time_steps(encoder, images, labels, teacher, labelled: int, unlabelled: int, steps: int,
               augment) -> float:
    """Milliseconds per step of ``train_on_labels`` at this minibatch (the steps after the
    first)."""
    y = {"smooth_or_featured": labels["smooth_or_featured"][:labelled]}
    clock = Clock()
    kw = dict(tasks=("smooth_or_featured",), steps=steps, batch_size=labelled, seed=0,
              augment=augment, progress=clock)
    if unlabelled:
        kw.update(teacher=teacher, unlabelled=images[200:], unlabelled_batch_size=unlabelled)
    train_on_labels(copy.deepcopy(encoder), images[:labelled], y, **kw)
    return 1e3 * (clock.ends[-1] - clock.ends[0]) / (steps - 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="data/pretrained/simclr_compact.pt")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.steps < 2:
        raise SystemExit("--steps must be at least 2 (the first step is not timed)")
    torch.set_num_threads(1)
    model, cfg = load_checkpoint(args.checkpoint)
    images, labels = simulate(1200, size=cfg["image_size"], seed=1234)
    teacher = train_on_labels(copy.deepcopy(model.encoder), images[:64],
                              {"smooth_or_featured": labels["smooth_or_featured"][:64]},
                              tasks=("smooth_or_featured",), steps=2)
    ways = {"noise every step": NoiseEveryStep, "noise once": GalaxyAugment}
    print(f"one thread, {args.steps} steps, best of {args.repeats}; ms per step\n")
    print("| labelled + unlabelled | " + " | ".join(ways) + " | speed-up |")
    print("|---|" + "---|" * (len(ways) + 1))
    for labelled, unlabelled in MINIBATCHES:
        best = {w: float("inf") for w in ways}
        for _ in range(args.repeats):
            for w, make in ways.items():
                ms = time_steps(model.encoder, images, labels, teacher, labelled, unlabelled,
                                args.steps, make())
                best[w] = min(best[w], ms)
        a, b = best.values()
        print(f"| {labelled} + {unlabelled} | {a:.1f} | {b:.1f} | {a / b:.2f}x |", flush=True)
    print(f"\nrecipe: {RECIPE}")


if __name__ == "__main__":
    main()
