"""The galaxy survey's catalogue: which galaxies there are, before any pixel is drawn.

:func:`catalogue` draws, block by block, the physical galaxies the imaging survey selects
(population, selection, shapes, structures, observing conditions, label tier); the constants
below are the survey's facts. ``phys555_cl.galaxies`` is the public face of the simulator and
tells the whole story; ``phys555_cl.galaxy_render`` draws the catalogue's rows as images.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from phys555_cl._checks import check_int

__all__ = [
    "catalogue", "spectroscopic_completeness", "morphology_completeness", "pixel_noise",
    "CATALOGUE_COLUMNS", "KIND_NAMES", "KIND_PROBS", "LABEL_KEYS", "LABEL_SCHEMA",
    "MORPHOLOGY_TASKS", "N_CLASSES", "REDSHIFT_THRESHOLD",
    "FIELD_ARCSEC", "BLOCK", "ODD_FEATURE_NAMES", "IMAGING_LIMIT", "SIZE_WINDOW", "SPEC_LIMIT",
    "MORPHOLOGY_LIMIT", "ABS_MAG_RANGE", "PSF_DEPTH", "SEEING_FWHM",
    "SMOOTH", "FACE_ON", "EDGE_ON", "RING", "IRREGULAR", "LENS", "MERGER",
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
REDSHIFT_THRESHOLD = 0.18

#: The kinds of galaxy the simulator draws, in the order of their integer code (``labels["kind"]``).
KIND_NAMES = ("smooth", "disk_face_on", "disk_edge_on", "ring", "irregular", "lens", "merger")
#: Probability of each kind in :data:`KIND_NAMES` order, before the survey's selection.
KIND_PROBS = (0.34, 0.24, 0.12, 0.075, 0.075, 0.075, 0.075)

SMOOTH, FACE_ON, EDGE_ON, RING, IRREGULAR, LENS, MERGER = range(7)

#: Names of the ``odd_feature`` classes of the label schema, shared by every dataset (plots and
#: probes read them here). In the simulator "other" is a strong gravitational lens; in
#: Galaxy10 it is the "Disturbed" class.
ODD_FEATURE_NAMES = ("ring", "irregular", "other", "merger")

#: The label schema shared by every galaxy dataset of the package (see DESIGN.md), in one
#: place: each label's class names (None for a number), which galaxies it is asked of (the
#: others carry -1), and whether it is a visual morphology (a Galaxy Zoo answer). The class
#: counts of the study's networks, the morphology tasks of the survey protocol, the names on
#: the plots and the study's question list are all derived from it.
LABEL_SCHEMA = {
    "smooth_or_featured": {"classes": ("smooth", "featured"), "asked_of": "all galaxies",
                           "morphology": True},
    "edge_on": {"classes": ("face-on", "edge-on"),
                "asked_of": "featured galaxies (edge_on >= 0)", "morphology": True},
    "odd": {"classes": ("not odd", "odd"), "asked_of": "all galaxies", "morphology": True},
    "odd_feature": {"classes": ODD_FEATURE_NAMES,
                    "asked_of": "odd galaxies (odd_feature >= 0)", "morphology": True},
    "redshift": {"classes": None, "asked_of": "galaxies with a spectrum (label_tier >= 1)",
                 "morphology": False},
    "redshift_high": {"classes": ("low z", "high z"), "asked_of": "all galaxies",
                      "morphology": False},
    "label_tier": {"classes": ("no label", "spec-z", "spec-z + morphology"),
                   "asked_of": "all galaxies", "morphology": False},
}
LABEL_KEYS = tuple(LABEL_SCHEMA)
#: Number of classes of every categorical label.
N_CLASSES = {k: len(v["classes"]) for k, v in LABEL_SCHEMA.items() if v["classes"]}
#: The labels that are visual morphologies (the survey protocol gives them to tier 2 only).
MORPHOLOGY_TASKS = tuple(k for k, v in LABEL_SCHEMA.items() if v["morphology"])

#: Depth of the imaging survey, r band: every catalogued galaxy is brighter than this.
IMAGING_LIMIT = 19.5
#: The apparent half-light radii (arcsec) the survey keeps: resolved by the seeing, and small
#: enough for the stamp.
SIZE_WINDOW = (1.0, 8.0)
#: Spectroscopic target limit, r band (SDSS main galaxy sample, Strauss et al. 2002).
SPEC_LIMIT = 17.77
#: Visual morphologies: the Galaxy Zoo 2 main sample is r < 17.0 (Willett et al. 2013).
MORPHOLOGY_LIMIT = 17.0
#: Absolute r magnitudes of the population (fainter dwarfs are not modelled).
ABS_MAG_RANGE = (-23.5, -18.5)
#: 5-sigma r-band point-source depth of the imaging, drawn uniformly per galaxy (DECaLS DR9:
#: median psfdepth_r about 23.7; Dey et al. 2019).
PSF_DEPTH = (23.3, 24.1)
_SPEC_COMPLETENESS = 0.95  # fraction of targets brighter than the limit with a good spectrum
_SPEC_EDGE = 0.1  # mag: width of the soft spectroscopic edge (photometric scatter of the cut)
_MORPHOLOGY_EDGE = 0.25  # mag: width of the soft morphology edge
_Z_RANGE = (0.01, 0.45)  # redshifts of the population (uniform in comoving volume)
_SCHECHTER = (-21.29, -1.05)  # M* (h = 0.677) and alpha, r band (Blanton et al. 2003)
# size-luminosity: R_e = R0 * 10^(-0.4 * beta * (M_r + 21)) kpc (Shen et al. 2003, slopes
# 0.26 for late and 0.65 for early types, R_e of 5 and 4 kpc at M_r = -21), scatter in dex
_SIZE_LATE, _SIZE_EARLY, _SIZE_SCATTER = (5.0, 0.26), (4.0, 0.65), 0.17
#: The survey's seeing: r-band PSF FWHM range, arcsec (drawn uniformly per galaxy).
SEEING_FWHM = (0.6, 1.2)
_BAND_PSF = (1.08, 1.0, 0.92)  # seeing scales roughly as wavelength^-0.2: g wider, z sharper
_BAND_NOISE = (0.8, 1.0, 1.6)  # relative sky noise in g, r, z
_CANDIDATES = 16  # candidate galaxies drawn per round, per catalogue row (selection keeps ~8%)

# Observed-frame (g - r, r - z) colours at z = 0 and their change per unit redshift. The bulge
# (passive) track follows the red sequence in DECam g r z: g - r about 0.77 at z = 0.05, 1.0 at
# 0.15 and 1.4 at 0.3, r - z about 0.75 at z = 0.05 (the reference table is in
# benchmarks/validate_simulator.py); disks and star-forming parts are bluer and redden slower.
_COLOURS = {
    "bulge": ((0.66, 0.70), (2.4, 1.1)),
    "bar": ((0.60, 0.65), (2.4, 1.1)),
    "disk": ((0.45, 0.45), (1.6, 0.8)),
    "young": ((0.20, 0.15), (1.2, 0.6)),
    "tail": ((0.40, 0.35), (1.6, 0.8)),
    "source": ((0.15, 0.05), (0.0, 0.0)),  # the lensed source sits at z ~ 1 whatever the lens
}

#: The catalogue's columns (see :func:`catalogue` and data/README.md for units).
CATALOGUE_COLUMNS = (
    "kind", "redshift", "abs_mag_r", "half_light_radius_kpc", "mag_r", "half_light_radius",
    "sersic_n", "axis_ratio", "position_angle", "center_x", "center_y", "inclination",
    "thickness", "bulge_fraction", "bulge_size", "n_arms", "pitch_angle", "arm_strength",
    "arm_phase", "chirality", "bar", "bar_fraction", "bar_length", "bar_angle", "bar_q",
    "ring_radius", "ring_width", "ring_fraction", "clump_xy", "clump_size", "clump_flux",
    "irr_offset", "dust_tau", "primary_smooth", "comp_sep", "comp_angle", "comp_ratio",
    "comp_size", "tail_fraction", "einstein_radius", "source_offset", "source_size", "shear",
    "source_fraction", "colour_jitter", "psf_fwhm", "psf_depth", "sky_sigma", "neighbour",
    "neighbour_xy", "neighbour_dmag", "neighbour_re", "neighbour_colour", "star", "star_xy",
    "star_mag", "star_colour", "label_tier",
)


# --------------------------------------------------------------------------------------------
# Cosmology and the population: lookup tables from astropy, interpolated in torch
# --------------------------------------------------------------------------------------------

_TABLES: dict = {}


def _tables(device: torch.device) -> dict:
    """Planck18 distances on a redshift grid, the inverse cumulative comoving volume and the
    inverse cumulative Schechter function, as float32 tensors on ``device`` (built once)."""
    key = str(device)
    if key not in _TABLES:
        from astropy.cosmology import Planck18  # deferred: astropy takes a second to import

        z = np.linspace(0.001, 1.0, 2000)
        dm = Planck18.distmod(z).value
        kpc = Planck18.kpc_proper_per_arcmin(z).value / 60.0
        zv = np.linspace(*_Z_RANGE, 1000)
        volume = Planck18.comoving_volume(zv).value
        mags = np.linspace(*ABS_MAG_RANGE, 1000)
        m_star, alpha = _SCHECHTER
        x = 10 ** (-0.4 * (mags - m_star))
        cdf = np.cumsum(x ** (alpha + 1) * np.exp(-x))
        tables = dict(z=z, dm=dm, kpc=kpc,
                      volume_cdf=(volume - volume[0]) / (volume[-1] - volume[0]), volume_z=zv,
                      lf_cdf=(cdf - cdf[0]) / (cdf[-1] - cdf[0]), lf_mag=mags)
        _TABLES[key] = {k: torch.as_tensor(v, dtype=torch.float32, device=device)
                        for k, v in tables.items()}
    return _TABLES[key]


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``fp(xp)`` at ``x`` (``xp`` increasing), like ``np.interp``."""
    i = torch.searchsorted(xp, x.clamp(xp[0], xp[-1]).contiguous()).clamp(1, len(xp) - 1)
    x0, x1 = xp[i - 1], xp[i]
    w = ((x - x0) / (x1 - x0).clamp(min=1e-12)).clamp(0.0, 1.0)
    return fp[i - 1] + w * (fp[i] - fp[i - 1])


def _distances(z: torch.Tensor):
    """Distance modulus (luminosity distance) and kpc per arcsec (angular-diameter distance)."""
    t = _tables(z.device)
    return _interp(z, t["z"], t["dm"]), _interp(z, t["z"], t["kpc"])


# --------------------------------------------------------------------------------------------
# Random parameters of one block
# --------------------------------------------------------------------------------------------


def _block_generator(seed: int, block: int, device: torch.device, stream: int = 0):
    """A generator on ``device`` whose stream depends only on ``(seed, block, stream)``
    (stream 0: the catalogue, 1: the observation's noise)."""
    words = [seed, block] if stream == 0 else [seed, block, stream]
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
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
            raise RuntimeError("galaxy_catalogue._Draw ran out of random numbers: raise "
                               "N_UNIFORM/N_NORMAL")
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


def _smooth_like(k: torch.Tensor) -> torch.Tensor:
    return (k == SMOOTH) | (k == LENS)


def _apparent(p: dict) -> None:
    """The apparent magnitude and size of each row from its physical ones and its redshift."""
    dm, kpc_per_arcsec = _distances(p["redshift"])
    p["mag_r"] = p["abs_mag_r"] + dm
    p["half_light_radius"] = p["half_light_radius_kpc"] / kpc_per_arcsec


def _draw_population(gen: torch.Generator, device: torch.device) -> dict:
    """``BLOCK`` galaxies that pass the survey's selection: kind, redshift, luminosity, size.

    Candidates are drawn in rounds of ``_CANDIDATES * BLOCK`` (redshift uniform in comoving
    volume, M_r from the Schechter function, R_e from the size-luminosity relation of the
    kind); those inside the imaging limit and the size window are kept, in order, until the
    block is full. Everything comes from ``gen``, so the block depends only on its seed.
    """
    t = _tables(device)
    probs = torch.tensor(KIND_PROBS, device=device).cumsum(0)
    kept: list[dict] = []
    n_kept = 0
    for _ in range(1000):
        m = _CANDIDATES * BLOCK
        u = torch.rand((3, m), generator=gen, device=device)
        scatter = torch.randn(m, generator=gen, device=device)
        c = {"kind": torch.bucketize(u[0], probs[:-1], right=True),
             "redshift": _interp(u[1], t["volume_cdf"], t["volume_z"]),
             "abs_mag_r": _interp(u[2], t["lf_cdf"], t["lf_mag"])}
        early = _smooth_like(c["kind"])
        r0 = torch.where(early, _SIZE_EARLY[0], _SIZE_LATE[0])
        beta = torch.where(early, _SIZE_EARLY[1], _SIZE_LATE[1])
        log_r = torch.log10(r0) - 0.4 * beta * (c["abs_mag_r"] + 21.0) + _SIZE_SCATTER * scatter
        log_r = torch.where(c["kind"] == IRREGULAR, log_r - 0.1, log_r)  # irregulars: smaller
        c["half_light_radius_kpc"] = 10**log_r
        _apparent(c)
        ok = ((c["mag_r"] < IMAGING_LIMIT) & (c["half_light_radius"] > SIZE_WINDOW[0])
              & (c["half_light_radius"] < SIZE_WINDOW[1]))
        idx = torch.nonzero(ok).squeeze(1)[:BLOCK - n_kept]
        kept.append({key: val[idx] for key, val in c.items()})
        n_kept += len(idx)
        if n_kept == BLOCK:
            return {key: torch.cat([k[key] for k in kept]) for key in kept[0]}
    raise RuntimeError("galaxies: the selection kept too few candidates; check SIZE_WINDOW, "
                       "IMAGING_LIMIT and ABS_MAG_RANGE")


def _sample_block(gen: torch.Generator, device: torch.device) -> dict:
    """Draw every parameter of ``BLOCK`` catalogued galaxies. The population (with its
    selection) comes first; every later draw happens for every galaxy, in a fixed order,
    whatever its kind, so the stream never depends on earlier outcomes."""
    p = _draw_population(gen, device)
    d = _Draw(gen, device)
    _sample_shape(d, p)
    _sample_structure(d, p, device)
    _sample_observation(d, p)
    return p


def _sample_shape(d: _Draw, p: dict) -> None:
    """Orientation, inclination, thickness, profile and the bulge's share of the light."""
    k = p["kind"]
    smooth_like = _smooth_like(k)
    p["position_angle"] = d.u(0.0, math.pi)
    center = 1.5 * d.n(2).clamp(-2.0, 2.0)
    p["center_x"], p["center_y"] = center[:, 0], center[:, 1]
    cos_face = d.u(math.cos(math.radians(65.0)), 1.0)
    inc_edge = d.u(math.radians(81.0), math.radians(90.0))
    inc = torch.where(k == EDGE_ON, inc_edge, torch.arccos(cos_face))
    inc = torch.where(k == RING, torch.arccos(d.u(math.cos(math.radians(50.0)), 1.0)), inc)
    p["inclination"] = inc
    p["thickness"] = d.u(0.12, 0.22)
    # projected axis ratios of ellipticals from E0 to E7 (q = 0.3), mostly round
    p["axis_ratio"] = 1.0 - 0.7 * d.u() ** 1.5
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
    n_arms = torch.bucketize(d.u(), torch.tensor([0.1, 0.75, 0.9], device=device)) + 1
    p["pitch_angle"] = d.u(math.radians(10.0), math.radians(30.0))
    p["arm_strength"] = d.u(0.35, 0.8)
    p["arm_phase"] = d.u(0.0, 2 * math.pi)
    p["chirality"] = torch.where(d.u() < 0.5, -1.0, 1.0)
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
    # clumps (irregulars): positions in units of R_e, sizes, flux shares
    p["clump_xy"] = 0.6 * d.n(8, 2)
    p["clump_size"] = d.u(0.08, 0.25, 8)
    p["clump_flux"] = d.u(0.2, 1.0, 8)
    p["irr_offset"] = 0.3 * d.n(2)
    # dust lanes of edge-on disks
    p["dust_tau"] = d.u(1.5, 3.0)
    # mergers: a companion and tidal tails; the primary is an elliptical 40% of the time
    p["comp_sep"] = d.u(0.9, 1.8)  # / R_e
    p["comp_angle"] = d.u(0.0, 2 * math.pi)
    p["comp_ratio"] = d.u(0.35, 1.0)  # companion flux / primary flux
    p["comp_size"] = d.u(0.5, 0.9)
    p["tail_fraction"] = d.u(0.15, 0.3)  # share of the system's light in the tails
    p["primary_smooth"] = (d.u() < 0.4).long()
    # arms are drawn in face-on disks and in the disk of a merger whose primary is a disk
    has_arms = (k == FACE_ON) | ((k == MERGER) & (p["primary_smooth"] == 0))
    p["n_arms"] = torch.where(has_arms, n_arms, torch.zeros_like(k))
    # lenses: Einstein radius (arcsec), source offset and size, shear, share of the light
    theta_e = (d.u(1.1, 1.7) * p["half_light_radius"]).clamp(2.2, 5.0)
    p["einstein_radius"] = torch.where(k == LENS, theta_e, -torch.ones(BLOCK, device=device))
    p["source_offset"] = d.u(-0.5, 0.5, 2)  # / Einstein radius
    p["source_size"] = d.u(0.08, 0.2)  # / Einstein radius
    p["shear"] = d.u(-0.08, 0.08, 2)
    p["source_fraction"] = d.u(0.2, 0.4)  # share of the system's observed light in the arcs


def _sample_observation(d: _Draw, p: dict) -> None:
    """Colour jitter, seeing, depth, neighbours and stars, and the survey's label tier."""
    p["colour_jitter"] = d.n(6, 2)
    p["psf_fwhm"] = d.u(*SEEING_FWHM)
    p["psf_depth"] = d.u(*PSF_DEPTH)
    # the r-band sky noise in a 1 arcsec^2 patch that gives this 5-sigma depth for a Gaussian
    # PSF (noise-equivalent area 4 pi sigma^2)
    sigma_psf = p["psf_fwhm"] / 2.3548
    flux_5sigma = 10 ** (-0.4 * (p["psf_depth"] - 22.5))
    p["sky_sigma"] = flux_5sigma / 5 / (math.sqrt(4 * math.pi) * sigma_psf)
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

    ``1 / (1 + exp((mag_r - MORPHOLOGY_LIMIT) / 0.25))``: the Galaxy Zoo 2 main sample is the
    SDSS galaxies brighter than ``r = 17.0`` (Willett et al. 2013). ``label_tier`` is 2 with
    probability ``spectroscopic_completeness * morphology_completeness``, 1 with the rest of
    ``spectroscopic_completeness``, else 0. Shape: ``[N] -> [N]``.
    """
    return torch.sigmoid((MORPHOLOGY_LIMIT - mag_r) / _MORPHOLOGY_EDGE)


def pixel_noise(labels_or_catalogue: dict, size: int) -> torch.Tensor:
    """The sky noise per pixel of each galaxy's stamp at ``size`` pixels, per band, in the
    pixel units (nanomaggies per arcsec^2): ``sky_sigma * band factor / pixel_scale``.

    The sky's noise in a fixed area does not depend on the sampling, so the 5-sigma depth of a
    stamp is the same at any ``size``. Shape: ``[N] -> [N, 3]`` (g, r, z).
    """
    sky = labels_or_catalogue["sky_sigma"]
    band = torch.tensor(_BAND_NOISE, device=sky.device, dtype=sky.dtype)
    return sky[:, None] * band / (FIELD_ARCSEC / size)


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def _labels(p: dict) -> dict:
    """The schema labels (see DESIGN.md) and the true parameters of some galaxies."""
    k = p["kind"]
    smooth = _smooth_like(k)
    odd_feature = torch.full_like(k, -1)
    for code, kind in enumerate((RING, IRREGULAR, LENS, MERGER)):
        odd_feature = torch.where(k == kind, torch.full_like(k, code), odd_feature)
    edge_on = torch.where(k == EDGE_ON, 1, 0)
    edge_on = torch.where(smooth, -1, edge_on)
    minus1 = -torch.ones_like(p["redshift"])
    disky = ~smooth & (k != IRREGULAR)
    prim_disk = disky & ~((k == MERGER) & (p["primary_smooth"] > 0))
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
        "axis_ratio": torch.where(smooth, p["axis_ratio"], minus1),
        "inclination": torch.where(prim_disk, torch.rad2deg(p["inclination"]), minus1),
        "bulge_fraction": p["bulge_fraction"],
        "sersic_n": p["sersic_n"],
        "n_arms": p["n_arms"].long(),
        "pitch_angle": torch.where(p["n_arms"] > 0, torch.rad2deg(p["pitch_angle"]), minus1),
        "arm_strength": torch.where(p["n_arms"] > 0, p["arm_strength"], minus1),
        "bar": p["bar"].long(),
        "einstein_radius": p["einstein_radius"],
        "center_x": p["center_x"],
        "center_y": p["center_y"],
        "psf_fwhm": p["psf_fwhm"],
        "psf_depth": p["psf_depth"],
        "sky_sigma": p["sky_sigma"],
        "neighbour": p["neighbour"].long(),
        "star": p["star"].long(),
    }
    return {key: val.float() if val.is_floating_point() else val for key, val in labels.items()}


# --------------------------------------------------------------------------------------------
# Running blocks, and the catalogue
# --------------------------------------------------------------------------------------------


def _device(device) -> torch.device:
    return torch.device("cpu" if device is None else device)


def _in_parallel(fn, n_jobs: int, device: torch.device) -> list:
    """``[fn(0), ..., fn(n_jobs - 1)]``; on a CPU in threads, each op single-threaded.

    The render is hundreds of medium-sized ops: with intra-op threads every op ends in a
    barrier, which on a busy machine waits for a descheduled thread (20x slower seen on a shared
    2-core box). Single-threaded ops also make the bits independent of torch.get_num_threads().
    The workers flush denormal floats to zero (below 1e-38, far under any noise): the far wings
    of profiles and PSFs are denormal, and arithmetic on them is several times slower. The flag
    belongs to each worker thread; the caller's threads are untouched.
    """
    if device.type != "cpu":
        return [fn(j) for j in range(n_jobs)]

    def job(j: int):
        torch.set_flush_denormal(True)
        return fn(j)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max(1, min(threads, n_jobs))) as pool:
            return list(pool.map(job, range(n_jobs)))
    finally:
        torch.set_num_threads(threads)


def catalogue(n: int, *, seed: int = 0, device=None) -> dict:
    """Draw ``n`` galaxies that the imaging survey selects: the physical catalogue, no pixels.

    Each row is a galaxy inside the survey's selection (``mag_r < IMAGING_LIMIT`` and a
    half-light radius in ``SIZE_WINDOW``); galaxies outside are never in it. Columns
    (:data:`CATALOGUE_COLUMNS`; units in data/README.md) include ``kind`` (index into
    :data:`KIND_NAMES`), ``redshift``, ``abs_mag_r``, ``half_light_radius_kpc`` (physical) and
    the apparent ``mag_r`` (total observed r magnitude) and ``half_light_radius`` (arcsec,
    along the major axis) they give at that redshift; ``sersic_n``, ``axis_ratio`` (of
    ellipticals), ``position_angle`` (radians), ``center_x``/``center_y`` (arcsec),
    ``psf_fwhm`` (arcsec, r), ``psf_depth`` (5-sigma r mag), ``sky_sigma`` (r-band noise of
    1 arcsec^2 of sky, nanomaggies), ``neighbour``, ``star``, ``label_tier``, and the
    parameters of each kind's structure.

    Args:
        n: number of galaxies (>= 0).
        seed: non-negative integer; row ``i`` depends only on ``(seed, i)`` and the device.
        device: where to draw (``torch.device`` or string); default CPU.

    Returns:
        dict of tensors with ``n`` rows each, on ``device``.
    """
    n, seed = check_int("n", n), check_int("seed", seed)
    device = _device(device)
    _tables(device)  # build the shared tables once, up front
    n_blocks = max(1, -(-n // BLOCK))
    blocks = _in_parallel(lambda b: _sample_block(_block_generator(seed, b, device), device),
                          n_blocks, device)
    return {key: torch.cat([blk[key] for blk in blocks])[:n] for key in CATALOGUE_COLUMNS}
