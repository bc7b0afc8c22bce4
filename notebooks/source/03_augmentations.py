# %% [markdown]
# # 03 · Augmentations: where similar pairs come from
#
# A Siamese network or a contrastive loss needs **pairs of samples that should be close**.
# The lecture names two ways to get them:
#
# 1. **by hand**: someone labels pairs as similar or dissimilar (or labels classes, and two
#    members of a class are similar): expensive, and only as good as the labels;
# 2. **by generating them**: take one sample and change it in ways that do not change what it
#    *is*. The two versions ("views") are a positive pair by construction. This is data
#    augmentation, and it is what lets SimCLR learn from millions of unlabelled galaxies.
#
# The catch: every augmentation is a *statement about physics*. SimCLR learns whatever the two
# views share and throws away whatever differs between them. Rotate the views, and the
# representation learns that orientation does not matter (true for galaxies: the sky has no
# "up"). Change their colours, and it learns that colour does not matter, which is false for
# galaxies: colour tells us about stellar populations and redshift.
#
# In this notebook: each galaxy augmentation of `phys555_cl.augment` and the invariance it
# teaches; you write two of them; then pairs of views as SimCLR sees them; and what goes wrong
# with a bad augmentation.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from phys555_cl import augment, config
from phys555_cl import exercises as ex
from phys555_cl.galaxies import simulate
from phys555_cl.plotting import show_galaxies

# %%
S = config.sizes("03")
DEVICE = config.device()
config.seed_everything(3)
images, labels = simulate(S.n_galaxies, size=S.image_size, seed=3)
print(f"{len(images)} simulated galaxies of {S.image_size}x{S.image_size} pixels in g, r, z")

# %% [markdown]
# ## 1. The galaxies
#
# Simulated galaxies of every kind the lecture's UMAP is coloured by: smooth ellipticals,
# face-on and edge-on disks, rings, irregulars, lenses and mergers, at redshifts of 0.07-0.36
# (5th-95th percentile; median 0.19), observed with a realistic seeing and sky noise. (Notebook 05 says more about the simulator.)

# %%
show_galaxies(images[:16], labels, ncols=8)
plt.show()

# %% [markdown]
# ## 2. One augmentation at a time
#
# Each row applies one augmentation to the same galaxy eight times, each time with its own
# random parameters. The table lists the default ranges (in the spirit of Hayat et al. 2021 and
# Stein et al. 2021) and the physical statement each one makes.
#
# | augmentation | default range | "this does not change what the galaxy is" |
# | --- | --- | --- |
# | `RandomFlip` | p = 0.5 | a mirror image is the same kind of galaxy (it also reverses the winding sense of spiral arms, which no label asks about) |
# | `RandomAffine` | angle 0–360°, shift ±4 px, scale 0.9–1.1 | orientation on the sky, centring errors, small size changes |
# | `RandomPSFBlur` | FWHM 0–1.04″ in r at any pixel size, wider in g than z | the seeing on the night of observation, within the survey's 0.6–1.2″ |
# | `RandomReddening` | E(B−V) 0–0.02 | a little Milky-Way dust in front |
# | `RandomBrightness` | ±0.2 mag, all bands together | calibration and exposure depth (the network sees the flux, so this gives up a little of it) |
# | `RandomGaussianNoise` | 0–1 × the sky noise | a shallower exposure |

# %%
galaxy = images[:1].repeat(8, 1, 1, 1)
steps = {
    "flip": augment.RandomFlip(),
    "rotate / shift / scale": augment.RandomAffine(),
    "PSF blur (x3 range)": augment.RandomPSFBlur(fwhm=(0.0, 3.0)),
    "reddening (x25 range)": augment.RandomReddening(ebv=(0.0, 0.5)),
    "brightness": augment.RandomBrightness(),
    "noise (x5 range)": augment.RandomGaussianNoise(level=(0.0, 5.0)),
}
g = torch.Generator().manual_seed(0)
rows = [galaxy] + [step(galaxy, generator=g) for step in steps.values()]
titles = [["original"] + [""] * 7] + [[name] + [""] * 7 for name in steps]
fig = show_galaxies(torch.cat(rows), ncols=8, titles=sum(titles, []), per_image=False)
plt.show()

# %% [markdown]
# Three of the rows use a wider range than the default so that you can see the effect; the
# defaults are deliberately gentle. Notice what the brightness row does *not* change: the
# colours. And note that the reddening row, at 25 times the default range, changes the colour
# visibly: at the default E(B−V) ≤ 0.02 it is a small change, the size of real Milky-Way dust
# at high galactic latitude. The defaults are kept this gentle because colour and flux carry
# the redshift (section 6). Every step that moves pixels fills the corners by
# reflection, so a rotated image keeps sky noise everywhere (blank corners would tell the
# network the rotation angle). Moving pixels by fractions of a pixel and blurring average
# neighbouring pixels and so smooth the sky noise; `GalaxyAugment` (section 5) adds back the
# noise each view lost, so no view is cleaner than a real exposure.

# %% [markdown]
# ## 3. Exercise 3.1: a random rotation and flip for every image
#
# Write `rotate_flip(x, generator)` for a batch `x` of shape `[B, 3, H, W]`: every image is
# mirrored left-right with probability 1/2 and rotated about its centre by an angle drawn
# uniformly in $[0, 360)$ degrees, **independently for each image**, with every random number
# drawn from `generator` (so the same generator state gives the same views).
#
# Rotating by any angle needs interpolation. PyTorch does it for a whole batch at once:
# `F.affine_grid(theta, size)` turns one $2\times3$ matrix per image, `theta` of shape
# `[B, 2, 3]`, into sampling grids, and `F.grid_sample(x, grid)` samples every image at its
# grid. For a rotation by $\alpha$ about the centre,
# `theta[b] = [[cos α, sin α, 0], [-sin α, cos α, 0]]` (the image centre is coordinate (0, 0)).
# Note the direction: `theta` maps each *output* pixel's coordinates to the point of the
# *input* it is read from, so it is the inverse of the motion you see. This `theta` reads at
# the output position turned by $-\alpha$, so the picture turns by $+\alpha$. With $\alpha$
# uniform in $[0, 360)$ the direction does not matter here, but it does as soon as you add a
# shift or a scale (a scale $s$ in `theta` *shrinks* the picture by $s$).
# Use `align_corners=False` in both calls, and `padding_mode="reflection"` in `grid_sample`:
# as above, blank corners would tell the network the angle.
#
# Stuck? `ex.hint("3.1")` gives a deeper hint each time you call it.

# %%
import torch.nn.functional as F  # noqa: E402


def rotate_flip(x, generator):
    """Random flip (p = 1/2) and rotation (U(0, 360) deg) of every image. [B, C, H, W] -> same."""
    ### HINT: Every image needs its own coin flip and its own angle, drawn from the given generator, and one rotation matrix per image.
    ### BEGIN SOLUTION
    b = x.shape[0]
    flip = torch.rand(b, generator=generator, device=generator.device) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    angle = torch.rand(b, generator=generator, device=generator.device).to(x.device) * 2 * np.pi
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, sin, zero], dim=-1),
                         torch.stack([-sin, cos, zero], dim=-1)], dim=1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)
    ### END SOLUTION


rotate_flip = ex.check_rotate_flip(rotate_flip)

# %% [markdown]
# The check fed your function sixteen copies of one lopsided test galaxy and tested what a
# correct answer must do: the same total flux, the light still centred, a different angle for
# every copy (a single draw for the whole batch is the classic bug: every view of a batch
# then turns the same way), angles that are not only multiples of 90°, and about half of the
# copies mirrored. Here is your function on a real galaxy:

# %%
views = rotate_flip(images[1:2].repeat(8, 1, 1, 1), torch.Generator().manual_seed(1))
show_galaxies(views, ncols=8)
plt.show()

# %% [markdown]
# ## 4. Exercise 3.2: reddening
#
# Dust in our own Galaxy dims the light of a background galaxy, more in blue bands than in red
# ones. In magnitudes the extinction in band $b$ is $A_b = R_b\,E(B-V)$, with the DECam
# coefficients $R_g = 3.214$, $R_r = 2.165$, $R_z = 1.211$, so a flux becomes
#
# $$ f_b \to f_b \cdot 10^{-0.4\,R_b\,E(B-V)} . $$
#
# Write `redden(x, ebv)` for a batch `x` `[B, 3, H, W]` (bands g, r, z) and one $E(B-V)$ per
# image, `ebv` of shape `[B]`. (Broadcasting is your friend: shape the coefficients
# `[1, 3, 1, 1]` and `ebv` `[B, 1, 1, 1]`.)

# %%
R_GRZ = torch.tensor([3.214, 2.165, 1.211])


def redden(x, ebv):
    """Apply Milky-Way extinction E(B-V) (one value per image, shape [B]) to g, r, z fluxes."""
    ### HINT: Dust dims each band by its own number of magnitudes, coefficient times colour excess; a magnitude change multiplies the flux.
    ### BEGIN SOLUTION
    r = R_GRZ.to(x.device, x.dtype)
    return x * 10 ** (-0.4 * ebv[:, None, None, None] * r[None, :, None, None])
    ### END SOLUTION


redden = ex.check_redden(redden)

# %% [markdown]
# The package has this very function, `augment.redden(x, ebv)`, and `augment.RandomReddening`
# is nothing more than one random E(B−V) per image handed to it. Every augmentation of section 2
# is built the same way, as in torchvision: a module draws the parameters of every image from
# the generator, and a plain function applies the change (`augment.flip`, `augment.affine`,
# `augment.psf_blur`, `augment.redden`, `augment.brighten`, `augment.add_noise`).
#
# How much does reddening change the colour $g - r$ of a galaxy (the default range is
# E(B−V) up to 0.02)?
# $\Delta(g-r) = (R_g - R_r)\,E(B-V)$:

# %%
# NBVAL_CHECK_OUTPUT
for ebv in [0.01, 0.05, 0.5]:
    x = torch.ones(1, 3, 1, 1)
    fluxes = redden(x, torch.tensor([ebv])).flatten()
    g_minus_r = -2.5 * torch.log10(fluxes[0] / fluxes[1])
    print(f"E(B-V) = {ebv:4.2f}: g - r redder by {g_minus_r.item():.3f} mag")

# %% [markdown]
# ## 5. Pairs of views, as SimCLR sees them
#
# `GalaxyAugment` chains all six steps with the default ranges, in the order light takes
# (the galaxy's geometry, then the atmosphere and telescope, then the detector), brings each
# view back to the sky noise of its original before the extra noise, and
# `two_views` makes the positive pairs. Each column below is one galaxy: its original, then two
# independent views. For the loss, the two views in a column are a positive pair and every
# other view in the batch is a negative.

# %%
aug = augment.GalaxyAugment()
batch = images[:8]
v1, v2 = aug.two_views(batch, generator=torch.Generator().manual_seed(5))
fig = show_galaxies(torch.cat([batch, v1, v2]), ncols=8,
                    titles=["original"] * 8 + ["view 1"] * 8 + ["view 2"] * 8)
plt.show()

# %% [markdown]
# ## 6. A bad augmentation: one that changes colour
#
# On everyday photographs SimCLR's strongest augmentation is *colour jitter*: a red car and
# a blue car are both cars. For galaxies colour is physics. Redder galaxies are older or dustier,
# and every galaxy gets redder with redshift, which is how photometric redshifts work.
#
# Below, the colour $g-r$ of simulated galaxies, measured in a central aperture, against
# their redshift. Smooth galaxies (red) form a tight "red sequence" that gets redder with
# redshift (the spectrum shifts through the bands), and the rank correlation between colour and
# redshift on that sequence, Spearman's $\rho$, measures how much redshift information the
# colour carries. Then we apply the default augmentations, and a "colour jitter": an
# independent ±0.3 mag change of every band, as photographs get.

# %%
from scipy.stats import spearmanr  # noqa: E402

many, many_labels = simulate(S.n_colour, size=32, seed=33)
redshift = many_labels["redshift"].numpy()
smooth = many_labels["smooth_or_featured"].numpy() == 0


def aperture_flux(x):
    """g, r, z flux in nanomaggies in a central 8x8 pixel aperture. [B, 3, H, W] -> [B, 3]."""
    c = x.shape[-1] // 2
    pixel_area = (32.0 / x.shape[-1]) ** 2  # arcsec^2: pixel values are per arcsec^2
    return x[:, :, c - 4:c + 4, c - 4:c + 4].sum(dim=(2, 3)) * pixel_area


def aperture_g_minus_r(x):
    """g - r colour from the flux in a central 8x8 pixel aperture. [B, 3, H, W] -> [B]."""
    mag = 22.5 - 2.5 * torch.log10(aperture_flux(x).clamp_min(1e-3))
    return (mag[:, 0] - mag[:, 1]).numpy()


def colour_jitter(x, generator, amplitude_mag=0.3):
    """The bad augmentation: every band of every image scaled independently."""
    dm = (2 * torch.rand(x.shape[0], 3, 1, 1, generator=generator) - 1) * amplitude_mag
    return x * 10 ** (-0.4 * dm)


versions = {
    "original images": many,
    "default augmentations": aug(many, generator=torch.Generator().manual_seed(9)),
    "colour jitter +-0.3 mag": colour_jitter(many, torch.Generator().manual_seed(8)),
}
# a colour needs light in both bands: galaxies with under 2 nanomaggies (magnitude 21.7) in g
# or r in the aperture are left out, their g - r would be mostly sky noise
measurable = (aperture_flux(many)[:, :2] > 2.0).all(dim=1).numpy()
red = smooth & measurable
original_colour = aperture_g_minus_r(many)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
rho = {}
for ax, (name, x) in zip(axes, versions.items()):
    colour = aperture_g_minus_r(x)
    rho[name] = spearmanr(colour[red], redshift[red]).statistic
    moved = np.sqrt(np.mean((colour[red] - original_colour[red]) ** 2))
    print(f"{name:26s} rho(g - r, z) on the red sequence {rho[name]:.2f}; "
          f"g - r moved by {moved:.2f} mag rms")
    featured = ~smooth & measurable
    ax.scatter(redshift[featured], colour[featured], s=5, c="tab:blue", alpha=0.5,
               label="featured")
    ax.scatter(redshift[red], colour[red], s=6, c="tab:red", label="smooth")
    ax.set_title(f"{name}\nred sequence: Spearman rho(g - r, z) = {rho[name]:.2f}", fontsize=10)
    ax.set_xlabel("true redshift")
axes[0].set_ylabel("g - r")
axes[0].legend(loc="upper left")
plt.tight_layout()
plt.show()
z_lo, z_hi = np.percentile(redshift[red], [10, 90])
low, high = red & (redshift < z_lo), red & (redshift > z_hi)
print(f"for scale: the red sequence's median g - r rises by "
      f"{np.median(original_colour[high]) - np.median(original_colour[low]):.2f} mag from "
      f"z < {z_lo:.2f} to z > {z_hi:.2f}")

# %% [markdown]
# Compare the printed lines. The default augmentations move a galaxy's $g - r$ by little and
# leave $\rho$ where it was: a representation that is invariant to them can still know the
# redshift. Colour jitter moves $g - r$ by an amount comparable to the whole rise of the red
# sequence over the sample's redshift range (the last line), so $\rho$ drops. The relation
# does not vanish (the jitter adds scatter to every galaxy, it does not erase the trend), but a
# representation trained to treat these views as *the same* galaxy is trained to ignore colour
# differences of that size, which is most of what tells a galaxy at the low end of the range
# from one at the high end: it is trained to *forget the redshift*. (Hayat et al. 2021 model
# dust with a Galactic-reddening augmentation, a physical change of colour, rather than
# photographs' colour jitter; our `RandomBrightness` scales all bands together for the same
# reason.)
#
# ### What brightness invariance costs
#
# The network sees each galaxy's flux (the stretch inside the model is the same for every
# image), and in a flux-limited survey the flux carries redshift too: the fainter galaxies
# are, on the whole, the more distant ones. `RandomBrightness` asks the representation to
# ignore a ±0.2 mag change (a calibration or depth error). How much redshift information does
# that give away? The rank correlation of the measured r magnitude with redshift, before and
# after the default brightness change and a ten times wider one:

# %%
def r_magnitude(x):
    """Total r magnitude of each stamp (the whole 32" field). [B, 3, H, W] -> [B]."""
    pixel_area = (32.0 / x.shape[-1]) ** 2  # arcsec^2: pixel values are per arcsec^2
    flux = (x[:, 1].sum(dim=(1, 2)) * pixel_area).clamp_min(1e-3)
    return (22.5 - 2.5 * torch.log10(flux)).numpy()


gen = torch.Generator().manual_seed(10)
brightness = {"original images": many,
              "brightness +-0.2 mag (default)": augment.RandomBrightness()(many, generator=gen),
              "brightness +-2 mag": augment.RandomBrightness((-2.0, 2.0))(many, generator=gen)}
for name, x in brightness.items():
    print(f"{name:32s} Spearman rho(r magnitude, z) = "
          f"{spearmanr(r_magnitude(x), redshift).statistic:.2f}")

# %% [markdown]
# Compare the three numbers above. The relation is loose to begin with (galaxies differ in
# luminosity by several magnitudes, so flux alone is a poor distance), the default ±0.2 mag
# leaves it almost as it was, and a ±2 mag "brightness jitter" takes a large part of it away
# (in normal mode: 0.41, 0.40 and 0.23). The default range buys robustness to
# calibration for very little redshift information.
#
# ### Question
#
# Which other augmentation, harmless for photographs, would be harmful for galaxies, and what
# physical information would it destroy? Think about size, or about the shape of the PSF.
#
# ### BEGIN SOLUTION
# A strong random rescaling ("random resized crop" with zooms of 2-3x, standard for
# photographs) would teach the representation to ignore the angular size of a galaxy; but at
# fixed luminosity the angular size falls with distance, so the representation would lose part
# of its redshift information (and the physical size). Likewise a blur much larger than the
# real seeing would erase the difference between a compact elliptical and a star, or hide
# spiral arms and rings, exactly the morphology we want to learn. Augmentations must stay
# within the range the real observations span.
# ### END SOLUTION

# %% [markdown]
# Next: `04_nt_xent.ipynb`, the loss that turns these pairs into a representation.

# %% [markdown]
# ## References
#
# - Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020a). *A Simple Framework for
#   Contrastive Learning of Visual Representations.* ICML 2020.
#   [arXiv:2002.05709](https://arxiv.org/abs/2002.05709).
#   SimCLR's augmentations and its colour jitter (section 3).
# - Hayat, M. A., Stein, G., Harrington, P., Lukić, Z. & Mustafa, M. (2021).
#   *Self-supervised Representation Learning for Astronomical Images.* ApJL 911, L33.
#   [arXiv:2012.13083](https://arxiv.org/abs/2012.13083).
#   Augmentations for SimCLR on SDSS galaxy images, with a small reddening.
# - Stein, G., Harrington, P., Blaum, J., Medan, T. & Lukić, Z. (2021).
#   *Self-supervised similarity search for large scientific datasets.*
#   [arXiv:2110.13151](https://arxiv.org/abs/2110.13151).
#   Augmentations for self-supervised learning on Legacy Surveys galaxies.
# - Schlafly, E. F. & Finkbeiner, D. P. (2011). *Measuring Reddening with Sloan
#   Digital Sky Survey Stellar Spectra and Recalibrating SFD.* ApJ 737, 103.
#   [arXiv:1012.4804](https://arxiv.org/abs/1012.4804).
#   The reddening calibration behind the coefficients $R_g$, $R_r$, $R_z$ of Exercise 3.2 (as
#   `phys555_cl.augment` cites it).
# - Dey, A., et al. (2019). *Overview of the DESI Legacy Imaging Surveys.* AJ 157, 168.
#   [arXiv:1804.08657](https://arxiv.org/abs/1804.08657).
#   The DESI Legacy Imaging Surveys, whose g, r, z images the simulated galaxies imitate.
