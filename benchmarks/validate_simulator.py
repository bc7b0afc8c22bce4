"""Is the simulated sky true? Every physics check of the galaxy simulator, in one table.

    .venv/bin/python benchmarks/validate_simulator.py            # about a minute on 2 cores
    .venv/bin/python benchmarks/validate_simulator.py --quick    # fewer galaxies (tests)

Each row: a check, what was measured, its target, and whether it holds.

1. Profiles against GalSim (Rowe et al. 2015), the field's reference renderer: one noise-free
   elliptical of Sersic index n, half-light radius R_e (pixels) and axis ratio q, made by
   `galaxies.observe`, against `galsim.Sersic(n, half_light_radius=R_e sqrt(q)).shear(q=q)`
   convolved with the same Gaussian PSF and drawn with pixel integration, at 32 px (1"/px, the
   shipped model's sampling) and 64 px (0.5"/px). Targets: total flux within 1%, L1 difference
   within 5% of the flux.
2. Flux and size against redshift: a galaxy (exponential, R_e = 1.5 kpc) moved through
   `observe` to z = 0.03 ... 0.45 (PSF of 0.01", 512 px): image flux against D_L^-2 and the measured
   half-light radius against D_A^-1 (within 2%), mean surface brightness inside R_e against
   (1 + z)^-4 (within 0.05 mag). No k-correction is applied to the r band.
3. Photometry against `mag_r`, per kind: noise-free 64-px stamps without neighbour or star,
   the whole stamp as aperture; median difference within 0.05 mag.
4. Depth: the 5-sigma r-band depth in a 4" x 4" aperture (aperture-corrected for the PSF)
   from the sky noise of the stamps at 32 and 64 px: the same within 0.1 mag. The catalogue's
   PSF depth is DECaLS DR9's (median 23.7).
5. Selection: no galaxy outside r < 19.5 or the size window; number counts rising all the way
   to the limit (no pile-up), with their slope in dex per mag.
6. Colours of smooth galaxies (g - r, r - z from noise-free photometry) against approximate
   red-sequence colours in DECam g r z (read off published SDSS / Legacy Survey colour-redshift
   tracks of passive galaxies; +-0.1 mag), within 0.1 mag.
7. Augmented views keep the sky's noise: on noise-only stamps, every view of the default
   pipeline has at least 90% of the input's pixel noise.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch

from phys555_cl import galaxies as G
from phys555_cl import galaxy_catalogue as GC

REFERENCE_COLOURS = {  # z: (g - r, r - z) of passive galaxies, DECam, approximate (+-0.1 mag)
    0.05: (0.77, 0.75),
    0.15: (1.00, 0.90),
    0.30: (1.40, 1.10),
}


def _row(cat: dict, i: int, **changes) -> dict:
    """Row ``i`` of a catalogue as a one-row catalogue, with some columns changed."""
    one = {k: v[i:i + 1].clone() for k, v in cat.items()}
    for key, value in changes.items():
        one[key] = torch.full_like(one[key], value)
    return one


def _stack(rows: list[dict]) -> dict:
    return {k: torch.cat([r[k] for r in rows]) for k in rows[0]}


def _single_sersic_rows(n_values, re_px_values, q_values, fwhm, size):
    """One-row catalogues of a lone elliptical (no neighbour, star or jitter) per case."""
    cat = G.catalogue(1, seed=7)
    pix = G.FIELD_ARCSEC / size
    z = 0.1
    _, kpc = GC._distances(torch.tensor([z]))
    rows, cases = [], []
    for n in n_values:
        for re_px in re_px_values:
            for q in q_values:
                rows.append(_row(cat, 0, kind=G.SMOOTH, redshift=z, sersic_n=n, axis_ratio=q,
                                 half_light_radius_kpc=float(re_px * pix * kpc),
                                 position_angle=0.7, center_x=0.3 * pix, center_y=-0.2 * pix,
                                 psf_fwhm=fwhm, neighbour=0, star=0, colour_jitter=0.0,
                                 abs_mag_r=-21.0))
                cases.append((n, re_px, q))
    return _stack(rows), cases


def galsim_agreement(quick: bool) -> list[tuple]:
    try:
        import galsim
    except ImportError:
        return [("GalSim agreement", "galsim is not installed (pip install galsim)", "-", "skip")]
    n_values = (0.5, 1.0, 2.5, 4.0, 6.0)
    re_values = (0.5, 1.0, 2.0, 4.0, 8.0) if not quick else (0.5, 2.0, 8.0)
    q_values = (1.0, 0.6, 0.3)
    out = []
    for size in (32, 64):
        pix = G.FIELD_ARCSEC / size
        for fwhm in (0.6, 1.2):
            cat, cases = _single_sersic_rows(n_values, re_values, q_values, fwhm, size)
            images, labels = G.observe(cat, size=size, noise=False)
            worst_l1, worst_flux, failures = 0.0, 0.0, []
            for i, (n, re_px, q) in enumerate(cases):
                flux = float(10 ** (-0.4 * (labels["mag_r"][i] - 22.5)))
                re = float(labels["half_light_radius"][i])
                prof = galsim.Sersic(n=n, half_light_radius=re * math.sqrt(q), flux=flux)
                prof = galsim.Convolve(prof.shear(q=q, beta=0.7 * galsim.radians),
                                       galsim.Gaussian(fwhm=fwhm))
                ref = prof.drawImage(nx=size, ny=size, scale=pix,
                                     offset=(0.3, -0.2)).array[::-1]
                ours = images[i, 1].numpy() * pix * pix
                d_flux = ours.sum() / ref.sum() - 1
                l1 = np.abs(ours - ref).sum() / ref.sum()
                worst_l1, worst_flux = max(worst_l1, l1), max(worst_flux, abs(d_flux))
                if l1 > 0.05 or abs(d_flux) > 0.01:
                    failures.append(f"n={n:g} Re={re_px:g}px q={q:g}: L1 {100 * l1:.1f}%")
            ok = not failures
            detail = "; ".join(failures[:4]) + (" ..." if len(failures) > 4 else "")
            out.append((f"GalSim {size} px, PSF {fwhm}\" ({len(cases)} profiles)",
                        f"worst |dF| {100 * worst_flux:.2f}%, worst L1 {100 * worst_l1:.1f}%"
                        + (f"; fails: {detail}" if failures else ""),
                        "|dF| < 1%, L1 < 5%", "yes" if ok else f"no ({len(failures)})"))
    return out


def star_agreement() -> list[tuple]:
    """A foreground star (the PSF itself) against galsim.Gaussian drawn with pixel
    integration, at a sub-pixel position, for each size and seeing."""
    try:
        import galsim
    except ImportError:
        return [("star vs GalSim", "galsim is not installed (pip install galsim)", "-", "skip")]
    cat = G.catalogue(1, seed=7)
    worst, cases = 0.0, 0
    for size in (32, 64):
        pix = G.FIELD_ARCSEC / size
        for fwhm in (0.6, 0.9, 1.2):
            for xy in ((0.3, 0.1), (0.55, 0.37), (0.8, 0.8)):
                row = _row(cat, 0, abs_mag_r=-5.0, neighbour=0, star=1, psf_fwhm=fwhm,
                           star_mag=16.0, center_x=0.0, center_y=0.0)
                row["star_xy"] = torch.tensor([xy])
                images, _ = G.observe(row, size=size, noise=False)
                rad = G.FIELD_ARCSEC / 2 * (0.35 + 0.6 * xy[0])
                sx, sy = rad * math.cos(2 * math.pi * xy[1]), rad * math.sin(2 * math.pi * xy[1])
                ref = galsim.Gaussian(fwhm=fwhm, flux=10 ** (-0.4 * (16.0 - 22.5))).drawImage(
                    nx=size, ny=size, scale=pix, offset=(sx / pix, sy / pix)).array[::-1]
                ours = images[0, 1].numpy() * pix * pix
                worst = max(worst, float(np.abs(ours - ref).sum() / ref.sum()))
                cases += 1
    return [(f"star vs GalSim ({cases} stars, 32 and 64 px)", f"worst L1 {100 * worst:.2f}%",
             "L1 < 1%", "yes" if worst < 0.01 else "no")]


def _half_light_radius(image: np.ndarray, pix: float, cx: float, cy: float) -> float:
    """Half-light radius (arcsec) of a round exponential image, from its second moment.

    For an exponential disk of scale length h, <r^2> = 6 h^2 and R_e = 1.678 h; pixel
    integration adds pix^2 / 12 per axis to the moment measured at pixel centres, which is
    taken off. (A growth curve on the pixel grid is biased by several percent at 4 pixels.)
    """
    size = image.shape[-1]
    coords = (np.arange(size) + 0.5 - size / 2) * pix
    r2 = (coords[None, :] - cx) ** 2 + (-coords[:, None] - cy) ** 2
    second = (image * r2).sum() / image.sum() - pix * pix / 6
    return float(1.678 * math.sqrt(second / 6))


def redshift_scaling() -> list[tuple]:
    from astropy.cosmology import Planck18

    size = 512  # fine pixels: R_e is still 4 pixels at z = 0.45
    pix = G.FIELD_ARCSEC / size
    zs = (0.03, 0.05, 0.1, 0.2, 0.3, 0.45)
    cat = G.catalogue(1, seed=3)
    rows = [_row(cat, 0, kind=G.SMOOTH, redshift=z, sersic_n=1.0, axis_ratio=1.0,
                 half_light_radius_kpc=1.5, abs_mag_r=-21.0, psf_fwhm=0.01, neighbour=0,
                 star=0, center_x=0.0, center_y=0.0) for z in zs]
    images, labels = G.observe(_stack(rows), size=size, noise=False)
    flux = images[:, 1].sum((1, 2)).numpy() * pix * pix
    radius = np.array([_half_light_radius(im[1].numpy(), pix, 0.0, 0.0) for im in images])
    d_l = Planck18.luminosity_distance(zs).value
    d_a = Planck18.angular_diameter_distance(zs).value
    flux_err = np.abs(flux / flux[2] / (d_l[2] / d_l) ** 2 - 1).max()
    size_err = np.abs(radius / radius[2] / (d_a[2] / d_a) - 1).max()
    sb = -2.5 * np.log10(0.5 * flux / (math.pi * radius**2))
    sb_expected = sb[2] + 10 * np.log10((1 + np.array(zs)) / (1 + zs[2]))
    sb_err = np.abs(sb - sb_expected).max()
    true = 1.5 / Planck18.kpc_proper_per_arcmin(zs).value * 60
    shown = ", ".join(f"z={z}: {r:.3f}\" (R_e {t:.3f})" for z, r, t in zip(zs, radius, true))
    return [
        ("flux vs D_L^-2 (z 0.03-0.45)", f"worst {100 * flux_err:.2f}%", "< 2%",
         "yes" if flux_err < 0.02 else "no"),
        ("R_e vs D_A^-1 (z 0.03-0.45)", f"worst {100 * size_err:.2f}% ({shown})", "< 2%",
         "yes" if size_err < 0.02 else "no"),
        ("<SB> within R_e vs (1+z)^-4", f"worst {sb_err:.3f} mag", "< 0.05 mag",
         "yes" if sb_err < 0.05 else "no"),
    ]


def photometry_per_kind(n: int) -> list[tuple]:
    cat = G.catalogue(n, seed=11)
    cat["neighbour"].zero_()
    cat["star"].zero_()
    images, labels = G.observe(cat, size=64, noise=False)
    pix = G.FIELD_ARCSEC / 64
    flux = images[:, 1].sum((1, 2)) * pix * pix
    dmag = (22.5 - 2.5 * torch.log10(flux) - labels["mag_r"]).numpy()
    kinds = labels["kind"].numpy()
    medians = {name: float(np.median(dmag[kinds == k])) for k, name in enumerate(G.KIND_NAMES)
               if (kinds == k).any()}
    worst = max(abs(v) for v in medians.values())
    shown = ", ".join(f"{k} {v:+.3f}" for k, v in medians.items())
    return [("photometry - mag_r, median per kind", shown, "|median| < 0.05 mag",
             "yes" if worst < 0.05 else "no")]


def _aperture_depth(size: int, n: int) -> float:
    cat = G.catalogue(n, seed=5)
    clean, labels = G.observe(cat, size=size, noise=False)
    noisy, _ = G.observe(cat, size=size, seed=5)
    pix = G.FIELD_ARCSEC / size
    sigma_pix = (noisy - clean)[:, 1].flatten(1).std(1) * pix * pix  # flux per pixel
    coords = (torch.arange(size) + 0.5 - size / 2) * pix
    # a 4" x 4" square: the same area in whole pixels at 32 and 64 px
    inside = (coords[None, :].abs() < 2.0) & (coords[:, None].abs() < 2.0)
    # aperture correction: the share of a point source's flux inside, for each seeing
    sigma = labels["psf_fwhm"][:, None, None] / 2.3548
    half = pix / 2
    gx = 0.5 * (torch.erf((coords + half) / (math.sqrt(2) * sigma))
                - torch.erf((coords - half) / (math.sqrt(2) * sigma)))  # [n, 1, size]
    psf = gx.transpose(1, 2) * gx
    frac = (psf * inside).sum((1, 2))
    depth = 22.5 - 2.5 * torch.log10(5 * sigma_pix * math.sqrt(int(inside.sum())) / frac)
    return float(depth.median())


def depth(n: int) -> list[tuple]:
    d32, d64 = _aperture_depth(32, n), _aperture_depth(64, n)
    cat = G.catalogue(n, seed=5)
    return [("5-sigma depth, 4\" square aperture", f"32 px {d32:.2f}, 64 px {d64:.2f} "
             f"(PSF depth median {float(cat['psf_depth'].median()):.2f}; DECaLS DR9 ~23.7)",
             "|32 - 64| < 0.1 mag", "yes" if abs(d32 - d64) < 0.1 else "no")]


def selection(n: int) -> list[tuple]:
    cat = G.catalogue(n, seed=13)
    mag, re = cat["mag_r"], cat["half_light_radius"]
    outside = int(((mag >= G.IMAGING_LIMIT) | (re <= G.SIZE_WINDOW[0])
                   | (re >= G.SIZE_WINDOW[1])).sum())
    edges = np.arange(16.0, G.IMAGING_LIMIT + 1e-6, 0.5)
    counts, _ = np.histogram(mag.numpy(), bins=edges)
    rising = bool(np.all(np.diff(counts) > 0))
    slope = np.polyfit(0.5 * (edges[1:] + edges[:-1]), np.log10(counts), 1)[0]
    z = cat["redshift"].numpy()
    return [
        ("catalogue inside the selection", f"{outside} of {n} outside", "0",
         "yes" if outside == 0 else "no"),
        ("number counts r = 16-19.5", f"{counts.tolist()} per 0.5 mag, slope {slope:.2f} dex/mag",
         "rising to the limit", "yes" if rising else "no"),
        ("redshift distribution", f"median {np.median(z):.3f}, 5-95% "
         f"{np.percentile(z, 5):.3f}-{np.percentile(z, 95):.3f}", "-", "info"),
    ]


def colours(n: int) -> list[tuple]:
    cat = G.catalogue(n, seed=17)
    smooth = torch.nonzero(cat["kind"] == G.SMOOTH).squeeze(1)
    rows = {k: v[smooth] for k, v in cat.items()}
    rows["neighbour"].zero_()
    rows["star"].zero_()
    out = []
    for z, (gr_ref, rz_ref) in REFERENCE_COLOURS.items():
        rows["redshift"].fill_(z)
        images, _ = G.observe(rows, size=32, noise=False)
        flux = images.sum((2, 3))
        gr = float(torch.median(-2.5 * torch.log10(flux[:, 0] / flux[:, 1])))
        rz = float(torch.median(-2.5 * torch.log10(flux[:, 1] / flux[:, 2])))
        worst = max(abs(gr - gr_ref), abs(rz - rz_ref))
        out.append((f"smooth colours at z = {z}", f"g-r {gr:.2f} (ref {gr_ref}), r-z {rz:.2f} "
                    f"(ref {rz_ref})", "within 0.1 mag", "yes" if worst <= 0.1 else "no"))
    return out


def augmented_noise() -> list[tuple]:
    from phys555_cl.augment import GalaxyAugment

    out = []
    for size in (32, 64):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(256, 3, size, size, generator=gen) * torch.tensor([0.8, 1.0, 1.6])[
            None, :, None, None] * 0.05
        views = GalaxyAugment()(x, generator=gen)
        # per view, the three bands together (each in units of its own sky noise)
        band = torch.tensor([0.8, 1.0, 1.6])[None, :, None, None] * 0.05
        ratio = (views / band).flatten(1).std(1) / (x / band).flatten(1).std(1)
        per_band = (views.flatten(2).std(2) / x.flatten(2).std(2)).flatten()
        out.append((f"view noise / input noise, {size} px", f"min {float(ratio.min()):.2f}, "
                    f"median {float(ratio.median()):.2f} (per band: min "
                    f"{float(per_band.min()):.2f})", ">= 0.90 per view",
                    "yes" if float(ratio.min()) >= 0.9 else "no"))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer galaxies and profiles")
    args = parser.parse_args(argv)
    n = 512 if args.quick else 2048
    rows = (galsim_agreement(args.quick) + star_agreement() + redshift_scaling()
            + photometry_per_kind(n) + depth(n // 2) + selection(4 * n) + colours(n)
            + augmented_noise())
    width = max(len(r[0]) for r in rows)
    print(f"{'check':<{width}}  holds  target / measured")
    for name, measured, target, ok in rows:
        print(f"{name:<{width}}  {ok:<5}  {target}  |  {measured}")
    return 0 if all(r[3] in ("yes", "info", "skip") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
