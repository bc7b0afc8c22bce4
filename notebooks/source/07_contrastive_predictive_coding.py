# %% [markdown]
# # 07 · Contrastive Predictive Coding: InfoNCE on light curves
#
# SimCLR (notebooks 04-06) makes its positive pairs with *augmentations*: two crops of one
# galaxy should look alike. **Contrastive Predictive Coding** (CPC; van den Oord, Li & Vinyals
# 2018, [arXiv:1807.03748](https://arxiv.org/abs/1807.03748)) makes them with *time*: the
# summary of a sequence's past should pick out what comes next.
#
# The idea in three lines:
#
# 1. an encoder $g_\mathrm{enc}$ turns each window of the sequence into a latent vector
#    $z_t$;
# 2. an autoregressive network $g_\mathrm{ar}$ (here a GRU) summarises $z_{\le t}$ into a
#    context $c_t$;
# 3. for each step $k = 1..K$ a linear map $W_k$ *predicts* $z_{t+k}$ from $c_t$, and the
#    prediction is scored **against negatives**: the latents of other windows and of other
#    sequences. The loss is InfoNCE, the family NT-Xent belongs to.
#
# Why not predict the future samples themselves, as a regression? Because most of what is in
# a future sample is noise or detail that no summary of the past can know. Predicting in latent
# space *and* contrasting lets the network keep only what is predictable: the slowly varying,
# shared information, here the kind of star and its period.
#
# Plan: (1) the data, (2) the maths of InfoNCE with **Exercise 7.1**, (3) the model and the
# prediction step with **Exercise 7.2**, (4) training, (5) what the predictions look like,
# (6) a linear probe of $c_t$ against a randomly initialised network.

# %% [markdown]
# > **Notation in this notebook.** $z_t$ is the **latent vector of window $t$**, the output of
# > the encoder $g_\mathrm{enc}$ (`z`, `S.z_dim` in the code); $c_t$ is the **context**, the
# > summary of $z_{\le t}$. $z_t$ plays the part that the embedding $z$ plays in notebooks
# > 04-06, but CPC has no projection head. Neither of the other meanings of z in this course,
# > the **z band** of the galaxy images and the **redshift**, appears here: the data are light
# > curves in magnitudes. Two more letters change meaning from notebook 04: $N$ is the number of
# > candidates of InfoNCE here (in NT-Xent it is the number of galaxies in a batch, which gives
# > $2N - 1$ candidates), and $k$ is the number of windows ahead (in notebook 04 it numbered
# > galaxies and views).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from phys555_cl import config, cpc
from phys555_cl import exercises as ex
from phys555_cl.lightcurves import CLASS_NAMES, LightCurves
from phys555_cl.losses import info_nce, nt_xent

# %%
S = config.sizes("07")
DEVICE = config.device()
config.seed_everything(0)
print(f"Fast mode: {S.fast}; device: {DEVICE}")

# %% [markdown]
# ## 1. The data: variable-star light curves
#
# CPC needs sequences whose future is predictable *for a physical reason*, with labels that a
# good summary of the past should contain. Variable stars are the textbook case. Surveys such
# as ZTF, Gaia, TESS and soon Rubin/LSST record brightness-versus-time curves for millions of
# stars, far more than anyone classifies by eye: the same "many unlabelled, few labelled"
# situation as the galaxies of the lecture. And a star's light curve is predictable exactly
# because of what it *is*: a pulsating star repeats its cycle, an eclipsing binary dips twice
# per orbit, a spotted star rotates its spots in and out of view. To predict the next days
# the network has to work out the class and the period, which are our probe labels.
#
# (Galaxy spectra with redshifted lines were the other candidate; but a spectrum is not
# generated left to right, so "predict the future from the past" would be an arbitrary
# choice of direction there, whereas in time it is the physics.)
#
# `phys555_cl.lightcurves` simulates six classes (periods in days, amplitudes in magnitudes):
#
# | class | period | shape |
# | --- | --- | --- |
# | RR Lyrae ab | 0.45-0.9 | fast rise, slow decline, 0.5-1.2 mag |
# | RR Lyrae c | 0.22-0.42 | nearly sinusoidal, 0.2-0.5 mag |
# | Cepheid | 2-16 | skewed; at 6-16 d a bump whose phase moves with the period (below) |
# | detached eclipsing binary | 0.6-6 | flat, two narrow eclipses of unequal depth |
# | contact binary (W UMa) | 0.25-0.7 | continuous, two nearly equal minima per orbit |
# | spotted rotator | 0.5-8 | small quasi-sinusoid whose amplitude drifts as spots evolve |
#
# The Cepheid bump is the *Hertzsprung progression* of real classical Cepheids: at 6-9 days
# it sits on the descending branch, near 10 days it merges with maximum light (flat or double
# maxima), at 11-16 days it is on the rising branch; shorter periods give smooth curves.
# (Cepheids stop at 16 days so that a 21-day curve still holds more than one cycle.)
#
# The curves carry the nuisances a real survey adds: a random phase at the first observation,
# white noise of 3-30 mmag, a slow instrumental trend, and **gaps**. They are binned on a
# regular grid of one-hour bins with a mask of which bins hold a measurement: a space
# telescope loses a 0.5-1.5 day downlink gap and a few points; a ground telescope (30 % of the
# curves) sees only 6-10 hours a night and loses whole nights to clouds. Note the overlaps:
# an RRab, a contact binary and an RRc can all have a period of 0.4 days, so the period alone
# does not give the class; the shape does.
#
# Every curve is a deterministic function of `(seed, index)`, so the training and held-out
# sets below are disjoint slices of one survey.

# %%
train = LightCurves(S.n_sequences, seed=0, n_samples=S.n_samples)
test = LightCurves(S.n_test, seed=0, offset=S.n_sequences, n_samples=S.n_samples)
print(f"training curves: {len(train)}, held-out curves: {len(test)}, "
      f"{S.n_samples} hourly bins = {S.n_samples / 24:.0f} days each")
print("network input x:", tuple(train.x.shape), "= [curves, channels, time bins]")

# %%
# NBVAL_CHECK_OUTPUT
counts = torch.bincount(train.labels["star_class"], minlength=len(CLASS_NAMES))
for name, n in zip(CLASS_NAMES, counts.tolist()):
    print(f"{name:<27} {n:4d}")
print(f"first curve: {CLASS_NAMES[int(train.labels['star_class'][0])]}, "
      f"P = {train.labels['period'][0]:.3f} d")

# %% [markdown]
# A gallery: two curves of each class, observed points in colour and the noise-free model in
# grey. Magnitudes grow downwards (astronomers' convention: fainter = larger magnitude).

# %%
fig, axes = plt.subplots(len(CLASS_NAMES), 2, figsize=(12, 11), sharex=True)
for k, name in enumerate(CLASS_NAMES):
    for j, i in enumerate((train.labels["star_class"] == k).nonzero()[:2, 0].tolist()):
        ax, seen = axes[k, j], train.mask[i]
        ax.plot(train.time, train.clean[i], color="0.75", lw=0.8)
        ax.plot(train.time[seen], train.mag[i][seen], ".", ms=2, color=f"C{k}")
        ax.invert_yaxis()
        survey = "ground" if train.labels["ground_based"][i] else "space"
        ax.set_title(f"{name}: P = {train.labels['period'][i]:.2f} d, "
                     f"amplitude {train.labels['amplitude'][i]:.2f} mag, {survey}", fontsize=9)
for ax in axes[-1]:
    ax.set_xlabel("time [days]")
for ax in axes[:, 0]:
    ax.set_ylabel("Δ mag")
fig.tight_layout()
plt.show()

# %% [markdown]
# Folding a curve at its true period shows the shape the network has to discover without
# being told the period:

# %%
fig, axes = plt.subplots(1, len(CLASS_NAMES), figsize=(15, 2.6))
for k, ax in enumerate(axes):
    i = int((train.labels["star_class"] == k).nonzero()[0, 0])
    seen = train.mask[i]
    phase = (train.time[seen] / train.labels["period"][i]) % 1.0
    ax.plot(phase, train.mag[i][seen], ".", ms=2, color=f"C{k}")
    ax.invert_yaxis()
    ax.set_title(CLASS_NAMES[k], fontsize=9)
    ax.set_xlabel("phase")
fig.tight_layout()
plt.show()

# %% [markdown]
# The network sees two channels per time bin: the magnitudes standardised per curve (0 in
# gaps) and the mask (1 = observed). Standardising throws away the amplitude in magnitudes; we
# come back to why that is a good idea for CPC in the questions at the end.

# %% [markdown]
# ## 2. The maths: InfoNCE
#
# CPC scores a candidate future $x_j$ (through its latent $z_j$) against the context $c_t$
# with a log-bilinear model, one matrix $W_k$ per step ahead:
#
# $$f_k(x_j, c_t) = \exp\left(z_j^\top W_k\, c_t\right).$$
#
# Take a set $X = \{x_1, \dots, x_N\}$ of $N$ candidates: one **positive**, the true
# $x_{t+k}$ drawn from $p(x_{t+k} \mid c_t)$, and $N - 1$ **negatives** drawn from
# $p(x_{t+k})$, here the other windows of the batch, of other stars and of the same star at
# other times. InfoNCE is the cross-entropy of picking the positive out of the set:
#
# $$\mathcal{L}_N = -\,\mathbb{E}_X\left[\log \frac{f_k(x_{t+k}, c_t)}
#   {\sum_{x_j \in X} f_k(x_j, c_t)}\right].$$
#
# Nothing is excluded from the sum: the positive is one of the $N$ candidates. If the scores
# carry no information, every candidate is equally likely and $\mathcal{L}_N = \log N$.
#
# **Why it learns something.** The $f_k$ that minimises $\mathcal{L}_N$ is proportional to the
# density ratio $p(x_{t+k} \mid c_t) / p(x_{t+k})$: the loss rewards scores that say how much
# *more* likely a future is given the past than a priori. Putting that optimum back into the
# loss gives (van den Oord et al., section 2.3 and appendix)
#
# $$I(x_{t+k};\, c_t) \;\ge\; \log N - \mathcal{L}_N .$$
#
# Lowering the loss raises a lower bound on the mutual information between the context and the
# future. Two consequences you will see below: the bound can never exceed $\log N$, so more
# negatives (bigger batches, longer sequences) can certify more information; and the bound is
# a number we can read off the training curve, in nats, for every $k$.
#
# **The link to NT-Xent.** SimCLR's loss is InfoNCE with three choices: the score is the
# cosine similarity divided by a temperature, $s_{ij} = z_i^\top z_j / (\tau \|z_i\|\|z_j\|)$;
# the "future" is the *other view* of the same galaxy; and the candidates are the other
# $2N - 1$ views of the batch (the view itself is left out, it is not a candidate). In
# `phys555_cl.losses` both are one function, `info_nce(query, keys, targets, temperature=,
# normalize=, exclude_self=)`: `logits = query @ keys.T / temperature`, and row $i$'s positive
# is `keys[targets[i]]`.

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(555)
z1, z2 = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
views = torch.cat([z1, z2])                       # 2N views; the partner of row i is i + N
partner = (torch.arange(12) + 6) % 12
as_info_nce = info_nce(views, views, partner, temperature=0.5, normalize=True,
                       exclude_self=True)
print(f"NT-Xent                         : {nt_xent(z1, z2, temperature=0.5).item():.5f}")
print(f"InfoNCE, cosine, tau, other view: {as_info_nce.item():.5f}")
uninformative = info_nce(torch.zeros(3, 4), torch.randn(8, 4, generator=g), torch.tensor([0, 5, 7]))
print(f"uninformative scores, N = 8   : {uninformative.item():.5f} (log 8 = {np.log(8):.5f})")

# %% [markdown]
# ### Exercise 7.1: the InfoNCE loss
#
# Write InfoNCE for a batch of queries: `query` is $[M, D]$ (for CPC, the predictions
# $W_k c_t$), `keys` is $[K, D]$ (every candidate latent), and `targets[i]` is the row of
# `keys` that is query $i$'s positive. Return the mean over the $M$ queries of
# $-\log \mathrm{softmax}(\text{query}\,\text{keys}^\top / \tau)[i, \text{targets}[i]]$.
# One matrix product and `F.cross_entropy` (which applies the softmax over the last axis) are
# all you need; the check catches the usual slips (softmax over the wrong axis, the temperature
# applied twice, the wrong positive, excluding something from the denominator).
#
# Stuck? `ex.hint("7.1")` gives a deeper hint each time you call it.

# %%
def info_nce_loss(query, keys, targets, temperature=1.0):
    """InfoNCE. query [M, D], keys [K, D], targets [M] int64 -> scalar (mean over queries)."""
    ### HINT: Each query must pick out its own positive among all the keys: a softmax classification over the keys.
    ### BEGIN SOLUTION
    logits = query @ keys.T / temperature
    return F.cross_entropy(logits, targets)
    ### END SOLUTION


info_nce_loss = ex.check_info_nce(info_nce_loss)

# %% [markdown]
# ## 3. The model
#
# `phys555_cl.cpc.CPC` is the paper's architecture at light-curve scale:
#
# - $g_\mathrm{enc}$: three strided 1-D convolutions (strides 4, 3, 2) so that one latent
#   $z_t$ summarises a **window of 24 hourly bins, one day**. A whole day per window also
#   means that a ground telescope's night/day gaps look the same in every window, so the
#   network cannot tell windows apart by the gap pattern, only by the star.
#   The convolutions are **causal**: each pads on the left only, so $z_t$ depends on the
#   samples of day $t$ and the days before it, never on a later one (a test checks that the
#   gradient of $z_t$ and $c_t$ with respect to every later sample is zero). An earlier
#   version padded both sides, and $z_t$ saw 18 of the 24 hours of day $t + 1$: the context
#   could then "predict" tomorrow partly from data it had already seen, and no accuracy it
#   reached could be read as prediction. (Removing the leak did not lower the measured
#   accuracies much on these curves; `python benchmarks/bench_cpc_probe.py` measures them.)
#   There is no batch normalisation either: statistics shared across the batch or
#   across the sequence would let $z_t$ peek at the other candidates or at the future, a
#   shortcut the contrastive task would happily exploit.
# - $g_\mathrm{ar}$: a one-layer GRU, $c_t = \mathrm{GRU}(z_{\le t})$. With the causal
#   encoder, $c_t$ sees only day $t$ and the past.
# - $W_1, \dots, W_K$: one `nn.Linear(H, D, bias=False)` per step ahead.

# %%
torch.manual_seed(0)
model = cpc.CPC(in_channels=2, z_dim=S.z_dim, c_dim=S.c_dim, n_steps=S.n_steps,
                strides=(4, 3, 2))
print(model)
z, c = model(train.x[:4])
print("x", tuple(train.x[:4].shape), "-> z", tuple(z.shape), "-> c", tuple(c.shape))

# %% [markdown]
# ### Exercise 7.2: the prediction step
#
# For one step $k$, write the loss of predicting $z_{t+k}$ from $c_t$, with the negatives of
# the whole batch. With `z` of shape $[B, L, D]$, `c` of shape $[B, L, H]$ and `W` of shape
# $[D, H]$ (the weight of $W_k$):
#
# 1. the predictions are $W_k c_t$ for every sequence $b$ and every $t = 0, \dots, L-k-1$
#    (the last $k$ contexts have no future inside the sequence): `c[:, :L - k] @ W.T`,
#    shape $[B, L-k, D]$, flattened to $[B(L-k), D]$;
# 2. the keys are *all* the latents of the batch, `z.reshape(B * L, D)`: every window of every
#    sequence, so the negatives are other stars and the same star at other times;
# 3. the positive of the prediction made at $(b, t)$ is $z_{b,\,t+k}$, which sits at row
#    $b L + t + k$ of the flattened keys;
# 4. return `info_nce_loss(predictions, keys, targets, temperature)` (your function from 7.1).
#
# The check catches an off-by-$k$ alignment, predictions and targets swapped in time, a target
# index that forgets the sequence offset $bL$, and negatives taken from one time or one
# sequence only.

# %%
def prediction_loss(z, c, W, k, temperature=1.0):
    """CPC prediction step. z [B, L, D], c [B, L, H], W [D, H], k >= 1 -> scalar InfoNCE."""
    ### HINT: The context at time t predicts the latent k windows later, against every window of the batch; find where the true future sits.
    ### BEGIN SOLUTION
    B, L, D = z.shape
    predictions = (c[:, : L - k] @ W.T).reshape(-1, D)
    keys = z.reshape(B * L, D)
    t = torch.arange(L - k, device=z.device)
    b = torch.arange(B, device=z.device)
    targets = (b[:, None] * L + t[None, :] + k).reshape(-1)
    return info_nce_loss(predictions, keys, targets, temperature)
    ### END SOLUTION


prediction_loss = ex.check_prediction_loss(prediction_loss)

# %% [markdown]
# The model's loss is the mean over $k = 1..K$ of this step. Before training, the scores are
# uninformative and every step sits near $\log N$ with $N = B \cdot L$ candidates:

# %%
loss, per_step = model.loss(train.x[: S.batch_size], prediction_loss)
n_candidates = S.batch_size * z.shape[1]
print(f"N = {n_candidates} candidates, log N = {np.log(n_candidates):.2f}")
print("loss per step k before training:", [round(v, 2) for v in per_step.tolist()])

# %% [markdown]
# ## 4. Training
#
# `cpc.train_cpc` is a plain Adam loop (read it in `phys555_cl/cpc.py`): shuffle the curves,
# take a batch of whole sequences, `model.loss(batch)`, step. It runs on `DEVICE` and shows a
# progress bar; here it uses *your* prediction step from Exercise 7.2. We keep an untrained
# copy of the same network, same initial weights, as the baseline for the probe.

# %%
random_init = cpc.CPC(in_channels=2, z_dim=S.z_dim, c_dim=S.c_dim, n_steps=S.n_steps,
                      strides=(4, 3, 2))
random_init.load_state_dict(model.state_dict())

history = cpc.train_cpc(model, train, epochs=S.epochs, batch_size=S.batch_size, lr=S.lr,
                        device=DEVICE, prediction_loss=prediction_loss)

# %% [markdown]
# The bound $I(x_{t+k}; c_t) \ge \log N - \mathcal{L}_N$ turns each step's loss into nats of
# information about the window $k$ days ahead. Read it as an *estimate* of a lower bound,
# not a certificate: $\mathcal{L}_N$ here is measured on training batches, and the bound
# assumes negatives drawn independently of the context, while many of ours are other days of
# the same star (the hardest negatives, and not independent). Predicting tomorrow is usually
# easier than predicting in four days; the printed values below say by how much.

# %%
step_losses = np.array(history["step_losses"])  # [training steps, K]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].plot(history["loss"], lw=0.8)
axes[0].axhline(np.log(n_candidates), color="k", ls="--", lw=0.8, label="log N (chance)")
axes[0].set_xlabel("training step")
axes[0].set_ylabel("InfoNCE (mean over k)")
axes[0].legend()
window = max(1, len(step_losses) // 10)
smooth = np.array([np.convolve(step_losses[:, j], np.ones(window) / window, mode="valid")
                   for j in range(S.n_steps)]).T
for j in range(S.n_steps):
    axes[1].plot(np.log(n_candidates) - smooth[:, j], label=f"k = {j + 1}")
axes[1].set_xlabel("training step")
axes[1].set_ylabel("log N - L  [nats]")
axes[1].set_title("lower bound on I(x_{t+k}; c_t)")
axes[1].legend()
fig.tight_layout()
plt.show()
final = np.log(n_candidates) - step_losses[-window:].mean(axis=0)
print("bound at the end of training, nats per k:", np.round(final, 2))

# %% [markdown]
# ## 5. What the predictions look like
#
# Take a batch of **held-out** curves and score every prediction $W_k c_t$ against every
# window latent of the batch. The panels show, for one curve, the softmax over the windows
# $t'$ of *that curve* of the scores of the prediction made at time $t$: the hardest
# negatives, the same star at other times. The dashed line is the true future $t' = t + k$.
# A trained model puts its mass on that line (and, for a periodic star, on windows at a
# similar phase, parallel stripes); an untrained one spreads it evenly.

# %%
batch = test.x[: S.batch_size].to(DEVICE)
model.eval()
curve = 0
fig, axes = plt.subplots(2, S.n_steps, figsize=(3.2 * S.n_steps, 6.2), sharex=True, sharey=True)
for row, (name, net) in enumerate([("CPC", model), ("random init", random_init.to(DEVICE))]):
    for j in range(S.n_steps):
        k = j + 1
        scores = cpc.prediction_scores(net, batch, k)  # [B, L, B, L]
        L = scores.shape[1]
        own = scores[curve, :, curve].softmax(dim=-1).cpu()  # [L, L]: t -> windows t' of it
        ax = axes[row, j]
        ax.imshow(own, origin="lower", cmap="magma", vmin=0, vmax=0.5)
        ax.plot(np.arange(k, L), np.arange(L - k), "c--", lw=0.8)  # x = t' = t + k, y = t
        ax.set_title(f"{name}, k = {k}", fontsize=9)
        ax.set_xlabel("candidate window t'")
    axes[row, 0].set_ylabel("context time t")
fig.suptitle(f"held-out curve: {CLASS_NAMES[int(test.labels['star_class'][curve])]}, "
             f"P = {test.labels['period'][curve]:.2f} d")
fig.tight_layout()
plt.show()

# %% [markdown]
# Summed over the whole held-out batch: how often is the true $z_{t+k}$ the *top* candidate
# out of all $N = B \cdot L$ windows?

# %%
acc_cpc = cpc.prediction_accuracy(model, batch)
acc_random = cpc.prediction_accuracy(random_init, batch)
ks = np.arange(1, S.n_steps + 1)
plt.figure(figsize=(5, 3.2))
plt.plot(ks, acc_cpc, "o-", label="CPC")
plt.plot(ks, acc_random, "s-", label="random init")
plt.axhline(1 / n_candidates, color="k", ls="--", lw=0.8, label="chance 1/N")
plt.xlabel("k (days ahead)")
plt.ylabel("top-1 accuracy")
plt.xticks(ks)
plt.legend()
plt.show()
print("CPC top-1 accuracy per k:", np.round(acc_cpc.numpy(), 3))

# %% [markdown]
# ## 6. Does $c_t$ know the star? A linear probe
#
# The test of a representation: freeze the network, summarise each curve by its contexts
# (the mean of $c_t$ over the windows), and fit *linear* models on the training curves,
#
# - a logistic regression for the **class** (6 classes, chance about 17 %), and
# - a ridge regression for the **log-period**, $\log_{10} P$,
#
# then score them on the held-out curves. The baseline is the same network with its random
# initial weights: random convolutions and a random GRU already compute many features, so CPC
# has to beat a real baseline, not zero.

# %%
def probe(net):
    """Held-out class accuracy and log-period R^2 of linear probes on frozen features."""
    f_train = cpc.embed(net, train, pool=S.pool).numpy()
    f_test = cpc.embed(net, test, pool=S.pool).numpy()
    y_train, y_test = train.labels["star_class"].numpy(), test.labels["star_class"].numpy()
    p_train, p_test = train.labels["log_period"].numpy(), test.labels["log_period"].numpy()
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(f_train, y_train)
    regressor = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(f_train, p_train)
    predicted_period = regressor.predict(f_test)
    return {
        "accuracy": classifier.score(f_test, y_test),
        "r2": regressor.score(f_test, p_test),
        "rms_dex": float(np.sqrt(np.mean((predicted_period - p_test) ** 2))),
        "predicted_class": classifier.predict(f_test),
        "predicted_log_period": predicted_period,
    }


results = {"CPC": probe(model), "random init": probe(random_init)}
print(f"{'held-out':<12} {'class accuracy':>15} {'log P R^2':>10} {'log P rms [dex]':>16}")
for name, r in results.items():
    print(f"{name:<12} {r['accuracy']:>15.3f} {r['r2']:>10.3f} {r['rms_dex']:>16.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
cm = confusion_matrix(test.labels["star_class"].numpy(), results["CPC"]["predicted_class"],
                      normalize="true")
axes[0].imshow(cm, cmap="Blues", vmin=0, vmax=1)
axes[0].set_xticks(range(len(CLASS_NAMES)), [n.split()[0] + "\n" + " ".join(n.split()[1:])
                                             for n in CLASS_NAMES], fontsize=7)
axes[0].set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES, fontsize=7)
axes[0].set_xlabel("predicted")
axes[0].set_title("CPC probe: confusion (rows sum to 1)")
for i in range(len(CLASS_NAMES)):
    for j in range(len(CLASS_NAMES)):
        axes[0].text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=7)
true_p = test.labels["log_period"].numpy()
for ax, name in zip(axes[1:], results):
    ax.scatter(true_p, results[name]["predicted_log_period"], s=4,
               c=test.labels["star_class"].numpy(), cmap="tab10", vmin=0, vmax=9)
    ax.plot([-0.7, 1.25], [-0.7, 1.25], "k--", lw=0.8)
    ax.set_xlabel("true log10 P [d]")
    ax.set_ylabel("probe log10 P")
    ax.set_title(f"{name}: R² = {results[name]['r2']:.2f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# Compare the two rows of the table above: in normal mode the CPC contexts should beat the
# random network on both questions, although the network never saw a label or a period
# (`python benchmarks/bench_cpc_probe.py --seed S` repeats the comparison outside the notebook,
# for other seeds). Predicting the next days of a light curve *requires* knowing what kind of
# star it is and how fast it varies. The largest confusion is RR Lyrae c against contact binaries: both are nearly
# sinusoidal at similar periods, and a contact binary folded at half its orbital period looks
# much like an RRc, a classic confusion in real surveys too. In fast mode the model trains for
# seconds and the numbers mean little; run the notebook with `PHYS555_FAST=0` to see the real
# comparison.
#
# ## 7. Questions
#
# 1. The negatives come from other stars *and* from the same star at other times. What could
#    the model get away with if all negatives came from other stars? Which label would suffer?
# 2. Each window is exactly one day. What shortcut would the model find with windows of, say,
#    16 hours, for curves from a ground telescope?
# 3. The bound $\log N - \mathcal{L}_N$ can never exceed $\log N$. With a batch of 32 curves
#    of 21 windows, how many nats is that? What does it mean for a very predictable star?
# 4. A first version of this notebook gave the network a third, constant channel: log10 of
#    each curve's scatter in magnitudes, so that the amplitude survives standardisation. With
#    it, CPC's probe got *worse* than the random network's. Why?
#
# ### BEGIN SOLUTION
# 1. To pick the right future among other stars only, it is enough for $c_t$ to recognise
#    *which star* this is (its amplitude, noise, rough shape): a constant summary of the curve
#    wins. The model would never need to know *when* the next maximum comes, so the phase, and
#    with it the precise period, would be learnt poorly; the period probe would suffer most.
#    Negatives from the same star at other times force $c_t$ to predict the phase $k$ days on,
#    which needs the period.
# 2. A ground telescope observes for some hours each night. With 16-hour windows the night
#    falls at a different place in consecutive windows, cycling every three windows, so the
#    mask channel alone tells the windows apart and predicts which gap pattern comes next:
#    the model could lower the loss by learning the observing schedule instead of the star.
#    With one-day windows every window has the same gap pattern (up to clouds).
# 3. $N = 32 \times 21 = 672$ and $\log N \approx 6.5$ nats. For a nearly noiseless periodic
#    star the context may know far more than 6.5 nats about the future, but InfoNCE with 672
#    candidates cannot certify more: the bound saturates. This is why contrastive methods like
#    large batches (SimCLR) or memory banks of negatives (MoCo).
# 4. A constant channel is the same in every window of a curve and different between curves,
#    so it identifies the curve for free: the loss drops by telling stars apart by one number,
#    and there is little pressure left to learn shapes and periods (a *shortcut*, like colour
#    histograms for SimCLR without colour jitter). The random network keeps the amplitude
#    information, which helps its probe; the CPC network spends its capacity on the shortcut.
# ### END SOLUTION

# %% [markdown]
# **Summary.** CPC and SimCLR are the same loss with different positives: SimCLR's positive is
# another view of the same object, CPC's is the future of the same sequence. Both learn a
# representation without labels by asking it to pick the positive out of a crowd of
# negatives, and both are bounded by $\log N$. Everything here is in `phys555_cl.cpc`
# (the model, the prediction step, training) and `phys555_cl.lightcurves` (the simulator).

# %% [markdown]
# ## References
#
# - van den Oord, A., Li, Y. & Vinyals, O. (2018). *Representation Learning with
#   Contrastive Predictive Coding.* [arXiv:1807.03748](https://arxiv.org/abs/1807.03748).
#   CPC, InfoNCE and the bound $I \ge \log N - \mathcal{L}_N$ (section 2.3).
# - Poole, B., Ozair, S., van den Oord, A., Alemi, A. A. & Tucker, G. (2019). *On
#   Variational Bounds of Mutual Information.* ICML 2019.
#   [arXiv:1905.06922](https://arxiv.org/abs/1905.06922).
#   InfoNCE among the variational bounds of mutual information, and why it cannot exceed
#   $\log N$, $N$ the number of candidates (question 3).
# - Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020a). *A Simple Framework for
#   Contrastive Learning of Visual Representations.* ICML 2020.
#   [arXiv:2002.05709](https://arxiv.org/abs/2002.05709).
#   SimCLR's NT-Xent, the InfoNCE of notebooks 04-06.
# - He, K., Fan, H., Wu, Y., Xie, S. & Girshick, R. (2020). *Momentum Contrast for
#   Unsupervised Visual Representation Learning.* CVPR 2020.
#   [arXiv:1911.05722](https://arxiv.org/abs/1911.05722).
#   MoCo's queue of negatives, one way to more candidates (question 3).
# - Cho, K., van Merriënboer, B., Gulcehre, C., Bahdanau, D., Bougares, F., Schwenk, H. &
#   Bengio, Y. (2014). *Learning Phrase Representations using RNN Encoder-Decoder for
#   Statistical Machine Translation.* EMNLP 2014.
#   [arXiv:1406.1078](https://arxiv.org/abs/1406.1078).
#   The GRU, the autoregressive network $g_\mathrm{ar}$.
