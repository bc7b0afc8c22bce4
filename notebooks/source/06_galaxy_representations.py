# %% [markdown]
# # 06 · What the representation knows: UMAPs, probes, few labels, similarity search
#
# The lecture's galaxy example (Hayat et al. 2021) trains SimCLR on millions of unlabelled
# galaxy images and then asks what the representation $h$ has learned, by colouring a UMAP
# of $h$ by the Galaxy Zoo answers: smooth or featured? edge-on or face-on? anything odd, and
# what: ring, irregular, other, merger? and the redshift. It also makes the point that matters
# most in astronomy: **most galaxies have no labels at all, some have a spectroscopic
# redshift, few have both a redshift and a morphology**. A representation learned without
# labels lets the few labels go a long way.
#
# Here we take the SimCLR model the course ships (notebook 05) and galaxies it has never seen,
# and look at $h$ from every side: UMAP, linear probes on $h$ and $z$, the label tiers, the
# label-efficiency curve against a network trained with labels from scratch, similarity
# search, real galaxies from the Hubble eXtreme Deep Field, and (if you have it) Galaxy10
# DECaLS.

# %% [markdown]
# > **Notation in this notebook.** The letter z has three meanings in this course. Here $z$
# > alone is the **embedding**, the output of the projection head, $z = g(h)$ (`z` in the
# > code, "probes on $h$ and $z$"). The **redshift** is written `redshift` in the code (and
# > `redshift_high`, high or low) and "redshift" in the prose; a *spec-z* is a spectroscopic
# > redshift. One exception: in section 5's code `has_z`, `no_z` and `predicted_z` are about
# > the redshift (which galaxies have a spec-z, and the redshift predicted from $h$), not
# > about the embedding. The **z band** is the reddest of the g, r, z images, always called
# > "the z band".

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from phys555_cl import config
from phys555_cl import exercises as ex
from phys555_cl.data import Galaxy10DECaLS, hubble_deep_field_cutouts
from phys555_cl.evaluate import (
    EVAL_SEED,
    TASKS,
    embed,
    knn_probe,
    linear_probe,
    nearest_neighbours,
    umap_embedding,
)
from phys555_cl.galaxies import KIND_NAMES, simulate
from phys555_cl.plotting import plot_neighbours, plot_umap, show_galaxies
from phys555_cl.study import (
    METHODS,
    format_comparisons,
    format_retrieval,
    label_efficiency,
    retrieval_on_test,
)
from phys555_cl.train import load_pretrained

# %%
S = config.sizes("06")
DEVICE = config.device()
config.seed_everything(6)
print(f"fast mode: {S.fast}; {S.n_galaxies} held-out galaxies; device {DEVICE}")

# %% [markdown]
# ## 1. The model and the galaxies
#
# The galaxies come from a simulator seed never used in training (`EVAL_SEED`). Their labels
# follow the lecture's slide; `label_tier` says which labels an astronomer would actually
# have: 0 none, 1 a spectroscopic redshift, 2 a redshift and a visual morphology. As in a real
# survey the tier follows the galaxy's brightness: the imaging goes to r = 19.5, spectra are
# taken down to the SDSS main-sample limit r < 17.77 (95% complete), and visual morphologies
# exist for the brighter galaxies still (around r < 16), with soft edges
# (`galaxies.spectroscopic_completeness`, `galaxies.morphology_completeness`).

# %%
model, model_config = load_pretrained()  # the model of notebook 05 (see train.load_pretrained)
model = model.to(DEVICE).eval()
image_size = model_config["image_size"]
images, labels = simulate(S.n_galaxies, size=image_size, seed=EVAL_SEED)
h = embed(model, images, device=DEVICE)
with torch.no_grad():
    z = model.head(h.to(DEVICE)).cpu()
print(f"h: {tuple(h.shape)}, z: {tuple(z.shape)}")

# %%
# NBVAL_CHECK_OUTPUT
tiers = np.bincount(labels["label_tier"].numpy(), minlength=3)
print(f"label tiers: {tiers[0]} galaxies with no label, {tiers[1]} with a spec-z only, "
      f"{tiers[2]} with spec-z and morphology")

# %% [markdown]
# ## 2. A UMAP of h, coloured by each question of the slide
#
# UMAP (McInnes et al. 2018) squeezes the 128-dimensional $h$ into two dimensions while
# keeping near neighbours near. Nothing about the labels went into $h$ or into the UMAP:
# if a colour still forms regions, the representation separates that property on its own.
# (UMAP's coordinates change from run to run; the structure is what to look at.)
#
# The first UMAP call in a session compiles UMAP's numerical code (numba) first: expect it to
# sit silent for up to a minute before anything appears. Later calls are quick.

# %%
emb = umap_embedding(h)
keys = ["smooth_or_featured", "edge_on", "odd", "odd_feature", "redshift", "label_tier"]
fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 4))
for ax, key in zip(axes, keys):
    plot_umap(emb, labels, key, ax=ax, s=5, title=key)
plt.tight_layout()
plt.show()

# %% [markdown]
# Smooth and featured galaxies occupy different regions, and the redshift changes smoothly
# across the map. Look where the edge-on disks sit in the `edge_on` panel: they gather in a
# part of the featured region (often a thin filament or its tip rather than a separate
# island; UMAP draws long, thin structures when a property varies continuously, here the
# inclination). Coloured by `label_tier`, the map looks
# like the lecture's slide: the labelled galaxies (bright, nearby, large) sit in one part of
# it and the unlabelled majority (faint, distant, small) in another, so whatever is learned
# from the labels must be carried over to galaxies unlike them. The odd classes are rarer and mix more:
# rings and lenses look alike at 32 pixels, and that is also what makes them hard for people.

# %% [markdown]
# ## 3. Exercise 6.1: a k-nearest-neighbour classifier on h
#
# The simplest way to use a representation: label a new galaxy by a **majority vote of its
# $k$ most similar labelled galaxies**, with the cosine similarity of $h$ (the similarity that
# NT-Xent trained). Write it in a few tensor operations:
#
# 1. normalise `train_h` and `test_h` (rows) and take `similarity = test @ train.T`, `[M, N]`;
# 2. `similarity.topk(k, dim=1).indices` are the neighbours, `[M, k]`;
# 3. their labels, `train_y[neighbours]`, vote: `F.one_hot(..., num_classes=C).sum(dim=1)`
#    counts the votes for each class, and `argmax(dim=1)` picks the winner (ties go to the
#    smaller class index).
#
# Stuck? `ex.hint("6.1")` gives a deeper hint each time you call it.

# %%
def knn_predict(train_h, train_y, test_h, k):
    """Predict classes of test_h [M, D] from labelled train_h [N, D], train_y [N] -> [M] int64."""
    ### HINT: A majority vote of the k most similar labelled galaxies, comparing directions, not lengths; count votes, do not average labels.
    ### BEGIN SOLUTION
    similarity = F.normalize(test_h, dim=1) @ F.normalize(train_h, dim=1).T
    neighbours = similarity.topk(k, dim=1).indices
    votes = F.one_hot(train_y[neighbours], num_classes=int(train_y.max()) + 1).sum(dim=1)
    return votes.argmax(dim=1)
    ### END SOLUTION


knn_predict = ex.check_knn_predict(knn_predict)

# %% [markdown]
# With your classifier: how often is a held-out galaxy's smooth/featured class the one its
# neighbours vote for? The package's `knn_probe` (scikit-learn) should agree closely.

# %%
half = len(images) // 2
y = labels["smooth_or_featured"]
mine = (knn_predict(h[:half], y[:half], h[half:], 11) == y[half:]).float().mean().item()
sklearn_score = knn_probe(h[:half], y[:half], h[half:], y[half:], k=11)
print(f"smooth vs featured, 11 neighbours: your kNN {mine:.3f}, scikit-learn kNN {sklearn_score:.3f}")

# %% [markdown]
# ## 4. Linear probes on h and on z
#
# A linear probe is a logistic regression on the frozen features: it measures what is
# *linearly readable* from them. As in SimCLR's paper, $h$ (before the projection head) keeps
# more than $z$.

# %%
print(f"{'question':<20} {'linear on h':>11} {'linear on z':>11} {'kNN on h':>9}")
for task in TASKS:
    y = labels[task]
    scores = [linear_probe(h[:half], y[:half], h[half:], y[half:]),
              linear_probe(z[:half], y[:half], z[half:], y[half:]),
              knn_probe(h[:half], y[:half], h[half:], y[half:])]
    print(f"{task:<20} " + " ".join(f"{s:>11.3f}" for s in scores))

# %% [markdown]
# ## 5. The label tiers: learn from the labels you actually have
#
# Astronomy's labels come in tiers: spectroscopic redshifts for a minority, visual
# morphologies for fewer still. With a representation, each question uses exactly the galaxies
# that have its label:
#
# - **redshift** is fitted on the galaxies with a spec-z (tiers 1 and 2), a ridge regression on
#   $h$, and predicted for the galaxies without one (tier 0);
# - **morphology** is fitted on the small tier-2 subset and predicted for everyone else.

# %%
tier = labels["label_tier"]
has_z, has_morph = tier >= 1, tier == 2
no_z, no_morph = ~has_z, ~has_morph
r2 = linear_probe(h[has_z], labels["redshift"][has_z], h[no_z], labels["redshift"][no_z])
print(f"redshift from {int(has_z.sum())} spec-z galaxies -> R^2 = {r2:.2f} on the "
      f"{int(no_z.sum())} galaxies without one")
for task in ["smooth_or_featured", "edge_on", "odd"]:
    y = labels[task]
    acc = linear_probe(h[has_morph], y[has_morph], h[no_morph], y[no_morph])
    print(f"{task:<20} from {int(has_morph.sum())} morphology labels -> accuracy {acc:.3f} "
          f"on the others")

# %%
ridge = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(h[has_z], labels["redshift"][has_z])
predicted_z = ridge.predict(h[no_z])
fig, ax = plt.subplots(figsize=(4.2, 4))
ax.scatter(labels["redshift"][no_z], predicted_z, s=4, alpha=0.6)
lim = [0, float(labels["redshift"].max())]
ax.plot(lim, lim, color="grey", ls="--")
ax.set_xlabel("true redshift")
ax.set_ylabel("predicted from h")
ax.set_title("photometric redshifts from h\n(galaxies without a spec-z)")
plt.show()
print(f"median redshift: {float(labels['redshift'][has_z].median()):.3f} with a spec-z, "
      f"{float(labels['redshift'][no_z].median()):.3f} without")

# %% [markdown]
# Read the $R^2$ printed two cells above against its two anchors: 1 would be perfect
# redshifts, 0 is what predicting the mean spec-z for everyone scores (it can go below 0).
# The fit is poor, and the scatter plot and the last line say why: the galaxies with a
# spec-z are the bright, nearby ones, the galaxies without are fainter and further away, so
# the regression is asked to *extrapolate* to redshifts it was hardly fitted on, and its
# predictions are squeezed towards the low redshifts it knows. It is the same domain shift as
# the survey protocol's tier 0 in section 6, and the reason real photometric-redshift samples
# add deeper spectroscopy of faint galaxies.

# %% [markdown]
# ## 6. When does self-supervision pay off?
#
# The lecture's promise: a representation learned without labels lets the few labels go
# further. There is more than one way to use the SimCLR encoder when labels are scarce, and the
# honest opponent is a network trained on the labels alone. Every method below is fitted on
# **exactly the same labelled galaxies** and scored on the same held-out ones:
#
# - **simclr + linear**: the frozen $h$ and a logistic regression (a *linear probe*);
# - **simclr + fine-tune**: start from the SimCLR encoder and train it further on the labels
#   (new linear heads, the same augmentations and number of steps as `supervised`);
# - **simclr + fine-tune + distill** (SimCLRv2, Chen et al. 2020b): the fine-tuned network
#   labels the galaxies that carry no label with *soft* targets (its class probabilities), and
#   a second network learns from those targets and the labels. The unlabelled galaxies teach it
#   too;
# - **supervised**: the same architecture trained from scratch on the labelled galaxies, with
#   the same augmentations;
# - **random init + linear** and **raw pixels + linear**: what no learning gives.
#
# Scores are accuracies averaged over the four questions (smooth or featured, edge-on among
# featured, odd feature among odd, redshift high or low). Which galaxies carry the 5 or 20
# labels matters a lot, so one table measures one draw of luck. The course's full measurement,
# `python -m phys555_cl.study data/pretrained/simclr_compact.pt` in
# `data/pretrained/README.md`, repeats this on four independent populations of galaxies with
# several label subsets each and a fresh initialisation for every network, and reports
# paired differences with 95% intervals. Here we run one population (`S.repeats` subset per
# label count, `S.steps` training steps per network; a few minutes in normal mode).

# %%
counts = [c if c == "all" else int(c) for c in S.label_counts]
table = label_efficiency(model, images, labels, model_config, label_counts=counts,
                         repeats=S.repeats, recipe={"steps": S.steps}, population=EVAL_SEED,
                         device=DEVICE, keep_models=True)
print(table)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
n_all = len(images) - len(table.test_index)
for method in METHODS:
    rows = [r for r in table if r["method"] == method]
    x = [n_all if r["labels"] == "all" else r["labels"] for r in rows]
    style = "-" if method.startswith("simclr") else "--"
    ax.plot(x, [100 * r["mean"] for r in rows], style, marker="o", label=method)
ax.set_xscale("log")
ax.set_xlabel("labelled galaxies per question")
ax.set_ylabel("mean accuracy (%)")
ax.legend(fontsize=7)
plt.show()
print(format_comparisons(table.comparisons()))

# %% [markdown]
# What to look for:
#
# - In the course's measurement below, every SimCLR arm's mean accuracy is above everything
#   that learned nothing (random init, raw pixels) at every label count (63-65% against
#   55-57% at 20 labels), though not on every question (at 20 labels raw pixels answer
#   `edge_on` better than the linear probe on $h$): from unlabelled images alone the encoder
#   learned something of what galaxies look like. Check whether the table above agrees.
# - One population and one label subset, as above, can show either sign: which five galaxies
#   carry the labels moves the accuracy by several points. The course's measurement
#   (`data/pretrained/README.md`: four populations, 5 label subsets each at 5 and 20 labels,
#   a fresh initialisation for every network, paired differences with 95% intervals) found:
#   - with **20 labels** per question, fine-tuning the SimCLR encoder beats the supervised
#     network by 0.9 points (interval +0.2 to +1.6, ahead on 15 of 20 pairs): a real but
#     small payoff; the frozen $h$ with a linear probe is 0.8 points behind (interval -2.4 to
#     +0.7);
#   - with **5 labels** every arm is within noise of the supervised network (fine-tuning
#     +0.7, interval -0.5 to +1.9): with five examples the luck of the draw moves every
#     method by about 10 points;
#   - with **200 and all 1000 labels**, fine-tuning is ahead (+1.1, interval +0.2 to +2.1, at
#     200; +3.2, interval +0.5 to +5.8, with all labels, 4 of 4 populations), while the linear
#     probe falls 4-6 points behind: a small CNN trained with the same augmentations learns
#     these simulated galaxies well, and starting it from SimCLR's weights helps;
#   - distillation is level with fine-tuning (within its intervals) at every count.
# - Whether the payoff grows with more pretraining (more galaxies, epochs, a wider encoder),
#   as the large gains reported on real surveys (Hayat et al. 2021 on SDSS, with over a
#   million unlabelled galaxies and a ResNet-50) suggest, is a question this small model
#   cannot answer; the course has not measured it yet. Read the intervals before you believe
#   any single table, this one included.

# %% [markdown]
# ### The labels a survey really has
#
# In a real survey the labelled galaxies are not a random sample: spectra exist for the
# brighter galaxies and visual morphologies for the brighter still (section 1). The **survey
# protocol** fits every method with morphology labels from tier 2 only and redshift labels
# from tiers 1-2, and scores it on the test galaxies of *every* tier; `tier0` is the accuracy
# on the faint galaxies that nobody labelled, the ones a survey most wants to classify.

# %%
survey_counts = [c if c == "all" else int(c) for c in S.survey_counts]
survey = label_efficiency(model, images, labels, model_config, protocol="survey",
                          label_counts=survey_counts, repeats=S.repeats,
                          recipe={"steps": S.steps}, population=EVAL_SEED, device=DEVICE)
print(survey)
for note in survey.notes:
    print("note:", note)

# %% [markdown]
# Compare `tier2` with `tier0`. Every method is far worse on the faint galaxies than on the
# bright ones it learned from: they are smaller, noisier and further away, a *domain shift*
# inside one survey, and at 32 pixels a faint galaxy's morphology is often simply not in the
# image. In the course's measurement (`data/pretrained/README.md`, four populations) no
# method carries the bright galaxies' morphologies to the faint ones well (tier-0 accuracies
# around 49-60%), and at no label count does either side win: the fine-tuned and distilled
# SimCLR networks are within about 1.5 points of the supervised one on tier 0, and the
# intervals include zero. This is where real surveys put their effort: labels for a few
# faint galaxies (deeper spectroscopy, expert classifications) are worth more than many more
# bright ones.

# %% [markdown]
# ## 7. Similarity search
#
# Pick a galaxy, find the galaxies whose $h$ is most similar (cosine similarity): a search
# engine for galaxies that needs no labels at all (Stein et al. 2021 built one for 42 million
# DESI galaxies). Each row: a query, then its nearest neighbours with their similarity and true
# labels.

# %%
kinds = labels["kind"]
queries = torch.stack([torch.nonzero(kinds == k).flatten()[0] for k in [0, 1, 2, 3, 6]])
idx, sim = nearest_neighbours(h[queries], h, k=7, exclude_self=False)
idx, sim = idx[:, 1:], sim[:, 1:]  # the first neighbour of a gallery galaxy is itself
plot_neighbours(images[queries], images, idx, sim, labels=labels, fontsize=6, panel_size=2.3)
plt.show()
print("query kinds:", [KIND_NAMES[int(kinds[q])] for q in queries])

# %% [markdown]
# ### One-shot retrieval: the use with no supervised alternative
#
# An astronomer who has found *one* ring galaxy wants more of them. There is no classifier to
# train on one example, but there is a search: its nearest neighbours in $h$. Precision@10 is
# the fraction of its 10 most similar galaxies that are rings, averaged over every ring used
# as the query in turn; `chance` is what random picks would give. The same search on raw
# pixels, on a random encoder, and on the supervised network's features (trained with all
# the morphology labels, so it has *seen* what makes an odd galaxy odd) shows what the
# self-supervised representation buys without any label.

# %%
retrieval = retrieval_on_test(model, model_config, images, labels, table, device=DEVICE)
print(format_retrieval(retrieval, k=10))

# %% [markdown]
# In the course's measurement (`data/pretrained/README.md`, four populations, every galaxy of
# a kind as the query in turn) one example and $h$ find lenses, mergers, irregulars and
# edge-on disks about two to two and a half times as often as raw pixels do; rings,
# which at 32 pixels are a few pixels of bright edge, less often than pixels. The supervised
# network's features, which were *trained* on the odd-feature labels of a thousand galaxies,
# find most rare kinds better still (edge-on disks by far): that is what labels buy, when you
# have them. The search on $h$ needed none.

# %% [markdown]
# ## 8. Real galaxies: the Hubble eXtreme Deep Field
#
# scikit-image ships a picture of the Hubble eXtreme Deep Field, the deepest image of the sky.
# `hubble_deep_field_cutouts` finds the larger galaxies in it and cuts stamps around them.
# Caveat: these are the colour channels of a press image, not calibrated g, r, z fluxes, and
# the galaxies are at redshifts 0.5 to 3, far beyond our simulations. So this is a qualitative
# test: do galaxies that look alike to us end up close in $h$?

# %%
hdf, positions = hubble_deep_field_cutouts(size=image_size)
h_hdf = embed(model, hdf, device=DEVICE)
print(f"{len(hdf)} galaxies cut out of the Hubble XDF image")
some = torch.arange(0, min(len(hdf), 40), 8)
idx, sim = nearest_neighbours(h_hdf[some], h_hdf, k=6)
plot_neighbours(hdf[some], hdf, idx[:, 1:], sim[:, 1:], band_weights=(1, 1, 1))
plt.show()

# %% [markdown]
# And which *simulated* galaxies are the nearest to each real one? A fun test of how far the
# simulator is from the real sky (expect the answer "not close": the representation has never
# seen a press image of a galaxy at redshift 2).

# %%
idx, sim = nearest_neighbours(h_hdf[some], h, k=5)
fig = show_galaxies(torch.cat([hdf[some], images[idx.flatten()]]), ncols=len(some),
                    titles=["Hubble XDF"] * len(some)
                    + [f"{s:.2f}" for s in sim.T.flatten().tolist()])
plt.show()

# %% [markdown]
# ## 9. Galaxy10 DECaLS (real DECaLS galaxies, if you have the file)
#
# Galaxy10 DECaLS (Leung & Bovy) holds 17,736 DECaLS galaxies with Galaxy Zoo classes, as one
# 2.5 GB HDF5 file. The course does not download it for you in class. To use it, either run
# `Galaxy10DECaLS(download=True)` once (it checks the file's SHA256), or put
# `Galaxy10_DECals.h5` in the `data/` folder (or point `PHYS555_GALAXY10` at it). This cell
# then embeds it with the same model and probes the same questions.

# %%
galaxy10_path = os.environ.get("PHYS555_GALAXY10",
                               str(Path(config.data_dir()) / "Galaxy10_DECals.h5"))
if Path(galaxy10_path).exists():
    g10 = Galaxy10DECaLS(galaxy10_path, size=image_size)
    n = min(len(g10.images), 4000 if not S.fast else 500)
    order = torch.randperm(len(g10.images), generator=torch.Generator().manual_seed(0))[:n]
    h10 = embed(model, g10.images[order], device=DEVICE)
    lab10 = {k: v[order] for k, v in g10.labels.items()}
    half10 = n // 2
    for task in ["smooth_or_featured", "edge_on", "odd_feature"]:
        y = lab10[task]
        print(f"Galaxy10 {task:<20} linear probe on h: "
              f"{linear_probe(h10[:half10], y[:half10], h10[half10:], y[half10:]):.3f}")
    show_galaxies(g10.images[order[:8]], lab10, band_weights=(1, 1, 1))
    plt.show()
else:
    print(f"Galaxy10 DECaLS is not here ({galaxy10_path}).\n"
          f"To try this section: run Galaxy10DECaLS(download=True) once (2.5 GB), or download "
          f"Galaxy10_DECals.h5 from https://zenodo.org/records/10845026 into the data/ folder, "
          f"then run this cell again.")

# %% [markdown]
# ### Question
#
# The representation was trained on simulated galaxies only. What would you expect a linear
# probe on $h$ to do on Galaxy10, compared with on held-out simulated galaxies, and what would
# you change to make SimCLR useful for real DECaLS data?
#
# ### BEGIN SOLUTION
# Worse: real galaxies differ from the simulations in ways the encoder never saw (the 8-bit RGB
# rendering instead of fluxes, real PSFs and noise, artefacts, the full variety of real
# morphologies), a *domain shift*. The augmentations only cover the variations we simulated.
# The fix is to train SimCLR on the real images themselves: `python -m phys555_cl.train
# --data galaxy10 --galaxy10-path Galaxy10_DECals.h5` uses the same recipe without any labels,
# exactly as Hayat et al. did on SDSS, and the probes then need only the few labels.
# ### END SOLUTION

# %% [markdown]
# ## References
#
# - Hayat, M. A., Stein, G., Harrington, P., Lukić, Z. & Mustafa, M. (2021).
#   *Self-supervised Representation Learning for Astronomical Images.* ApJL 911, L33.
#   [arXiv:2012.13083](https://arxiv.org/abs/2012.13083).
#   The lecture's galaxy example: SimCLR on SDSS galaxies, the UMAPs and the label tiers.
# - Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020a). *A Simple Framework for
#   Contrastive Learning of Visual Representations.* ICML 2020.
#   [arXiv:2002.05709](https://arxiv.org/abs/2002.05709).
#   SimCLR, and linear probes on $h$ and $z$.
# - Chen, T., Kornblith, S., Swersky, K., Norouzi, M. & Hinton, G. (2020b). *Big
#   Self-Supervised Models are Strong Semi-Supervised Learners.* NeurIPS 2020.
#   [arXiv:2006.10029](https://arxiv.org/abs/2006.10029).
#   Fine-tuning and distillation (SimCLRv2), section 6.
# - Hinton, G., Vinyals, O. & Dean, J. (2015). *Distilling the Knowledge in a Neural
#   Network.* [arXiv:1503.02531](https://arxiv.org/abs/1503.02531).
#   Distillation with soft targets, section 6.
# - Stein, G., Harrington, P., Blaum, J., Medan, T. & Lukić, Z. (2021).
#   *Self-supervised similarity search for large scientific datasets.*
#   [arXiv:2110.13151](https://arxiv.org/abs/2110.13151).
#   Similarity search over 42 million Legacy Surveys galaxies, section 7.
# - McInnes, L., Healy, J. & Melville, J. (2018). *UMAP: Uniform Manifold
#   Approximation and Projection for Dimension Reduction.*
#   [arXiv:1802.03426](https://arxiv.org/abs/1802.03426).
#   UMAP, section 2.
# - Strauss, M. A., et al. (2002). *Spectroscopic Target Selection in the Sloan
#   Digital Sky Survey: The Main Galaxy Sample.* AJ 124, 1810.
#   [arXiv:astro-ph/0206225](https://arxiv.org/abs/astro-ph/0206225).
#   The spectroscopic limit $r < 17.77$ behind the label tiers.
# - Willett, K. W., et al. (2013). *Galaxy Zoo 2: detailed morphological
#   classifications for 304,122 galaxies from the Sloan Digital Sky Survey.* MNRAS 435, 2835.
#   [arXiv:1308.3496](https://arxiv.org/abs/1308.3496).
#   The Galaxy Zoo questions, and the magnitude limit of visual morphologies.
# - Walmsley, M., et al. (2022). *Galaxy Zoo DECaLS: Detailed visual morphology
#   measurements from volunteers and deep learning for 314 000 galaxies.* MNRAS 509, 3966.
#   [arXiv:2102.08414](https://arxiv.org/abs/2102.08414).
#   The classes of Galaxy10 DECaLS, section 9.
# - Dey, A., et al. (2019). *Overview of the DESI Legacy Imaging Surveys.* AJ 157, 168.
#   [arXiv:1804.08657](https://arxiv.org/abs/1804.08657).
#   The images of Galaxy10 DECaLS, section 9.
# - Leung, H. W. & Bovy, J. *Galaxy10 DECaLS*, a data set of the astroNN package
#   (images from the DESI Legacy Imaging Surveys, classes from Galaxy Zoo DECaLS):
#   <https://astronn.readthedocs.io/en/latest/galaxy10.html>, file
#   <https://zenodo.org/records/10845026>.
#   Section 9.
# - van der Walt, S., et al. (2014). *scikit-image: image processing in Python.*
#   PeerJ 2, e453.
#   The library that ships the Hubble eXtreme Deep Field image of section 8.
