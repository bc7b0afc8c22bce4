# %% [markdown]
# # 01 · Distances and Siamese networks
#
# *When are two galaxies "the same"?* A classifier answers a fixed question ("is this galaxy
# smooth or featured?"). **Metric learning** answers a more general one: *how similar are these
# two objects?* It does so with a distance between **representations**:
#
# $$ d_\theta(\mathbf{x}_1, \mathbf{x}_2) = \|f_\theta(\mathbf{x}_1) - f_\theta(\mathbf{x}_2)\|_2 $$
#
# where $f_\theta$ is a neural network that turns an image $\mathbf{x}$ into a vector. Two
# images whose representations are close are "similar"; with a threshold $T$,
#
# $$ d_\theta(\mathbf{x}_1, \mathbf{x}_2) < T \quad\Longrightarrow\quad \text{same class.} $$
#
# In this notebook we
#
# 1. simulate three-band (g, r, z) galaxy images and look at them;
# 2. compute Euclidean distances between many images at once (**Exercise 1.1**);
# 3. classify *pairs* of galaxies as same / different with a threshold (**Exercise 1.2**) and
#    draw the ROC curve;
# 4. build a **Siamese network** (one $f_\theta$, shared by both inputs) and train it with the
#    **contrastive loss** (**Exercise 1.3**) on labelled pairs, and watch the distances of
#    same and different pairs move apart.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from phys555_cl import config, distances, galaxies, plotting
from phys555_cl import exercises as ex
from phys555_cl.encoders import small_embedder

# %%
S = config.sizes("01")
DEVICE = config.device()
config.seed_everything(0)
print(f"Fast mode: {S.fast}; device: {DEVICE}; sizes: {vars(S)}")

# %% [markdown]
# ## 1. A sample of galaxies
#
# The course's simulator draws galaxies the way a survey sees them: a Sersic bulge and an
# exponential disk (with spiral arms, bars, rings, clumps, mergers, lenses), at a redshift that
# sets their size, brightness and colour, blurred by a point-spread function, with sky noise.
# Each galaxy comes with the answers to the Galaxy Zoo questions of the lecture's last slides.
# Here we use the first question: **smooth** (0) or **features or disk** (1).

# %%
images, labels = galaxies.simulate(S.n_galaxies, size=S.image_size, seed=0)
featured = labels["smooth_or_featured"]
print(f"{len(images)} galaxies, images {tuple(images.shape[1:])} (bands g, r, z); "
      f"{int((featured == 0).sum())} smooth, {int((featured == 1).sum())} featured")
fig = plotting.show_galaxies(images[:16], labels, ncols=8,
                             suptitle="Simulated galaxies and their labels")

# %% [markdown]
# ## 2. Distances between representations
#
# The simplest representation is the image itself: $f(\mathbf{x}) = \mathbf{x}$, flattened to a
# vector of $3 \times H \times W$ numbers. Fluxes span orders of magnitude (a bright core next to
# a faint disk), so we first compress them with an **asinh stretch**, as astronomers do to
# display images. Then $d(\mathbf{x}_1, \mathbf{x}_2)$ is the Euclidean distance between
# stretched pixel vectors.
#
# ### Exercise 1.1: all pairwise distances, without loops
#
# Given $N$ vectors $\mathbf{a}_i$ and $M$ vectors $\mathbf{b}_j$ (rows of `a` `[N, D]` and `b`
# `[M, D]`), return the `[N, M]` matrix $D_{ij} = \|\mathbf{a}_i - \mathbf{b}_j\|_2$.
# No Python loops: use broadcasting (`a[:, None, :] - b[None, :, :]` has shape `[N, M, D]`), or
# the expansion $\|\mathbf{a}-\mathbf{b}\|^2 = \|\mathbf{a}\|^2 + \|\mathbf{b}\|^2 -
# 2\,\mathbf{a}\cdot\mathbf{b}$ (faster and lighter, but rounding can make it slightly negative:
# clamp it at 0 before the square root). Keep the dtype of the inputs.
#
# Stuck? `ex.hint("1.1")` gives a deeper hint each time you call it.

# %%
def pairwise_distances(a, b):
    """Euclidean distances between every row of a [N, D] and every row of b [M, D] -> [N, M]."""
    ### HINT: Compare every row of a with every row of b at once, on an N by M by D grid of differences, then reduce over the D features.
    ### BEGIN SOLUTION
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return sq.clamp_min(0.0).sqrt()
    ### END SOLUTION


pairwise_distances = ex.check_pairwise_distances(pairwise_distances)

# %% [markdown]
# A sanity check you can do in your head: the corners of a unit square are 1 apart along an
# edge and $\sqrt 2 \approx 1.414$ apart across a diagonal.

# %%
# NBVAL_CHECK_OUTPUT
corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
print(pairwise_distances(corners, corners).numpy().round(3))

# %% [markdown]
# Now the galaxies. For a few galaxies, which others are **closest in pixel space**? If pixel
# distance captured morphology, the neighbours of a smooth galaxy would be smooth and those of
# a spiral would be spirals.

# %%
pixels = galaxies.asinh_stretch(images).flatten(1)  # f(x) = stretched pixels, [N, 3*H*W]
d_pix = pairwise_distances(pixels, pixels)
d_pix.fill_diagonal_(float("inf"))  # a galaxy is not its own neighbour
queries = torch.arange(4)
neighbours = d_pix[queries].topk(4, largest=False).indices  # [4, 4]
order = torch.cat([queries[:, None], neighbours], 1).flatten()
titles = []
for row, q in enumerate(queries.tolist()):
    titles.append("query: " + plotting.caption(labels, q).split(",")[0])
    for i in neighbours[row].tolist():
        titles.append(f"d={float(d_pix[q, i]):.0f}, " + plotting.caption(labels, i).split(",")[0])
fig = plotting.show_galaxies(images[order], titles=titles, ncols=5, fontsize=7,
                             suptitle="Nearest neighbours in pixel space (query on the left)")
same_nn = (featured[d_pix.argmin(1)] == featured).float().mean()
print(f"Nearest pixel-space neighbour has the same smooth/featured label for "
      f"{100 * same_nn:.0f}% of galaxies (a coin would give about 50%).")

# %% [markdown]
# The nearest neighbour often shares the label (smooth galaxies are small, round and alike),
# but the *values* of pixel distances mostly measure brightness, size, orientation and noise —
# the *nuisances*: a bright spiral is far from every faint galaxy, and two spirals rotated by
# 90 degrees are far apart pixel by pixel. We want an $f_\theta$ that forgets the nuisances and
# keeps what matters for the question we ask.
#
# ## 3. Same or different? Pairs and a threshold
#
# A **labelled pair** is $(\mathbf{x}_1, \mathbf{x}_2, y)$ with $y = 1$ when both galaxies have
# the same answer to our question (both smooth or both featured) and $y = 0$ otherwise. This is
# the supervised way of getting pairs from the lecture ("manually label them as similar or
# not"). We split the galaxies into a training and a test set first, so the test pairs contain
# galaxies the network never saw, and draw as many same as different pairs.

# %%
def make_pairs(classes, n_pairs, seed):
    """Balanced random pairs (i, j, same) of indices into `classes` [N]; i != j."""
    g = torch.Generator().manual_seed(seed)
    n = len(classes)
    i = torch.randint(n, (8 * n_pairs,), generator=g)
    j = torch.randint(n, (8 * n_pairs,), generator=g)
    keep = i != j
    i, j = i[keep], j[keep]
    same = classes[i] == classes[j]
    half = n_pairs // 2
    pos, neg = same.nonzero()[:half, 0], (~same).nonzero()[:n_pairs - half, 0]
    idx = torch.cat([pos, neg])[torch.randperm(len(pos) + len(neg), generator=g)]
    return i[idx], j[idx], same[idx]


n_train = int(0.75 * len(images))
train_idx, test_idx = torch.arange(n_train), torch.arange(n_train, len(images))
pairs_train = make_pairs(featured[train_idx], S.n_pairs, seed=1)
pairs_test = make_pairs(featured[test_idx], S.n_pairs // 2, seed=2)
pairs_test = (test_idx[pairs_test[0]], test_idx[pairs_test[1]], pairs_test[2])
print(f"{len(pairs_train[0])} training pairs from {n_train} galaxies, "
      f"{len(pairs_test[0])} test pairs from {len(test_idx)} other galaxies; "
      f"{100 * pairs_train[2].float().mean():.0f}% of the pairs are 'same'")


# %% [markdown]
# A **pair gallery**: each column is one pair, the first galaxy on top, the second below, with
# the pixel distance and whether the pair is "same" or "different".

# %%
def show_pairs(images, i, j, d, same, n=8, title=None):
    """Columns of pairs: images[i] above images[j], captioned with d and same/different."""
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6))
    rgb_i, rgb_j = plotting.lupton_rgb(images[i[:n]]), plotting.lupton_rgb(images[j[:n]])
    for k in range(n):
        axes[0, k].imshow(rgb_i[k])
        axes[1, k].imshow(rgb_j[k])
        colour = "tab:green" if same[k] else "tab:red"
        dk = float(d[k])
        value = f"{dk:.2f}" if dk < 10 else f"{dk:.0f}"
        axes[0, k].set_title(f"{'same' if same[k] else 'different'}\nd = {value}",
                             fontsize=8, color=colour)
    for ax in axes.flat:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


i, j, same = pairs_test
d_test_pix = distances.euclidean_distance(pixels[i], pixels[j])
fig = show_pairs(images, i, j, d_test_pix, same, title="Test pairs and their pixel distance")

# %% [markdown]
# ### Exercise 1.2: choosing the threshold $T$
#
# The rule is $d < T \Rightarrow$ "same". Given the distances `d` `[P]` of $P$ labelled pairs
# and their labels `same` `[P]` (bool), return the threshold $T$ (a float) with the **highest
# accuracy** on these pairs. Only the order of the distances matters: it is enough to try a
# threshold just above each distance (and one below all of them), e.g. the midpoints between
# consecutive sorted distances. Do it without a Python loop over candidates if you can
# (`torch.cumsum` over the sorted labels counts how many "same" pairs fall below each
# candidate).

# %%
def choose_threshold(d, same):
    """The threshold T maximising the accuracy of `d < T` => same. d: [P] float, same: [P] bool."""
    ### HINT: Only the order of the distances matters: try the thresholds between neighbouring sorted distances and keep the best.
    ### BEGIN SOLUTION
    d_sorted, order = torch.sort(d)
    s = same[order].float()
    # candidate k: the first k sorted pairs are called "same" (k = 0..P)
    same_below = torch.cat([s.new_zeros(1), s.cumsum(0)])
    diff_above = (1 - s).sum() - torch.cat([s.new_zeros(1), (1 - s).cumsum(0)])
    correct = same_below + diff_above
    correct[1:-1][d_sorted[1:] == d_sorted[:-1]] = -1  # no cut between two equal distances
    k = int(correct.argmax())
    if k == 0:
        return float(d_sorted[0]) - 1.0
    if k == len(d):
        return float(d_sorted[-1]) + 1.0
    return float(0.5 * (d_sorted[k - 1] + d_sorted[k]))
    ### END SOLUTION


choose_threshold = ex.check_choose_threshold(choose_threshold)

# %% [markdown]
# The threshold is chosen on the **training** pairs and judged on the **test** pairs. The
# **ROC curve** shows every threshold at once: for each $T$, the fraction of same pairs called
# "same" (true-positive rate) against the fraction of different pairs wrongly called "same"
# (false-positive rate). A useless distance follows the diagonal (area under the curve, AUC,
# 0.5); a perfect one hugs the top-left corner (AUC 1).

# %%
i_tr, j_tr, same_tr = pairs_train
T_pix = choose_threshold(distances.euclidean_distance(pixels[i_tr], pixels[j_tr]), same_tr)
scores_pix = distances.threshold_scores(d_test_pix, same, T_pix)
print(f"Pixel distance: T = {T_pix:.1f}, test accuracy {scores_pix['accuracy']:.2f}, "
      f"ROC AUC {scores_pix['roc_auc']:.2f}")

# %% [markdown]
# ## 4. A Siamese network
#
# A **Siamese network** runs the *same* network $f_\theta$ — one set of weights — on both
# images of a pair and compares the two outputs with $d_\theta$. Sharing the weights makes the
# distance symmetric, $d_\theta(\mathbf{x}_1, \mathbf{x}_2) = d_\theta(\mathbf{x}_2,
# \mathbf{x}_1)$, and means there is only one representation to learn, which can be applied to
# any new galaxy later.
#
# Our $f_\theta$ is small enough to read in one go: the asinh stretch, three convolution
# blocks (the first two halve the image), an average over the image, and a linear layer down
# to 16 numbers, finally scaled to unit length. On the unit sphere every distance lies between
# 0 and 2, which gives the margin of the loss below a fixed meaning. It lives in the package
# as `encoders.small_embedder` (notebook 02 trains the same network with other losses);
# printing it lists its layers in order.

# %%
torch.manual_seed(0)
f_theta = small_embedder(S.width, dim=16)
print(f_theta)
siamese = distances.SiameseNetwork(f_theta).to(DEVICE)
n_params = sum(p.numel() for p in siamese.parameters())
print(f"One f_theta with {n_params:,} parameters, shared by both inputs of every pair")


@torch.no_grad()
def pair_distances(model, i, j, batch=256):
    """d_theta for the pairs (i, j) of galaxy indices, as a CPU tensor."""
    model.eval()
    out = [model(images[i[k:k + batch]].to(DEVICE), images[j[k:k + batch]].to(DEVICE)).cpu()
           for k in range(0, len(i), batch)]
    return torch.cat(out)


d_test_before = pair_distances(siamese, i, j)

# %% [markdown]
# ## 5. The contrastive loss
#
# How do we train $f_\theta$ from labelled pairs? Hadsell, Chopra and LeCun (2006) proposed the
# **contrastive loss**: pull same pairs together, push different pairs apart — but only until
# they are a **margin** $m$ apart, so the network does not waste effort on pairs that are
# already clearly different:
#
# $$ \mathcal{L} = \frac{1}{P}\sum_{p=1}^{P} \Big[\, y_p\, \tfrac12 d_p^2 \;+\; (1 - y_p)\,
#    \tfrac12 \max(0,\; m - d_p)^2 \,\Big] , $$
#
# with $d_p = d_\theta(\mathbf{x}_1^{(p)}, \mathbf{x}_2^{(p)})$ and $y_p = 1$ for a same pair
# (the factors $\frac12$ are the paper's; they only rescale the gradient).
#
# ### Exercise 1.3: the contrastive loss
#
# `d` `[P]` are the distances of $P$ pairs, `same` `[P]` (bool) their labels, `margin` is $m$.
# Return the scalar loss above (a 0-d tensor that keeps the gradient).

# %%
def contrastive_loss(d, same, margin=1.0):
    """Contrastive loss (Hadsell et al. 2006). d: [P] float, same: [P] bool -> scalar."""
    ### HINT: Same pairs are pulled together; different pairs are pushed apart, but only until they are a margin apart.
    ### BEGIN SOLUTION
    y = same.to(d.dtype)
    return 0.5 * (y * d.pow(2) + (1 - y) * torch.relu(margin - d).pow(2)).mean()
    ### END SOLUTION


contrastive_loss = ex.check_contrastive_loss(contrastive_loss)

# %% [markdown]
# Three pairs you can check by hand with $m = 1$: a same pair at distance 0.5 costs
# $\frac12 0.5^2 = 0.125$; a different pair at distance 0.5 costs $\frac12 (1 - 0.5)^2 = 0.125$;
# a different pair at distance 2 is beyond the margin and costs nothing. The mean is
# $0.25 / 3 \approx 0.0833$.

# %%
# NBVAL_CHECK_OUTPUT
toy = contrastive_loss(torch.tensor([0.5, 0.5, 2.0]), torch.tensor([True, False, False]), 1.0)
print(f"contrastive loss of the three pairs: {toy.item():.4f}")

# %% [markdown]
# ## 6. Training the Siamese network
#
# Each step takes a batch of labelled training pairs, computes $d_\theta$ for each pair with the
# shared network, and takes a gradient step on the contrastive loss.

# %%
optimizer = torch.optim.Adam(siamese.parameters(), lr=S.lr)
i_tr, j_tr, same_tr = pairs_train
losses = []
steps_per_epoch = -(-len(i_tr) // S.batch_size)
bar = config.progress(total=S.epochs * steps_per_epoch, desc="training steps")
for _epoch in range(S.epochs):
    siamese.train()
    perm = torch.randperm(len(i_tr))
    for k in range(0, len(perm), S.batch_size):
        b = perm[k:k + S.batch_size]
        x1, x2 = images[i_tr[b]].to(DEVICE), images[j_tr[b]].to(DEVICE)
        d = siamese(x1, x2)
        loss = contrastive_loss(d, same_tr[b].to(DEVICE), S.margin)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(epoch=_epoch + 1, loss=f"{loss.item():.3f}", refresh=False)
bar.close()

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(losses, lw=1)
ax.set(xlabel="step", ylabel="contrastive loss", title="Training the Siamese network")
fig.tight_layout()

# %% [markdown]
# ## 7. What did it learn?
#
# The histograms show $d_\theta$ for the **test** pairs (galaxies never seen in training),
# before and after training. Before, same and different pairs are mixed; after, same pairs
# should sit at small distances and different pairs near or beyond the margin.

# %%
d_test_after = pair_distances(siamese, i, j)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for ax, d, name in zip(axes, (d_test_before, d_test_after), ("before training", "after training")):
    bins = np.linspace(0, float(d.max()) * 1.05 + 1e-6, 30)
    ax.hist(d[same].numpy(), bins=bins, alpha=0.6, color="tab:green", label="same")
    ax.hist(d[~same].numpy(), bins=bins, alpha=0.6, color="tab:red", label="different")
    ax.set(xlabel=r"$d_\theta(x_1, x_2)$", ylabel="test pairs", title=name)
    ax.legend()
fig.tight_layout()

# %% [markdown]
# And the threshold rule, with $T$ chosen on the training pairs, scored on the test pairs,
# next to the ROC curves of the three distances:

# %%
d_train_after = pair_distances(siamese, i_tr, j_tr)
T = choose_threshold(d_train_after, same_tr)
fig, ax = plt.subplots(figsize=(4.5, 4.5))
for d, name in ((d_test_pix, "pixels"), (d_test_before, "Siamese, untrained"),
                (d_test_after, "Siamese, trained")):
    sc = distances.threshold_scores(d, same, T)  # the ROC curve does not depend on T
    ax.plot(sc["fpr"], sc["tpr"], label=f"{name} (AUC {sc['roc_auc']:.2f})")
ax.plot([0, 1], [0, 1], "k:", lw=1)
scores = distances.threshold_scores(d_test_after, same, T)
ax.plot(scores["false_positive_rate"], scores["true_positive_rate"], "ko", label=f"T = {T:.2f}")
ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="Same or different?")
ax.legend(fontsize=8)
fig.tight_layout()
print(f"Trained Siamese network: T = {T:.2f}, test accuracy {scores['accuracy']:.2f} "
      f"(pixels: {scores_pix['accuracy']:.2f})")

# %% [markdown]
# Finally the test pairs again, now captioned with the learned distance; a red caption is a
# different pair, green a same pair. Pairs with $d < T$ are the ones the network calls "same".

# %%
fig = show_pairs(images, i, j, d_test_after, same,
                 title=f"Test pairs and the learned distance (T = {T:.2f})")

# %% [markdown]
# ## What we saw
#
# - Distances in pixel space are dominated by nuisances (brightness, size, orientation, noise),
#   so a threshold on them barely beats a coin.
# - A Siamese network learns *one* representation $f_\theta$, applied to both images; the
#   contrastive loss pulls same pairs together and pushes different pairs beyond the margin.
# - The threshold $T$ turns the distance into a classifier; the ROC curve shows the trade-off
#   for every $T$.
#
# ### A question to think about
#
# The contrastive loss only pushes different pairs until they are $m$ apart. What would go
# wrong without the margin (i.e. with a loss $-d^2$ on different pairs)?
#
# ### BEGIN SOLUTION
# Our $f_\theta$ ends in unit length, so it cannot simply scale its outputs up: every distance
# stays below 2 and $-d^2$ stays above $-4$. (Without that normalisation the loss would have no
# lower bound and training would blow the embedding up.) What goes wrong is where the effort
# goes. The gradient of $-d^2$ is $-2d$: it is *largest* for the pairs that are already far
# apart, the easy ones, and it never stops, so those pairs dominate every step. And the
# different-pair term is happy with any embedding that spreads the points out (on the sphere
# the mean squared distance between points is $2(1 - |\bar{f}|^2)$, largest whenever their mean
# $\bar{f}$ is zero), whatever the galaxies look like. The margin makes pairs that are already
# far enough apart cost nothing, so the effort goes into the pairs that are still confused.
# ### END SOLUTION
#
# Next, `02_metric_learning.ipynb`: triplets, hard negatives, and why classification features
# are not always enough.

# %% [markdown]
# ## References
#
# - Bromley, J., Guyon, I., LeCun, Y., Säckinger, E. & Shah, R. (1993). *Signature
#   Verification using a "Siamese" Time Delay Neural Network.* Advances in Neural Information
#   Processing Systems 6 (NIPS 1993).
#   The Siamese network: one network shared by both inputs.
# - Hadsell, R., Chopra, S. & LeCun, Y. (2006). *Dimensionality Reduction by Learning
#   an Invariant Mapping.* CVPR 2006.
#   The contrastive loss of Exercise 1.3.
# - Lupton, R. H., Gunn, J. E. & Szalay, A. S. (1999). *A Modified Magnitude System
#   that Produces Well-Behaved Magnitudes, Colors, and Errors Even for Low Signal-to-Noise Ratio
#   Measurements.* AJ 118, 1406.
#   [arXiv:astro-ph/9903081](https://arxiv.org/abs/astro-ph/9903081).
#   The asinh stretch of the fluxes.
# - Lupton, R., Blanton, M. R., Fekete, G., Hogg, D. W., O'Mullane, W., Szalay, A. &
#   Wherry, N. (2004). *Preparing Red-Green-Blue Images from CCD Data.* PASP 116, 133.
#   [arXiv:astro-ph/0312483](https://arxiv.org/abs/astro-ph/0312483).
#   The colour composites of the galaxy images (`plotting.lupton_rgb`).
# - Willett, K. W., et al. (2013). *Galaxy Zoo 2: detailed morphological
#   classifications for 304,122 galaxies from the Sloan Digital Sky Survey.* MNRAS 435, 2835.
#   [arXiv:1308.3496](https://arxiv.org/abs/1308.3496).
#   The Galaxy Zoo questions the labels answer.
