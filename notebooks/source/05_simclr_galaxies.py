# %% [markdown]
# # 05 · SimCLR on galaxies
#
# SimCLR (Chen et al. 2020) learns a representation from unlabelled images in three steps,
# exactly as on the lecture's slide:
#
# 1. take a minibatch of $N$ galaxies and apply two random augmentations to each: $2N$ views;
# 2. a base **encoder** $f$ (a convolutional network: a ResNet-50 in the paper, a small
#    VGG-like CNN here) turns every view into a **representation** $h = f(x)$; a small
#    two-layer MLP, the **projection head** $g$, turns $h$ into an **embedding**
#    $z = g(h) = W_2\,\mathrm{ReLU}(\mathrm{BN}(W_1 h))$ (the slide's
#    $W_2\,\mathrm{ReLU}(W_1 h)$, with the batch normalisation that SimCLR's code, and ours,
#    puts after the first layer);
# 3. the NT-Xent loss on the $z$'s pulls the two views of a galaxy together and pushes the
#    other $2(N-1)$ views away. After training, $g$ is thrown away and $h$ is used for
#    everything downstream: probes, UMAPs, similarity search (notebook 06).
#
# ```
#   galaxy x --augment--> view 1 --f--> h1 --g--> z1 \
#            \                                         NT-Xent(z1, z2)
#             -augment--> view 2 --f--> h2 --g--> z2 /
# ```
#
# In this notebook you write the training step, train a small model on simulated galaxies
# with a progress bar and a loss curve, load the model the course ships (trained for longer),
# and see why the loss goes on $z$ but the representation we keep is $h$.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from phys555_cl import config
from phys555_cl import exercises as ex
from phys555_cl.augment import GalaxyAugment
from phys555_cl.encoders import build_simclr
from phys555_cl.evaluate import EVAL_SEED, TASKS, embed, linear_probe
from phys555_cl.galaxies import KIND_NAMES, simulate
from phys555_cl.losses import nt_xent
from phys555_cl.monitor import MONITOR_TASKS, RepresentationMonitor
from phys555_cl.plotting import show_galaxies
from phys555_cl.train import CONFIGS, load_pretrained

# %%
S = config.sizes("05")
DEVICE = config.device()
config.seed_everything(5)
print(f"fast mode: {S.fast}; device: {config.device_name(DEVICE)}")
print(f"{S.n_galaxies} training galaxies of {S.image_size} px, {S.epochs} epoch(s), "
      f"batch size {S.batch_size}")

# %% [markdown]
# ## 1. The data: simulated galaxies, no labels used
#
# `phys555_cl.galaxies.simulate` draws galaxies of seven kinds (smooth ellipticals, face-on
# spirals with and without bars, edge-on disks with dust lanes, rings, clumpy irregulars,
# gravitational lenses and mergers) at redshifts of 0.07-0.36 (5th-95th percentile; median
# 0.19), with realistic sizes, colours, seeing, sky noise, neighbours and stars. It also
# returns labels (the Galaxy Zoo questions of the lecture's slide), but **SimCLR never sees them**: we use them only afterwards, to judge
# the representation.

# %%
train_images, train_labels = simulate(S.n_galaxies, size=S.image_size, seed=0)
kinds = train_labels["kind"]
examples = torch.cat([torch.nonzero(kinds == k).flatten()[:2] for k in range(len(KIND_NAMES))])
show_galaxies(train_images[examples], ncols=7,
              titles=[KIND_NAMES[int(kinds[i])].replace("_", " ") for i in examples])
plt.show()

# %% [markdown]
# ## 2. The model: encoder f, projection head g
#
# The course's `compact` encoder is a small VGG-like CNN that trains in minutes on a laptop
# CPU (for a GPU, `build_simclr("resnet18")` uses torchvision's ResNet-18 with a stem adapted to
# small cutouts). The model also holds the input normalisation (one fixed asinh stretch of the
# fluxes for the whole survey, so the network sees how bright each galaxy is), so the raw
# fluxes from `simulate()` go in as they are.

# %%
model = build_simclr("compact", width=16, hidden_dim=512, proj_dim=128).to(DEVICE)
x = train_images[:4].to(DEVICE)
h, z = model(x)
n_encoder = sum(p.numel() for p in model.encoder.parameters())
n_head = sum(p.numel() for p in model.head.parameters())
print(f"encoder f: {n_encoder:,} parameters; projection head g: {n_head:,} parameters")
print(model.head)

# %%
# NBVAL_CHECK_OUTPUT
print(f"images x: {tuple(x.shape)} -> representation h: {tuple(h.shape)} -> "
      f"embedding z: {tuple(z.shape)}")

# %% [markdown]
# ## 3. Exercise 5.1: one training step
#
# Write the step that the whole of SimCLR repeats: given a batch of positive pairs
# (`v1[k]`, `v2[k]` are two views of galaxy `k`),
#
# 1. clear the old gradients (`optimizer.zero_grad()`);
# 2. run the model on the views; `model(x)` returns `(h, z)`. (You may pass both views at once,
#    `model(torch.cat([v1, v2]))`, and split `z` with `.chunk(2)`, or call the model twice);
# 3. the loss is `nt_xent(z1, z2, temperature)` (the package's version of what you wrote in
#    notebook 04);
# 4. `loss.backward()`, `optimizer.step()`, and return the loss as a Python float
#    (`loss.item()`), for the progress bar.
#
# Stuck? `ex.hint("5.1")` gives a deeper hint each time you call it.

# %%
def training_step(model, optimizer, v1, v2, temperature):
    """One SimCLR optimisation step on positive pairs (v1[k], v2[k]); returns the loss (float)."""
    ### HINT: One ordinary gradient step on NT-Xent between the projections of the two views of each galaxy.
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    _, z = model(torch.cat([v1, v2]))
    z1, z2 = z.chunk(2)
    loss = nt_xent(z1, z2, temperature)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


training_step = ex.check_training_step(training_step)

# %% [markdown]
# ## 4. Train
#
# Your step is the one the package trains with: `phys555_cl.train.simclr_step` is the same
# few lines (plus options for mixed precision and several GPUs), and the loop of
# `python -m phys555_cl.train` calls it once per batch. The loop is short: shuffle, cut into batches, make two views of each batch, take a step. The
# progress bar shows the loss and the throughput. We draw the augmentations on the training
# device from one seeded generator, so the run can be repeated.
#
# A useful yardstick: with $N$ galaxies per batch, a representation that knows nothing gives
# $L \approx \log(2N - 1)$ (every view picks its partner among $2N-1$ candidates at random).
#
# A falling loss does not yet tell us that $h$ is getting *useful*. So we watch two more
# numbers every epoch, as `phys555_cl.train` does (module `phys555_cl.monitor`):
#
# - the **contrastive top-1 accuracy**: of the $2N$ views of a batch, how often the most
#   similar other view (cosine of $z$) is the partner. It is what NT-Xent rewards; by chance
#   it is $1/(2N-1)$. A forward hook on the projection head catches $z$ inside your
#   `training_step`, so your function stays as it is;
# - the **kNN accuracy of $h$**: 512 labelled galaxies from a simulator seed used for nothing
#   else; each galaxy of one half gets the answer that its 20 most similar galaxies (cosine
#   of $h$) of the other half vote for, nearer ones counting more. It rises when galaxies with
#   the same answer to a slide question become neighbours in $h$, which is what we want $h$
#   for. The labels are used only to *measure*; training never sees them.

# %%
augment = GalaxyAugment().to(DEVICE)
recipe = CONFIGS["default"]  # the course's recipe, chosen on validation galaxies
optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"],
                              weight_decay=recipe["weight_decay"])
temperature = recipe["temperature"]
generator = torch.Generator(device=DEVICE).manual_seed(0)
monitor = RepresentationMonitor(image_size=S.image_size, device=DEVICE)
seen_z = []  # z of the views inside training_step, caught on the way out of the head
hook = model.head.register_forward_hook(lambda head, inputs, z: seen_z.append(z.detach()))
history = []
watch = {"epoch": [0], "knn": [monitor.knn(model)], "top1": []}  # epoch 0: untrained
model.train()
steps_per_epoch = len(train_images) // S.batch_size
bar = config.progress(total=S.epochs * steps_per_epoch, desc="SimCLR")
for epoch in range(S.epochs):
    order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(epoch))
    for step in range(steps_per_epoch):
        start = time.perf_counter()
        batch = train_images[order[step * S.batch_size:(step + 1) * S.batch_size]].to(DEVICE)
        v1, v2 = augment.two_views(batch, generator=generator)
        loss = training_step(model, optimizer, v1, v2, temperature)
        monitor.observe(*torch.cat(seen_z).chunk(2))  # z of v1, z of v2
        seen_z.clear()
        history.append(loss)
        bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{len(batch) / (time.perf_counter() - start):.0f}")
        bar.update()
    stats = monitor.end_epoch(model)  # kNN on h (eval mode), top-1 of this epoch's batches
    model.train()
    watch["epoch"].append(epoch + 1)
    watch["knn"].append(stats["knn_accuracy"])
    watch["top1"].append(stats["contrastive_top1"])
    bar.set_postfix(loss=f"{loss:.3f}", top1=f"{stats['contrastive_top1']:.2f}",
                    knn_smooth=f"{stats['knn_accuracy']['smooth_or_featured']:.2f}")
bar.close()
hook.remove()
model.eval()

fig, (ax_loss, ax_top1, ax_knn) = plt.subplots(1, 3, figsize=(13, 3.4))
ax_loss.plot(history, label="training loss")
ax_loss.axhline(np.log(2 * S.batch_size - 1), color="grey", ls="--",
                label="log(2N - 1): no information")
ax_loss.set(xlabel="step", ylabel="NT-Xent", title="the loss")
ax_loss.legend()
ax_top1.plot(watch["epoch"][1:], watch["top1"], "o-", label="training batches")
ax_top1.axhline(1 / (2 * S.batch_size - 1), color="grey", ls="--", label="chance, 1/(2N - 1)")
ax_top1.set(xlabel="epoch", ylabel="fraction of views", ylim=(0, 1), xticks=watch["epoch"][1:],
            title="contrastive top-1: partner is the nearest view")
ax_top1.legend()
for task in MONITOR_TASKS:
    ax_knn.plot(watch["epoch"], [k[task] for k in watch["knn"]], "o-", label=task)
ax_knn.set(xlabel="epoch (0 = untrained)", ylabel="accuracy", ylim=(0.4, 1), xticks=watch["epoch"],
           title="kNN accuracy of h (k = 20)")
ax_knn.legend()
fig.tight_layout()
plt.show()
print("kNN accuracy of h, untrained -> trained: " + ", ".join(
    f"{task} {watch['knn'][0][task]:.2f} -> {watch['knn'][-1][task]:.2f}" for task in MONITOR_TASKS))

# %% [markdown]
# What the three panels show. The **loss** falls below $\log(2N-1)$ as soon as the views of a
# galaxy are more similar to each other than to the rest. The **contrastive top-1** says the
# same thing as a fraction: it starts near chance and climbs as each view finds its partner
# among the $2N-1$ candidates; that is the task, not the goal. The **kNN accuracy of h** is
# the goal: whether galaxies with the same answer to a slide question become neighbours in
# $h$. It starts from what a random network already gives and rises more slowly, and it can
# stall while the loss still falls (in a short run it can even dip first): the model
# can get better at recognising augmented copies in ways that do not help the questions we
# care about. With the full recipe below (`python -m phys555_cl.train --config default`,
# which prints these numbers in its progress bar and writes them to `history.json`), the kNN
# accuracy on `smooth_or_featured` was 0.67 after one epoch, 0.85 after two, and stayed at
# 0.83-0.86 for the other eighteen while the contrastive top-1 climbed from 0.11 to 0.64;
# `odd` stayed at 0.65-0.69 throughout, about what always answering "not odd" scores (70% of
# these galaxies are not odd): the shipped model's run, in `data/pretrained/README.md`.

# %% [markdown]
# In fast mode this is only a handful of steps, so the loss has barely started to fall. The
# full recipe (8192 galaxies, 20 epochs, the shipped model below) took the time that
# `data/pretrained/README.md` records for the shipped model, on a 2-core laptop CPU (a few
# minutes; `python -m phys555_cl.train --config default` prints its own time). The same loop,
# with checkpoints every epoch, resume after Ctrl-C, mixed precision on a GPU and multi-GPU
# training, is one command:
#
# ```bash
# python -m phys555_cl.train --config default --out runs/default      # laptop CPU, minutes
# python -m phys555_cl.train --config default --out runs/default --resume   # after Ctrl-C
# torchrun --nproc_per_node=4 -m phys555_cl.train --config gpu --out runs/gpu   # 4 GPUs
# ```
#
# and from Python, `model, history = train_simclr("fast", images=train_images)`; every entry
# of `history["epochs"]` carries its `knn_accuracy` and `contrastive_top1` (switch the monitor off
# with `monitor=False`, or `--no-monitor` on the command line; it costs about 2% of an epoch).

# %% [markdown]
# ## 5. Or load the model the course ships
#
# `data/pretrained/simclr_compact.pt` was made with exactly that command (see
# `data/pretrained/README.md` for the command, its time and its scores).
# `train.load_pretrained` loads it; if it is missing (for example in a copy of the notebook
# without the repository) it trains a quick one on our galaxies instead. Notebook 06 starts
# from the same call.

# %%
pretrained, pretrained_config = load_pretrained(images=train_images)
pretrained = pretrained.to(DEVICE).eval()

# %% [markdown]
# ## 6. Why the loss is on z but we keep h
#
# Chen et al. found that a linear classifier works much better on $h$ than on $z$. The
# projection head is trained to make $z$ *invariant* to the augmentations, and it achieves
# that partly by throwing information away: anything that helps tell two views apart, and
# with it some of what distinguishes galaxies. $h$, one layer before, keeps more.
#
# We test both on galaxies the model has never seen (a different simulator seed): a linear
# probe (logistic regression) for each question of the lecture's slide, trained on half of them
# and scored on the other half.

# %%
test_images, test_labels = simulate(S.n_test, size=pretrained_config["image_size"],
                                    seed=EVAL_SEED)
h_test = embed(pretrained, test_images, device=DEVICE)
with torch.no_grad():
    z_test = pretrained.head(h_test.to(DEVICE)).cpu()
half = len(test_images) // 2
rows = []
for task in TASKS:
    y = test_labels[task]
    scores = [linear_probe(f[:half], y[:half], f[half:], y[half:]) for f in (h_test, z_test)]
    rows.append((task, *scores))
print(f"{'question':<20} {'probe on h':>11} {'probe on z':>11}   (accuracy on held-out galaxies)")
for task, on_h, on_z in rows:
    print(f"{task:<20} {on_h:>11.3f} {on_z:>11.3f}")

# %% [markdown]
# Compare the two columns above question by question: where $h$ is ahead, the head has
# thrown away something the question needs. The augmentations jitter colour, brightness and
# size a little, so what $z$ is pushed to ignore is exactly the information that carries
# redshift and fine structure; how large each gap is on this small model is what the run
# above prints (a single split, so differences of a point or two are within its noise).
# Notebook 06 looks at $h$ in much more detail.

# %% [markdown]
# ## 6. Exercise 5.2: your own experiment
#
# The augmentations decide what the representation learns to ignore. Test that yourself:
# change **one** setting of `GalaxyAugment` (its settings: `flip_p`, `degrees`, `max_shift`,
# `scale`, `blur_fwhm`, `ebv`, `delta_mag`, `noise_level`; `help(GalaxyAugment)` says what
# each does), train the same small model twice from the same starting weights, once with the
# default pipeline and once with yours, and compare linear probes on $h$. Ideas: rotation off;
# notebook 03's reddening range 25 times wider; brightness ±2 mag; no extra noise.
#
# **Before you run it, write down your prediction**: which questions' probes should move, and
# which way? Then write `my_augment()` returning your pipeline.

# %%
def my_augment():
    """The default GalaxyAugment with ONE setting changed (your choice)."""
    ### HINT: An experiment changes one thing at a time; pick the invariance you want to test.
    ### BEGIN SOLUTION
    return GalaxyAugment(degrees=(0.0, 0.0))  # rotation off
    ### END SOLUTION


my_augment = ex.check_experiment_augment(my_augment)

# %% [markdown]
# The two runs: same galaxies, same initial weights, same order of batches, same generator
# seed, your `training_step`; only the augmentation differs. Then a linear probe on $h$ for each
# question, fitted on half of the held-out galaxies of section 5 and scored on the other half.
# (Fast mode trains for seconds: the numbers mean little there.)

# %%
def short_run(augmentation, epochs, seed=0):
    """A small SimCLR trained for a few epochs with `augmentation`; returns it in eval mode."""
    torch.manual_seed(seed)
    net = build_simclr("compact", width=16, hidden_dim=512, proj_dim=128).to(DEVICE)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe["lr"],
                            weight_decay=recipe["weight_decay"])
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    augmentation = augmentation.to(DEVICE)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(epoch))
        for step in range(steps_per_epoch):
            batch = train_images[order[step * S.batch_size:(step + 1) * S.batch_size]]
            v1, v2 = augmentation.two_views(batch.to(DEVICE), generator=gen)
            training_step(net, opt, v1, v2, temperature)
            runs_bar.update()
    return net.eval()


runs_bar = config.progress(total=2 * S.experiment_epochs * steps_per_epoch,
                           desc="experiment: default, then yours")
experiment = {"default": short_run(GalaxyAugment(), S.experiment_epochs),
              "yours": short_run(my_augment(), S.experiment_epochs)}
runs_bar.close()
probes = {}
for name, net in experiment.items():
    h_exp = embed(net, test_images, device=DEVICE)
    probes[name] = [linear_probe(h_exp[:half], test_labels[t][:half], h_exp[half:],
                                 test_labels[t][half:]) for t in TASKS]
print(f"{'question':<20} {'default':>8} {'yours':>8} {'yours - default':>16}")
for t, a, b in zip(TASKS, probes["default"], probes["yours"]):
    print(f"{t:<20} {a:>8.3f} {b:>8.3f} {b - a:>+16.3f}")

# %% [markdown]
# ### Question: what did your experiment show?
#
# Compare the table with your prediction. Which probes moved, by how much, and does the
# change fit what the augmentation asks the representation to ignore? How sure can you be
# from one run of each (what would you do to be surer)?
#
# ### BEGIN SOLUTION
# (For the reference experiment, rotation off.) A representation trained without rotations is
# no longer asked to give a galaxy and its rotated copy the same $h$, so it may keep the
# orientation and, with a fixed budget, learn less of what is the same at every angle; the
# questions that depend on shape (smooth or featured, edge-on, the odd feature) are where a
# change should show, and redshift, which lives in colour and size, should hardly care. Read
# the last column against the noise: each number is one training run and one split of the
# held-out galaxies, and differences of a point or two between two runs of the *same* recipe
# are common at this size (notebook 06 measures that spread). To be surer: repeat both arms
# with several seeds (initial weights and batch order) and look at the paired differences,
# as notebook 06's study does.
# ### END SOLUTION
#
# ### Question
#
# The augmentations include a random rotation. What does that imply for $z$ of a galaxy and
# of the same galaxy rotated by 90 degrees, and why is that what we want for a morphology
# classifier but would be a problem for a model that should measure the position angle?
#
# ### BEGIN SOLUTION
# Training pulls the embeddings of differently rotated views together, so $z$ (and to a
# lesser extent $h$) becomes nearly invariant to rotation: a galaxy and its rotated copy get
# almost the same embedding. For morphology that is exactly right: a spiral is a spiral at
# any orientation. But the position angle is then exactly the information the representation
# was trained to discard, so a probe could not recover it: the augmentations decide what the
# representation forgets, and they must be chosen for the downstream task.
# ### END SOLUTION
