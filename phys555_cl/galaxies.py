"""A galaxy survey simulator in torch: a catalogue of galaxies, then 3-band (g, r, z) images.

The lecture's example (Hayat et al. 2021) trains SimCLR on 3-band galaxy images and colours a
UMAP of the representation by the Galaxy Zoo answers. This module makes such a sample offline,
on CPU or GPU, as fast as a network can eat it, the way survey simulators are built: first a
**catalogue** of physical galaxies that the survey selects, then an **observation** of them::

    cat = catalogue(1000, seed=0)                 # dict of tensors, one row per galaxy
    images, labels = observe(cat, size=64, seed=0)
    images, labels = simulate(1000, size=64, seed=0)   # the two in a row
    images.shape                      # torch.Size([1000, 3, 64, 64]), float32 g, r, z
    labels["smooth_or_featured"]      # int64 [1000], 0 smooth, 1 features or disk

:func:`observe` renders whatever it is given, without any selection: move a galaxy to another
redshift (``cat["redshift"][i] = 0.3``) and it dims as the luminosity distance and shrinks as
the angular-diameter distance say; ``noise=False`` gives the same galaxies without sky noise.

What is in a stamp (read :func:`catalogue`, then :func:`observe` and the ``_render_*`` helpers):

- **Kinds.** Seven kinds of galaxy, drawn with :data:`KIND_PROBS`: smooth ellipticals,
  face-on disks (spiral arms with number, pitch and strength; 40% barred), edge-on disks
  (thickness, an optional bulge, a dust lane), ring galaxies, clumpy irregulars, gravitational
  lenses (the "other" odd feature: a red elliptical bending a blue background galaxy into arcs,
  computed exactly with a singular isothermal sphere plus external shear), and mergers (two
  galaxies with tidal tails).
- **Population.** Redshifts uniform in comoving volume (Planck18) for ``0.01 < z < 0.45``;
  absolute magnitudes ``M_r`` from a Schechter luminosity function (Blanton et al. 2003,
  ``M* = -21.29`` for h = 0.677, alpha = -1.05) between :data:`ABS_MAG_RANGE`; half-light radii
  in kpc from the size-luminosity relations of Shen et al. (2003) (steeper for ellipticals),
  with 0.17 dex of scatter. No luminosity or size evolution and no k-correction of the r-band
  flux (the r-band k-correction of a red galaxy is 0.1-0.3 mag at these redshifts): stated, so
  that the flux and size of a galaxy follow the distances exactly.
- **Redshift.** The r-band flux follows the luminosity distance, ``mag_r = M_r + DM(z)``, and
  the angular size the angular-diameter distance, ``R_e["] = R_e[kpc] / (kpc per arcsec)``, so
  surface brightness dims as ``(1 + z)^-4``; colours redden with ``z`` (observed-frame colour
  tracks, :data:`_COLOURS`).
- **Selection.** The survey is an imaging survey: a galaxy enters the catalogue only if its
  total r magnitude is ``r < 19.5`` (:data:`IMAGING_LIMIT`) and its half-light radius lies in
  :data:`SIZE_WINDOW` (resolved, and inside the stamp). Galaxies outside are not clamped but
  left out, and the block draws again, so number counts, the redshift distribution and the
  Malmquist bias (distant galaxies in the sample are the luminous ones) come out of the model.
- **Photometry.** ``mag_r`` is what a photometrist measures: the total observed r-band flux of
  the system, dust lane, merger companion, tidal tails and lensed arcs included. Each kind
  splits that flux among its components.
- **Labels follow the survey selection** (``label_tier``). As in SDSS, spectra are taken of the
  brighter galaxies only (main sample ``r < 17.77``, :data:`SPEC_LIMIT`) and visual
  morphologies exist for the brighter still (Galaxy Zoo 2, ``r < 17.0``,
  :data:`MORPHOLOGY_LIMIT`), while the imaging goes deeper:
  :func:`spectroscopic_completeness` and :func:`morphology_completeness` give the probability
  of each label at a magnitude (smooth edges, not hard cuts).
- **Profiles.** Sersic bulges and ellipticals rendered as pixel integrals (2x2 Gauss-Legendre
  points per pixel, with the light of the cusp inside one pixel put in analytically), which
  agrees with GalSim (``benchmarks/validate_simulator.py``); exponential disks seen at an
  inclination ``i`` with an intrinsic thickness ``q0`` (projected axis ratio
  ``sqrt(cos^2 i + q0^2 sin^2 i)``). Every component is normalised analytically.
- **Observation.** A per-band, per-galaxy Gaussian PSF (FWHM 0.6-1.2 arcsec in r, wider in g,
  sharper in z), Gaussian sky noise set by a per-galaxy 5-sigma point-source depth around
  DECaLS DR9's (:data:`PSF_DEPTH`, r = 23.3-24.1), the same in the sky at any sampling, a
  position jitter of about 1.5 arcsec, random orientation, and sometimes a neighbouring galaxy
  or a star.

Units: the field of view is :data:`FIELD_ARCSEC` arcsec whatever ``size`` is (``size`` only
sets the sampling); pixel values are surface brightness in nanomaggies per arcsec^2
(``mag = 22.5 - 2.5 log10(flux)``), so the same galaxy has the same pixel values at any size,
and the sky noise per pixel is ``sky_sigma / pixel_scale`` (a survey's noise per unit area).

Determinism: galaxies are made in blocks of :data:`BLOCK` galaxies. Block ``b`` draws all its
random numbers from its own ``torch.Generator`` seeded from ``(seed, b)`` and is always drawn
at full block size, so galaxy ``i`` depends only on ``(seed, i)`` (and the device):
``simulate(100, seed=s)`` equals the first 100 galaxies of ``simulate(1000, seed=s)``.

References: Sersic (1963); Freeman (1970) exponential disks; Hubble (1926) thick-disk axis
ratios; Schechter (1976), Blanton et al. (2003) luminosity function; Shen et al. (2003) sizes;
Strauss et al. (2002) SDSS main sample; Willett et al. (2013), Walmsley et al. (2022) Galaxy
Zoo; Kormann et al. (1994) isothermal lenses; Dey et al. (2019) the Legacy Surveys (DECaLS);
Rowe et al. (2015) GalSim; Hayat et al. (2021) self-supervised learning on SDSS galaxies.
"""

from __future__ import annotations

import dataclasses
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from phys555_cl._checks import check_int

__all__ = [
    "catalogue",
    "observe",
    "simulate",
    "asinh_stretch",
    "CATALOGUE_COLUMNS",
    "KIND_NAMES",
    "KIND_PROBS",
    "LABEL_KEYS",
    "REDSHIFT_THRESHOLD",
    "FIELD_ARCSEC",
    "BLOCK",
    "ODD_FEATURE_NAMES",
    "IMAGING_LIMIT",
    "SIZE_WINDOW",
    "SPEC_LIMIT",
    "MORPHOLOGY_LIMIT",
    "ABS_MAG_RANGE",
    "PSF_DEPTH",
    "spectroscopic_completeness",
    "morphology_completeness",
    "pixel_noise",
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
_PSF_FWHM = (0.6, 1.2)  # r-band seeing range, arcsec
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
    p["psf_fwhm"] = d.u(*_PSF_FWHM)
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
# Profiles (all normalised to unit total flux; lengths in arcsec)
# --------------------------------------------------------------------------------------------


def _b_n(n: torch.Tensor) -> torch.Tensor:
    """Sersic b_n so that R_e encloses half the light (Ciotti & Bertin 1999)."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n**2)


def _sersic_log_norm(re, n, q, b):
    """log of the total flux of ``exp(-b_n ((r / R_e)^(1/n) - 1))`` over the plane (r the
    elliptical radius, axis ratio q): ``2 pi q R_e^2 n e^b Gamma(2n) / b^(2n)``."""
    return (torch.log(2 * math.pi * q * re**2 * n) + b + torch.lgamma(2 * n)
            - 2 * n * torch.log(b))


def _sersic(x, y, re, n, q, soft):
    """Unit-flux Sersic profile at sky offsets ``x, y`` [B, H, W] along the major/minor axes,
    sampled at those points with the radius softened by ``soft`` (``r^2 -> r^2 + soft^2``, the
    light inside ``soft`` divided out so the total stays exact). Used for bars (n = 0.5, smooth
    on the pixel scale); bulges, ellipticals and other cusps use :meth:`_Canvas.add_sersic`.
    """
    re, n, q = re[:, None, None], n[:, None, None], q[:, None, None]
    b = _b_n(n)
    inside = torch.special.gammainc(2 * n, b * (soft / re) ** (1 / n))
    log_norm = _sersic_log_norm(re, n, q, b) + torch.log1p(-inside)
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


# 2x2 Gauss-Legendre points of a pixel, in pixels from its centre (weights 1/4 each)
_GL2 = tuple((sx * 0.5 / math.sqrt(3), sy * 0.5 / math.sqrt(3)) for sx in (-1, 1) for sy in (-1, 1))


# --------------------------------------------------------------------------------------------
# Rendering of one block
# --------------------------------------------------------------------------------------------


#: Light components rendered into separate maps, each with its own colour (see _COLOURS). The
#: galaxy's own light is every channel before "neighbour".
_CHANNELS = ("bulge", "disk", "young", "bar", "companion", "tail", "source", "neighbour", "star")
_N_GALAXY = _CHANNELS.index("neighbour")


@dataclasses.dataclass
class _Core:
    """The light of a Sersic cusp within about a pixel of its centre, added after the PSF as
    a PSF-convolved Gaussian with the cusp's second moments (see :meth:`_Canvas.add_sersic`)."""

    channel: int
    idx: torch.Tensor  # the galaxies [b]
    x0: torch.Tensor  # centre, arcsec from the stamp centre [b]
    y0: torch.Tensor
    cov: torch.Tensor  # (xx, yy, xy) second moments of the cusp's light, arcsec^2 [b, 3]
    flux: torch.Tensor  # [b]


class _Canvas:
    """The pixel grid of one block and its light maps, one single-band map per component.

    ``x, y``: offsets from each galaxy's centre in arcsec, x to the right and y up (north up),
    kept separable ([B, 1, W] and [B, H, 1]; they broadcast to [B, H, W] when combined);
    ``u, v``: the same along the major and minor axes of the main galaxy. ``maps[:, c]`` holds
    component ``c``'s light (unit-flux profiles times fluxes) and ``colours[:, :, c]`` its
    (g, r, z) colour; :meth:`images` mixes them. ``flux`` is each galaxy's total observed
    r-band flux (nanomaggies), which its components share.
    """

    def __init__(self, p: dict, size: int, device: torch.device):
        self.b = b = p["kind"].shape[0]
        self.size, self.device = size, device
        self.pix = pix = FIELD_ARCSEC / size
        self.soft = 0.4 * pix  # stands in for the pixel window (thin disks, rings, arcs)
        self.coords = coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5
                                - size / 2) * pix
        self.cx, self.cy = p["center_x"], p["center_y"]
        self.x = coords[None, None, :] - self.cx[:, None, None]
        self.y = -coords[None, :, None] - self.cy[:, None, None]
        self.u, self.v = _rotate(self.x, self.y, p["position_angle"])
        self.flux = 10 ** (-0.4 * (p["mag_r"] - 22.5))  # nanomaggies, r band
        self.maps = torch.zeros(b, len(_CHANNELS), size, size, device=device)
        self.colours = torch.zeros(b, 3, len(_CHANNELS), device=device)
        self.channel = {name: c for c, name in enumerate(_CHANNELS)}
        self.cores: list[_Core] = []

    def add(self, name: str, idx: torch.Tensor | None, light: torch.Tensor) -> None:
        """maps[idx, channel] += light (``idx`` None: every galaxy)."""
        if idx is None:
            self.maps[:, self.channel[name]] += light
        else:
            self.maps[:, self.channel[name]].index_add_(0, idx, light)

    def add_sersic(self, name, idx, x0, y0, angle, re, n, q, flux) -> None:
        """A Sersic profile of total ``flux`` centred ``(x0, y0)`` arcsec from each galaxy's
        centre (major axis at ``angle``, half-light radius ``re`` along it, axis ratio ``q``),
        as pixel integrals. All arguments are [b] tensors for the galaxies ``idx``.

        Inside the elliptical radius ``r_c = pixel / sqrt(q)`` (an area of pi pixels) a cusp
        cannot be sampled, so the profile there is held at its value at ``r_c`` (a flat top,
        smooth enough for 2x2 Gauss-Legendre points per pixel) and the rest of the light
        inside, ``P(2n, b_n (r_c / R_e)^(1/n)) - pi q r_c^2 I(r_c)`` (exact, from the
        incomplete gamma function), goes into a :class:`_Core` with the same second moments,
        drawn after the PSF. Against GalSim: see benchmarks/validate_simulator.py.
        """
        pix = self.pix
        re_, n_, q_ = re[:, None, None], n[:, None, None], q[:, None, None]
        b = _b_n(n_)
        log_norm = _sersic_log_norm(re_, n_, q_, b)
        rc = pix / torch.sqrt(q_)
        rc2 = (rc / re_) ** 2
        xs = self.x[idx] - x0[:, None, None]
        ys = self.y[idx] - y0[:, None, None]
        c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
        a_u, a_v = 1 / re_**2, 1 / (q_ * re_) ** 2
        light = 0
        for dx, dy in _GL2:
            x, y = xs + dx * pix, ys + dy * pix
            u, v = x * c + y * s, y * c - x * s
            r2 = torch.maximum(torch.addcmul(u * u * a_u, v * v, a_v), rc2)
            light = light + r2.log_().mul_(0.5 / n_).exp_().mul_(-b).add_(b - log_norm).exp_()
        self.add(name, idx, light.mul_((flux / 4)[:, None, None]))
        # the cusp: flux and second moment of I - I(r_c) inside r_c, from incomplete gammas
        xc = b * (rc / re_) ** (1 / n_)
        i_c = torch.exp(-xc + b - log_norm)
        inner = torch.special.gammainc(2 * n_, xc) - math.pi * q_ * rc**2 * i_c
        log_m4 = torch.lgamma(4 * n_) - 4 * n_ * torch.log(b) + b - log_norm
        m4 = torch.exp(log_m4) * torch.special.gammainc(4 * n_, xc)  # int I r^2 inside r_c
        m2 = 2 * math.pi * q_ * n_ * re_**4 * m4 - i_c * math.pi * q_ * rc**4 / 2
        r2_mean = (m2 / inner.clamp(min=1e-30)).flatten()  # <r_ell^2> of the cusp's light
        su2, sv2 = r2_mean / 2, (q * q) * r2_mean / 2
        cs, sn = torch.cos(angle), torch.sin(angle)
        cov = torch.stack([su2 * cs * cs + sv2 * sn * sn, su2 * sn * sn + sv2 * cs * cs,
                           (su2 - sv2) * cs * sn], dim=1)
        self.cores.append(_Core(self.channel[name], idx, self.cx[idx] + x0, self.cy[idx] + y0,
                                cov, flux * inner.clamp(min=0).flatten()))

    def set_colour(self, name: str, colour: torch.Tensor) -> None:
        """The (g, r, z) colour [B, 3] of component ``name``."""
        self.colours[:, :, self.channel[name]] = colour

    def images(self, channels: slice) -> torch.Tensor:
        """images[b, band] = sum over the components ``channels`` of colours * maps."""
        maps = self.maps[:, channels]
        images = torch.bmm(self.colours[:, :, channels], maps.reshape(self.b, maps.shape[1], -1))
        return images.reshape(self.b, 3, self.size, self.size)

    def core_images(self, p: dict, transmission: torch.Tensor) -> torch.Tensor:
        """The cores seen through the PSF, times their colour and the dust ``transmission``
        at the galaxy centre [B, 3]: ``[B, 3, H, W]``. A core is a Gaussian with the cusp's
        second moments plus the r-band PSF's and the pixel's (pixel^2 / 12), sampled at the
        pixel centres (one map per core for all three bands: the cusp is a pixel across, so
        the few percent by which the PSF is wider in g and sharper in z are left out)."""
        out = torch.zeros(self.b, 3, self.size, self.size, device=self.device)
        for core in self.cores:
            if not len(core.idx):
                continue
            sp2 = (p["psf_fwhm"][core.idx] / 2.3548) ** 2 + self.pix**2 / 12
            sxx = (core.cov[:, 0] + sp2)[:, None, None]
            syy = (core.cov[:, 1] + sp2)[:, None, None]
            sxy = core.cov[:, 2, None, None]
            det = sxx * syy - sxy * sxy
            x = self.coords[None, None, :] - core.x0[:, None, None]
            y = -self.coords[None, :, None] - core.y0[:, None, None]
            quad = (2 * sxy / det * x * y).neg_().add_(sxx / det * y * y).add_(syy / det * x * x)
            g = quad.mul_(-0.5).exp_().mul_(1 / (2 * math.pi * torch.sqrt(det)))
            weight = (self.colours[core.idx, :, core.channel] * transmission[core.idx]
                      * core.flux[:, None])
            out.index_add_(0, core.idx, g[:, None] * weight[:, :, None, None])
        return out


def _render_block(p: dict, size: int, gen: torch.Generator | None,
                  device: torch.device) -> torch.Tensor:
    """Render the galaxies of parameters ``p`` into ``[B, 3, size, size]`` fluxes.

    Each light component is drawn (unit flux times its flux) into its own single-band map;
    one batched matrix product then gives every map its (g, r, z) colour. Dust, the PSF and
    the sky noise come last, as in a real observation (no noise when ``gen`` is None).
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
    galaxy, transmission = _render_dust(canvas, p, q_disk)
    images = _render_psf(galaxy + canvas.images(slice(_N_GALAXY, None)), p, canvas.pix)
    images = images + canvas.core_images(p, transmission)
    if gen is None:
        return images
    return _render_sky_noise(images, p, gen)


def _merger_shares(p: dict):
    """A merger's light: tails ``tail_fraction`` of it, the rest shared by the primary and
    the companion as 1 : ``comp_ratio``. Returns (primary, companion, tails) shares [B]."""
    rest = 1 - p["tail_fraction"]
    primary = rest / (1 + p["comp_ratio"])
    return primary, rest - primary, p["tail_fraction"]


def _render_bulge(canvas: _Canvas, p: dict, q_disk: torch.Tensor) -> None:
    """Sersic bulges of disks and ellipticals (irregulars have a bulge fraction of 0); a
    merger's primary is an elliptical or a disk with a 30% bulge; a lens galaxy keeps the
    light the arcs do not have."""
    k, re, flux = p["kind"], p["half_light_radius"], canvas.flux
    is_smooth = _smooth_like(k)
    prim_smooth = (k == MERGER) & (p["primary_smooth"] > 0)
    q_bulge = torch.where(is_smooth | prim_smooth, p["axis_ratio"],
                          torch.maximum(q_disk, 0.6 + 0.4 * q_disk))
    re_bulge = torch.where(is_smooth, re, re * p["bulge_size"])
    re_bulge = torch.where(prim_smooth, re * 0.7, re_bulge)
    fb = torch.where(is_smooth, flux, flux * p["bulge_fraction"])
    fb = torch.where(k == LENS, flux * (1 - p["source_fraction"]), fb)
    primary = _merger_shares(p)[0]
    fb = torch.where(k == MERGER, flux * primary * torch.where(prim_smooth, 1.0, 0.3), fb)
    idx = torch.nonzero(fb > 0).squeeze(1)
    if len(idx):
        zero = torch.zeros(len(idx), device=canvas.device)
        canvas.add_sersic("bulge", idx, zero, zero, p["position_angle"][idx], re_bulge[idx],
                          p["sersic_n"][idx], q_bulge[idx], fb[idx])
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
    disk_merger = (k == MERGER) & (p["primary_smooth"] == 0)
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
    fd = torch.where(k[idx] == MERGER, flux[idx] * _merger_shares(p)[0][idx] * 0.7, fd)
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
    off = p["irr_offset"][idx] * r_i[:, None]  # along the major and minor axes
    pa = p["position_angle"][idx]
    c, s_ = torch.cos(pa), torch.sin(pa)
    canvas.add_sersic("disk", idx, off[:, 0] * c - off[:, 1] * s_, off[:, 0] * s_ + off[:, 1] * c,
                      pa, r_i, torch.ones_like(r_i), p["axis_ratio"][idx].clamp(min=0.5),
                      0.55 * flux[idx])
    # round clumps are separable in x and y: one batched matrix product renders all 8
    cu = p["clump_xy"][idx, :, 0] * r_i[:, None]  # [b, 8], along the major axis
    cv = p["clump_xy"][idx, :, 1] * r_i[:, None]
    c, s_ = c[:, None], s_[:, None]
    cx = cu * c - cv * s_ + p["center_x"][idx, None]  # [b, 8] offsets from the stamp centre
    cy = cu * s_ + cv * c + p["center_y"][idx, None]
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
    r_m, flux = p["half_light_radius"][idx], canvas.flux[idx]
    _, comp_share, tail_share = (share[idx] for share in _merger_shares(p))
    sep = p["comp_sep"][idx] * r_m
    ang = p["comp_angle"][idx]
    cxm, cym = sep * torch.cos(ang), sep * torch.sin(ang)
    canvas.add_sersic("companion", idx, cxm, cym, ang + 0.7, r_m * p["comp_size"][idx],
                      p["sersic_n"][idx], p["axis_ratio"][idx].clamp(min=0.5), flux * comp_share)
    xc, yc = canvas.x[idx] - cxm[:, None, None], canvas.y[idx] - cym[:, None, None]
    tails = _tidal_tails(p, idx, (canvas.x[idx], canvas.y[idx]), (xc, yc), canvas.soft)
    tails = tails / tails.sum((1, 2), keepdim=True).clamp(min=1e-12) / canvas.pix**2
    canvas.add("tail", idx, tails * (flux * tail_share)[:, None, None])


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
    # the arcs hold source_fraction of the system's observed light (the source's intrinsic flux
    # is that over the magnification, which the lens equation sets)
    src = src / src.sum((1, 2), keepdim=True).clamp(min=1e-30) / canvas.pix**2
    fs = canvas.flux[idx] * p["source_fraction"][idx]
    canvas.add("source", idx, src * fs[:, None, None])


def _render_neighbour(canvas: _Canvas, p: dict) -> None:
    """A neighbouring galaxy near the edge of some stamps, with its own colour."""
    idx = torch.nonzero(p["neighbour"] > 0).squeeze(1)
    if len(idx):
        rad = FIELD_ARCSEC / 2 * (0.45 + 0.5 * p["neighbour_xy"][idx, 0])
        ang = 2 * math.pi * p["neighbour_xy"][idx, 1]
        qn = 0.4 + 0.6 * p["neighbour_xy"][idx, 0]
        fn = 10 ** (-0.4 * (p["mag_r"][idx] + p["neighbour_dmag"][idx] - 22.5))
        canvas.add_sersic("neighbour", idx, rad * torch.cos(ang), rad * torch.sin(ang), ang * 3,
                          p["neighbour_re"][idx], p["sersic_n"][idx], qn, fn)
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
        sx = (rad * torch.cos(ang) + p["center_x"][idx])[:, None]
        sy = (rad * torch.sin(ang) + p["center_y"][idx])[:, None]
        fs = 10 ** (-0.4 * (p["star_mag"][idx] - 22.5))
        gx_ = _gaussian_1d(coords, sx, 0.05, pix) * fs[:, None]  # a point source
        canvas.add("star", idx, _gaussian_1d(-coords, sy, 0.05, pix)[:, :, None] * gx_[:, None])
    gr = p["star_colour"]
    canvas.set_colour("star",
                      torch.stack([10 ** (-0.4 * gr), torch.ones_like(gr), 10 ** (0.16 * gr)], 1))


def _render_dust(canvas: _Canvas, p: dict, q_disk: torch.Tensor):
    """Dust lanes of edge-on disks: attenuation along the mid-plane, strongest in g.

    Returns the galaxy's own light ``[B, 3, H, W]`` (neighbours and stars are in front of or
    behind the galaxy, not inside it) and the lane's transmission at each galaxy's centre
    ``[B, 3]`` (for the cores). The galaxy's intrinsic light is scaled up so that its observed
    r-band flux, after the lane, is the catalogue's ``mag_r``: the lane hides light, it does not
    change what the survey measured.
    """
    images = canvas.images(slice(0, _N_GALAXY))
    transmission = torch.ones(canvas.b, 3, device=canvas.device)
    idx = torch.nonzero(p["kind"] == EDGE_ON).squeeze(1)
    if not len(idx):
        return images, transmission
    re, soft = p["half_light_radius"], canvas.soft
    h = re[idx, None, None] / 1.678
    # the lane is a fixed fraction of the disk's drawn thickness (at least a pixel, see
    # _render_disk_and_arms), so it hides the same share of light at any sampling
    q_drawn = torch.sqrt(q_disk[idx] ** 2 + (soft / re[idx]) ** 2)[:, None, None]
    w = 0.4 * q_drawn * h
    v0 = torch.cos(p["inclination"][idx])[:, None, None] * 0.6 * h  # the near side hides the far
    u, v = canvas.u[idx], canvas.v[idx]
    lane = torch.exp(-0.5 * ((v - v0) / w) ** 2) * torch.exp(-(u / (2.5 * h)) ** 2)
    reddening = torch.tensor([1.2, 1.0, 0.7], device=images.device)  # g, r, z
    tau = p["dust_tau"][idx, None] * reddening  # [b, 3]
    seen = images[idx] * torch.exp(-tau[:, :, None, None] * lane[:, None])
    centre = torch.exp(-tau * torch.exp(-0.5 * (v0[:, 0, 0] / w[:, 0, 0]) ** 2)[:, None])
    # r-band light of the cores of these galaxies, before and after the lane
    core_r = torch.zeros(canvas.b, device=canvas.device)
    for core in canvas.cores:
        if core.channel < _N_GALAXY:
            core_r.index_add_(0, core.idx, core.flux * canvas.colours[core.idx, 1, core.channel])
    pix2 = canvas.pix**2
    before = images[idx, 1].sum((1, 2)) * pix2 + core_r[idx]
    after = seen[:, 1].sum((1, 2)) * pix2 + core_r[idx] * centre[:, 1]
    scale = (before / after.clamp(min=1e-30))[:, None]
    images[idx] = seen * scale[:, :, None, None]
    transmission[idx] = centre * scale
    return images, transmission


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
    return torch.bmm(torch.bmm(kern, flat), kern.transpose(1, 2)).reshape(-1, 3, size, size)


def _render_sky_noise(images: torch.Tensor, p: dict, gen: torch.Generator) -> torch.Tensor:
    """Gaussian sky noise of each galaxy's depth, per band (:func:`pixel_noise`): windows at
    random offsets in a bank of Gaussian numbers, with a random sign (a fresh torch.randn per
    pixel costs more than all the galaxy light together on a CPU). The offsets are drawn for a
    full block whatever its length, so a galaxy's noise depends only on ``(seed, index)``."""
    b, size, device = images.shape[0], images.shape[-1], images.device
    hw = size * size
    bank = _noise_bank(device)
    start = torch.randint(0, len(bank) - hw + 1, (BLOCK * 3,), generator=gen, device=device)
    sign = torch.randint(0, 2, (BLOCK, 3), generator=gen, device=device) * 2.0 - 1.0
    windows = bank.as_strided((len(bank) - hw + 1, hw), (1, 1))
    noise = torch.index_select(windows, 0, start[:b * 3]).reshape(b, 3, size, size)
    sky = pixel_noise(p, size) * sign[:b]
    return noise.mul_(sky[:, :, None, None]).add_(images)


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
# Public API
# --------------------------------------------------------------------------------------------


def _device(device) -> torch.device:
    return torch.device("cpu" if device is None else device)


def _in_parallel(fn, n_jobs: int, device: torch.device) -> list:
    """``[fn(0), ..., fn(n_jobs - 1)]``; on a CPU in threads, each op single-threaded.

    The render is hundreds of medium-sized ops: with intra-op threads every op ends in a
    barrier, which on a busy machine waits for a descheduled thread (20x slower seen on a shared
    2-core box). Single-threaded ops also make the bits independent of torch.get_num_threads().
    """
    if device.type != "cpu":
        return [fn(j) for j in range(n_jobs)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max(1, min(threads, n_jobs))) as pool:
            return list(pool.map(fn, range(n_jobs)))
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


def observe(cat: dict, *, size: int = 64, seed: int = 0, noise: bool = True, device=None):
    """Render the galaxies of a catalogue as 3-band (g, r, z) images, with their labels.

    No selection happens here: every row is drawn as it is. The apparent magnitude and size
    are recomputed from ``abs_mag_r``, ``half_light_radius_kpc`` and ``redshift``, so a galaxy
    moved to another redshift dims as ``D_L^-2`` and shrinks as ``D_A^-1`` (its surface
    brightness as ``(1 + z)^-4``) and its colours follow the redshift; its ``label_tier``
    stays the catalogue's.

    Args:
        cat: a dict as :func:`catalogue` returns (any number of rows, e.g. a slice or an
            edited copy).
        size: image side in pixels (>= 8); the field of view is always ``FIELD_ARCSEC``.
        seed: the noise's seed: row ``i`` gets the noise of ``(seed, i)``, so
            ``observe(catalogue(n, seed=s), seed=s)`` is ``simulate(n, seed=s)`` (to the last
            bit when ``n`` is a multiple of ``BLOCK``; otherwise within float rounding).
        noise: False gives the same galaxies without sky noise.
        device: where to render; default the catalogue's device.

    Returns:
        images: float32 ``[n, 3, size, size]``, surface brightness in g, r, z (nanomaggies per
            arcsec^2, sky-subtracted).
        labels: dict of length-``n`` tensors (see :func:`simulate`).
    """
    size, seed = check_int("size", size, 8, unit="pixels"), check_int("seed", seed)
    missing = [c for c in CATALOGUE_COLUMNS if c not in cat]
    if missing:
        raise ValueError(f"observe needs a catalogue from galaxies.catalogue(); these columns "
                         f"are missing: {', '.join(missing)}")
    n = len(cat["kind"])
    device = _device(device if device is not None else cat["kind"].device)
    _check_memory(n, size, device)
    _tables(device), _noise_bank(device)
    n_blocks = -(-n // BLOCK)

    def render(b: int):
        rows = slice(b * BLOCK, min(n, (b + 1) * BLOCK))
        p = {key: cat[key][rows].to(device) for key in CATALOGUE_COLUMNS}
        _apparent(p)
        gen = _block_generator(seed, b, device, stream=1) if noise else None
        return _render_block(p, size, gen, device), _labels(p)

    results = _in_parallel(render, n_blocks, device)
    if not results:
        p = {key: cat[key][:0].to(device) for key in CATALOGUE_COLUMNS}
        _apparent(p)
        return torch.empty(0, 3, size, size, device=device), _labels(p)
    images = torch.cat([r[0] for r in results])
    labels = {key: torch.cat([r[1][key] for r in results]) for key in results[0][1]}
    return images, labels


def _check_memory(n: int, size: int, device: torch.device) -> None:
    """A clear message instead of the allocator's (or the OOM killer) for an impossible n."""
    per_galaxy = 3 * size * size * 4 + 152  # float32 images + the labels, bytes
    if device.type == "cuda":
        memory = torch.cuda.get_device_properties(device).total_memory
    else:
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


def simulate(n: int, *, size: int = 64, seed: int = 0, device=None):
    """Simulate ``n`` galaxies as 3-band (g, r, z) images with Galaxy Zoo style labels:
    ``observe(catalogue(n, seed=seed), size=size, seed=seed)``.

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
            (index into ``KIND_NAMES``), ``mag_r`` (total observed r magnitude),
            ``abs_mag_r``, ``half_light_radius`` (arcsec), ``half_light_radius_kpc``,
            ``position_angle`` and ``inclination`` (deg, -1 when there is no disk),
            ``axis_ratio`` (of ellipticals, -1 otherwise), ``bulge_fraction``, ``sersic_n``,
            ``n_arms`` (0 where no arms are drawn), ``pitch_angle`` (deg), ``arm_strength``,
            ``bar``, ``einstein_radius`` (arcsec, -1 unless a lens), ``center_x``,
            ``center_y`` (arcsec), ``psf_fwhm`` (arcsec, r band), ``psf_depth`` (5-sigma r
            mag), ``sky_sigma`` (r-band noise of 1 arcsec^2, nanomaggies), ``neighbour``,
            ``star``.

    Example:
        >>> images, labels = simulate(8, size=32, seed=1)
        >>> images.shape, labels["odd_feature"].dtype
        (torch.Size([8, 3, 32, 32]), torch.int64)
    """
    n, size = check_int("n", n), check_int("size", size, 8, unit="pixels")
    seed = check_int("seed", seed)
    device = _device(device)
    _check_memory(n, size, device)
    # whole blocks: the vectorised maths of a CPU rounds the last bit by the shape of a batch,
    # so galaxy i is bit-identical for every n only when its block is rendered in full
    whole = BLOCK * -(-n // BLOCK)
    images, labels = observe(catalogue(whole, seed=seed, device=device), size=size, seed=seed,
                             device=device)
    return images[:n], {key: val[:n] for key, val in labels.items()}


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
