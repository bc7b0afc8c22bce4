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
# Here we take the course's **reference** SimCLR model and galaxies it has never seen. It is
# notebook 05's recipe (an NT-Xent temperature of 0.1, chosen on validation galaxies) on
# eight times as many unlabelled galaxies (65,536 instead of 8,192; about 50 minutes on two
# CPU cores instead of 5; notebook 05 still trains and loads the 5-minute model, so you see
# the whole loop there). Section 6 shows why this notebook uses the bigger model: the payoff
# of self-supervision grows with the pretraining, and with the right temperature. We look at $h$
# from every side: UMAP, linear probes on $h$ and $z$, the label tiers, the
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
from phys555_cl.scaling import (
    ARMS,
    COUNTS,
    find_comparison,
    format_difference,
    load_scaling,
    plot_scaling,
    relative_compute,
    temperature,
)
from phys555_cl.study import (
    METHODS,
    format_comparisons,
    format_retrieval,
    label_efficiency,
    retrieval_on_test,
)
from phys555_cl.study_results import load_study
from phys555_cl.train import load_pretrained

# %%
S = config.sizes("06")
DEVICE = config.device()
config.seed_everything(6)
print(f"fast mode: {S.fast}; {S.n_galaxies} held-out galaxies; device {DEVICE}")

# %% [markdown]
# Section 6 measures when self-supervision pays off, which takes about an hour of training on
# two CPU cores for the full measurement (`data/pretrained/README.md`, Time). With
# `RECOMPUTE = False` (the default) it loads the course's full study of the reference model
# from the files below, written by `python -m phys555_cl.study
# data/pretrained/simclr_reference.pt --json FILE` (and `--protocol survey`); set it to
# `True` to re-run a small version here, one population, a few minutes in normal mode.

# %%
RECOMPUTE = False
PRETRAINED = Path(config.data_dir()) / "pretrained"
STUDY_FILES = {"random": PRETRAINED / "study_reference_random.json",
               "survey": PRETRAINED / "study_reference_survey.json"}

# %% [markdown]
# ## 1. The model and the galaxies
#
# The galaxies come from a simulator seed never used in training (`EVAL_SEED`). Their labels
# follow the lecture's slide; `label_tier` says which labels an astronomer would actually
# have: 0 none, 1 a spectroscopic redshift, 2 a redshift and a visual morphology. As in a real
# survey the tier follows the galaxy's brightness: the imaging goes to r = 19.5, spectra are
# taken down to the SDSS main-sample limit r < 17.77 (95% complete), and visual morphologies
# exist for the brighter galaxies still (r < 17.0, the Galaxy Zoo 2 main sample), with soft
# edges (`galaxies.spectroscopic_completeness`, `galaxies.morphology_completeness`).

# %%
model, model_config = load_pretrained(name="reference")  # see train.load_pretrained
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
# 3. their labels, `train_y[neighbours]`, vote: `F.one_hot(..., num_classes=C).sum(dim=1)`,
#    with `C = int(train_y.max()) + 1` the number of classes,
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
# neighbours vote for? The package's `knn_probe` casts the same vote on standardised features
# (each dimension of h scaled to unit variance first), so it should agree closely, not exactly.

# %%
half = len(images) // 2
y = labels["smooth_or_featured"]
mine = (knn_predict(h[:half], y[:half], h[half:], 11) == y[half:]).float().mean().item()
package_score = knn_probe(h[:half], y[:half], h[half:], y[half:], k=11)
print(f"smooth vs featured, 11 neighbours: your kNN {mine:.3f}, the package's knn_probe {package_score:.3f}")

# %% [markdown]
# ## 4. Linear probes on h and on z
#
# A linear probe is a logistic regression on the frozen features: it measures what is
# *linearly readable* from them. As in SimCLR's paper, $h$ (before the projection head) keeps
# more than $z$: compare the first two columns question by question (where both are close to
# perfect they can tie).

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
# labels matters a lot, so one table measures one draw of luck. The course's full measurement
# repeats this on four independent populations of galaxies with several label subsets each
# and a fresh initialisation for every network, and compares each SimCLR arm with `supervised`
# **pair by pair**: both were fitted on exactly the same labelled galaxies, so the luck of the
# draw cancels in their difference.

# %%
def study(protocol, counts):
    """The shipped study of `protocol`, or (RECOMPUTE, or no file) one population run here."""
    path = STUDY_FILES[protocol]
    if not RECOMPUTE and path.exists():
        loaded = load_study(path)
        settings = loaded.settings
        print(f"loaded {path.name}: populations {settings.get('eval_seeds')}, "
              f"{settings.get('n_galaxies')} galaxies each (python -m phys555_cl.study)")
        return loaded.table, loaded.retrieval
    print(f"running the {protocol} protocol on one population here ({EVAL_SEED})")
    table = label_efficiency(model, images, labels, model_config, protocol=protocol,
                             label_counts=[c if c == "all" else int(c) for c in counts],
                             repeats=S.repeats, recipe={"steps": S.steps},
                             population=EVAL_SEED, device=DEVICE, keep_models=True)
    return table, None


table, shipped_retrieval = study("random", S.label_counts)
print(table)

# %%
comparisons = table.comparisons()
labelled = {}  # label count -> labelled galaxies per question, for the x axis
for r in table.records:
    labelled.setdefault(r["labels"], r["n_labelled"]["smooth_or_featured"])
fig, ax = plt.subplots(figsize=(6.5, 4))
for offset, arm in zip((0.94, 1.0, 1.06), METHODS[:3]):
    rows = [c for c in comparisons if c["method"] == arm and c["metric"] == "mean"]
    x = np.array([labelled[c["labels"]] for c in rows], dtype=float) * offset
    mean = np.array([100 * c["difference"] for c in rows])
    low, high = (np.array([100 * c[k] for c in rows]) for k in ("low", "high"))
    ax.errorbar(x, mean, yerr=[mean - low, high - mean], marker="o", capsize=3, label=arm)
ax.axhline(0, color="grey", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel("labelled galaxies per question")
ax.set_ylabel("minus supervised (points)")
ax.set_title("paired differences with 95% intervals")
ax.legend(fontsize=7)
plt.show()
print(format_comparisons(comparisons))

# %% [markdown]
# What to look for, in the table, the figure and the paired differences printed above:
#
# - Every SimCLR arm against what learned nothing (`random init + linear`, `raw pixels +
#   linear`), per label count: from unlabelled images alone, did the encoder learn something
#   of what galaxies look like? Check it question by question too, not only on the mean.
# - The interval of each paired difference. An interval that contains zero means this study
#   cannot tell the two apart: the luck of which galaxies carry the labels moves every method
#   by several points at 5 and 20 labels. `ahead on` counts the pairs each way.
# - Where fine-tuning stands against the supervised network, and where the frozen $h$ with a
#   linear probe stands. The lecture's claim (Hayat et al. 2021: a linear classifier on the
#   self-supervised representation matches supervised networks with 2-4 times fewer labels)
#   is about a representation trained on over a million SDSS galaxies with a ResNet-50; ours
#   saw 65,536 simulated galaxies on two CPU cores. Read the intervals before you believe any
#   single table.

# %% [markdown]
# ### Does the payoff grow with the pretraining?
#
# Notebook 05's model and the reference model loaded here differ only in how much they were
# pretrained. Around and between them the course trained the recipe at five sizes, each from
# scratch (`benchmarks/pretraining_scaling.py`): half the default compute (10 epochs instead
# of 20), the default itself, and two, four and eight times its unlabelled galaxies (16,384
# to 65,536), all at the temperature the recipe had then, 0.5 (filled markers); then the
# default and the largest once more at 0.1, the recipe's temperature now (open markers): one
# run of notebook 05's recipe, and the reference model. Each went through this section's study
# at 20 and 200 labels: the same four evaluation populations and labelled subsets,
# `simclr + linear` and `simclr + fine-tune` against `supervised`, pair by pair. The x axis
# counts compute in units of the default recipe's (images seen; the CPU hours each point took
# are in `data/pretrained/README.md`), the bars are 95% intervals.

# %%
try:
    scaling = load_scaling(PRETRAINED / "scaling" / "evaluation")
except FileNotFoundError as err:  # a notebook copied without the course's data folder
    scaling = []
    print(f"{err}\n(the results come with the course repository, in data/pretrained/scaling)")
if scaling:
    plot_scaling(scaling)
    plt.show()
    print("minus supervised, points [95% interval]:")
    for r in scaling:
        cells = [f"{arm.split(' + ')[-1]} @{n} {format_difference(find_comparison(r, arm, n))}"
                 for n in COUNTS for arm in ARMS]
        print(f"{r['point']:<13} {relative_compute(r):4.1f}x compute, temperature "
              f"{temperature(r):g}: " + ", ".join(cells))

# %% [markdown]
# What the figure and the lines under it show (`data/pretrained/README.md` has the full
# table):
#
# - **The payoff grows with the pretraining, in every measure, and has not flattened by the
#   last point.** At the default compute at temperature 0.5 the frozen $h$ with a linear
#   probe is not ahead of the supervised network at 20 labels and is behind it at 200, and
#   fine-tuning is level at 20 labels. At eight times the compute, at either temperature,
#   both arms are ahead at both label counts, every interval above zero. The lecture's claim,
#   a linear classifier on the self-supervised representation holding its own against a
#   network trained on the labels, needed more pretraining than a 5-minute model; on our
#   galaxies it held after about 35 minutes of it.
# - **The temperature** (the two lines at 1x, and the two at 8x). The recipe's earlier 0.5 was
#   chosen on a smaller model of an earlier simulator; re-examined on the validation
#   populations, 0.1 gave the linear probe 3 to 5 points more, at twice the default compute
#   (the ablation) and at the default compute itself (`data/pretrained/README.md`), so the
#   recipe now uses 0.1. On these evaluation populations compare each pair of lines arm by
#   arm: at 1x every arm is further ahead of `supervised` at 0.1, at both label counts; at 8x
#   it bought less and not everywhere (the README pairs the two 8x models subset by subset,
#   one-shot retrieval included).
# - At 20 labels the linear probe ends up ahead of fine-tuning at the two largest points at
#   0.5. Is that real, and does it hold for this notebook's model? Their two intervals against
#   `supervised` overlap, but that is the wrong test: the two arms were fitted on the same
#   labelled galaxies, so they can be paired with each other. Exercise 6.2 below writes that
#   paired comparison, and then answers this question.
#
# What it does not show:
#
# - Each point is **one** pretraining run: its intervals are over evaluation populations and
#   labelled subsets, not over pretraining seeds. That matters most for the temperature:
#   its two 8x points are one run each.
# - The curve changes only the number of unlabelled galaxies (and, for the smallest point, the
#   epochs). One other kind of compute was tried once, at 4x: an encoder twice as wide,
#   trained on the default 8192 galaxies, bought less in every measure than four times the
#   galaxies did (`data/pretrained/README.md`; one run each). Larger images and longer
#   training were not tried: whether they would beat more galaxies is open.
# - Where the growth stops. Real surveys pretrain on millions of galaxies with far bigger
#   networks; the figure says that direction pays on our galaxies, not how far it goes.
# - The curve at temperature 0.1 between its two points: 2x and 4x were trained at 0.5
#   only.

# %% [markdown]
# ### Exercise 6.2: a paired comparison from the records
#
# `table.records` holds one score per (population, subset, method): the accuracy `mean` of
# every method on every labelled subset. Write `paired_difference(records, method, versus,
# labels)`: keep the records at that label count, pair each score of `method` with the score of
# `versus` on the same (population, subset), and return the mean of the differences and its
# 95% interval, `(mean, low, high)`, as fractions (0.01 is one point). The interval is the mean
# plus or minus $t_{0.975,\,n-1}\, s_d / \sqrt{n}$, with $s_d$ the standard deviation of the $n$
# differences (dividing by $n - 1$) and $t$ Student's quantile (`scipy.stats.t.ppf(0.975, n -
# 1)`). Stuck? `ex.hint("6.2")`.

# %%
from scipy.stats import t as student_t  # noqa: E402


def paired_difference(records, method, versus, labels):
    """Mean paired difference method - versus of `mean` at a label count: (mean, low, high)."""
    ### HINT: Pair each score of one method with the other method's score on the same labelled galaxies, then work with the differences alone.
    ### BEGIN SOLUTION
    def by_pair(m):
        return {(r["population"], r["subset"]): r["mean"] for r in records
                if r["method"] == m and r["labels"] == labels}

    a, b = by_pair(method), by_pair(versus)
    d = np.array([a[k] - b[k] for k in sorted(a) if k in b])
    half = student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)
    ### END SOLUTION


paired_difference = ex.check_paired_difference(paired_difference)

# %% [markdown]
# With your function: fine-tuning against `supervised` at the smallest label count the study
# has more than one pair for. Your numbers should be the table's row above.

# %%
pairs = {}
for r in table.records:
    if r["method"] == "supervised" and r["labels"] != "all":
        pairs[r["labels"]] = pairs.get(r["labels"], 0) + 1
several = sorted(c for c, n in pairs.items() if n > 1)
if several:
    mean, low, high = paired_difference(table.records, "simclr + fine-tune", "supervised",
                                        several[0])
    print(f"{several[0]} labels: simclr + fine-tune minus supervised = {100 * mean:+.1f} "
          f"points, 95% interval [{100 * low:+.1f}, {100 * high:+.1f}]")
else:
    print("every label count has a single pair here, and an interval needs two or more: "
          "the shipped study (RECOMPUTE = False) has 20 pairs at 20 labels")

# %% [markdown]
# The same function answers the question the scaling figure left open: is the frozen $h$
# with a linear probe ahead of fine-tuning? Pair the two SimCLR arms with each other, at every
# label count with more than one pair:

# %%
for count in several:
    mean, low, high = paired_difference(table.records, "simclr + linear", "simclr + fine-tune",
                                        count)
    print(f"{count} labels: simclr + linear minus simclr + fine-tune = {100 * mean:+.1f} points, "
          f"95% interval [{100 * low:+.1f}, {100 * high:+.1f}]")

# %% [markdown]
# Read the signs and the intervals: with the reference model, on these evaluation
# populations, the frozen probe is level with fine-tuning at 20 labels and behind it at 200.
# (The model at temperature 0.5 that this notebook loaded before, the curve's 8x point, had
# the probe ahead at 20 labels, paired the same way: the lower temperature helped
# fine-tuning more than the probe; see `data/pretrained/README.md`.) Is the fine-tuning recipe (300 steps at a learning rate of
# 2e-3, chosen on the 5-minute model) too harsh for this one, spending with 20 labels what
# pretraining put in the encoder? The course checked on the four validation populations
# (`benchmarks/finetune_vs_linear.py`, 16 pairs at 20 labels): fine-tuning minus the frozen
# probe was +1.0 points [-0.6, +2.7] at the recipe's rate and +1.7 [-0.1, +3.5] at a four
# times gentler one (5e-4), both intervals across zero. So the recipe stays; with 200 labels
# there is enough to retrain the encoder, and fine-tuning pays.

# %% [markdown]
# ### The labels a survey really has
#
# In a real survey the labelled galaxies are not a random sample: spectra exist for the
# brighter galaxies and visual morphologies for the brighter still (section 1). The **survey
# protocol** fits every method with morphology labels from tier 2 only and redshift labels
# from tiers 1-2, and scores it on the test galaxies of *every* tier; `tier0` is the accuracy
# on the faint galaxies that nobody labelled, the ones a survey most wants to classify.

# %%
survey, _ = study("survey", S.survey_counts)
print(survey)
print(format_comparisons(survey.comparisons()))
for note in survey.notes:
    print("note:", note)

# %% [markdown]
# Compare `tier2` with `tier0`. Every method is far worse on the faint galaxies than on the
# bright ones it learned from: they are smaller, noisier and further away, a *domain shift*
# inside one survey, and at 32 pixels a faint galaxy's morphology is often simply not in the
# image. Read the `tier0` rows of the paired differences above: does any method carry the
# bright galaxies' morphologies to the faint ones, and does either side win there once the
# interval is taken into account? This is where real surveys put their effort: labels for a
# few faint galaxies (deeper spectroscopy, expert classifications) can be worth more than many
# more bright ones.

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
if shipped_retrieval is not None:  # the full study's, every population
    retrieval = shipped_retrieval
else:  # this notebook's population, with the supervised network trained above
    retrieval = retrieval_on_test(model, model_config, images, labels, table, device=DEVICE)
print(format_retrieval(retrieval, k=10))
pixels = retrieval["raw pixels"]
for kind, row in retrieval["h (simclr)"].items():
    base = pixels[kind]["p@10"]
    ratio = row["p@10"] / base if base else float("nan")
    print(f"{kind:<14} h finds {ratio:.1f}x as many of its kind as raw pixels do")

# %% [markdown]
# The last lines above give, per kind, how many times as often one example and $h$ find its
# kind as raw pixels do. Rings are the hard case: at 32 pixels a ring is a few pixels of bright
# edge. The supervised network's features were *trained* on the odd-feature labels of a
# thousand galaxies; where they find a rare kind better still, that is what labels buy, when
# you have them. The search on $h$ needed none.

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
