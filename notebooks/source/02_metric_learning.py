# %% [markdown]
# # 02 · Metric learning: triplets and hard negatives
#
# > *When I train a network for some task, say classification, I am already forcing my network
# > to learn discriminative features, right?*
#
# Not always enough. The lecture's example is a **whale** photographed from its tail: the
# shape and colour of a tail are very similar from one whale to the next, so they do not even
# pin down the *species* (the slide's wording). Here we push the example one step further, to
# the task marine biologists actually use tail photos for: telling **individual** whales apart.
# There are thousands of individuals with a handful of photos each, and new whales appear every
# season.
# A classifier with one output per whale cannot be trained (too few photos per class) and
# cannot name a whale it has never seen. What we need instead is a **distance** under which two
# photos of the same whale are close and photos of different whales are far — a distance that
# keeps working for whales (or galaxies) that were not in the training set.
#
# Galaxies have the same problem in both directions:
#
# - galaxies that **look alike but differ**: a distant spiral is small and red and can look like
#   a nearby elliptical; a ring galaxy seen at low resolution looks like a face-on disk;
# - galaxies that **differ in the pixels but are the same** kind: a spiral rotated, closer, or
#   seen through worse seeing.
#
# In this notebook we
#
# 1. look at galaxies that are close in pixel space but belong to different classes;
# 2. write the **triplet loss** (**Exercise 2.1**) and see what easy, semi-hard and hard
#    negatives are;
# 3. mine the hardest triplets of a batch (**Exercise 2.2**, *batch-hard* mining);
# 4. train an embedding with it and compare the embedding before and after training.

# %%
import matplotlib.pyplot as plt
import torch

from phys555_cl import config, distances, galaxies, plotting
from phys555_cl import exercises as ex
from phys555_cl.encoders import small_embedder

# %%
S = config.sizes("02")
DEVICE = config.device()
config.seed_everything(0)
print(f"Fast mode: {S.fast}; device: {DEVICE}; sizes: {vars(S)}")

# %% [markdown]
# ## 1. Morphology classes, and galaxies that look alike but differ
#
# We combine the Galaxy Zoo answers of the lecture into one **morphology class** per galaxy:
# smooth, face-on disk, edge-on disk, or one of the odd features (ring, irregular, other —
# here a gravitational lens — and merger).

# %%
CLASS_NAMES = ("smooth", "face-on disk", "edge-on disk", "ring", "irregular", "lens", "merger")


def morphology_class(labels):
    """One class per galaxy from the schema labels: index into CLASS_NAMES. [N] int64."""
    cls = torch.where(labels["smooth_or_featured"] == 0, 0, 1 + labels["edge_on"].clamp_min(0))
    return torch.where(labels["odd"] == 1, 3 + labels["odd_feature"], cls)


images, labels = galaxies.simulate(S.n_galaxies, size=S.image_size, seed=1)
classes = morphology_class(labels)
counts = torch.bincount(classes, minlength=len(CLASS_NAMES))
print(", ".join(f"{name}: {int(c)}" for name, c in zip(CLASS_NAMES, counts)))
first = [int((classes == c).nonzero()[0]) for c in range(len(CLASS_NAMES))]
fig = plotting.show_galaxies(images[first], titles=list(CLASS_NAMES), ncols=7, fontsize=8,
                             suptitle="One galaxy of each morphology class")

# %% [markdown]
# For every galaxy, its nearest neighbour in (asinh-stretched) pixel space. Below are pairs
# where that neighbour belongs to a **different** class, with the redshifts: similar pixels,
# different galaxies.

# %%
pixels = galaxies.asinh_stretch(images).flatten(1)
d_pix = distances.pairwise_distances(pixels, pixels)
d_pix.fill_diagonal_(float("inf"))
nn_pix = d_pix.argmin(1)
confused = (classes[nn_pix] != classes).nonzero()[:, 0][:8]
order = torch.stack([confused, nn_pix[confused]], 1).flatten()
titles = [f"{CLASS_NAMES[int(classes[k])]}, z={float(labels['redshift'][k]):.3f}"
          for k in order.tolist()]
fig = plotting.show_galaxies(images[order], titles=titles, ncols=8, fontsize=7,
                             suptitle="Pixel-space nearest neighbours of different classes "
                                      "(each galaxy next to its neighbour)")
print(f"The nearest pixel-space neighbour is of the same class for "
      f"{100 * float((classes[nn_pix] == classes).float().mean()):.0f}% of the galaxies.")

# %% [markdown]
# ## 2. The triplet loss
#
# The contrastive loss of notebook 01 looks at one pair at a time and asks for absolute
# distances (same pairs near 0, different pairs beyond $m$). The **triplet loss** (Weinberger &
# Saul 2009; Schroff et al. 2015, FaceNet) asks for a *relative* ordering instead. Take an
# **anchor** $a$, a **positive** $p$ of the same class and a **negative** $n$ of another
# class. We want the positive closer than the negative by at least a margin $m$:
#
# $$ d(a, p) + m < d(a, n) , $$
#
# and the loss penalises triplets that violate it,
#
# $$ \mathcal{L} = \frac{1}{B}\sum_{b=1}^{B} \max\big(0,\; d(a_b, p_b) - d(a_b, n_b) + m\big),
#    \qquad d(\mathbf{u}, \mathbf{v}) = \|\mathbf{u} - \mathbf{v}\|_2 . $$
#
# Only the ordering matters, so whales (or galaxies) of a class may spread out as long as other
# classes stay farther away.
#
# ### Exercise 2.1: the triplet loss
#
# `anchor`, `positive`, `negative` are `[B, D]` embeddings (row $b$ is one triplet); return the
# mean loss above as a 0-d tensor that keeps the gradient. Use the plain (not squared)
# Euclidean distance.
#
# Stuck? `ex.hint("2.1")` gives a deeper hint each time you call it.

# %%
def triplet_loss(anchor, positive, negative, margin=0.2):
    """Mean triplet loss max(0, d(a, p) - d(a, n) + margin). Inputs [B, D] -> scalar."""
    ### HINT: A triplet costs something until the negative is farther from the anchor than the positive by at least the margin.
    ### BEGIN SOLUTION
    d_ap = (anchor - positive).pow(2).sum(1).sqrt()
    d_an = (anchor - negative).pow(2).sum(1).sqrt()
    return torch.relu(d_ap - d_an + margin).mean()
    ### END SOLUTION


triplet_loss = ex.check_triplet_loss(triplet_loss)

# %% [markdown]
# ## 3. Easy, semi-hard and hard negatives
#
# For one anchor and its positive, every negative falls in one of three zones:
#
# - **easy**: $d(a, n) > d(a, p) + m$ — the triplet is already satisfied, its loss is 0 and it
#   teaches nothing;
# - **semi-hard**: $d(a, p) < d(a, n) < d(a, p) + m$ — the negative is farther than the
#   positive but inside the margin: a small loss, a useful gradient (FaceNet trains on these);
# - **hard**: $d(a, n) < d(a, p)$ — the negative is closer than the positive: a large loss.
#
# Most random triplets quickly become easy, so training on random triplets stalls: the art of
# metric learning is **mining** informative triplets. In two dimensions:

# %%
g = torch.Generator().manual_seed(0)
anchor, positive, margin = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.4]), 0.6
negatives = 4 * torch.rand(300, 2, generator=g) - 2
d_ap = float((anchor - positive).norm())
d_an = (negatives - anchor).norm(dim=1)
zone = torch.where(d_an < d_ap, 2, torch.where(d_an < d_ap + margin, 1, 0))
fig, ax = plt.subplots(figsize=(5, 5))
for z, name, colour in ((0, "easy", "tab:gray"), (1, "semi-hard", "tab:orange"),
                        (2, "hard", "tab:red")):
    ax.scatter(*negatives[zone == z].T, s=12, color=colour, label=f"{name} negatives")
for radius, style in ((d_ap, "-"), (d_ap + margin, "--")):
    ax.add_patch(plt.Circle(anchor.tolist(), radius, fill=False, ls=style, color="k"))
ax.scatter(*anchor, s=150, marker="*", color="tab:blue", label="anchor", zorder=3)
ax.scatter(*positive, s=80, marker="o", color="tab:green", label="positive", zorder=3)
ax.set(aspect="equal", xlim=(-2, 2), ylim=(-2, 2),
       title="circles: d(a, p) (solid) and d(a, p) + margin (dashed)")
ax.legend(loc="lower left", fontsize=8)
fig.tight_layout()

# %%
# NBVAL_CHECK_OUTPUT
print("negatives per zone (easy, semi-hard, hard):", torch.bincount(zone, minlength=3).tolist())
losses = torch.relu(d_ap - d_an + margin)
print(f"mean triplet loss over all 300 negatives: {losses.mean():.4f}; "
      f"over the non-easy ones: {losses[zone > 0].mean():.4f}")

# %% [markdown]
# Averaging over all negatives dilutes the few that matter. **Batch-hard mining** (Hermans,
# Beyer & Leibe 2017, *In Defense of the Triplet Loss*) goes to the other extreme: in a batch
# of $B$ embeddings with class labels, every embedding is an anchor once, paired with
#
# - its **hardest positive**: the *farthest* embedding of the same class (not itself), and
# - its **hardest negative**: the *closest* embedding of a different class,
#
# $$ \mathcal{L}_\text{BH} = \frac{1}{|\mathcal{A}|}\sum_{a \in \mathcal{A}}
#    \max\Big(0,\; \max_{p:\,y_p = y_a,\, p \ne a} d(a, p) \;-\;
#    \min_{n:\,y_n \ne y_a} d(a, n) + m\Big), $$
#
# where $\mathcal{A}$ are the anchors that have at least one positive and one negative in the
# batch. All $B^2$ distances come from one call to a pairwise-distance function; the work is in
# the **masks**.
#
# ### Exercise 2.2: batch-hard triplet loss
#
# `embeddings` `[B, D]`, `labels` `[B]` (int64), `margin`: return $\mathcal{L}_\text{BH}$ as a
# 0-d tensor that keeps the gradient. Build `same = labels[:, None] == labels[None, :]`, remove
# the diagonal from the positives (an anchor is not its own positive), and when taking a max or
# min over a masked row, put $-\infty$ / $+\infty$ (not 0) where the mask is False. Skip anchors
# without a positive or without a negative. `distances.pairwise_distances` is available.

# %%
def batch_hard_triplet_loss(embeddings, labels, margin=0.2):
    """Batch-hard triplet loss (Hermans et al. 2017). embeddings [B, D], labels [B] -> scalar."""
    ### HINT: Each anchor meets its farthest same-class embedding and its closest other-class one; mask out the rest, itself included.
    ### BEGIN SOLUTION
    d = distances.pairwise_distances(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    hardest_pos = d.masked_fill(~pos, float("-inf")).amax(1)
    hardest_neg = d.masked_fill(~neg, float("inf")).amin(1)
    valid = pos.any(1) & neg.any(1)
    return torch.relu(hardest_pos[valid] - hardest_neg[valid] + margin).mean()
    ### END SOLUTION


batch_hard_triplet_loss = ex.check_batch_hard_triplet_loss(batch_hard_triplet_loss)

# %% [markdown]
# A batch you can check by hand: four points on a line at 0, 1, 3 and 3.5 with classes
# A, A, B, B and $m = 0.5$. The anchor at 0 has hardest positive 1 and hardest negative 3:
# loss $\max(0, 1 - 3 + 0.5) = 0$. The anchor at 1 has $1 - 2 + 0.5 = -0.5 \to 0$. The anchor
# at 3 has $0.5 - 2 + 0.5 = -1 \to 0$; the anchor at 3.5: $0.5 - 2.5 + 0.5 \to 0$. Move the
# third point to 1.2 and the loss becomes positive.

# %%
# NBVAL_CHECK_OUTPUT
line = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
ab = torch.tensor([0, 0, 1, 1])
print(f"separated: {batch_hard_triplet_loss(line, ab, 0.5).item():.4f}")
line[2, 0] = 1.2
print(f"third point moved to 1.2: {batch_hard_triplet_loss(line, ab, 0.5).item():.4f}")

# %% [markdown]
# ## 4. Training an embedding: batch-hard, then semi-hard
#
# Mining needs several galaxies of each class in every batch, so we draw batches of
# `S.per_class` galaxies from each of the seven classes (the "P x K" batches of Hermans et al.).
# A quarter of the galaxies is kept aside to test the embedding.

# %%
n_train = int(0.75 * len(images))
train_classes, test_images, test_classes = classes[:n_train], images[n_train:], classes[n_train:]


def pk_batches(classes, per_class, n_batches, seed):
    """Index batches with `per_class` random galaxies of every class (with replacement)."""
    g = torch.Generator().manual_seed(seed)
    members = [(classes == c).nonzero()[:, 0] for c in range(len(CLASS_NAMES))]
    for _ in range(n_batches):
        yield torch.cat([m[torch.randint(len(m), (per_class,), generator=g)]
                         for m in members if len(m) > 0])


# %% [markdown]
# The embedding network is the $f_\theta$ of notebook 01, `encoders.small_embedder`: the asinh
# stretch, a small CNN and a linear layer to 16 numbers, normalised to unit length (so the
# margin has a fixed meaning). We judge an embedding by how often a test galaxy's nearest
# neighbour has the same class; an untrained network gives the baseline.

# %%
@torch.no_grad()
def embed(model, x, batch=256):
    model.eval()
    return torch.cat([model(x[k:k + batch].to(DEVICE)).cpu() for k in range(0, len(x), batch)])


def same_class_neighbour(z, classes):
    """Fraction of galaxies whose nearest other galaxy in embedding space has the same class."""
    d = distances.pairwise_distances(z).fill_diagonal_(float("inf"))
    return float((classes[d.argmin(1)] == classes).float().mean())


torch.manual_seed(0)
z_before = embed(small_embedder(S.width, dim=16).to(DEVICE), test_images)
print(f"untrained network: nearest test neighbour of the same class for "
      f"{100 * same_class_neighbour(z_before, test_classes):.0f}% of test galaxies")

# %% [markdown]
# The training loop is notebook 01's, fed with P x K batches: a fresh network, Adam, and any
# loss that takes the batch's embeddings and classes. It records the loss and the *spread*,
# the mean distance between two embeddings of a batch.

# %%
def train(loss_fn, n_steps, desc):
    """Train a fresh small_embedder with loss_fn(z, y); return it and the loss / spread per step."""
    torch.manual_seed(0)
    model = small_embedder(S.width, dim=16).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=S.lr)
    history = {"loss": [], "spread": []}
    for b in config.progress(list(pk_batches(train_classes, S.per_class, n_steps, seed=3)),
                             desc=desc):
        model.train()
        z = model(images[b].to(DEVICE))
        loss = loss_fn(z, train_classes[b].to(DEVICE))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history["loss"].append(loss.item())
        history["spread"].append(float(distances.pairwise_distances(z.detach()).mean()))
    return model, history


# %% [markdown]
# First with **your** batch-hard loss. Watch the *spread*, the mean distance between two
# embeddings of a batch (at most 2 on the unit sphere):

# %%
model_hard, hist_hard = train(lambda z, y: batch_hard_triplet_loss(z, y, S.margin),
                              S.hard_steps, "batch-hard")
print(f"batch-hard: loss {hist_hard['loss'][-1]:.3f} (the margin is {S.margin}), "
      f"spread {hist_hard['spread'][0]:.3f} -> {hist_hard['spread'][-1]:.4f}")

# %% [markdown]
# The spread falls towards 0 and the loss sticks at the margin: the embedding **collapsed** to
# one point, where $d(a, p) = d(a, n) = 0$ for every triplet. Trained from scratch, the hardest
# positive of each anchor is an odd-looking galaxy of its class, far away; the cheapest way to
# shrink *that* distance is to shrink every distance, and once all are 0 the loss is $m$ with a
# zero gradient. Hermans et al. avoid this with a pre-trained network, large batches and a
# "soft" margin; FaceNet uses **semi-hard** negatives: for every (anchor, positive) pair, the
# closest negative that is still *farther* than the positive. Those never pull the embedding
# together. The package's `distances.batch_hard_triplet_loss(..., mining="semi-hard")` does it:

# %%
model, history = train(
    lambda z, y: distances.batch_hard_triplet_loss(z, y, S.margin, mining="semi-hard"),
    S.epochs * S.steps_per_epoch, "semi-hard")

fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for hist, name in ((hist_hard, "batch-hard"), (history, "semi-hard")):
    axes[0].plot(hist["loss"], lw=1, label=name)
    axes[1].plot(hist["spread"], lw=1, label=name)
axes[0].set(xlabel="step", ylabel="triplet loss", title="Training")
axes[1].set(xlabel="step", ylabel="mean distance in the batch", title="Spread of the embedding")
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# ## 5. The embedding before and after training
#
# The embeddings are 16-dimensional; we look at them through their first two **principal
# components** (PCA), coloured by morphology class, for the test galaxies (never seen in
# training): the untrained network, the collapsed batch-hard one (look at the axis scale) and
# the semi-hard one.

# %%
z_after = embed(model, test_images)
z_hard = embed(model_hard, test_images)


def pca_2d(z):
    z = z - z.mean(0)
    _, _, v = torch.linalg.svd(z, full_matrices=False)
    return z @ v[:2].T


fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
colours = plt.get_cmap("tab10")
collapsed = float(distances.pairwise_distances(z_hard).mean()) < 0.05  # all in one spot
panels = ((z_before, "untrained"), (z_hard, "batch-hard" + (" (collapsed)" if collapsed else "")),
          (z_after, "semi-hard"))
for ax, (z, name) in zip(axes, panels):
    xy = pca_2d(z)
    for c, cname in enumerate(CLASS_NAMES):
        m = test_classes == c
        ax.scatter(*xy[m].T, s=10, color=colours(c), label=cname)
    acc = same_class_neighbour(z, test_classes)
    ax.set(title=f"{name}: nearest neighbour of same class {100 * acc:.0f}%",
           xlabel="PC 1", ylabel="PC 2")
axes[2].legend(fontsize=7, markerscale=2, loc="best")
fig.tight_layout()

# %% [markdown]
# Nearest neighbours in the learned (semi-hard) embedding: each row is a query test galaxy
# (left) and its four closest test galaxies.

# %%
d = distances.pairwise_distances(z_after).fill_diagonal_(float("inf"))
queries = torch.tensor([int((test_classes == c).nonzero()[0]) for c in (1, 2, 3, 6)
                        if (test_classes == c).any()])
nbrs = d[queries].topk(4, largest=False).indices
order = torch.cat([queries[:, None], nbrs], 1).flatten()
titles = [("query: " if k % 5 == 0 else "") + CLASS_NAMES[int(test_classes[i])]
          for k, i in enumerate(order.tolist())]
fig = plotting.show_galaxies(test_images[order], titles=titles, ncols=5, fontsize=7,
                             suptitle="Nearest neighbours in the learned embedding")

# %% [markdown]
# ## What we saw
#
# - Pixel distance confuses classes: galaxies can look alike and differ, or differ and be alike.
# - The triplet loss asks only for an ordering, $d(a, p) + m < d(a, n)$; most random triplets
#   are easy and teach nothing, so we **mine** the semi-hard and hard ones.
# - Batch-hard mining takes, for every anchor in a batch, its farthest positive and its closest
#   negative — all from one pairwise-distance matrix and two masks. From scratch it can collapse
#   the embedding to a point; semi-hard negatives train it safely.
# - The trained embedding groups galaxies by class, and its nearest neighbours are galaxies of
#   the same kind even though they were never seen in training.
#
# ### A question to think about
#
# Batch-hard mining always trains on the worst triplets of a batch. What could go wrong if a
# few galaxies in the training set carry a **wrong** label?
#
# ### BEGIN SOLUTION
# A mislabelled galaxy is, by construction, the hardest positive of its (wrong) class and the
# hardest negative of its true class, so batch-hard mining picks it again and again and the
# network is pushed to tear its classes apart to accommodate it. Semi-hard mining, a soft
# margin, or averaging over more than the single hardest triplet make training more robust to
# label noise.
# ### END SOLUTION
#
# Labels are expensive: most galaxies have none. The next notebooks get similar pairs without
# labels, from **data augmentation** (`03_augmentations`), and train with the SimCLR loss.

# %% [markdown]
# ## References
#
# - Weinberger, K. Q. & Saul, L. K. (2009). *Distance Metric Learning for Large
#   Margin Nearest Neighbor Classification.* JMLR 10, 207.
#   The large-margin nearest-neighbour (triplet) loss.
# - Schroff, F., Kalenichenko, D. & Philbin, J. (2015). *FaceNet: A Unified
#   Embedding for Face Recognition and Clustering.* CVPR 2015.
#   [arXiv:1503.03832](https://arxiv.org/abs/1503.03832).
#   The triplet loss and semi-hard negatives (FaceNet).
# - Hermans, A., Beyer, L. & Leibe, B. (2017). *In Defense of the Triplet Loss for
#   Person Re-Identification.* [arXiv:1703.07737](https://arxiv.org/abs/1703.07737).
#   Batch-hard mining and P x K batches (Exercise 2.2).
# - Hadsell, R., Chopra, S. & LeCun, Y. (2006). *Dimensionality Reduction by Learning
#   an Invariant Mapping.* CVPR 2006.
#   The contrastive loss of notebook 01.
# - Willett, K. W., et al. (2013). *Galaxy Zoo 2: detailed morphological
#   classifications for 304,122 galaxies from the Sloan Digital Sky Survey.* MNRAS 435, 2835.
#   [arXiv:1308.3496](https://arxiv.org/abs/1308.3496).
#   The Galaxy Zoo answers behind the morphology classes.
# - Lupton, R. H., Gunn, J. E. & Szalay, A. S. (1999). *A Modified Magnitude System
#   that Produces Well-Behaved Magnitudes, Colors, and Errors Even for Low Signal-to-Noise Ratio
#   Measurements.* AJ 118, 1406.
#   [arXiv:astro-ph/9903081](https://arxiv.org/abs/astro-ph/9903081).
#   The asinh stretch of the pixels.
