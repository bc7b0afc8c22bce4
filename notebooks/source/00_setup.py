# %% [markdown]
# # 00 · Setup: check your environment and meet the exercise checks
#
# Welcome to the PHYS-555 unit on **deep metric learning and contrastive learning**. Over the
# next notebooks we go from a Euclidean distance between two representations,
# $d_\theta(\mathbf{x}_1, \mathbf{x}_2) = \|f_\theta(\mathbf{x}_1) - f_\theta(\mathbf{x}_2)\|_2$,
# to SimCLR trained on three-band (g, r, z) galaxy images, and finally to Contrastive
# Predictive Coding on light curves.
#
# This first notebook makes sure that everything works on *your* machine:
#
# 1. the course's libraries are installed and recent enough;
# 2. which device PyTorch will use (a CUDA GPU, an Apple GPU, or the CPU);
# 3. whether you are in **fast mode** and where data and checkpoints live;
# 4. how exercises work, with a tiny one you complete yourself.

# %%
import platform
import sys

import torch

from phys555_cl import config
from phys555_cl import exercises as ex

# %%
S = config.sizes("00")
DEVICE = config.device()
print(f"Fast mode: {S.fast}")

# %% [markdown]
# ## 1. Libraries
#
# The table lists each library the course uses, the version you have and the oldest version
# the notebooks are tested with. A library marked **MISSING** or **TOO OLD** has a line saying
# how to fix it. The usual fix is to run `make lab` from the repository (it installs everything
# into `.venv`), or, with conda, `conda env update -f environment.yml`.

# %%
from importlib.metadata import PackageNotFoundError, version

# The oldest versions come from the course's pyproject.toml (`config.required_versions()`);
# the installed ones from each library's package metadata, without importing it (importing
# umap-learn for the first time compiles code for about 20 s).
REQUIRED = config.required_versions()


def version_tuple(text):
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


problems = []
print(f"Python {platform.python_version()} on {platform.system()} ({platform.machine()})")
print(f"{'library':<14} {'installed':<14} {'needed':<8} status")
for name, minimum in REQUIRED.items():
    try:
        installed = version(name)
    except PackageNotFoundError:
        print(f"{name:<14} {'-':<14} {minimum or '-':<8} MISSING")
        spec = f"{name}>={minimum}" if minimum else name
        problems.append(f"{name} is missing: run `make lab` again, or "
                        f"`pip install '{spec}'` in the course environment.")
        continue
    ok = minimum is None or version_tuple(installed) >= version_tuple(minimum)
    print(f"{name:<14} {installed:<14} {minimum or '-':<8} {'ok' if ok else 'TOO OLD'}")
    if not ok:
        problems.append(f"{name} {installed} is older than {minimum}: run "
                        f"`pip install --upgrade '{name}>={minimum}'`.")
if sys.version_info < (3, 10):
    problems.append("Python 3.10 or newer is needed: create the environment again with "
                    "environment.yml (it asks for Python 3.11).")
print()
print("\n".join(problems) if problems else "Everything the course needs is installed.")

# %% [markdown]
# ## 2. Device, fast mode, and where things live
#
# `config.device()` picks a CUDA GPU if there is one, then an Apple-silicon GPU (MPS), then the
# CPU. To force one, set the environment variable `PHYS555_DEVICE` (for example to `cpu`)
# before starting Jupyter. Every notebook in the course runs on a laptop CPU; a GPU makes the
# training notebooks faster.
#
# **Fast mode** (`PHYS555_FAST=1`) shrinks the data and the number of epochs so that the whole
# course runs in a few minutes: it is what the automatic tests use. For the real thing, leave
# it off. Each notebook reads its sizes from one settings cell, `S = config.sizes("NN")`.

# %%
print(f"Device     : {DEVICE} -> {config.device_name(DEVICE)}")
print(f"Fast mode  : {'on' if S.fast else 'off'}  (sizes for this notebook: {vars(S)})")
print(f"Data folder: {config.data_dir()}")
x = torch.randn(256, 256, device=DEVICE)
print(f"A quick matrix product on {DEVICE.type}: trace(x x^T) / 256 = "
      f"{(x @ x.T).trace().item() / 256:.2f} (about 256: each row of x has squared norm ~256)")

# %% [markdown]
# ## 3. How exercises work
#
# Every exercise is a function with a `raise NotImplementedError(...)` line where your code
# goes; the message of that line is a hint. Right after it, a **check** runs your function on
# a few fixed inputs and compares it with the course's reference implementation. A check has
# three outcomes:
#
# | your function | what the check does |
# | --- | --- |
# | not done yet (still raises `NotImplementedError`) | prints one line and hands back the **reference**, so the rest of the notebook still runs |
# | wrong (wrong shape, dtype or value, or it crashes) | stops with an `AssertionError` saying which case failed and how (never the answer), and names a typical mistake when it recognises one |
# | right | says so and hands back **your** function |
#
# So you can always run a notebook from top to bottom, come back to an exercise later, and see
# immediately whether your version is right.
#
# Stuck? `ex.hint("0.1")` prints a deeper hint each time you call it: first the idea (the words
# of the `NotImplementedError`), then the approach, then a hint close to the code. The check's
# record notes how many hints you used.
#
# Let us see all three outcomes with a deliberately unfinished and a deliberately wrong
# function first.

# %%
def unfinished(flux):
    raise NotImplementedError("not written yet")


result = ex.check_flux_to_magnitude(unfinished)
print("The check handed back:", result.__name__)

# %%
def wrong_magnitude(flux):
    return 22.5 - 2.5 * torch.log(flux)  # natural log instead of log10


try:
    ex.check_flux_to_magnitude(wrong_magnitude)
except AssertionError as err:
    print("AssertionError:", err)

# %% [markdown]
# ### Exercise 0.1: fluxes to magnitudes
#
# Images from the Legacy Surveys (DECaLS), which the galaxy notebooks imitate, are in
# *nanomaggies*. The AB magnitude of a flux $f$ in nanomaggies is
#
# $$ m = 22.5 - 2.5\,\log_{10} f . $$
#
# Complete `flux_to_magnitude` so that it works on a tensor of any shape and returns a tensor
# of the same shape and dtype.

# %%
def flux_to_magnitude(flux):
    """AB magnitudes of fluxes in nanomaggies. flux: tensor of any shape -> same shape."""
    ### HINT: Brighter objects have smaller magnitudes; a factor of 100 in flux is 5 magnitudes, and 1 nanomaggie is magnitude 22.5.
    ### BEGIN SOLUTION
    return 22.5 - 2.5 * torch.log10(flux)
    ### END SOLUTION


flux_to_magnitude = ex.check_flux_to_magnitude(flux_to_magnitude)

# %% [markdown]
# The check handed back a function either way, so we can use it. A galaxy of 10 nanomaggies
# in the r band has magnitude 20, a little fainter than the faintest galaxies of the simulated
# survey (r < 19.5), and one of 100 nanomaggies has magnitude 17.5, near the spectroscopic
# limit (r < 17.77):

# %%
# NBVAL_CHECK_OUTPUT
print(flux_to_magnitude(torch.tensor([10.0, 100.0, 1.0])))

# %% [markdown]
# ### A question to think about
#
# Why do survey pipelines store fluxes (which can be negative for faint sources in noisy
# images) rather than magnitudes? Write two sentences.
#
# ### BEGIN SOLUTION
# A noisy measurement of a faint source can come out zero or negative, and the logarithm of
# such a flux is undefined, while a flux with Gaussian noise stays a well-behaved number that
# can be averaged and fitted. Magnitudes are convenient for bright sources; fluxes keep all the
# information for faint ones, which is why our networks take fluxes as input.
# ### END SOLUTION

# %% [markdown]
# ## You are ready
#
# If the library table says everything is installed and the cells above ran, go on to
# `01_distances_and_siamese.ipynb`.

# %% [markdown]
# ## References
#
# - Oke, J. B. & Gunn, J. E. (1983). *Secondary standard stars for absolute
#   spectrophotometry.* ApJ 266, 713.
#   The AB magnitudes of Exercise 0.1.
# - Dey, A., et al. (2019). *Overview of the DESI Legacy Imaging Surveys.* AJ 157, 168.
#   [arXiv:1804.08657](https://arxiv.org/abs/1804.08657).
#   The Legacy Surveys (DECaLS), whose images are in nanomaggies.
# - Strauss, M. A., et al. (2002). *Spectroscopic Target Selection in the Sloan
#   Digital Sky Survey: The Main Galaxy Sample.* AJ 124, 1810.
#   [arXiv:astro-ph/0206225](https://arxiv.org/abs/astro-ph/0206225).
#   The SDSS main galaxy sample, $r < 17.77$.
# - Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020a). *A Simple Framework for
#   Contrastive Learning of Visual Representations.* ICML 2020.
#   [arXiv:2002.05709](https://arxiv.org/abs/2002.05709).
#   SimCLR, notebooks 04-06.
# - van den Oord, A., Li, Y. & Vinyals, O. (2018). *Representation Learning with
#   Contrastive Predictive Coding.* [arXiv:1807.03748](https://arxiv.org/abs/1807.03748).
#   Contrastive Predictive Coding, notebook 07.
