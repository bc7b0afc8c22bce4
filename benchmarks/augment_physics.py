"""Do the augmentations keep the physics? Sky noise, PSF width, noise estimate, flux.

    python benchmarks/augment_physics.py

Four measurements of ``phys555_cl.augment`` and the model's input normalisation
(``encoders.AsinhStretch``), on images whose truth is known:

1. **sky noise of the views**: pure Gaussian sky noise (sigma 0.05 nanomaggies per arcsec^2 in
   r at 32 pixels, twice that at 64; g and z 0.8 and 1.6 times r), one step of
   ``GalaxyAugment()`` at a time and the whole pipeline: the pixel noise of each view over
   that of its input, per image and band (min and median);
2. **flux reaches the model**: the largest change of the normalised input
   ``SimCLR(...).normalize`` after a 0.2-mag brightening (and a 2-mag dimming) of simulated
   galaxies;
3. **PSF blur in arcsec**: the FWHM (from the variance) of ``RandomPSFBlur()`` applied to a
   point source, over 2000 draws, at 32, 64 and 96 pixels, r band;
4. **noise estimate**: ``robust_sigma`` over the true noise for a centred exponential and de
   Vaucouleurs galaxy of half-light radius 1, 3, 5, 8 arcsec and r = 14, 16, 18, at 32 and 64
   pixels (median over 32 noise draws), and on simulated galaxies by half-light radius.

The script only uses names that existed before the noise restoration and the arcsec blur
(``GalaxyAugment().steps``, ``RandomPSFBlur()``, ``robust_sigma``, ``AsinhStretch``), so it
runs on an older checkout too (``PYTHONPATH=<old checkout> python ...``) for a before/after.
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F

from phys555_cl import augment, galaxies, photometry
from phys555_cl.encoders import SimCLR, build_encoder

BAND = torch.tensor([0.8, 1.0, 1.6])


def sky_noise(b, size, seed=0):
    sigma = 0.05 * (size / 32) * BAND
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, size, size, generator=g) * sigma[:, None, None]


def view_noise(n=256):
    print("1. pixel noise of the views / of the input (per image and band): min, median")
    for size in (32, 64):
        x = sky_noise(n, size)
        aug = augment.GalaxyAugment()
        named = [(type(s).__name__, s) for s in aug.steps]
        named.insert(2, ("rotation only", augment.RandomAffine(max_shift=0, scale=(1, 1))))
        named.append(("GalaxyAugment()", aug))
        quiet = augment.GalaxyAugment(noise_level=(0, 0))
        named.append(("GalaxyAugment(noise_level=(0, 0))", quiet))
        for name, step in named:
            v = step(x, generator=torch.Generator().manual_seed(1))
            r = v.std(dim=(2, 3)) / x.std(dim=(2, 3))
            line = f"   {size} px  {name:34s} {r.min():.2f}  {r.median():.2f}"
            if name.startswith("GalaxyAugment"):  # all bands of a view, each in its units
                per_view = (v / x.std(dim=(2, 3))[..., None, None]).flatten(1).std(dim=1)
                line += f"   (per view: {per_view.min():.2f}  {per_view.median():.2f})"
            print(line)


def flux_seen(n=512):
    print("2. largest change of the normalised input after a brightness change")
    normalize = SimCLR(build_encoder("compact", width=4)).normalize
    x = galaxies.simulate(n, size=32, seed=11)[0]
    for dm in (-0.2, 2.0):
        y = x * 10 ** (-0.4 * dm)
        d = (normalize(y) - normalize(x)).abs().amax(dim=(1, 2, 3))
        print(f"   dm = {dm:+.1f} mag: max {d.max():.3g}, median over galaxies {d.median():.3g}")


def blur_fwhm(n=2000):
    print("3. FWHM of the extra blur in r, arcsec (RandomPSFBlur() defaults): min, max")
    for size in (32, 64, 96):
        x = torch.zeros(n, 3, size, size, dtype=torch.float64)
        x[..., size // 2, size // 2] = 1
        y = augment.RandomPSFBlur()(x, generator=torch.Generator().manual_seed(0))[:, 1]
        p = y.sum(dim=-2) / y.sum(dim=(-2, -1))[:, None]
        pos = torch.arange(size, dtype=p.dtype)
        mean = (p * pos).sum(-1, keepdim=True)
        fwhm = 2 * math.sqrt(2 * math.log(2)) * ((p * (pos - mean) ** 2).sum(-1)).sqrt() * 32 / size
        print(f"   {size} px: {fwhm.min():.2f} - {fwhm.max():.2f} arcsec")


def profile(size, r_e, mag, kind, oversample=4):
    b, n = (1.678, 1) if kind == "exp" else (7.669, 4)
    flux = 10 ** (-0.4 * (mag - 22.5))
    i_e = flux / (r_e**2 * 2 * math.pi * n * math.exp(b) * math.gamma(2 * n) / b ** (2 * n))
    t = (torch.arange(size * oversample, dtype=torch.float64) + 0.5) * 32 / size / oversample - 16
    radius = torch.sqrt(t[:, None] ** 2 + t[None, :] ** 2)
    img = i_e * torch.exp(-b * ((radius / r_e) ** (1 / n) - 1))
    return F.avg_pool2d(img[None, None], oversample)[0, 0].float()


def noise_estimate():
    print("4. robust_sigma / true noise, median over 32 noise draws (r = 14 / 16 / 18)")
    for size in (32, 64):
        noise = sky_noise(32, size, seed=3)
        sigma = 0.05 * (size / 32) * BAND
        for kind in ("exp", "deV"):
            cells = []
            for r_e in (1, 3, 5, 8):
                ratios = [(photometry.robust_sigma(profile(size, r_e, m, kind) + noise) / sigma)
                          .median().item() for m in (14, 16, 18)]
                cells.append(f"Re {r_e}\": " + " / ".join(f"{r:.2f}" for r in ratios))
            print(f"   {size} px {kind}: " + "; ".join(cells))
    if not hasattr(galaxies, "pixel_noise"):
        return
    print("   simulated galaxies (simulate(2048, seed=5)), by half-light radius: median, 95%")
    for size in (32, 64):
        x, lab = galaxies.simulate(2048, size=size, seed=5)
        ratio = (photometry.robust_sigma(x) / galaxies.pixel_noise(lab, size))[:, 1]
        re = lab["half_light_radius"]
        cells = []
        for lo, hi in ((0, 2), (2, 3), (3, 5), (5, 10)):
            s = (re >= lo) & (re < hi)
            if s.sum() >= 5:
                cells.append(f"{lo}-{hi}\" (n={int(s.sum())}): {ratio[s].median():.2f}, "
                             f"{ratio[s].quantile(0.95):.2f}")
        print(f"   {size} px: " + "; ".join(cells))


if __name__ == "__main__":
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print(f"phys555_cl from {augment.__file__}", file=sys.stderr)
    view_noise()
    flux_seen()
    blur_fwhm()
    noise_estimate()
