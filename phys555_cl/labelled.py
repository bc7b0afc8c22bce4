"""Every method of the payoff study fitted on a labelled subset: the networks trained on labels
(the supervised baseline, fine-tuning, distillation) and the linear probes on frozen features.

One training loop serves every arm of :mod:`phys555_cl.study` that trains a network on the
labelled galaxies: an encoder (a fresh one, or the SimCLR encoder), the model's fixed flux
stretch in front and one new linear head per task behind::

    logits[t] = head_t(encoder(AsinhStretch(x)))           x [B, 3, H, W] -> [B, C_t]
    loss      = sum over tasks t of cross_entropy(logits[t], y_t)   (galaxies with y_t >= 0)
              + T^2 KL(softmax(teacher_t / T) || softmax(logits_t / T))   (distillation only)

Example::

    net = train_on_labels(fresh_encoder, images, {"edge_on": y}, tasks=("edge_on",))
    predict(net, test_images)["edge_on"]                   # int64 [N]

:class:`Population` splits one population into a probe-training and a test part and fits
every method on a labelled subset of the first (:func:`phys555_cl.study.label_efficiency`
draws the subsets and keeps the records).
"""

from __future__ import annotations

import copy
import inspect
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from phys555_cl import config
from phys555_cl.augment import GalaxyAugment
from phys555_cl.config import stable_seed
from phys555_cl.encoders import AsinhStretch, build_model_from_config, conv_memory_format
from phys555_cl.evaluate import TASKS, embed, fit_linear_probe, raw_pixels
from phys555_cl.galaxies import N_CLASSES
from phys555_cl.label_subsets import masked_labels, subsets_for
from phys555_cl.study_results import SIMCLR_ARMS

__all__ = ["N_CLASSES", "RECIPE", "MultiHead", "Population", "SubsetFit", "predict", "study_bar",
           "train_on_labels", "trained_methods"]

#: Training recipe of every network trained on labels (supervised, fine-tune, distillation
#: student), chosen on the validation populations (``benchmarks/choose_study_recipe.py``,
#: data/pretrained/README.md): the same step budget, batch and learning rate for every arm
#: (300 steps: 150 lost 3 points at 200 labels, 600 gained nothing at 20; fine-tuning at 2e-3
#: scored 71.6 / 86.8% at 20 / 200 labels against 71.3 / 86.2% at 5e-4); soft targets at
#: ``distill_temperature`` 1 (T = 2 tied at 70.8%). The distillation student trains for
#: ``distill_steps`` (None: ``steps``) with an unlabelled minibatch of ``distill_unlabelled``
#: beside each labelled one; cheaper budgets (150 steps, or 16 unlabelled) lost 0.9 to 2.1
#: points at 200 labels (``benchmarks/choose_distill_budget.py``), so 300 x 64 stays.
RECIPE = dict(
    steps=300,
    batch_size=64,
    supervised_lr=2e-3,
    finetune_lr=2e-3,
    distill_temperature=1.0,
    distill_steps=None,
    distill_unlabelled=64,
    weight_decay=1e-4,
)
#: Classes of each task (a head has this many outputs even when few labels show fewer).



class MultiHead(nn.Module):
    """``normalize -> encoder -> one linear head per task``; forward gives ``{task: logits}``."""

    def __init__(self, normalize: nn.Module, encoder: nn.Module, n_classes: dict):
        super().__init__()
        self.normalize, self.encoder = normalize, encoder
        self.heads = nn.ModuleDict({t: nn.Linear(encoder.out_dim, c) for t, c in n_classes.items()})

    def representation(self, x):
        return self.encoder(self.normalize(x))

    def forward(self, x):
        h = self.representation(x)
        return {t: head(h) for t, head in self.heads.items()}


def _n_classes(labels: dict, tasks) -> dict:
    return {t: N_CLASSES.get(t) or max(2, int(torch.as_tensor(labels[t]).max()) + 1)
            for t in tasks}


def train_on_labels(
    encoder: nn.Module,
    images: torch.Tensor,
    labels: dict,
    tasks=tuple(TASKS),
    *,
    steps: int = RECIPE["steps"],
    lr: float = RECIPE["supervised_lr"],
    batch_size: int = RECIPE["batch_size"],
    weight_decay: float = RECIPE["weight_decay"],
    seed: int = 0,
    augment: nn.Module | None = None,
    teacher: nn.Module | None = None,
    unlabelled: torch.Tensor | None = None,
    temperature: float = RECIPE["distill_temperature"],
    unlabelled_batch_size: int = RECIPE["distill_unlabelled"],
    device=None,
    progress=False,
) -> MultiHead:
    """Train ``encoder`` plus one new linear head per task with cross-entropy on the labels.

    Every task at once; a label < 0 means "no label for this galaxy" and is masked out, so each
    galaxy may carry any subset of the tasks. ``steps`` AdamW steps (one-cycle schedule) on
    augmented minibatches (``GalaxyAugment()`` by default). The same function serves the
    supervised baseline (a fresh encoder), fine-tuning (the SimCLR encoder) and, with
    ``teacher`` and ``unlabelled``, distillation: each step also shows the student an augmented
    minibatch of ``unlabelled_batch_size`` unlabelled galaxies (in the same forward pass as
    the labelled ones) and adds ``T^2 KL(softmax(teacher/T) || softmax(student/T))`` per task
    (Hinton et al. 2015; SimCLRv2). The teacher's soft targets are computed once, on the
    unaugmented galaxies: the student learns to give the teacher's answer for the clean
    galaxy from any view of it. The sky noise every view is brought back to
    (:meth:`GalaxyAugment.sky_noise`) is measured once per galaxy, not at every step.

    ``progress``: False, True (a bar for this network) or a progress bar to move on by one per
    step (:func:`phys555_cl.study.label_efficiency` passes one bar for the whole study).

    Shapes: ``images [N, 3, H, W]``, ``labels[t] [N]``, ``unlabelled [U, 3, H, W]``.
    Returns the trained :class:`MultiHead` in eval mode.

    Raises:
        ValueError: ``steps`` < 1, or no galaxy carries a label for any task.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = torch.device(device or "cpu")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the heads' initialisation
    fmt = conv_memory_format(device)
    model = MultiHead(AsinhStretch(), encoder, _n_classes(labels, tasks)).to(
        device, memory_format=fmt)
    augment = (augment or GalaxyAugment()).to(device)
    opt, sched = _optimizer(model, lr, weight_decay, steps, device)
    ys = {t: torch.as_tensor(labels[t]).long() for t in tasks}
    labelled = torch.nonzero(torch.stack([ys[t] >= 0 for t in tasks]).any(0)).flatten()
    if len(labelled) == 0:
        raise ValueError("no galaxy carries a label for any task: nothing to train on")
    batches = _Minibatches(images, labelled, batch_size, augment)
    if teacher is not None and unlabelled is not None and len(unlabelled) > 0:
        batches.add_unlabelled(unlabelled, _soft_targets(teacher.to(device), unlabelled,
                                                         temperature), unlabelled_batch_size)
    bar, own_bar = _step_bar(progress, steps)
    model.train()
    for _ in range(steps):
        idx, x, sigma, soft = batches.draw(gen)
        views = (augment(x, generator=gen) if sigma is None
                 else augment(x, generator=gen, sigma=sigma))
        out = model(views.to(device).contiguous(memory_format=fmt))
        loss = _minibatch_loss(out, {t: y[idx] for t, y in ys.items()}, soft, temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if bar is not None:
            bar.update()
    if own_bar:
        bar.close()
    return model.eval()


def _step_bar(progress, steps: int) -> tuple:
    """``(bar or None, whether it is this network's own)``: a bar of the caller's (one for a
    whole study) is moved on by each step; ``True`` gives this network its own bar."""
    if progress is True:
        return config.progress(total=steps, desc="training on labels", leave=False), True
    return progress or None, False


def _optimizer(model: nn.Module, lr: float, weight_decay: float, steps: int, device):
    """AdamW and its one-cycle schedule over ``steps``. Fused (one kernel for every
    parameter) where PyTorch has it: 0.4 ms a step on one CPU thread, 2.5 ms unfused."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                            fused=device.type in ("cpu", "cuda"))
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)


class _Minibatches:
    """The minibatches of :func:`train_on_labels`: galaxies drawn from those that carry a
    label and, for distillation, an unlabelled minibatch riding in the same forward pass with
    the teacher's soft targets; every galaxy's sky noise measured once (:func:`_sky_noise`)."""

    def __init__(self, images, labelled: torch.Tensor, batch_size: int, augment: nn.Module):
        self.images, self.labelled, self.augment = torch.as_tensor(images), labelled, augment
        self.size = min(batch_size, len(labelled))
        self.noise = _sky_noise(augment, self.images)
        self.unlabelled = None

    def add_unlabelled(self, unlabelled, soft_targets: dict, batch_size: int) -> None:
        """Each minibatch also draws ``batch_size`` of ``unlabelled`` and their soft targets."""
        self.unlabelled, self.soft_targets, self.unlabelled_size = (unlabelled, soft_targets,
                                                                    batch_size)
        self.unlabelled_noise = _sky_noise(self.augment, unlabelled)

    def draw(self, gen: torch.Generator) -> tuple:
        """``(idx, x, sigma, soft)``: the labelled rows drawn (indices into ``images``), the
        galaxies ``[B (+ U), C, H, W]``, their sky noise ``[B (+ U), C]`` (None: the
        augmentation measures it) and the soft targets ``{task: [U, C]}`` (None without
        unlabelled galaxies)."""
        idx = self.labelled[torch.randint(len(self.labelled), (self.size,), generator=gen)]
        x, soft = self.images[idx].float(), None
        sigma = None if self.noise is None else self.noise[idx]
        if self.unlabelled is not None:
            u = torch.randint(len(self.unlabelled), (self.unlabelled_size,), generator=gen)
            x = torch.cat([x, torch.as_tensor(self.unlabelled[u]).float()])
            sigma = None if sigma is None else torch.cat([sigma, self.unlabelled_noise[u]])
            soft = {t: p[u] for t, p in self.soft_targets.items()}
        return idx, x, sigma, soft


def _sky_noise(augment: nn.Module, images, chunk: int = 1024) -> torch.Tensor | None:
    """``[N, C]``: the sky noise of every image, measured once for all the steps when
    ``augment`` is a :class:`GalaxyAugment` whose ``forward`` takes it (None otherwise:
    another augmentation, or a subclass that changed ``forward``, measures what it needs)."""
    if not (isinstance(augment, GalaxyAugment)
            and "sigma" in inspect.signature(augment.forward).parameters):
        return None
    return torch.cat([augment.sky_noise(torch.as_tensor(images[i:i + chunk]).float())
                      for i in range(0, len(images), chunk)])


def _soft_targets(teacher: MultiHead, unlabelled, temperature: float) -> dict:
    """The teacher's ``softmax(logits / T)`` of every unlabelled galaxy: ``{task: [U, C]}``."""
    with torch.no_grad():
        logits = _logits(teacher.eval(), unlabelled)
    return {t: (v / temperature).softmax(1) for t, v in logits.items()}


def _minibatch_loss(out: dict, y: dict, soft: dict | None, temperature: float) -> torch.Tensor:
    """The loss of one minibatch: per task, cross-entropy on its ``len(y[t])`` labelled rows
    (labels >= 0), then with ``soft`` the distillation term on the unlabelled rows after them.

    Shapes: ``out[t] [B + U, C]``, ``y[t] [B]``, ``soft[t] [U, C]``.
    """
    device = next(iter(out.values())).device
    loss = torch.zeros((), device=device)
    for t, labels in y.items():
        n = len(labels)
        labels = labels.to(device)
        ok = labels >= 0
        if ok.any():
            loss = loss + F.cross_entropy(out[t][:n][ok], labels[ok])
        if soft is not None:
            log_p = (out[t][n:] / temperature).log_softmax(1)
            loss = loss + temperature**2 * F.kl_div(log_p, soft[t].to(device),
                                                    reduction="batchmean")
    return loss


@torch.no_grad()
def _logits(model: MultiHead, images, batch_size: int = 128) -> dict:
    """``{task: logits [N, C]}`` (CPU) of a :class:`MultiHead` in eval mode. Batches of 128
    keep the activations in the cache: 0.43 ms per 32-pixel galaxy on one CPU thread, against
    0.62 ms in batches of 512 (channels-last, the compact encoder)."""
    model.eval()
    device = next(model.parameters()).device
    fmt = conv_memory_format(device)
    out: dict = {}
    for start in range(0, len(images), batch_size):
        x = torch.as_tensor(images[start:start + batch_size]).float().to(device)
        batch = model(x.contiguous(memory_format=fmt))
        for t, logits in batch.items():
            out.setdefault(t, []).append(logits.float().cpu())
    return {t: torch.cat(v) for t, v in out.items()}


def predict(model: MultiHead, images, batch_size: int = 128) -> dict:
    """Class predictions ``{task: int64 [N]}`` of a :class:`MultiHead`."""
    return {t: v.argmax(1).numpy() for t, v in _logits(model, images, batch_size).items()}


def trained_methods(methods) -> list:
    """The label-trained networks that ``methods`` need, in training order (distillation
    needs the fine-tuned network as its teacher)."""
    wanted = set(methods) | ({"simclr + fine-tune"}
                             if "simclr + fine-tune + distill" in methods else set())
    return [m for m in SIMCLR_ARMS[1:] + ("supervised",) if m in wanted]


def network_steps(rec: dict, method: str) -> int:
    """Training steps of ``method``'s network under the recipe ``rec``: ``rec["steps"]``, or
    for the distillation student ``rec["distill_steps"]`` where that is set."""
    if method == "simclr + fine-tune + distill" and rec.get("distill_steps") is not None:
        return rec["distill_steps"]
    return rec["steps"]


def study_bar(progress, counts, repeats, methods, rec, population):
    """One progress bar for every training step of a population's study (None without
    progress or without a network to train); its text says which label count and subset is
    being fitted, and tqdm adds the time left. ``progress``: True, False, or a factory of
    bars like :func:`phys555_cl.config.progress` (a worker process's, which moves the
    parent's bar)."""
    total = (sum(subsets_for(c, repeats) for c in counts)
             * sum(network_steps(rec, m) for m in trained_methods(methods)))
    if not progress or not total:
        return None
    make = progress if callable(progress) else config.progress
    return make(total=total, desc=f"population {population}", unit="step")


# ------------------------------------------------------------------------------------------
# every method on one labelled subset of a population
# ------------------------------------------------------------------------------------------


@dataclass
class SubsetFit:
    """What fitting every method on one labelled subset gave (:meth:`Population.fit_subset`)."""

    preds: dict  # {method: {task: test predictions [M], or None without a labelled example}}
    no_labels: list  # the tasks without a labelled example in the subset
    trained: dict  # {method: the network trained on the labels}
    seconds: dict  # {method: seconds spent fitting it}


class Population:
    """One population split into a probe-training and a test part, and how each method is
    fitted on a labelled subset of the training part."""

    def __init__(self, model, config, images, labels, tasks, protocol, test_fraction,
                 population, device):
        self.model, self.config, self.tasks, self.device = model, config, tuple(tasks), device
        self.population, self.protocol = population, protocol
        self.images = torch.as_tensor(images)
        n = len(self.images)
        perm = np.random.default_rng(stable_seed("split", population, bits=31)).permutation(n)
        n_test = int(round(test_fraction * n))
        self.test_idx, self.train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        keys = list(tasks) + (["label_tier"] if "label_tier" in labels else [])
        self.lab_tr = {t: torch.as_tensor(labels[t])[self.train_idx] for t in keys}
        self.lab_te = {t: torch.as_tensor(labels[t])[self.test_idx].numpy() for t in tasks}
        self.tiers_te = (torch.as_tensor(labels["label_tier"])[self.test_idx].numpy()
                         if protocol == "survey" else None)
        self.x_tr, self.x_te = self.images[self.train_idx], self.images[self.test_idx]

    def fresh_encoder(self, seed: int) -> nn.Module:
        """The architecture of ``model``, initialised from ``seed``."""
        torch.manual_seed(seed)
        if self.config is not None:
            return build_model_from_config(self.config).encoder
        fresh = copy.deepcopy(self.model)
        for m in fresh.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return fresh.encoder

    def frozen_features(self, methods) -> tuple[dict, dict]:
        """``({method: features [N, D]}, {method: seconds})`` of the linear-probe arms
        (computed once per population; the seconds are shared out equally)."""
        t0 = time.perf_counter()
        features = {}
        if "simclr + linear" in methods:
            features["simclr + linear"] = embed(self.model, self.images, device=self.device)
        if "random init + linear" in methods:
            rand = copy.deepcopy(self.model)
            rand.encoder = self.fresh_encoder(stable_seed("random init", self.population, bits=31))
            features["random init + linear"] = embed(rand, self.images, device=self.device)
        if "raw pixels + linear" in methods:
            features["raw pixels + linear"] = raw_pixels(self.images)
        share = (time.perf_counter() - t0) / max(1, len(features))
        return {m: f.numpy() for m, f in features.items()}, {m: share for m in features}

    def fit_subset(self, subset, features, methods, rec, where, progress,
                   teachers=None) -> SubsetFit:
        """Fit every method on one labelled subset (``where``: its label count and number).
        ``teachers``: networks already trained on this subset (``{"simclr + fine-tune":
        net}``), used instead of training them again (to compare distillation recipes)."""
        tasks = self.tasks
        union = np.unique(np.concatenate([subset[t] for t in tasks]))
        sub_labels = masked_labels(self.lab_tr, {t: subset[t] for t in tasks})
        no_labels = [t for t in tasks if not (torch.as_tensor(sub_labels[t]) >= 0).any()]
        labels = {t: v[union] for t, v in sub_labels.items()}
        preds, seconds = {}, Counter()
        for m, f in features.items():
            t1 = time.perf_counter()
            preds[m] = _probe_predictions(f[self.train_idx][union], labels,
                                          f[self.test_idx], tasks)
            seconds[m] += time.perf_counter() - t1
        trained = dict(teachers or {})
        for m in trained_methods(methods):
            if m in trained and m not in methods:
                continue
            t1 = time.perf_counter()
            if hasattr(progress, "set_postfix_str"):
                progress.set_postfix_str(m, refresh=False)
            seed = stable_seed(m, self.population, self.protocol, *where, bits=31)
            kw = dict(steps=rec["steps"], batch_size=rec["batch_size"], seed=seed,
                      weight_decay=rec["weight_decay"], device=self.device, progress=progress)
            if m == "supervised":
                encoder, kw["lr"] = self.fresh_encoder(seed), rec["supervised_lr"]
            else:
                encoder, kw["lr"] = copy.deepcopy(self.model.encoder), rec["finetune_lr"]
            if m == "simclr + fine-tune + distill":
                others = np.setdiff1d(np.arange(len(self.train_idx)), union)
                kw.update(teacher=trained["simclr + fine-tune"], unlabelled=self.x_tr[others],
                          temperature=rec["distill_temperature"], steps=network_steps(rec, m),
                          unlabelled_batch_size=rec["distill_unlabelled"])
            trained[m] = train_on_labels(encoder, self.x_tr[union], labels, tasks, **kw)
            out = predict(trained[m], self.x_te)
            preds[m] = {t: (None if t in no_labels else out[t]) for t in tasks}
            # a teacher trained only for distillation counts as distillation time
            seconds[m if m in methods else "simclr + fine-tune + distill"] += (
                time.perf_counter() - t1)
        return SubsetFit(preds, no_labels, trained, dict(seconds))


def _probe_predictions(feats_train, labels_sub: dict, feats_test, tasks) -> dict:
    """A linear probe per task on frozen features: ``{task: test predictions [M] or None}``
    (``None``: no labelled example of that task)."""
    preds = {}
    for t in tasks:
        y = np.asarray(labels_sub[t])
        ok = y >= 0
        preds[t] = (fit_linear_probe(feats_train[ok], y[ok]).predict(feats_test)
                    if ok.any() else None)
    return preds
