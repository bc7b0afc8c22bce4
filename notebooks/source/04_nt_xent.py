# %% [markdown]
# # 04 · The NT-Xent loss: SimCLR's contrastive objective, term by term
#
# In SimCLR (Chen et al. 2020) a minibatch of $N$ galaxies is augmented twice, giving $2N$
# views. The two views of the same galaxy are a **positive pair**; for one positive pair, the
# other $2(N-1)$ views are **negatives**. The encoder and projection head map view $i$ to an
# embedding $z_i$, and the loss asks every view to recognise its partner among all the others.
#
# The lecture writes it in three lines. With the cosine similarity scaled by a temperature
# $\tau$,
#
# $$ s_{ij} = \frac{z_i \cdot z_j}{\tau\, |z_i|\, |z_j|}, $$
#
# the loss of view $i$ with its positive $j$ is a softmax cross-entropy over all other views,
#
# $$ \ell_{ij} = -\log \frac{\exp(s_{ij})}{\sum_{k=1,\,k\neq i}^{2N} \exp(s_{ik})}, $$
#
# and the batch loss averages both directions of every pair (views $2k-1$ and $2k$ come from
# galaxy $k$):
#
# $$ L = \frac{1}{2N} \sum_{k=1}^{N} \big[\ell(2k-1, 2k) + \ell(2k, 2k-1)\big]. $$
#
# (The lecture slide writes the sum up to $2N$. With $k$ running to $2N$ the indices $2k$ would
# reach $4N$, views that do not exist: the sum runs over the $N$ galaxies, and each contributes
# its two directions, $2N$ terms in all, which the $\frac{1}{2N}$ averages.)
#
# In this notebook you write it twice, first as the slide's loops, then as one matrix product,
# look at what the temperature does, see what goes wrong without the negatives, and time both
# against the course package (which also has a *chunked* version for batches too big for
# memory).

# %% [markdown]
# > **Notation in this notebook.** The letter z has three meanings in this course. Here $z$ is
# > always an **embedding**, the output of the projection head: $z_i$ is the embedding of view
# > $i$ (`z1`, `z2`, `z` in the code), and $u = z/|z|$ its normalised version (section 5).
# > The **z band** (the reddest of the g, r, z images) and the **redshift** (written `redshift`
# > in code, "redshift" or $z_\mathrm{spec}$ in prose) do not appear in this notebook.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from phys555_cl import config
from phys555_cl import exercises as ex
from phys555_cl.losses import nt_xent

# %%
S = config.sizes("04")
DEVICE = config.device()
config.seed_everything(0)
print(f"fast mode: {S.fast}; batch sizes to time: {S.batch_sizes}; embedding size D = {S.dim}")

# %% [markdown]
# ## 1. Who is positive, who is negative
#
# Number the views as on the slide: galaxy $k$ gives views $2k-1$ and $2k$. For $N = 4$
# galaxies the $2N \times 2N$ table of pairs $(i, j)$ looks like this: the diagonal is the view
# itself (left out of the sum, $k \ne i$), each row has exactly one positive, and the
# remaining $2(N-1) = 6$ views of each row are negatives.

# %%
N_demo = 4
role = np.full((2 * N_demo, 2 * N_demo), 2)  # 2 = negative
for k in range(1, N_demo + 1):
    a, b = 2 * k - 2, 2 * k - 1  # 0-based indices of views 2k-1 and 2k
    role[a, b] = role[b, a] = 1  # positive
np.fill_diagonal(role, 0)  # the view itself

fig, ax = plt.subplots(figsize=(4.6, 4.2))
cmap = plt.matplotlib.colors.ListedColormap(["#bbbbbb", "#2ca02c", "#d62728"])
ax.imshow(role, cmap=cmap, vmin=0, vmax=2)
ticks = range(2 * N_demo)
ax.set_xticks(ticks, [str(t + 1) for t in ticks])
ax.set_yticks(ticks, [str(t + 1) for t in ticks])
ax.set_xlabel("view j")
ax.set_ylabel("view i")
ax.set_title("grey: i = j (left out)   green: positive   red: negative", fontsize=9)
plt.show()
print(f"each row: 1 positive and {(role[0] == 2).sum()} negatives = 2(N-1) with N = {N_demo}")

# %% [markdown]
# ## 2. Exercise 4.1: the loss with loops
#
# Write the three formulas exactly as they are, with Python loops over views. `z1[k-1]` is view
# $2k-1$ and `z2[k-1]` is view $2k$ (Python counts from 0, the slide from 1). Work in float64
# (`.double()`), so your number can be compared with the reference to many digits.
#
# *Tip*: write small helper functions `s(i, j)` and `l(i, j)` inside your function, like the
# slide does.
#
# Stuck? `ex.hint("4.1")` gives a deeper hint each time you call it.

# %%
def nt_xent_loops(z1, z2, tau):
    """NT-Xent with loops. z1, z2: [N, D] tensors (views 2k-1 and 2k); tau > 0 -> float64 scalar."""
    ### HINT: Write the slide's three formulas as they stand, with small helper functions; a view is never in its own sum.
    ### BEGIN SOLUTION
    N = z1.shape[0]
    z = {}
    for k in range(1, N + 1):
        z[2 * k - 1] = z1[k - 1].double()
        z[2 * k] = z2[k - 1].double()

    def s(i, j):
        return torch.dot(z[i], z[j]) / (tau * z[i].norm() * z[j].norm())

    def l(i, j):  # noqa: E743
        denominator = sum(torch.exp(s(i, k)) for k in range(1, 2 * N + 1) if k != i)
        return -torch.log(torch.exp(s(i, j)) / denominator)

    return sum(l(2 * k - 1, 2 * k) + l(2 * k, 2 * k - 1) for k in range(1, N + 1)) / (2 * N)
    ### END SOLUTION


nt_xent_loops = ex.check_nt_xent_loops(nt_xent_loops)

# %% [markdown]
# ## 3. Exercise 4.2: one matrix product
#
# The loops compute every $s_{ik}$ one dot product at a time: $4N^2$ tiny operations in
# Python. The same numbers come out of **one** matrix product once the views are normalised:
#
# 1. stack the views, `z = torch.cat([z1, z2])` ($2N \times D$; now the partner of row $i$ is
#    row $i + N$ modulo $2N$: the order of the views does not change $L$);
# 2. normalise every row, `F.normalize(z, dim=1)`, and take `s = z @ z.T / tau`;
# 3. remove $k = i$ from the sums by setting the diagonal to $-\infty$ ($e^{-\infty} = 0$);
# 4. each row is now a classification problem whose "correct class" is the partner's column:
#    `F.cross_entropy(s, targets)` with `targets[i] = (i + N) % (2N)` computes exactly
#    $\ell_{i,\,\mathrm{partner}(i)}$, averaged over the $2N$ rows.

# %%
def nt_xent_vectorised(z1, z2, tau):
    """NT-Xent with one matrix product. z1, z2: [N, D]; returns a scalar of z1's dtype."""
    ### HINT: Normalised views make all the similarities one matrix product; each row is then a classification whose answer is the partner.
    ### BEGIN SOLUTION
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    s = z @ z.T / tau
    s = s.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=s.device), float("-inf"))
    targets = (torch.arange(2 * n, device=s.device) + n) % (2 * n)
    return F.cross_entropy(s, targets)
    ### END SOLUTION


nt_xent_vectorised = ex.check_nt_xent_vectorised(nt_xent_vectorised)

# %% [markdown]
# All three give the same number (to float32 precision) on the same embeddings:

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(555)
z1, z2 = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
print(f"loops       : {nt_xent_loops(z1, z2, 0.5).item():.5f}")
print(f"vectorised  : {nt_xent_vectorised(z1, z2, 0.5).item():.5f}")
print(f"phys555_cl  : {nt_xent(z1, z2, temperature=0.5).item():.5f}")

# %% [markdown]
# What is a "good" value? If the embeddings carry no information, each view sees its partner
# as one of $2N-1$ equally likely candidates and $\ell \approx \log(2N-1)$. A perfect encoder
# drives $L$ towards its floor, which depends on $\tau$.

# %%
# NBVAL_CHECK_OUTPUT
for n in [2, 8, 64]:
    print(f"N = {n:3d}: log(2N - 1) = {np.log(2 * n - 1):.3f}")

# %% [markdown]
# ## 4. What the temperature does
#
# Take one anchor view and look at the softmax over its $2N - 1$ candidates,
# $p_{ik} = \exp(s_{ik}) / \sum_{k' \ne i} \exp(s_{ik'})$, for embeddings where the partner is
# a noisy copy of the anchor and a few negatives happen to be close ("hard negatives").
# A small $\tau$ sharpens the softmax: the loss concentrates on the hardest negatives. A large
# $\tau$ spreads the weight over all of them. SimCLR uses $\tau$ between 0.1 and 0.5.

# %%
g = torch.Generator().manual_seed(1)
N_t, D_t = 32, 32
anchor_base = torch.randn(N_t, D_t, generator=g)
z1_t = anchor_base
z2_t = anchor_base + 0.6 * torch.randn(N_t, D_t, generator=g)
z2_t[1:4] = z1_t[0] + 1.0 * torch.randn(3, D_t, generator=g)  # three hard negatives for view 0

taus = [0.05, 0.2, 0.5, 1.0]
z_all = F.normalize(torch.cat([z1_t, z2_t]), dim=1)
cos = z_all[0] @ z_all.T
order = torch.argsort(cos[1:], descending=True) + 1  # candidates sorted by similarity
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for tau in taus:
    p = torch.softmax(cos[1:] / tau, dim=0)
    probs = torch.cat([torch.zeros(1), p])  # put back index 0 (the anchor itself)
    axes[0].plot(probs[order].numpy(), marker=".", label=f"tau = {tau}")
partner_rank = int((order == N_t).nonzero())  # view 0's partner is row N_t of [z1; z2]
axes[0].axvline(partner_rank, color="#2ca02c", lw=6, alpha=0.25, label="the positive")
axes[0].set_xlabel("candidate views, most similar first")
axes[0].set_ylabel("softmax weight p_ik")
axes[0].set_title("view 0: its partner and 3 hard negatives are the most similar", fontsize=10)
axes[0].set_xlim(-0.5, 15)
axes[0].legend()
tau_grid = np.geomspace(0.03, 2.0, 30)
axes[1].plot(tau_grid, [nt_xent(z1_t, z2_t, temperature=t).item() for t in tau_grid],
             label="these embeddings")
r1, r2 = torch.randn(N_t, D_t, generator=g), torch.randn(N_t, D_t, generator=g)
axes[1].plot(tau_grid, [nt_xent(r1, r2, temperature=t).item() for t in tau_grid],
             label="unrelated views (random)")
axes[1].axhline(np.log(2 * N_t - 1), color="grey", ls="--", label="log(2N - 1)")
axes[1].set_xscale("log")
axes[1].set_xlabel("temperature tau")
axes[1].set_ylabel("L")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# On the right: for embeddings that carry information, the loss has a minimum at a small
# $\tau$; for unrelated views the loss is never below $\log(2N-1)$ and grows as $\tau \to 0$
# (the softmax then picks a random negative with full confidence).
#
# The gradient of $\ell_{ij}$ with respect to $s_{ik}$ is exactly $p_{ik}$ for each negative
# (and $p_{ij} - 1$ for the positive), so the left panel *is* how hard each negative pushes
# on the encoder. At $\tau = 0.05$ almost all of the push comes from the three hard negatives;
# at $\tau = 1$ every negative pushes about equally.

# %% [markdown]
# ## 5. Why negatives? A loss with positives only collapses
#
# Write $\ell_{ij}$ as two terms:
#
# $$ \ell_{ij} = -s_{ij} + \log \sum_{k \neq i} \exp(s_{ik}) . $$
#
# The first term pulls view $i$ towards its positive $j$. The second, the log of the
# denominator, grows when view $i$ is similar to *any* other view of the batch, so lowering it
# pushes view $i$ away from all of them; all but one of them are negatives. Do we need the
# push? Keep only the pull: the mean squared distance between the two views' **normalised**
# embeddings $u = z/|z|$,
#
# $$ L_\mathrm{align} = \frac{1}{N} \sum_{k=1}^{N} \big\| u_{2k-1} - u_{2k} \big\|^2 . $$
#
# An encoder that sends *every* input to the same vector gives $L_\mathrm{align} = 0$, the
# smallest value the loss can take. Such a **collapsed** encoder satisfies the loss perfectly
# and cannot tell any two galaxies apart.
#
# Three numbers, all on the normalised embeddings $u$, show whether training finds that
# solution. Wang & Isola (2020, section 4.1) define
#
# - the **alignment**, $\mathbb{E}\,\|u(x) - u(x^+)\|^\alpha$ with $\alpha = 2$, over positive
#   pairs $(x, x^+)$: how close the two views of an input are ($L_\mathrm{align}$ itself);
# - the **uniformity**, $\log \mathbb{E}\, \exp\!\big(-t\,\|u(x) - u(y)\|^2\big)$ with $t = 2$,
#   over pairs of *different* inputs $x, y$: 0 when all embeddings coincide, lower the more
#   evenly they cover the sphere;
#
# and Chen & He (2021, section 4.1) watch the **standard deviation of each coordinate of $u$**
# over the inputs (averaged over the coordinates): 0 for a collapsed encoder, about
# $1/\sqrt{D}$ for embeddings spread like an isotropic Gaussian in $D$ dimensions. The package
# has all three: `phys555_cl.geometry.alignment`, `uniformity` and `dimension_std`.
#
# Galaxies and a CNN take minutes; this question takes seconds on the toy problem of
# `phys555_cl.toy`. An input is 32 numbers made from 8 hidden factors; a view of it is a noisy
# re-measurement in which each number is missing with probability 1/4; the encoder is a
# two-layer MLP, 32 → 128 → $D$ = 16. We train it twice, from the same initial weights on the
# same batches of 256 inputs (`S.toy_steps` steps of Adam): once with $L_\mathrm{align}$
# alone, once with NT-Xent ($\tau = 0.5$), and measure the three numbers on 512 held-out
# inputs every 10 steps.

# %%
from phys555_cl import toy
from phys555_cl.geometry import alignment


def alignment_only(z1, z2):
    """The pull without the push: mean over pairs of || z1/|z1| - z2/|z2| ||^2."""
    return (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).pow(2).sum(dim=1).mean()


g = torch.Generator().manual_seed(21)
a, b = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
print(f"alignment_only is geometry.alignment (alpha = 2): "
      f"{torch.allclose(alignment_only(a, b), alignment(a, b))}")

start = time.perf_counter()
runs = {
    "alignment only": toy.train_toy(alignment_only, toy.toy_encoder(seed=0), steps=S.toy_steps),
    "NT-Xent, tau = 0.5": toy.train_toy(lambda z1, z2: nt_xent(z1, z2, temperature=0.5),
                                        toy.toy_encoder(seed=0), steps=S.toy_steps),
}
seconds = time.perf_counter() - start
toy.plot_geometry(runs)
plt.show()
print(f"{S.toy_steps} steps per run, both runs in {seconds:.1f} s")
print(f"{'':<20} {'alignment':>16} {'uniformity':>16} {'std per dim':>16}   (step 0 -> end)")
for name, h in runs.items():
    print(f"{name:<20} " + " ".join(f"{h[key][0]:>7.3f} -> {h[key][-1]:<6.3f}"
                                    for key in ("alignment", "uniformity", "std")))
print(f"1/sqrt(D) = {1 / np.sqrt(runs['NT-Xent, tau = 0.5']['out_dim']):.3f}")

# %% [markdown]
# **What the plot shows** (the numbers are the values printed above). With the pull alone,
# the alignment drops towards 0 within the first few tens of steps, and so does the standard
# deviation per coordinate, while the uniformity climbs towards its largest value, 0:
# the two views of an input end up at the same point of the sphere because *every* input ends
# up at (almost) the same point. The loss is as small as it can be and the embedding no longer
# says which input it came from: **collapse**. (Notebook 02 met the same failure with
# batch-hard triplets trained from scratch.) With NT-Xent the alignment falls too but stays
# above 0, the uniformity falls well below its starting value and the standard deviation per
# coordinate rises to about $1/\sqrt{D}$: the views of one input are close, and different
# inputs spread over the whole sphere.
#
# **Why the negatives spread the embeddings.** For unit vectors
# $\|u_i - u_k\|^2 = 2 - 2\,u_i\cdot u_k$, so a large $s_{ik}$ is a small distance. The log
# of the denominator, $\log \sum_{k\neq i} \exp(s_{ik})$, is a smooth maximum of the
# similarities of view $i$ to all the others: it is small only when view $i$ is far from all
# of them at once, and its gradient pushes $u_i$ away from every other view with the weight
# $p_{ik}$ of section 4. Every view is pushed away from every other; a collapsed encoder,
# where all $s_{ik}$ take their largest value $1/\tau$, is the *worst* case for this term, not
# the best. Wang & Isola (2020, Theorem 1) make this exact in the limit of many negatives $M$:
# the contrastive loss minus $\log M$ tends to
#
# $$ -\frac{1}{\tau}\,\mathbb{E}_{(x, x^+)}\big[u(x)\cdot u(x^+)\big]
#    \;+\; \mathbb{E}_{x}\Big[\log \mathbb{E}_{x^-} \exp\big(u(x)\cdot u(x^-)/\tau\big)\Big] , $$
#
# an alignment term (the first) plus a term that, when an encoder with uniformly distributed
# embeddings exists, is minimised by exactly such encoders: the property their uniformity
# measures. $L_\mathrm{align}$ is the first term alone, so nothing in it resists collapse.
# Methods that drop the negatives need another way to stop it (a predictor and a
# stop-gradient, a decorrelation penalty, centring): notebook 05, *Beyond SimCLR*.

# %% [markdown]
# ## 6. Loops vs one matrix product vs the package, on your machine
#
# Time forward + backward for growing batches. The loops are only run for small batches (they
# grow like $N^2$ Python operations). The package's `nt_xent` does the same single matrix
# product as your vectorised version but removes the diagonal without building a $2N\times2N$
# mask, and its `chunk_size` option computes the similarity matrix a few rows at a time, so the
# extra memory is $O(\text{chunk} \cdot 2N)$ instead of $O((2N)^2)$: the way to fit batches of
# tens of thousands of views on a GPU.

# %%
def time_loss(fn, n, dim, repeats):
    z1 = torch.randn(n, dim, device=DEVICE, requires_grad=True)
    z2 = torch.randn(n, dim, device=DEVICE, requires_grad=True)
    fn(z1, z2).backward()  # warm-up: the first call pays for memory allocation
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(z1, z2).backward()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


candidates = {
    "loops (yours)": lambda a, b: nt_xent_loops(a.cpu(), b.cpu(), 0.5),
    "vectorised (yours)": lambda a, b: nt_xent_vectorised(a, b, 0.5),
    "phys555_cl.nt_xent": lambda a, b: nt_xent(a, b, temperature=0.5),
    "phys555_cl.nt_xent, chunk 64": lambda a, b: nt_xent(a, b, temperature=0.5, chunk_size=64),
}
results = {name: [] for name in candidates}
for n in config.progress(S.batch_sizes, desc="batch sizes"):
    for name, fn in candidates.items():
        too_slow = name.startswith("loops") and n > 32
        results[name].append(np.nan if too_slow else time_loss(fn, n, S.dim, S.repeats))

print(f"forward + backward time in ms on {config.device_name(DEVICE)}, D = {S.dim}")
print(f"{'N':>6} " + " ".join(f"{name:>30}" for name in candidates))
for row, n in enumerate(S.batch_sizes):
    cells = ["(skipped)" if np.isnan(results[name][row]) else f"{1e3 * results[name][row]:.2f}"
             for name in candidates]
    print(f"{n:>6} " + " ".join(f"{c:>30}" for c in cells))
for row, n in enumerate(S.batch_sizes):
    loops, vectorised = results["loops (yours)"][row], results["vectorised (yours)"][row]
    if not np.isnan(loops):
        print(f"N = {n}: the loops take {loops / vectorised:,.0f}x the time of the vectorised "
              f"version")

# %% [markdown]
# The last lines above give the factor by which the loops are slower, at the batch sizes where
# they were timed (a busy machine moves it: time is measured, not promised). The loops do
# $O(N^2)$ Python operations, so the factor grows with $N$; the vectorised versions are
# dominated by the one $2N \times 2N \times D$ matrix product (and its two partners in the
# backward pass). `python benchmarks/bench_ntxent.py` measures how close the package's loss
# comes to the time of those three matrix products alone, and compares it with the lightly
# and pytorch-metric-learning implementations.
#
# The chunked version gives the same value and the same gradients:

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(7)
a = torch.randn(100, 32, generator=g, dtype=torch.float64, requires_grad=True)
b = torch.randn(100, 32, generator=g, dtype=torch.float64, requires_grad=True)
full = nt_xent(a, b, temperature=0.2)
(grad_full,) = torch.autograd.grad(full, a)
chunked = nt_xent(a, b, temperature=0.2, chunk_size=16)
(grad_chunked,) = torch.autograd.grad(chunked, a)
print(f"same value: {torch.allclose(full, chunked)}; same gradient: "
      f"{torch.allclose(grad_full, grad_chunked)}")

# %% [markdown]
# ## 7. Questions
#
# 1. With $N = 1$ there are no negatives. What is $L$, whatever the embeddings? (Try it.)
# 2. Why must $s_{ii}$ be left out of the denominator? What would the loss push the encoder to
#    do if it were included?
#
# ### BEGIN SOLUTION
# 1. With one pair, each view's only candidate is its partner, so the softmax is 1 and
#    $L = -\log 1 = 0$ exactly: nothing to learn without negatives.
# 2. With normalised embeddings $s_{ii} = 1/\tau$ exactly, whatever the weights: a constant
#    with no gradient, so it does not push the encoder anywhere by itself. The harm is what it
#    does to everything else. $e^{1/\tau}$ is the largest term any denominator can hold (with
#    $\tau = 0.1$ it is $e^{10} \approx 22\,000$), so it swamps the denominator: every
#    probability $p_{ik}$, the positive's included, shrinks, and with it every gradient. The
#    positive can at best tie with it, $s_{ij} = 1/\tau$, which leaves the loss at $\log 2$ at
#    the very least instead of 0. Leaving it out makes each row an honest choice among the
#    $2N-1$ other views.
# ### END SOLUTION

# %%
print("N = 1:", nt_xent(torch.randn(1, 8), torch.randn(1, 8)).item())

# %% [markdown]
# Next: `05_simclr_galaxies.ipynb` puts this loss on top of an encoder and a projection head
# and trains on galaxies.

# %% [markdown]
# ## References
#
# - Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020a). *A Simple Framework for
#   Contrastive Learning of Visual Representations.* ICML 2020.
#   [arXiv:2002.05709](https://arxiv.org/abs/2002.05709). SimCLR and its NT-Xent loss
#   (section 2.1), the temperature (section 5.1, Table 5).
# - Wang, T. & Isola, P. (2020). *Understanding Contrastive Representation Learning through
#   Alignment and Uniformity on the Hypersphere.* ICML 2020.
#   [arXiv:2005.10242](https://arxiv.org/abs/2005.10242). Alignment and uniformity
#   (section 4.1) and the limit of the contrastive loss with many negatives (Theorem 1,
#   section 4.2), in section 5.
# - Chen, X. & He, K. (2021). *Exploring Simple Siamese Representation Learning.* CVPR 2021.
#   [arXiv:2011.10566](https://arxiv.org/abs/2011.10566). The standard deviation of the
#   normalised embedding as a sign of collapse, and its value $1/\sqrt{D}$ (section 4.1), in
#   section 5.
