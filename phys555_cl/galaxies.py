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

Three files: this one (the story, :func:`observe` and :func:`simulate`);
``galaxy_catalogue`` (the survey's facts as constants, and :func:`catalogue`: which galaxies
there are); ``galaxy_render`` (how a block of catalogue rows becomes pixels, the ``_render_*``
helpers). Imports run one way: galaxies -> galaxy_render -> galaxy_catalogue.

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
- **Profiles.** Sersic bulges and ellipticals rendered as pixel integrals (3x3 Gauss-Legendre
  points per pixel near the centre, with the light of the cusp inside about a pixel put in
  analytically), which agrees with GalSim (``benchmarks/validate_simulator.py``); exponential
  disks seen at an inclination ``i`` with an intrinsic thickness ``q0`` (projected axis ratio
  ``sqrt(cos^2 i + q0^2 sin^2 i)``). Every component is normalised analytically.
- **Observation.** A per-band, per-galaxy Gaussian PSF (FWHM 0.6-1.2 arcsec in r, wider in g,
  sharper in z; the pixel is counted once, so a star is the PSF at any sampling), Gaussian
  sky noise set by a per-galaxy 5-sigma point-source depth around DECaLS DR9's
  (:data:`PSF_DEPTH`, r = 23.3-24.1), the same in the sky at any sampling, a position jitter
  of about 1.5 arcsec, random orientation, and sometimes a neighbouring galaxy or a star.

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

import os

import torch

from phys555_cl._checks import check_int
from phys555_cl.galaxy_catalogue import (
    ABS_MAG_RANGE,
    BLOCK,
    CATALOGUE_COLUMNS,
    EDGE_ON,
    FACE_ON,
    FIELD_ARCSEC,
    IMAGING_LIMIT,
    IRREGULAR,
    KIND_NAMES,
    KIND_PROBS,
    LABEL_KEYS,
    LABEL_SCHEMA,
    LENS,
    MERGER,
    MORPHOLOGY_LIMIT,
    MORPHOLOGY_TASKS,
    N_CLASSES,
    ODD_FEATURE_NAMES,
    PSF_DEPTH,
    REDSHIFT_THRESHOLD,
    RING,
    SEEING_FWHM,
    SIZE_WINDOW,
    SMOOTH,
    SPEC_LIMIT,
    _apparent,
    _block_generator,
    _device,
    _in_parallel,
    _labels,
    _tables,
    catalogue,
    morphology_completeness,
    pixel_noise,
    spectroscopic_completeness,
)
from phys555_cl.galaxy_render import _render_block
from phys555_cl.galaxy_seeing import _noise_bank

__all__ = [
    "catalogue",
    "observe",
    "simulate",
    "asinh_stretch",
    "CATALOGUE_COLUMNS",
    "KIND_NAMES",
    "KIND_PROBS",
    "LABEL_KEYS",
    "LABEL_SCHEMA",
    "MORPHOLOGY_TASKS",
    "N_CLASSES",
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
    "SEEING_FWHM",
    "spectroscopic_completeness",
    "morphology_completeness",
    "pixel_noise",
    # the integer code of each kind (labels["kind"]), in KIND_NAMES order
    "SMOOTH", "FACE_ON", "EDGE_ON", "RING", "IRREGULAR", "LENS", "MERGER",
]

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
