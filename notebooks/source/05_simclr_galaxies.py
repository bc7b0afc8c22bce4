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
# and see why the loss goes on $z$ but the representation we keep is $h$. At the end: what came
# after SimCLR, and what the SimCLR paper found.

# %% [markdown]
# > **Notation in this notebook.** Two letters have two meanings here. $z$ is the
# > **embedding**, the output of the projection head, $z = g(h)$ (`z`, `z_test` in the code);
# > the **z band** is the reddest of the three images g, r, z of every galaxy, and is always
# > called "the z band". $g$ is the **projection head** in the formulas and the **g band** in
# > "g, r, z". The **redshift** is written `redshift` in the code and "redshift" in the prose,
# > never $z$. $h = f(x)$ is the representation from the encoder $f$; section 8 adds a
# > predictor output $p$.

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
# accuracy on `smooth_or_featured` was 0.80 after one epoch, 0.82 after two, and stayed at
# 0.83-0.86 for the other eighteen while the contrastive top-1 climbed from 0.08 to 0.86;
# `odd` stayed at 0.64-0.71 throughout, about what always answering "not odd" scores (70% of
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
# from the same call with `name="reference"`: the same recipe on eight times as many
# unlabelled galaxies (`python -m phys555_cl.train --config reference`).

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
# ## 7. Exercise 5.2: your own experiment
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
# question, fitted on half of the held-out galaxies of section 6 and scored on the other half.
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

# %% [markdown]
# ## 8. Beyond SimCLR
#
# SimCLR takes its negatives from the batch, so it needs big batches: Chen et al. trained with
# batch sizes from 256 to 8192 (at 8192, every positive pair has 16,382 negatives; their
# section 2.2). The methods that followed either find their negatives elsewhere, or do
# without negatives altogether. Those must stop the **collapse** of notebook 04 (every input
# mapped to the same point, which satisfies any "pull the views together" loss) in another
# way.
#
# ### MoCo: a queue of negatives and a momentum encoder
#
# MoCo (He et al. 2020) keeps the keys (embeddings) of the last batches in a **queue** and
# uses them as negatives, 65,536 by default: the number of negatives no longer depends on the
# batch size. The keys come from a second network, the key encoder, which is not trained by
# gradients but follows the query encoder slowly, $\theta_k \leftarrow m\,\theta_k +
# (1-m)\,\theta_q$ with $m = 0.999$: the **momentum encoder**. It changes so little from
# batch to batch that keys computed several batches ago can still be compared with today's
# queries. The loss is InfoNCE (notebook 07) with the queue as the candidates, at
# $\tau = 0.07$. MoCo v2 (Chen, Fan, Girshick & He 2020) then took two of SimCLR's ideas,
# the MLP projection head and stronger augmentation.
#
# ### BYOL and SimSiam: no negatives; a predictor and a stop-gradient
#
# BYOL (Grill et al. 2020) has no negatives at all. An *online* network (encoder, projection
# head and a small MLP, the **predictor**) predicts the projection of the other view made by a
# *target* network; the target's weights are a moving average of the online weights (MoCo's
# momentum encoder again), and no gradient flows into the target. SimSiam (Chen & He 2021) is
# "BYOL without the momentum encoder": one network for both views, the predictor $q$ on one
# branch and a **stop-gradient** on the other,
#
# $$ L = \tfrac12\, D\big(p_1, \mathrm{sg}(z_2)\big) + \tfrac12\, D\big(p_2, \mathrm{sg}(z_1)\big),
#    \qquad p_i = q(z_i),\quad D(p, z) = -\cos(p, z), $$
#
# where $\mathrm{sg}$ treats its argument as a constant (`.detach()`). Chen & He showed that
# the stop-gradient is essential: without it the loss quickly reaches its minimum, $-1$, and
# the standard deviation of the normalised output falls to 0, a collapse (their section 4.1
# and Figure 2); without the predictor it collapses too (section 4.2). *Why* the two prevent
# collapse is still debated; Chen & He propose that SimSiam is an alternating optimisation
# (section 5).
#
# The same experiment on the toy problem of notebook 04: the encoder $32 \to 128 \to 16$, a
# predictor $16 \to 32 \to 16$, the SimSiam loss with and without the stop-gradient, and the
# three numbers of notebook 04 (alignment, uniformity, standard deviation of each coordinate
# of $z/|z|$, on held-out inputs).

# %%
import torch.nn.functional as F

from phys555_cl import toy


def simsiam_loss(predictor, stop_gradient):
    """SimSiam's loss on the embeddings z1, z2 of two views, with or without the stop-gradient."""
    def loss(z1, z2):
        target1, target2 = (z1.detach(), z2.detach()) if stop_gradient else (z1, z2)
        return -(F.cosine_similarity(predictor(z1), target2).mean()
                 + F.cosine_similarity(predictor(z2), target1).mean()) / 2
    return loss


start = time.perf_counter()
simsiam_runs = {}
for name, stop_gradient in [("with stop-gradient", True), ("without stop-gradient", False)]:
    predictor = toy.toy_predictor(seed=0)
    simsiam_runs[name] = toy.train_toy(simsiam_loss(predictor, stop_gradient),
                                       toy.toy_encoder(seed=0), extra_modules=[predictor],
                                       steps=S.toy_steps)
seconds = time.perf_counter() - start
toy.plot_geometry(simsiam_runs, title="SimSiam on the toy problem")
plt.show()
print(f"{S.toy_steps} steps per run, both runs in {seconds:.1f} s; "
      f"1/sqrt(D) = {simsiam_runs['with stop-gradient']['out_dim'] ** -0.5:.3f}")
print(f"{'':<22} {'last loss':>9} {'alignment':>10} {'uniformity':>11} {'std per dim':>12}")
for name, h in simsiam_runs.items():
    print(f"{name:<22} {h['loss'][-1]:>9.3f} {h['alignment'][-1]:>10.3f} "
          f"{h['uniformity'][-1]:>11.3f} {h['std'][-1]:>12.3f}")

# %% [markdown]
# In the values printed above, the run **without** the stop-gradient ends with a loss close
# to its minimum of $-1$ and an alignment close to 0, while its uniformity climbs towards 0
# and its standard deviation per coordinate falls towards 0 (in the plot both are still
# moving that way when training stops): it is collapsing, as in Chen & He's Figure 2.
# **With** the stop-gradient the standard deviation stays far from 0, near $1/\sqrt{D}$, and
# the uniformity is well below 0: no negative anywhere, and still no collapse. This is one
# small run, not a proof, and the details of the networks matter: Chen & He's have BatchNorm
# in the projection head and the predictor, as `toy_encoder` and `toy_predictor` do. Try it:
# take the `nn.BatchNorm1d` out of a copy of both, or change the learning rate of
# `train_toy`, and watch the standard deviation.
#
# ### Barlow Twins: make the cross-correlation the identity
#
# Barlow Twins (Zbontar et al. 2021) standardises every coordinate of the embeddings of each
# view over the batch (mean 0, standard deviation 1) and computes the $D \times D$
# cross-correlation matrix $C_{ij}$ between coordinate $i$ of view 1 and coordinate $j$ of view
# 2. The loss asks $C$ to be the identity,
#
# $$ L_{BT} = \sum_i (1 - C_{ii})^2 + \lambda \sum_i \sum_{j \neq i} C_{ij}^2 : $$
#
# the diagonal term makes each coordinate the same for both views (invariance); the
# off-diagonal term makes different coordinates uncorrelated, so they carry different
# information (**redundancy reduction**, the principle of the neuroscientist H. Barlow that
# gives the method its name). A collapsed encoder cannot satisfy it: a coordinate that is the
# same for every input has no variation to correlate. No negatives, no predictor, no
# stop-gradient, no momentum encoder.
#
# ### DINO: self-distillation with centring and sharpening
#
# DINO (Caron et al. 2021) trains a **student** network to give, for one view of an image,
# the same probability distribution over $K$ outputs (a softmax) as a **teacher** gives for
# another view: a cross-entropy between the two distributions. The teacher is a moving
# average of the student (a momentum encoder) and gets no gradient. The teacher's outputs are
# **centred** (a running mean over batches is subtracted) and **sharpened** (a low softmax
# temperature). Centring stops one output from dominating but on its own pushes the
# distribution towards uniform; sharpening does the opposite; together they avoid both kinds
# of collapse (their section 3.1). With Vision Transformers, the attention maps of a DINO
# network segment the objects in an image without ever being told what an object is.
#
# ### SupCon: the labels come back
#
# Notebooks 01 and 02 trained $f_\theta$ with labels: the contrastive loss (Hadsell et al.
# 2006) on labelled pairs, the triplet loss (Schroff et al. 2015) on (anchor, positive,
# negative) triplets. The supervised contrastive loss, SupCon (Khosla et al. 2020), is NT-Xent
# with the labels brought back: for an anchor $i$, **every** other sample of its class in the
# batch is a positive, $P(i)$, and every sample of another class a negative,
#
# $$ \ell_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)} \log
#    \frac{\exp(s_{ip})}{\sum_{a \neq i} \exp(s_{ia})} , $$
#
# with the same $s_{ia} = u_i \cdot u_a / \tau$. One anchor is contrasted with all its
# positives and negatives at once, instead of one pair or one triplet at a time. When the
# "classes" are the galaxies themselves, two views each, $P(i)$ is the partner alone and
# SupCon **is** NT-Xent: `distances.supervised_contrastive_loss` gives the same number as
# `nt_xent`:

# %%
from phys555_cl.distances import supervised_contrastive_loss

rng = torch.Generator().manual_seed(555)
z1, z2 = torch.randn(6, 16, generator=rng), torch.randn(6, 16, generator=rng)
same_galaxy = torch.arange(6).repeat(2)  # row k and row k + 6: the two views of galaxy k
print(f"NT-Xent                           : {nt_xent(z1, z2, temperature=0.5).item():.5f}")
print(f"SupCon, classes = galaxies        : "
      f"{supervised_contrastive_loss(torch.cat([z1, z2]), same_galaxy, 0.5).item():.5f}")
print(f"SupCon, 3 classes of 4 views each : "
      f"{supervised_contrastive_loss(torch.cat([z1, z2]), same_galaxy % 3, 0.5).item():.5f}")

# %% [markdown]
# | method | negatives | what stops the collapse |
# | --- | --- | --- |
# | SimCLR | the other $2(N-1)$ views of the batch | the negatives |
# | MoCo | a queue of keys from earlier batches | the negatives; a momentum encoder keeps the keys comparable |
# | BYOL | none | a predictor, and a target network that follows the online one slowly |
# | SimSiam | none | a predictor and a stop-gradient |
# | Barlow Twins | none | the cross-correlation of the two views pushed to the identity |
# | DINO | none | centring and sharpening of a momentum teacher's outputs |
# | SupCon | samples of other classes (labels) | the negatives; positives are all samples of the class |

# %% [markdown]
# ## 9. What the SimCLR paper found
#
# Chen et al. (2020a) took SimCLR apart one piece at a time on ImageNet, scoring each choice
# by **linear evaluation**: a linear classifier trained on the frozen $h$ (section 2.3). Their
# ablations use a ResNet-50, batches of 4096 and 100 epochs (section 2.3); the final models
# 1000 epochs (section 6). What they found:
#
# 1. **The composition of augmentations is crucial** (sections 3.1-3.2, Figure 5). No
#    single augmentation is enough; random cropping together with colour distortion stands
#    out. With crops alone, the colour histograms of two crops of one image are enough to
#    recognise them as a pair (Figure 6), a shortcut. Stronger colour distortion raised
#    SimCLR's linear evaluation from 59.6% (strength 1/8) to 63.2% (strength 1) and 64.5%
#    (strength 1 with blur), while the same augmentations took a supervised ResNet-50 from
#    77.0% to 75.7% and 75.4% (Table 1): contrastive learning needs stronger augmentation than
#    supervised learning. For galaxies colour is physics (notebook 03), so our augmentations
#    change it no more than a little Milky-Way dust would: the best augmentations depend on
#    the data.
# 2. **Bigger models gain more** from unsupervised than from supervised training (section
#    4.1, Figure 7).
# 3. **The nonlinear projection head improves the representation before it** (section 4.2,
#    Figure 8): a nonlinear head is better than a linear one (+3%) and much better than none
#    (>10%), and even with it, $h$ before the head is much better (>10%) than $z$ after it.
#    An MLP trained to predict the rotation applied to an image (one of four) is right 67.6% of
#    the time from $h$ and 25.6% from $g(h)$, where guessing gives 25% (Table 3): $z$ forgets
#    what the augmentations change, as section 6 found for galaxies.
# 4. **The loss and the temperature** (section 5.1, Tables 4 and 5). NT-Xent gave 63.9%,
#    against 50.9% for a margin (triplet) loss (57.5% with semi-hard negative mining, notebook
#    02) and 51.6% for a logistic loss (57.9% with mining): NT-Xent weighs each negative by how
#    hard it is (the $p_{ik}$ of notebook 04). With normalised embeddings, $\tau = 0.1$ gave
#    64.4%, $\tau$ = 0.05, 0.5 and 1 gave 59.7%, 60.7% and 58.0%; without the normalisation
#    ($\tau$ = 10 and 100) 57.2% and 57.0%, although the contrastive task itself was solved
#    more often.
# 5. **Larger batches and longer training** (section 5.2, Figure 9): trained for 100 epochs,
#    larger batches are clearly better; trained longer, the gaps between batch sizes shrink or
#    disappear. Both give the loss more negatives.
# 6. **The results** (section 6). Linear evaluation on ImageNet, top-1 (Table 6): 69.3% with
#    a ResNet-50, 74.2% with one twice as wide, 76.5% with one four times as wide (top-5
#    93.2%), matching a supervised ResNet-50 (abstract). Fine-tuned with 1% of the ImageNet
#    labels (about 12.8 images per class), top-5 (Table 7): 75.5% (ResNet-50) and 85.8%
#    (four times as wide), against 48.4% for the supervised baseline on the same 1%; with 10%
#    of the labels 87.8% and 92.6%, against 80.4%.
#
# These are ImageNet numbers for large networks, trained on 32 to 128 TPU cores (section
# 2.2). The course's SimCLR is a small CNN on 32-pixel simulated galaxies; notebook 06
# measures what it buys, with its own uncertainties.

# %% [markdown]
# ## References
#
# - Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020a). *A Simple Framework for
#   Contrastive Learning of Visual Representations.* ICML 2020.
#   [arXiv:2002.05709](https://arxiv.org/abs/2002.05709). SimCLR (the whole notebook) and its
#   findings (section 9).
# - He, K., Zhang, X., Ren, S. & Sun, J. (2016). *Deep Residual Learning for Image
#   Recognition.* CVPR 2016. [arXiv:1512.03385](https://arxiv.org/abs/1512.03385). ResNet, the
#   encoder of SimCLR and of `build_simclr("resnet18")`.
# - Wu, Z., Xiong, Y., Yu, S. X. & Lin, D. (2018). *Unsupervised Feature Learning via
#   Non-Parametric Instance Discrimination.* CVPR 2018.
#   [arXiv:1805.01978](https://arxiv.org/abs/1805.01978). The weighted kNN monitor of
#   section 4.
# - Willett, K. W., et al. (2013). *Galaxy Zoo 2: detailed morphological classifications for
#   304,122 galaxies from the Sloan Digital Sky Survey.* MNRAS 435, 2835.
#   [arXiv:1308.3496](https://arxiv.org/abs/1308.3496). The questions the labels answer.
# - He, K., Fan, H., Wu, Y., Xie, S. & Girshick, R. (2020). *Momentum Contrast for
#   Unsupervised Visual Representation Learning.* CVPR 2020.
#   [arXiv:1911.05722](https://arxiv.org/abs/1911.05722). MoCo.
# - Chen, X., Fan, H., Girshick, R. & He, K. (2020). *Improved Baselines with Momentum
#   Contrastive Learning.* [arXiv:2003.04297](https://arxiv.org/abs/2003.04297). MoCo v2.
# - van den Oord, A., Li, Y. & Vinyals, O. (2018). *Representation Learning with Contrastive
#   Predictive Coding.* [arXiv:1807.03748](https://arxiv.org/abs/1807.03748). InfoNCE, MoCo's
#   loss (notebook 07).
# - Grill, J.-B., et al. (2020). *Bootstrap Your Own Latent: A New Approach to Self-Supervised
#   Learning.* NeurIPS 2020. [arXiv:2006.07733](https://arxiv.org/abs/2006.07733). BYOL.
# - Chen, X. & He, K. (2021). *Exploring Simple Siamese Representation Learning.* CVPR 2021.
#   [arXiv:2011.10566](https://arxiv.org/abs/2011.10566). SimSiam and the stop-gradient.
# - Zbontar, J., Jing, L., Misra, I., LeCun, Y. & Deny, S. (2021). *Barlow Twins:
#   Self-Supervised Learning via Redundancy Reduction.* ICML 2021.
#   [arXiv:2103.03230](https://arxiv.org/abs/2103.03230).
# - Caron, M., Touvron, H., Misra, I., Jégou, H., Mairal, J., Bojanowski, P. & Joulin, A.
#   (2021). *Emerging Properties in Self-Supervised Vision Transformers.* ICCV 2021.
#   [arXiv:2104.14294](https://arxiv.org/abs/2104.14294). DINO.
# - Khosla, P., et al. (2020). *Supervised Contrastive Learning.* NeurIPS 2020.
#   [arXiv:2004.11362](https://arxiv.org/abs/2004.11362). SupCon.
# - Hadsell, R., Chopra, S. & LeCun, Y. (2006). *Dimensionality Reduction by Learning an
#   Invariant Mapping.* CVPR 2006. The contrastive loss of notebook 01.
# - Schroff, F., Kalenichenko, D. & Philbin, J. (2015). *FaceNet: A Unified Embedding for
#   Face Recognition and Clustering.* CVPR 2015.
#   [arXiv:1503.03832](https://arxiv.org/abs/1503.03832). The triplet loss of notebook 02.
