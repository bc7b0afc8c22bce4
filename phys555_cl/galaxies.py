"""A physically motivated galaxy simulator in torch: 3-band (g, r, z) stamps with Galaxy Zoo labels.

The lecture's example (Hayat et al. 2021) trains SimCLR on 3-band galaxy images and colours a
UMAP of the representation by the Galaxy Zoo answers. This module makes such a sample offline,
on CPU or GPU, as fast as a network can eat it::

    images, labels = simulate(1000, size=64, seed=0)
    images.shape                      # torch.Size([1000, 3, 64, 64]), float32 g, r, z
    labels["smooth_or_featured"]      # int64 [1000], 0 smooth, 1 features or disk

What is in a stamp (read :func:`simulate` top to bottom, then the ``_render_*`` helpers):

- **Kinds.** Seven kinds of galaxy, drawn with :data:`KIND_PROBS`: smooth ellipticals,
  face-on disks (spiral arms with number, pitch and strength; 40% barred), edge-on disks
  (thickness, an optional bulge, a dust lane), ring galaxies, clumpy irregulars, gravitational
  lenses (the "other" odd feature: a red elliptical bending a blue background galaxy into arcs,
  computed exactly with a singular isothermal sphere plus external shear), and mergers (two
  galaxies with tidal tails).
- **Profiles.** Sersic bulges and ellipticals, exponential disks seen at an inclination ``i``
  with an intrinsic thickness ``q0`` (projected axis ratio ``sqrt(cos^2 i + q0^2 sin^2 i)``).
  Every component is normalised analytically to its total flux.
- **Redshift.** ``z`` sets the angular size through the angular-diameter distance and the
  flux through the luminosity distance (astropy ``Planck18``), so surface brightness dims as
  ``(1 + z)^-4``; colours redden with ``z`` (a crude k-correction). The sample is an imaging
  survey: apparent magnitude ``r < 19.5`` (:data:`IMAGING_LIMIT`) and an apparent size cut, so
  distant galaxies are intrinsically brighter and larger (Malmquist bias) but still smaller on
  the sky.
- **Labels follow the survey selection** (``label_tier``). As in SDSS, spectra are taken of the
  brighter galaxies only (main sample ``r < 17.77``, :data:`SPEC_LIMIT`) and visual
  morphologies exist for the brighter still (:data:`MORPHOLOGY_LIMIT`), while the imaging goes
  deeper: :func:`spectroscopic_completeness` and :func:`morphology_completeness` give the
  probability of each label at a magnitude (smooth edges, not hard cuts), so most galaxies have
  no label, and the labelled ones are the bright, nearby, large ones.
- **Colours.** Bulges, ellipticals and bars are red; disks bluer; arms, rings, clumps and
  lensed sources blue.
- **Observation.** A per-band, per-galaxy Gaussian PSF (FWHM 0.6-1.2 arcsec in r, wider in g,
  sharper in z), Gaussian sky noise with a per-galaxy depth (for speed, read at random offsets
  from a fixed bank of 4 million normal numbers, with a random sign), a position jitter of
  about 1.5 arcsec, random orientation, and sometimes a neighbouring galaxy or a star.

Units: the field of view is :data:`FIELD_ARCSEC` arcsec whatever ``size`` is (``size`` only
sets the sampling); pixel values are surface brightness in nanomaggies per arcsec^2
(``mag = 22.5 - 2.5 log10(flux)``), so the same galaxy has the same pixel values at any size.
They span orders of magnitude: normalise (e.g. :func:`asinh_stretch`) before a network.

Determinism: galaxies are made in blocks of :data:`BLOCK` galaxies. Block ``b`` draws all its
random numbers from its own ``torch.Generator`` seeded from ``(seed, b)`` and is always
rendered at full block size, so galaxy ``i`` depends only on ``(seed, i)`` (and the device):
``simulate(100, seed=s)`` equals the first 100 galaxies of ``simulate(1000, seed=s)``.

References: Sersic (1963); Freeman (1970) exponential disks; Hubble (1926) thick-disk axis
ratios; Kormann et al. (1994) isothermal lenses; Willett et al. (2013), Walmsley et al. (2022)
Galaxy Zoo decision trees; Hayat et al. (2021) self-supervised learning on SDSS galaxies.
"""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from phys555_cl._checks import check_int

__all__ = [
    "simulate",
    "asinh_stretch",
    "KIND_NAMES",
    "KIND_PROBS",
    "LABEL_KEYS",
    "REDSHIFT_THRESHOLD",
    "FIELD_ARCSEC",
    "BLOCK",
    "ODD_FEATURE_NAMES",
    "IMAGING_LIMIT",
    "SPEC_LIMIT",
    "MORPHOLOGY_LIMIT",
    "spectroscopic_completeness",
    "morphology_completeness",
]

# --------------------------------------------------------------------------------------------
# Constants a student may want to read or change
# --------------------------------------------------------------------------------------------

#: Galaxies per block: the unit of determinism (see module docstring). Changing it changes
#: which galaxy a given (seed, index) produces.
BLOCK = 128

#: Field of view of a stamp, arcsec. ``size`` only changes the pixel scale, ``FIELD_ARCSEC / size``.
FIELD_ARCSEC = 32.0

#: ``redshift_high`` is ``redshift >= REDSHIFT_THRESHOLD`` (about the median of the sample).
REDSHIFT_THRESHOLD = 0.12

#: The kinds of galaxy the simulator draws, in the order of their integer code (``labels["kind"]``).
KIND_NAMES = ("smooth", "disk_face_on", "disk_edge_on", "ring", "irregular", "lens", "merger")
#: Probability of each kind in :data:`KIND_NAMES` order.
KIND_PROBS = (0.34, 0.24, 0.12, 0.075, 0.075, 0.075, 0.075)

SMOOTH, FACE_ON, EDGE_ON, RING, IRREGULAR, LENS, MERGER = range(7)

#: Names of the ``odd_feature`` classes of the label schema, shared by every dataset (plots and
#: probes read them here). In the simulator "other" is a strong gravitational lens; in
#: Galaxy10 it is the "Disturbed" class.
ODD_FEATURE_NAMES = ("ring", "irregular", "other", "merger")

#: The label schema shared by every galaxy dataset of the package (see DESIGN.md).
LABEL_KEYS = (
    "smooth_or_featured",
    "edge_on",
    "odd",
    "odd_feature",
    "redshift",
    "redshift_high",
    "label_tier",
)

#: Depth of the imaging survey, r band: every simulated galaxy is brighter than this.
IMAGING_LIMIT = 19.5
#: Spectroscopic target limit, r band (SDSS main galaxy sample, Strauss et al. 2002).
SPEC_LIMIT = 17.77
#: Visual morphologies (Galaxy Zoo style) are reliable only for the brighter galaxies.
MORPHOLOGY_LIMIT = 16.0
_SPEC_COMPLETENESS = 0.95  # fraction of targets brighter than the limit with a good spectrum
_SPEC_EDGE = 0.1  # mag: width of the soft spectroscopic edge (photometric scatter of the cut)
_MORPHOLOGY_EDGE = 0.25  # mag: width of the soft morphology edge
_Z_RANGE = (0.01, 0.45)  # redshifts of the sample (Beta(2, 5) between the two)
_PSF_FWHM = (0.6, 1.2)  # r-band seeing range, arcsec
_BAND_PSF = (1.08, 1.0, 0.92)  # seeing scales roughly as wavelength^-0.2: g wider, z sharper
_BAND_NOISE = (0.8, 1.0, 1.6)  # relative sky noise in g, r, z
_SKY_SIGMA = (0.015, 0.06)  # r-band sky noise per pixel, nanomaggies / arcsec^2
_SIZE_RANGE = (1.5, 7.0)  # the apparent half-light radii the selection keeps, arcsec

# (g - r, r - z) colours at z = 0 and their reddening per unit redshift
_COLOURS = {
    "bulge": ((0.80, 0.42), (3.0, 1.2)),
    "bar": ((0.70, 0.38), (3.0, 1.2)),
    "disk": ((0.50, 0.30), (2.0, 1.0)),
    "young": ((0.20, 0.08), (1.5, 0.8)),
    "tail": ((0.40, 0.25), (2.0, 1.0)),
    "source": ((0.15, 0.05), (0.0, 0.0)),  # the lensed source sits at z ~ 1 whatever the lens
}


# --------------------------------------------------------------------------------------------
# Cosmology: a lookup table from astropy, interpolated in torch
# --------------------------------------------------------------------------------------------

_COSMO_CACHE: dict = {}


def _cosmology_table(device: torch.device):
    """Return (z grid, distance modulus, kpc per arcsec) tensors on ``device`` (Planck18)."""
    key = str(device)
    if key not in _COSMO_CACHE:
        from astropy.cosmology import Planck18

        z = np.linspace(0.001, 1.0, 2000)
        dm = Planck18.distmod(z).value
        kpc = Planck18.kpc_proper_per_arcmin(z).value / 60.0
        _COSMO_CACHE[key] = tuple(
            torch.as_tensor(a, dtype=torch.float32, device=device) for a in (z, dm, kpc)
        )
    return _COSMO_CACHE[key]


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``fp(xp)`` at ``x`` (``xp`` increasing), like ``np.interp``."""
    i = torch.searchsorted(xp, x.clamp(xp[0], xp[-1])).clamp(1, len(xp) - 1)
    x0, x1 = xp[i - 1], xp[i]
    w = (x - x0) / (x1 - x0)
    return fp[i - 1] + w * (fp[i] - fp[i - 1])


_NOISE_BANK: dict = {}
_NOISE_BANK_SIZE = 1 << 22


def _noise_bank(device: torch.device) -> torch.Tensor:
    """4M standard normal numbers, the same on every call for a device (fixed seed)."""
    key = str(device)
    if key not in _NOISE_BANK:
        gen = torch.Generator(device=device)
        gen.manual_seed(555)
        _NOISE_BANK[key] = torch.randn(_NOISE_BANK_SIZE, generator=gen, device=device)
    return _NOISE_BANK[key]


# --------------------------------------------------------------------------------------------
# Random parameters of one block
# --------------------------------------------------------------------------------------------


def _block_generator(seed: int, block: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` whose stream depends only on ``(seed, block)``."""
    state = np.random.SeedSequence([seed, block]).generate_state(1, dtype=np.uint64)[0]
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
    return gen


class _Draw:
    """Random numbers of shape ``[BLOCK, *shape]``, handed out in a fixed order.

    All uniforms and normals of a block come from two big draws (one call each, which is much
    faster than a hundred small ones); each request takes the next columns.
    """

    N_UNIFORM, N_NORMAL = 128, 48

    def __init__(self, gen: torch.Generator, device: torch.device):
        self.uniform = torch.rand((BLOCK, self.N_UNIFORM), generator=gen, device=device)
        self.normal = torch.randn((BLOCK, self.N_NORMAL), generator=gen, device=device)
        self.iu = self.in_ = 0

    def _take(self, which: str, shape):
        k = math.prod(shape)
        pool = self.uniform if which == "u" else self.normal
        start = self.iu if which == "u" else self.in_
        if start + k > pool.shape[1]:
            raise RuntimeError("galaxies._Draw ran out of random numbers: raise N_UNIFORM/N_NORMAL")
        if which == "u":
            self.iu += k
        else:
            self.in_ += k
        return pool[:, start:start + k].reshape(BLOCK, *shape)

    def u(self, lo=0.0, hi=1.0, *shape):
        return lo + (hi - lo) * self._take("u", shape)

    def n(self, *shape):
        return self._take("n", shape)

    def logu(self, lo, hi, *shape):
        return torch.exp(self.u(math.log(lo), math.log(hi), *shape))


def _colour(name: str, z: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """Flux ratios ``[B, 3]`` (g, r, z relative to r) of a component at redshift ``z``."""
    (gr0, rz0), (kgr, krz) = _COLOURS[name]
    gr = gr0 + kgr * z + 0.08 * jitter[:, 0]
    rz = rz0 + krz * z + 0.06 * jitter[:, 1]
    return torch.stack([10 ** (-0.4 * gr), torch.ones_like(gr), 10 ** (0.4 * rz)], dim=1)


def _sample_block(gen: torch.Generator, device: torch.device) -> dict:
    """Draw every parameter of ``BLOCK`` galaxies. Every draw happens for every galaxy, in a
    fixed order, whatever its kind, so the stream never depends on earlier outcomes."""
    d = _Draw(gen, device)
    p: dict = {}
    probs = torch.tensor(KIND_PROBS, device=device).cumsum(0)
    p["kind"] = torch.bucketize(d.u(), probs[:-1], right=True)
    _sample_distance_and_size(d, p, device)
    _sample_shape(d, p)
    _sample_structure(d, p, device)
    _sample_observation(d, p)
    return p


def _smooth_like(k: torch.Tensor) -> torch.Tensor:
    return (k == SMOOTH) | (k == LENS)


def _sample_distance_and_size(d: _Draw, p: dict, device: torch.device) -> None:
    """Redshift, luminosity (flux-limited), apparent and physical size."""
    k = p["kind"]
    # redshift from a Beta(2, 5) (ratio of Gamma(2) and Gamma(5) variates) on _Z_RANGE
    g2 = -torch.log(d.u(1e-7, 1.0, 2)).sum(1)
    g5 = -torch.log(d.u(1e-7, 1.0, 5)).sum(1)
    z = _Z_RANGE[0] + (_Z_RANGE[1] - _Z_RANGE[0]) * g2 / (g2 + g5)
    p["redshift"] = z
    zt, dm_t, kpc_t = _cosmology_table(device)
    dm = _interp(z, zt, dm_t)
    kpc_per_arcsec = _interp(z, zt, kpc_t)

    # luminosity, then the imaging flux limit: too faint galaxies would not be in the catalogue
    absmag = -20.8 + 0.9 * d.n()
    absmag = torch.minimum(absmag, IMAGING_LIMIT - dm - 0.6 * d.u())
    p["abs_mag_r"] = absmag
    p["mag_r"] = absmag + dm
    # size: a size-luminosity relation, then the apparent-size selection (a smooth squash of
    # log size into _SIZE_RANGE, monotonic, so farther galaxies stay smaller on the sky)
    r_kpc = 3.0 * 10 ** (-0.12 * (absmag + 20.8) + 0.12 * d.n())
    r_ang = r_kpc / kpc_per_arcsec
    lo, hi = math.log(_SIZE_RANGE[0]), math.log(_SIZE_RANGE[1])
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    r_ang = torch.exp(mid + half * torch.tanh((torch.log(r_ang) - mid) / half))
    r_ang = torch.where(_smooth_like(k), 0.75 * r_ang, r_ang)  # ellipticals are more compact
    r_ang = torch.where(k == IRREGULAR, 0.8 * r_ang, r_ang)
    p["half_light_radius"] = r_ang
    p["half_light_radius_kpc"] = r_ang * kpc_per_arcsec


def _sample_shape(d: _Draw, p: dict) -> None:
    """Orientation, inclination, thickness, profile and the bulge's share of the light."""
    k = p["kind"]
    smooth_like = _smooth_like(k)
    # geometry
    p["position_angle"] = d.u(0.0, math.pi)
    p["center"] = 1.5 * d.n(2).clamp(-2.0, 2.0)
    cos_face = d.u(math.cos(math.radians(65.0)), 1.0)
    inc_edge = d.u(math.radians(81.0), math.radians(90.0))
    inc = torch.where(k == EDGE_ON, inc_edge, torch.arccos(cos_face))
    inc = torch.where(k == RING, torch.arccos(d.u(math.cos(math.radians(50.0)), 1.0)), inc)
    p["inclination"] = inc
    p["thickness"] = d.u(0.12, 0.22)
    p["smooth_q"] = d.u(0.35, 1.0) ** 0.7  # a few cigars, mostly round
    p["sersic_n"] = torch.where(smooth_like, d.u(2.5, 5.5), d.u(1.0, 3.0))

    # light budget
    bt_face = d.u(0.04, 0.45)
    bt_edge = torch.where(d.u() < 0.5, d.u(0.0, 0.05), d.u(0.15, 0.5))
    bt = torch.where(k == EDGE_ON, bt_edge, bt_face)
    bt = torch.where(k == RING, d.u(0.15, 0.4), bt)
    bt = torch.where(smooth_like, torch.ones_like(bt), bt)
    bt = torch.where(k == IRREGULAR, torch.zeros_like(bt), bt)
    p["bulge_fraction"] = bt
    p["bulge_size"] = d.u(0.15, 0.35)  # bulge R_e / galaxy R_e


def _sample_structure(d: _Draw, p: dict, device: torch.device) -> None:
    """Arms, bars, rings, clumps, dust, merger companions and tails, lens configurations."""
    k = p["kind"]
    # spiral arms
    p["n_arms"] = torch.bucketize(d.u(), torch.tensor([0.1, 0.75, 0.9], device=device)) + 1
    p["pitch_angle"] = d.u(math.radians(10.0), math.radians(30.0))
    p["arm_strength"] = d.u(0.35, 0.8)
    p["arm_phase"] = d.u(0.0, 2 * math.pi)
    p["chirality"] = torch.where(d.u() < 0.5, -1.0, 1.0)
    has_arms = (k == FACE_ON) | (k == EDGE_ON) | (k == MERGER)
    p["n_arms"] = torch.where(has_arms & (k != EDGE_ON), p["n_arms"], torch.zeros_like(k))
    # bars
    p["bar"] = (((k == FACE_ON) & (d.u() < 0.4)) | ((k == RING) & (d.u() < 0.5))).long()
    p["bar_fraction"] = d.u(0.10, 0.25)
    p["bar_length"] = d.u(0.6, 1.0)  # bar R_e / galaxy R_e
    p["bar_angle"] = d.u(0.0, math.pi)
    p["bar_q"] = d.u(0.2, 0.32)
    # rings
    p["ring_radius"] = d.u(1.0, 1.7)  # / galaxy R_e
    p["ring_width"] = d.u(0.08, 0.16)
    p["ring_fraction"] = d.u(0.35, 0.6)
    # clumps (irregulars, rings, arms): positions in units of R_e, sizes, flux shares
    p["clump_xy"] = 0.6 * d.n(8, 2)
    p["clump_size"] = d.u(0.08, 0.25, 8)
    p["clump_flux"] = d.u(0.2, 1.0, 8)
    p["irr_offset"] = 0.3 * d.n(2)
    # dust lanes of edge-on disks
    p["dust_tau"] = d.u(1.5, 3.0)
    # mergers: a companion and tidal tails
    p["comp_sep"] = d.u(0.9, 1.8)  # / R_e
    p["comp_angle"] = d.u(0.0, 2 * math.pi)
    p["comp_ratio"] = d.u(0.35, 1.0)
    p["comp_size"] = d.u(0.5, 0.9)
    p["tail_fraction"] = d.u(0.25, 0.45)
    p["primary_smooth"] = d.u() < 0.4
    # lenses: Einstein radius, source offset and size, shear, flux
    theta_e = (d.u(1.1, 1.7) * p["half_light_radius"]).clamp(2.2, 5.0)
    p["einstein_radius"] = torch.where(k == LENS, theta_e, -torch.ones(BLOCK, device=device))
    p["source_offset"] = d.u(-0.5, 0.5, 2)  # / Einstein radius
    p["source_size"] = d.u(0.08, 0.2)  # / Einstein radius
    p["shear"] = d.u(-0.08, 0.08, 2)
    p["source_fraction"] = d.u(0.2, 0.4)


def _sample_observation(d: _Draw, p: dict) -> None:
    """Colour jitter, seeing, sky noise, neighbours and stars, and the survey's label tier."""
    # colours (jitter per component)
    p["colour_jitter"] = d.n(6, 2)
    # observation
    p["psf_fwhm"] = d.u(*_PSF_FWHM)
    p["sky_sigma"] = d.logu(*_SKY_SIGMA)
    p["neighbour"] = (d.u() < 0.3).long()
    p["neighbour_xy"] = d.u(0.0, 1.0, 2)
    p["neighbour_dmag"] = d.u(1.0, 3.5)
    p["neighbour_re"] = d.u(0.5, 1.6)
    p["neighbour_colour"] = d.u(0.2, 1.2)
    p["star"] = (d.u() < 0.25).long()
    p["star_xy"] = d.u(0.0, 1.0, 2)
    p["star_mag"] = d.u(15.0, 20.0)
    p["star_colour"] = d.u(0.3, 1.4)
    # survey selection: one uniform number decides both labels, so a galaxy with a morphology
    # always has a spectrum (tier 2 is inside tier 1)
    u = d.u()
    p_spec = spectroscopic_completeness(p["mag_r"])
    p_both = p_spec * morphology_completeness(p["mag_r"])
    p["label_tier"] = (u < p_spec).long() + (u < p_both).long()


def spectroscopic_completeness(mag_r: torch.Tensor) -> torch.Tensor:
    """Probability that a galaxy of apparent magnitude ``mag_r`` has a spectroscopic redshift.

    ``0.95 / (1 + exp((mag_r - SPEC_LIMIT) / 0.1))``: 95% of the targets brighter than the
    SDSS main-sample limit ``r < 17.77`` get a good spectrum (fibre collisions and failures take
    the rest), and the edge is soft by the scatter of the photometry used to select targets.
    Shape: ``[N] -> [N]``.
    """
    return _SPEC_COMPLETENESS * torch.sigmoid((SPEC_LIMIT - mag_r) / _SPEC_EDGE)


def morphology_completeness(mag_r: torch.Tensor) -> torch.Tensor:
    """Probability that a galaxy *with a spectrum* also has a visual morphology.

    ``1 / (1 + exp((mag_r - MORPHOLOGY_LIMIT) / 0.25))``: volunteers and experts classify
    reliably only the brighter, better resolved galaxies. ``label_tier`` is 2 with probability
    ``spectroscopic_completeness * morphology_completeness``, 1 with the rest of
    ``spectroscopic_completeness``, else 0. Shape: ``[N] -> [N]``.
    """
    return torch.sigmoid((MORPHOLOGY_LIMIT - mag_r) / _MORPHOLOGY_EDGE)


# --------------------------------------------------------------------------------------------
# Profiles (all normalised to unit total flux; lengths in arcsec)
# --------------------------------------------------------------------------------------------


def _b_n(n: torch.Tensor) -> torch.Tensor:
    """Sersic b_n so that R_e encloses half the light (Ciotti & Bertin 1999)."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2)


def _sersic(x, y, re, n, q, soft):
    """Unit-flux Sersic profile at sky offsets ``x, y`` [B, H, W] along the major/minor axes.

    ``I(r) = I_e exp(-b_n ((r / R_e)^(1/n) - 1))`` with ``r`` the elliptical radius (axis ratio
    ``q``) softened by ``soft`` (about the pixel size, so cusps are not aliased):
    ``r^2 -> r^2 + soft^2``. Softening moves the light inside ``soft`` out of the image: with
    ``rho^2 = r^2 + soft^2`` the softened profile holds exactly the light of the true one
    outside ``soft``, ``1 - P(2n, b_n (soft / R_e)^(1/n))``, which we divide out, so the total
    flux stays exact at any sampling.
    """
    re, n, q = re[:, None, None], n[:, None, None], q[:, None, None]
    b = _b_n(n)
    inside = torch.special.gammainc(2 * n, b * (soft / re) ** (1 / n))
    log_norm = (torch.log(2 * math.pi * q * re**2 * n) + b + torch.lgamma(2 * n)
                - 2 * n * torch.log(b) + torch.log1p(-inside))
    # (r / re)^(1/n) as exp(log(r^2 / re^2) / 2n), cheaper than a pow with a tensor exponent;
    # in-place steps keep the working set small
    r2 = torch.addcmul((x * x).mul_(1 / re**2), y * y, 1 / (q * re) ** 2).add_(soft**2 / re**2)
    t = r2.log_().mul_(0.5 / n).exp_()
    return t.mul_(-b).add_(b - log_norm).exp_()


def _gaussian_1d(coords, centre, sigma, pix):
    """Pixel-integrated unit-flux 1D Gaussians, as a density per arcsec.

    ``coords`` [P] pixel centres, ``centre`` and ``sigma`` [..., 1] -> [..., P]. Integrating
    over each pixel (rather than sampling its centre) conserves flux even when ``sigma`` is
    smaller than a pixel, e.g. for stars.
    """
    a = (coords + 0.5 * pix - centre) / (math.sqrt(2) * sigma)
    b = (coords - 0.5 * pix - centre) / (math.sqrt(2) * sigma)
    return (torch.erf(a) - torch.erf(b)) * (0.5 / pix)


def _rotate(x, y, angle):
    """Rotate offsets [B, H, W] into a frame at ``angle`` [B] (radians, counter-clockwise)."""
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return x * c + y * s, -x * s + y * c


def _gaussian(x, y, sigma):
    """Unit-flux round Gaussian; ``sigma`` broadcasts against ``x``."""
    return torch.exp(-0.5 * (x**2 + y**2) / sigma**2) / (2 * math.pi * sigma**2)


# --------------------------------------------------------------------------------------------
# Rendering of one block
# --------------------------------------------------------------------------------------------


#: Light components rendered into separate maps, each with its own colour (see _COLOURS).
_CHANNELS = ("bulge", "disk", "young", "bar", "companion", "tail", "source", "neighbour", "star")


class _Canvas:
    """The pixel grid of one block and its light maps, one single-band map per component.

    ``x, y``: offsets from each galaxy's centre in arcsec, x to the right and y up (north up),
    kept separable ([B, 1, W] and [B, H, 1]; they broadcast to [B, H, W] when combined);
    ``u, v``: the same along the major and minor axes of the main galaxy. ``maps[:, c]`` holds
    component ``c``'s light (unit-flux profiles times fluxes) and ``colours[:, :, c]`` its
    (g, r, z) colour; :meth:`images` mixes them.
    """

    def __init__(self, p: dict, size: int, device: torch.device):
        self.size, self.device = size, device
        self.pix = pix = FIELD_ARCSEC / size
        self.soft = 0.4 * pix  # stands in for the pixel window (no aliasing of cusps, thin disks)
        self.coords = coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5
                                - size / 2) * pix
        self.x = coords[None, None, :] - p["center"][:, 0, None, None]
        self.y = -coords[None, :, None] - p["center"][:, 1, None, None]
        self.u, self.v = _rotate(self.x, self.y, p["position_angle"])
        self.flux = 10 ** (-0.4 * (p["mag_r"] - 22.5))  # nanomaggies, r band
        self.maps = torch.zeros(BLOCK, len(_CHANNELS), size, size, device=device)
        self.colours = torch.zeros(BLOCK, 3, len(_CHANNELS), device=device)
        self.channel = {name: c for c, name in enumerate(_CHANNELS)}

    def add(self, name: str, idx: torch.Tensor | None, light: torch.Tensor) -> None:
        """maps[idx, channel] += light (``idx`` None: every galaxy)."""
        if idx is None:
            self.maps[:, self.channel[name]] += light
        else:
            self.maps[:, self.channel[name]].index_add_(0, idx, light)

    def set_colour(self, name: str, colour: torch.Tensor) -> None:
        """The (g, r, z) colour [B, 3] of component ``name``."""
        self.colours[:, :, self.channel[name]] = colour

    def images(self) -> torch.Tensor:
        """images[b, band] = sum over components of colours[b, band, c] * maps[b, c]."""
        images = torch.bmm(self.colours, self.maps.reshape(BLOCK, len(_CHANNELS), -1))
        return images.reshape(BLOCK, 3, self.size, self.size)


def _render_block(p: dict, size: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Render ``BLOCK`` galaxies of parameters ``p`` into ``[BLOCK, 3, size, size]`` fluxes.

    Each light component is drawn (unit flux times its flux) into its own single-band map;
    one batched matrix product then gives every map its (g, r, z) colour. Dust, the PSF and
    the sky noise come last, as in a real observation.
    """
    canvas = _Canvas(p, size, device)
    z, jit = p["redshift"], p["colour_jitter"]
    for name, j in (("bulge", 0), ("disk", 1), ("young", 2), ("bar", 3), ("tail", 5),
                    ("source", 5)):
        canvas.set_colour(name, _colour(name, z, jit[:, j]))
    canvas.set_colour("companion", _colour("bulge", z, jit[:, 4]))
    # projected axis ratio of a disk of intrinsic thickness q0 at inclination i
    inc = p["inclination"]
    q_disk = torch.sqrt(torch.cos(inc) ** 2 + (p["thickness"] * torch.sin(inc)) ** 2)
    _render_bulge(canvas, p, q_disk)
    plane = _render_disk_and_arms(canvas, p, q_disk)
    _render_bar(canvas, p, plane, q_disk)
    _render_ring(canvas, p, plane, q_disk)
    _render_irregular(canvas, p)
    _render_merger(canvas, p)
    _render_lens(canvas, p)
    _render_neighbour(canvas, p)
    _render_star(canvas, p)
    images = _render_dust(canvas.images(), canvas, p, q_disk)
    images = _render_psf(images, p, canvas.pix)
    return _render_sky_noise(images, p, gen)


def _render_bulge(canvas: _Canvas, p: dict, q_disk: torch.Tensor) -> None:
    """Sersic bulges of disks and ellipticals (irregulars have a bulge fraction of 0); a
    merger's primary is an elliptical or a disk with a small bulge."""
    k, re, flux = p["kind"], p["half_light_radius"], canvas.flux
    is_smooth = (k == SMOOTH) | (k == LENS)
    prim_smooth = (k == MERGER) & p["primary_smooth"]
    q_bulge = torch.where(is_smooth | prim_smooth, p["smooth_q"],
                          torch.maximum(q_disk, 0.6 + 0.4 * q_disk))
    re_bulge = torch.where(is_smooth, re, re * p["bulge_size"])
    re_bulge = torch.where(prim_smooth, re * 0.7, re_bulge)
    fb = flux * p["bulge_fraction"]
    fb = torch.where(k == MERGER, flux * 0.6 * torch.where(p["primary_smooth"], 1.0, 0.3), fb)
    light = _sersic(canvas.u, canvas.v, re_bulge, p["sersic_n"], q_bulge, canvas.soft)
    canvas.add("bulge", None, light.mul_(fb[:, None, None]))


@dataclasses.dataclass
class _DiskPlane:
    """The disks of a block in their own plane, for the bar and the ring drawn in it."""

    idx: torch.Tensor  # the galaxies with a disk
    xd: torch.Tensor  # disk-plane coordinates [b, H, W]
    yd: torch.Tensor
    rd: torch.Tensor  # disk-plane radius, softened
    fd: torch.Tensor  # disk flux without the bar's share
    fr: torch.Tensor  # share of it in the ring (0 unless a ring galaxy)
    ring_k: torch.Tensor  # is a ring galaxy [b]


def _render_disk_and_arms(canvas: _Canvas, p: dict, q_disk: torch.Tensor) -> _DiskPlane:
    """Exponential disks seen at an inclination, with logarithmic spiral arms."""
    k, re, flux, soft = p["kind"], p["half_light_radius"], canvas.flux, canvas.soft
    disk_merger = (k == MERGER) & ~p["primary_smooth"]
    has_disk = (k == FACE_ON) | (k == EDGE_ON) | (k == RING) | disk_merger
    idx = torch.nonzero(has_disk).squeeze(1)
    h = (re[idx] / 1.678)[:, None, None]  # exponential scale length
    # a disk thinner than a pixel is drawn one pixel thick (the pixel window), flux unchanged
    qd = torch.sqrt(q_disk[idx] ** 2 + (soft / re[idx]) ** 2)[:, None, None]
    xd, yd = canvas.u[idx], canvas.v[idx] / qd  # disk-plane coordinates
    rd = torch.addcmul(xd * xd, yd, yd).add_(soft**2).sqrt_()
    # unit flux on the sky; e^-x (1 + x) is the light outside the softening radius x = soft / h
    x_s = soft / h
    disk = torch.exp(-rd / h).mul_(1 / (2 * math.pi * h * h * qd * torch.exp(-x_s) * (1 + x_s)))
    fd = flux[idx] * (1 - p["bulge_fraction"][idx])
    fd = torch.where(k[idx] == MERGER, flux[idx] * 0.6 * 0.7, fd)
    fd = fd * (1 - p["bar"][idx] * p["bar_fraction"][idx])
    # ring galaxies keep a faint inner disk: most of their disk light goes into the ring
    ring_k = k[idx] == RING
    fr = torch.where(ring_k, p["ring_fraction"][idx], torch.zeros_like(fd))
    smooth_part = disk * (fd * (1 - fr))[:, None, None]
    sub = torch.nonzero(p["n_arms"][idx] > 0).squeeze(1)
    if len(sub):
        j = idx[sub]
        a, arm = _spiral_arms(p, j, xd[sub], yd[sub], rd[sub], h[sub])
        arm_light = smooth_part[sub] * a
        smooth_part[sub] -= arm_light
        canvas.add("young", j, arm_light.mul_(arm))
    canvas.add("disk", idx, smooth_part)
    return _DiskPlane(idx, xd, yd, rd, fd, fr, ring_k)


def _spiral_arms(p, j, xd, yd, rd, h):
    """A logarithmic spiral density wave in disks ``j``: ``I = I_disk [(1 - a) + a arm(phase)]``.

    Returns ``a`` (the share of the disk light in the arms, none inside the bulge) and ``arm``
    (the arm pattern, of mean 1 over the phase), [b, H, W] each.
    """
    theta = torch.atan2(yd, xd)
    m = p["n_arms"][j].float()[:, None, None]
    wind = (p["chirality"][j] / torch.tan(p["pitch_angle"][j]))[:, None, None]
    phase = (rd / h).log_().mul_(-wind).add_(theta).mul_(m).sub_(p["arm_phase"][j, None, None])
    c = phase.cos_().add_(1).mul_(0.5)
    arm = c * c * c * (16 / 5)
    inner = 1 - torch.exp(-((rd / (0.8 * h)) ** 2))  # no arms inside the bulge
    return inner.mul_(p["arm_strength"][j, None, None]), arm


def _render_bar(canvas: _Canvas, p: dict, plane: _DiskPlane, q_disk: torch.Tensor) -> None:
    """Bars: a flat (n = 0.5) Sersic ellipse in the disk plane, projected with the disk."""
    sub = torch.nonzero(p["bar"][plane.idx] > 0).squeeze(1)
    if not len(sub):
        return
    j, re, flux = plane.idx[sub], p["half_light_radius"], canvas.flux
    bx, by = _rotate(plane.xd[sub], plane.yd[sub], p["bar_angle"][j])
    bar = _sersic(bx, by, re[j] * p["bar_length"][j], torch.full_like(re[j], 0.5),
                  p["bar_q"][j], canvas.soft)
    canvas.add("bar", j, bar.mul_((flux[j] * p["bar_fraction"][j] / q_disk[j])[:, None, None]))


def _render_ring(canvas: _Canvas, p: dict, plane: _DiskPlane, q_disk: torch.Tensor) -> None:
    """Rings: a Gaussian annulus in the disk plane, knotty with star formation."""
    sub = torch.nonzero(plane.ring_k).squeeze(1)
    if not len(sub):
        return
    j, re = plane.idx[sub], p["half_light_radius"]
    theta = torch.atan2(plane.yd[sub], plane.xd[sub])
    rr = (re[j] * p["ring_radius"][j])[:, None, None]
    w = torch.sqrt((re[j] * p["ring_width"][j])[:, None, None] ** 2 + canvas.soft**2)
    knots = 1 + 0.5 * torch.cos(7 * theta + p["arm_phase"][j, None, None])
    ring = torch.exp(-0.5 * ((plane.rd[sub] - rr) / w) ** 2) * knots
    norm = (plane.fd[sub] * plane.fr[sub])[:, None, None] / (
        2 * math.pi * rr * w * math.sqrt(2 * math.pi) * q_disk[j, None, None])
    canvas.add("young", j, ring.mul_(norm))


def _render_irregular(canvas: _Canvas, p: dict) -> None:
    """Irregulars: a lopsided diffuse body plus bright star-forming clumps."""
    idx = torch.nonzero(p["kind"] == IRREGULAR).squeeze(1)
    if not len(idx):
        return
    r_i, flux, pix = p["half_light_radius"][idx], canvas.flux, canvas.pix
    off = p["irr_offset"][idx] * r_i[:, None]
    body = _sersic(canvas.u[idx] - off[:, 0, None, None], canvas.v[idx] - off[:, 1, None, None],
                   r_i, torch.ones_like(r_i), p["smooth_q"][idx].clamp(min=0.5), canvas.soft)
    canvas.add("disk", idx, body.mul_((0.55 * flux[idx])[:, None, None]))
    # round clumps are separable in x and y: one batched matrix product renders all 8
    cu = p["clump_xy"][idx, :, 0] * r_i[:, None]  # [b, 8], along the major axis
    cv = p["clump_xy"][idx, :, 1] * r_i[:, None]
    pa = p["position_angle"][idx, None]
    c, s_ = torch.cos(pa), torch.sin(pa)
    cx = cu * c - cv * s_ + p["center"][idx, 0, None]  # [b, 8] offsets from the stamp centre
    cy = cu * s_ + cv * c + p["center"][idx, 1, None]
    cs = p["clump_size"][idx] * r_i[:, None]  # [b, 8]
    cf = 0.45 * flux[idx, None] * p["clump_flux"][idx] / p["clump_flux"][idx].sum(1, True)
    gx_ = _gaussian_1d(canvas.coords, cx[..., None], cs[..., None], pix) * cf[..., None]
    gy_ = _gaussian_1d(-canvas.coords, cy[..., None], cs[..., None], pix)  # [b, 8, H]
    canvas.add("young", idx, torch.bmm(gy_.transpose(1, 2), gx_))


def _render_merger(canvas: _Canvas, p: dict) -> None:
    """Mergers: a companion galaxy and two tidal tails."""
    idx = torch.nonzero(p["kind"] == MERGER).squeeze(1)
    if not len(idx):
        return
    r_m, flux = p["half_light_radius"][idx], canvas.flux
    sep = (p["comp_sep"][idx] * r_m)[:, None, None]
    ang = p["comp_angle"][idx]
    cxm = sep * torch.cos(ang)[:, None, None]
    cym = sep * torch.sin(ang)[:, None, None]
    xc, yc = canvas.x[idx] - cxm, canvas.y[idx] - cym
    uc, vc = _rotate(xc, yc, ang + 0.7)
    comp = _sersic(uc, vc, r_m * p["comp_size"][idx], p["sersic_n"][idx],
                   p["smooth_q"][idx].clamp(min=0.5), canvas.soft)
    canvas.add("companion", idx, comp.mul_((0.6 * flux[idx] * p["comp_ratio"][idx])[:, None, None]))
    tails = _tidal_tails(p, idx, (canvas.x[idx], canvas.y[idx]), (xc, yc), canvas.soft)
    ft = flux[idx] * p["tail_fraction"][idx]
    tails = tails / tails.sum((1, 2), keepdim=True).clamp(min=1e-12) / canvas.pix**2
    canvas.add("tail", idx, tails * ft[:, None, None])


def _tidal_tails(p, idx, primary, companion, soft):
    """Two tails (unnormalised): tightly wound one-armed spirals of low surface brightness,
    one launched from each nucleus in opposite senses (Toomre & Toomre 1972 in cartoon form).
    ``primary``, ``companion``: offsets ``(x, y)`` from each nucleus [b, H, W]."""
    r_m, ang = p["half_light_radius"][idx], p["comp_angle"][idx]
    tails = 0
    for (xs, ys), sgn in ((primary, 1.0), (companion, -1.0)):
        rel = torch.sqrt(xs**2 + ys**2 + soft**2) / r_m[:, None, None]
        th = torch.atan2(ys, xs)
        ph = th - sgn * p["chirality"][idx, None, None] * torch.log(rel) / 0.45
        ph = ph - ang[:, None, None] - (1 - sgn) * math.pi / 2
        band = ((1 + torch.cos(ph)) / 2) ** 10
        env = torch.exp(-rel / 1.4) * (1 - torch.exp(-rel * rel))
        tails = tails + band * env
    return tails


def _render_lens(canvas: _Canvas, p: dict) -> None:
    """Lens arcs: a singular isothermal sphere with external shear bends a blue background
    galaxy (the lens equation maps each pixel to the source plane; Kormann et al. 1994)."""
    idx = torch.nonzero(p["kind"] == LENS).squeeze(1)
    if not len(idx):
        return
    soft = canvas.soft
    te = p["einstein_radius"][idx][:, None, None]
    xs, ys = canvas.x[idx], canvas.y[idx]
    r = torch.sqrt(xs**2 + ys**2 + soft**2)
    g1, g2 = p["shear"][idx, 0, None, None], p["shear"][idx, 1, None, None]
    bx = xs - te * xs / r - (g1 * xs + g2 * ys)  # the lens equation: source-plane position
    by = ys - te * ys / r - (g2 * xs - g1 * ys)
    off = p["source_offset"][idx] * te[:, :, 0]
    ss = torch.sqrt((p["source_size"][idx, None, None] * te) ** 2 + soft**2)
    src = _gaussian(bx - off[:, 0, None, None], by - off[:, 1, None, None], ss)
    fs = canvas.flux[idx] * p["source_fraction"][idx] / 4  # intrinsic flux; lensing magnifies it
    canvas.add("source", idx, src * fs[:, None, None])


def _render_neighbour(canvas: _Canvas, p: dict) -> None:
    """A neighbouring galaxy near the edge of some stamps, with its own colour."""
    idx = torch.nonzero(p["neighbour"] > 0).squeeze(1)
    if len(idx):
        rad = FIELD_ARCSEC / 2 * (0.45 + 0.5 * p["neighbour_xy"][idx, 0])
        ang = 2 * math.pi * p["neighbour_xy"][idx, 1]
        xn = canvas.x[idx] - (rad * torch.cos(ang))[:, None, None]
        yn = canvas.y[idx] - (rad * torch.sin(ang))[:, None, None]
        un, vn = _rotate(xn, yn, ang * 3)
        qn = 0.4 + 0.6 * p["neighbour_xy"][idx, 0]
        nb = _sersic(un, vn, p["neighbour_re"][idx], p["sersic_n"][idx], qn, canvas.soft)
        fn = 10 ** (-0.4 * (p["mag_r"][idx] + p["neighbour_dmag"][idx] - 22.5))
        canvas.add("neighbour", idx, nb.mul_(fn[:, None, None]))
    gr = p["neighbour_colour"]
    canvas.set_colour("neighbour",
                      torch.stack([10 ** (-0.4 * gr), torch.ones_like(gr), 10 ** (0.2 * gr)], 1))


def _render_star(canvas: _Canvas, p: dict) -> None:
    """A foreground star in some stamps: a point source, blurred by the PSF later."""
    idx = torch.nonzero(p["star"] > 0).squeeze(1)
    if len(idx):
        coords, pix = canvas.coords, canvas.pix
        rad = FIELD_ARCSEC / 2 * (0.35 + 0.6 * p["star_xy"][idx, 0])
        ang = 2 * math.pi * p["star_xy"][idx, 1]
        sx = (rad * torch.cos(ang) + p["center"][idx, 0])[:, None]
        sy = (rad * torch.sin(ang) + p["center"][idx, 1])[:, None]
        fs = 10 ** (-0.4 * (p["star_mag"][idx] - 22.5))
        gx_ = _gaussian_1d(coords, sx, 0.05, pix) * fs[:, None]  # a point source
        canvas.add("star", idx, _gaussian_1d(-coords, sy, 0.05, pix)[:, :, None] * gx_[:, None])
    gr = p["star_colour"]
    canvas.set_colour("star",
                      torch.stack([10 ** (-0.4 * gr), torch.ones_like(gr), 10 ** (0.16 * gr)], 1))


def _render_dust(images: torch.Tensor, canvas: _Canvas, p: dict,
                 q_disk: torch.Tensor) -> torch.Tensor:
    """Dust lanes of edge-on disks: attenuation along the mid-plane, strongest in g."""
    idx = torch.nonzero(p["kind"] == EDGE_ON).squeeze(1)
    if not len(idx):
        return images
    re, soft = p["half_light_radius"], canvas.soft
    h = re[idx, None, None] / 1.678
    # the lane is a fixed fraction of the disk's drawn thickness (at least a pixel, see
    # _render_disk_and_arms), so it hides the same share of light at any sampling
    q_drawn = torch.sqrt(q_disk[idx] ** 2 + (soft / re[idx]) ** 2)[:, None, None]
    w = 0.4 * q_drawn * h
    v0 = torch.cos(p["inclination"][idx])[:, None, None] * 0.6 * h  # the near side hides the far
    u, v = canvas.u[idx], canvas.v[idx]
    lane = torch.exp(-0.5 * ((v - v0) / w) ** 2) * torch.exp(-(u / (2.5 * h)) ** 2)
    reddening = torch.tensor([1.2, 1.0, 0.7], device=images.device)[:, None, None]  # g, r, z
    tau = p["dust_tau"][idx, None, None, None] * reddening
    images[idx] = images[idx] * torch.exp(-tau * lane[:, None])
    return images


def _render_psf(images: torch.Tensor, p: dict, pix: float) -> torch.Tensor:
    """Seeing: per band and per galaxy, a pixel-integrated Gaussian PSF. It is separable, so
    two batched matrix products, K @ image @ K^T, with K[i, j] the PSF flux that falls from
    pixel j to pixel i."""
    size, device = images.shape[-1], images.device
    sigma = p["psf_fwhm"][:, None] * torch.tensor(_BAND_PSF, device=device) / 2.3548 / pix
    offs = torch.arange(size, device=device)
    d = torch.arange(-size + 1, size, device=device, dtype=torch.float32)  # pixel separations
    s2 = sigma.reshape(-1, 1) * math.sqrt(2)
    k1 = 0.5 * (torch.erf((d + 0.5) / s2) - torch.erf((d - 0.5) / s2))  # [B*3, 2H-1]
    kern = k1[:, offs[:, None] - offs[None, :] + size - 1]  # [B*3, H, H], Toeplitz
    flat = images.reshape(-1, size, size)
    return torch.bmm(torch.bmm(kern, flat), kern.transpose(1, 2)).reshape(BLOCK, 3, size, size)


def _render_sky_noise(images: torch.Tensor, p: dict, gen: torch.Generator) -> torch.Tensor:
    """Gaussian sky noise of each galaxy's depth, per band: windows at random offsets in a bank
    of Gaussian numbers, with a random sign (a fresh torch.randn per pixel costs more than all
    the galaxy light together on a CPU)."""
    size, device = images.shape[-1], images.device
    hw = size * size
    bank = _noise_bank(device)
    start = torch.randint(0, len(bank) - hw + 1, (BLOCK * 3,), generator=gen, device=device)
    sign = torch.randint(0, 2, (BLOCK, 3), generator=gen, device=device) * 2.0 - 1.0
    windows = bank.as_strided((len(bank) - hw + 1, hw), (1, 1))
    noise = torch.index_select(windows, 0, start).reshape(BLOCK, 3, size, size)
    sky = p["sky_sigma"][:, None] * torch.tensor(_BAND_NOISE, device=device) * sign
    return noise.mul_(sky[:, :, None, None]).add_(images)


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def _labels(p: dict) -> dict:
    """The schema labels (see DESIGN.md) and the true parameters of a block."""
    k = p["kind"]
    smooth = (k == SMOOTH) | (k == LENS)
    odd_feature = torch.full_like(k, -1)
    for code, kind in enumerate((RING, IRREGULAR, LENS, MERGER)):
        odd_feature = torch.where(k == kind, torch.full_like(k, code), odd_feature)
    edge_on = torch.where(k == EDGE_ON, 1, 0)
    edge_on = torch.where(smooth, -1, edge_on)
    minus1 = -torch.ones_like(p["redshift"])
    disky = ~smooth & (k != IRREGULAR)
    prim_disk = disky & ~((k == MERGER) & p["primary_smooth"])
    labels = {
        "smooth_or_featured": (~smooth).long(),
        "edge_on": edge_on.long(),
        "odd": (odd_feature >= 0).long(),
        "odd_feature": odd_feature.long(),
        "redshift": p["redshift"].float(),
        "redshift_high": (p["redshift"] >= REDSHIFT_THRESHOLD).long(),
        "label_tier": p["label_tier"].long(),
        # true parameters
        "kind": k.long(),
        "mag_r": p["mag_r"],
        "abs_mag_r": p["abs_mag_r"],
        "half_light_radius": p["half_light_radius"],
        "half_light_radius_kpc": p["half_light_radius_kpc"],
        "position_angle": torch.rad2deg(p["position_angle"]),
        "inclination": torch.where(prim_disk, torch.rad2deg(p["inclination"]), minus1),
        "bulge_fraction": p["bulge_fraction"],
        "sersic_n": p["sersic_n"],
        "n_arms": p["n_arms"].long(),
        "pitch_angle": torch.where(p["n_arms"] > 0, torch.rad2deg(p["pitch_angle"]), minus1),
        "arm_strength": torch.where(p["n_arms"] > 0, p["arm_strength"], minus1),
        "bar": p["bar"].long(),
        "einstein_radius": p["einstein_radius"],
        "center_x": p["center"][:, 0],
        "center_y": p["center"][:, 1],
        "psf_fwhm": p["psf_fwhm"],
        "sky_sigma": p["sky_sigma"],
        "neighbour": p["neighbour"].long(),
        "star": p["star"].long(),
    }
    return {key: val.float() if val.is_floating_point() else val for key, val in labels.items()}


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def simulate(n: int, *, size: int = 64, seed: int = 0, device=None):
    """Simulate ``n`` galaxies as 3-band (g, r, z) images with Galaxy Zoo style labels.

    Args:
        n: number of galaxies (>= 0).
        size: image side in pixels (>= 8). The field of view is always ``FIELD_ARCSEC``
            arcsec; ``size`` sets the sampling.
        seed: non-negative integer. Galaxy ``i`` depends only on ``(seed, i)`` and the device.
        device: where to simulate (``torch.device`` or string); default CPU.

    Returns:
        images: float32 ``[n, 3, size, size]``, surface brightness in g, r, z (nanomaggies per
            arcsec^2, sky-subtracted, with noise).
        labels: dict of length-``n`` tensors on ``device``: the schema keys
            ``smooth_or_featured``, ``edge_on`` (-1 for smooth), ``odd``, ``odd_feature``
            (0 ring, 1 irregular, 2 other = lens, 3 merger, -1 when not odd), ``redshift``
            (float32), ``redshift_high`` (``redshift >= REDSHIFT_THRESHOLD``), ``label_tier``
            (0 none, 1 spec-z, 2 spec-z and morphology); and the true parameters ``kind``
            (index into ``KIND_NAMES``), ``mag_r``, ``abs_mag_r``, ``half_light_radius``
            (arcsec), ``half_light_radius_kpc``, ``position_angle`` and ``inclination`` (deg,
            -1 when there is no disk), ``bulge_fraction``, ``sersic_n``, ``n_arms``,
            ``pitch_angle`` (deg), ``arm_strength``, ``bar``, ``einstein_radius`` (arcsec, -1
            unless a lens), ``center_x``, ``center_y`` (arcsec), ``psf_fwhm`` (arcsec, r band),
            ``sky_sigma`` (r band), ``neighbour``, ``star``.

    Example:
        >>> images, labels = simulate(8, size=32, seed=1)
        >>> images.shape, labels["odd_feature"].dtype
        (torch.Size([8, 3, 32, 32]), torch.int64)
    """
    n, size = check_int("n", n), check_int("size", size, 8, unit="pixels")
    seed = check_int("seed", seed)
    device = torch.device("cpu" if device is None else device)
    # a clear message instead of the allocator's (or the OOM killer) for an impossible n
    per_galaxy = 3 * size * size * 4 + 152  # float32 images + the labels, bytes
    if device.type == "cuda":
        memory = torch.cuda.get_device_properties(device).total_memory
    else:
        import os

        sysconf = getattr(os, "sysconf", None)
        memory = sysconf("SC_PAGE_SIZE") * sysconf("SC_PHYS_PAGES") if sysconf else None
    if memory and n * per_galaxy > memory:
        raise ValueError(
            f"simulate(n={n}, size={size}) would need {n * per_galaxy / 1e9:,.1f} GB of memory "
            f"({per_galaxy / 1e3:.0f} kB per galaxy) but "
            f"{'the GPU' if device.type == 'cuda' else 'this computer'} has {memory / 1e9:.0f} "
            f"GB; simulate fewer or smaller galaxies, e.g. "
            f"n={max(1, memory // 4 // per_galaxy)} fits in a quarter of it"
        )
    n_blocks = -(-n // BLOCK)
    _cosmology_table(device), _noise_bank(device)  # build the shared tables once, up front
    images = torch.empty(n, 3, size, size, device=device)
    labels: dict = {}

    def keep(b, block_images, block_labels):
        m = min(BLOCK, n - b * BLOCK)  # the last block is generated in full, then sliced
        images[b * BLOCK:b * BLOCK + m] = block_images[:m]
        for key, val in block_labels.items():
            if key not in labels:
                labels[key] = torch.empty(n, dtype=val.dtype, device=device)
            labels[key][b * BLOCK:b * BLOCK + m] = val[:m]

    threads = torch.get_num_threads()
    if device.type == "cpu":
        # Blocks in parallel threads, each op single-threaded. The render is hundreds of
        # medium-sized ops: with intra-op threads every op ends in a barrier, which on a busy
        # machine waits for a descheduled thread (20x slower seen on a shared 2-core box).
        # Single-threaded ops also make the bits independent of torch.get_num_threads().
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max(1, min(threads, n_blocks))) as pool:
                results = pool.map(lambda b: _simulate_block(seed, b, size, device),
                                   range(n_blocks))
                for b, (block_images, block_labels) in enumerate(results):
                    keep(b, block_images, block_labels)
        finally:
            torch.set_num_threads(threads)
    else:
        for b in range(n_blocks):
            keep(b, *_simulate_block(seed, b, size, device))
    if n_blocks == 0:  # still return every key
        labels = {key: val[:0] for key, val in _labels(_sample_block(
            _block_generator(seed, 0, device), device)).items()}
    return images, labels


def _simulate_block(seed: int, block: int, size: int, device: torch.device):
    """Images ``[BLOCK, 3, size, size]`` and labels of block ``block``: a pure function."""
    gen = _block_generator(seed, block, device)
    p = _sample_block(gen, device)
    return _render_block(p, size, gen, device), _labels(p)


def asinh_stretch(images: torch.Tensor, scale: float = 0.05, beta: float = 1.0) -> torch.Tensor:
    """Compress the huge dynamic range of galaxy fluxes: ``asinh(images / scale) / beta``.

    A network sees faint outskirts and bright cores on a comparable scale (Lupton et al. 1999).

    Args:
        images: float tensor ``[..., 3, H, W]`` of fluxes (e.g. from :func:`simulate`).
        scale: flux where the stretch turns from linear to logarithmic (about the sky noise).
        beta: divides the result, to bring values near unit range.

    Returns:
        Tensor of the same shape as ``images``.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    return torch.asinh(images / scale) / beta
