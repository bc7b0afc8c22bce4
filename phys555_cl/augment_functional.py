"""The change each galaxy augmentation makes, for parameters already drawn.

One plain function per change, as ``torchvision.transforms.functional`` has them: the images and
the parameters of every image in, the changed images out, with nothing random inside.
``phys555_cl.augment`` holds the other half, the modules that draw the parameters of every image
from a generator and call these (``RandomReddening`` draws ``ebv`` and calls
``redden(x, ebv)``), and says why each change leaves a galaxy the same galaxy. The functions are
importable from there too (``augment.redden``).

=================  ===============================  ================================================
function           parameters per image             change
=================  ===============================  ================================================
flip               which [B] bool                   mirror left-right
affine             angle [B] deg, shift [B, 2] px,  rotate, shift, rescale about the centre (flux
                   scale [B]                        kept), optionally crop
psf_blur           fwhm [B] arcsec in r             extra Gaussian seeing, wider in bluer bands
redden             ebv [B] mag                      flux_b * 10**(-0.4 R_b E(B-V)), Milky-Way dust
brighten           delta_mag [B] mag                every band * 10**(-0.4 dm), colours kept
add_noise          std [B, C], noise [B, C, H, W]   x + std * noise
=================  ===============================  ================================================

Every function takes a batch ``x`` of shape ``[B, C, H, W]`` on any device; a parameter given
as a single number is used for every image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from phys555_cl.galaxies import FIELD_ARCSEC

__all__ = ["flip", "affine", "gaussian_kernels_1d", "psf_blur", "redden", "brighten",
           "add_noise", "DECAM_EXTINCTION", "DECAM_WAVELENGTH_NM", "FWHM_PER_SIGMA"]

# A_band / E(B-V) for DECam g, r, z (Schlafly & Finkbeiner 2011, R_V = 3.1), as used by the
# Legacy Surveys and by Hayat et al. 2021.
DECAM_EXTINCTION = (3.214, 2.165, 1.211)
# Effective wavelengths of DECam g, r, z in nm, for the wavelength dependence of the seeing.
DECAM_WAVELENGTH_NM = (480.0, 640.0, 920.0)
#: FWHM of a Gaussian over its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"augmentations expect a torch.Tensor of images [B, C, H, W], got "
                         f"{type(x).__name__}; convert with torch.as_tensor(x).float()")
    if x.ndim != 4:
        raise ValueError(
            f"augmentations expect a batch of images of shape [B, C, H, W], got shape "
            f"{tuple(x.shape)}; add a batch dimension with x[None] for a single image"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"augmentations expect floating-point fluxes, got dtype {x.dtype}; for 8-bit "
            f"pictures (0-255) convert first with x.float() / 255"
        )
    if x.shape[0] == 0:
        raise ValueError(f"augmentations got an empty batch (shape {tuple(x.shape)}); pass at "
                         f"least one image")


def _per_image(name: str, value, x: torch.Tensor, *trailing: int) -> torch.Tensor:
    """``value`` as a tensor ``[B, *trailing]`` on the device of the images ``x`` ``[B, ...]``;
    a single number is used for every image."""
    shape = (x.shape[0], *trailing)
    t = torch.as_tensor(value, device=x.device)
    if t.ndim == 0:
        t = t.expand(shape)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must hold the value of every image, shape {list(shape)} for "
                         f"{x.shape[0]} images, got shape {list(t.shape)}")
    return t


def flip(x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images where ``which`` is True; the others are returned as they
    are. Exact (no interpolation).

    Shapes: ``x [B, C, H, W]``, ``which [B]`` bool ``-> [B, C, H, W]``.
    """
    _check_batch(x)
    which = _per_image("which", which, x)
    return torch.where(which[:, None, None, None], x.flip(-1), x)


def affine(x: torch.Tensor, angle, shift, scale, out_size: int | None = None) -> torch.Tensor:
    """Rotate each image by ``angle`` degrees, shift it by ``shift`` pixels and rescale it by
    ``scale`` (> 1 makes the galaxy look bigger), about the image centre, in one bilinear
    resampling; the total flux is kept.

    The output is multiplied by ``1 / scale**2`` so a rescaled galaxy keeps its flux (a
    rotation or shift keeps it by itself, up to interpolation). Pixels that come from outside
    the input are filled by reflection, so the corners of a rotated image keep sky noise.
    ``out_size`` crops the centre of the result (default: the input's size).

    Shapes: ``x [B, C, H, W]``, ``angle [B]`` degrees, ``shift [B, 2]`` pixels (x, y),
    ``scale [B]`` ``-> [B, C, out_size, out_size]`` (or ``[B, C, H, W]``).

    Raises:
        ValueError: for images that are not a float batch ``[B, C, H, W]`` or parameters that do
            not hold one value (one pair for ``shift``) per image.
    """
    _check_batch(x)
    b, c, h, w = x.shape
    out_h, out_w = (out_size, out_size) if out_size else (h, w)
    angle = _per_image("angle", angle, x) * (math.pi / 180.0)
    shift, s = _per_image("shift", shift, x, 2), _per_image("scale", scale, x)
    dx, dy = shift[:, 0], shift[:, 1]
    # theta maps output coordinates (normalised to [-1, 1]) to input coordinates. The output
    # grid covers out/in of the input, so a crop is a plain factor; rotating by -angle and
    # zooming by 1/s turns the *image* by +angle and enlarges it by s.
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    fx, fy = out_w / w, out_h / h
    row_x = torch.stack([cos * fx, sin * fy * h / w, -2 * dx / w], dim=-1)
    row_y = torch.stack([-sin * fx * w / h, cos * fy, -2 * dy / h], dim=-1)
    theta = torch.stack([row_x, row_y], dim=1).to(x.dtype)  # [B, 2, 3]
    grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out / (s * s).to(x.dtype)[:, None, None, None]


def gaussian_kernels_1d(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels sampled at the pixel centres, each with a variance of
    exactly ``sigma**2`` (pixels^2). Shapes: ``sigma [N] -> [N, 2*radius+1]``.

    A Gaussian sampled at pixel centres is narrower than its ``sigma`` once ``sigma`` falls
    below about a pixel (the extra seeing of a 32-pixel stamp is half a pixel), so the width
    of each sampled kernel is solved (bisection) to give it the variance ``sigma**2``: the
    quantity that adds up when blurs are combined, as seeing does. ``sigma = 0`` gives the
    identity kernel. ``radius`` should be at least ``3 * sigma``.
    """
    n2 = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float64) ** 2
    var = sigma.detach().to(torch.float64).clamp_min(1e-4) ** 2  # [N]

    def kernel(t):  # the sampled Gaussian exp(-n^2 t), t = 1 / (2 width^2), normalised
        w = torch.exp(-n2[None, :] * t[:, None])
        return w / w.sum(dim=1, keepdim=True)

    # bracket log t: exp(-n^2 t) has a variance below 1 / (2t), the continuous Gaussian's, and
    # above that of its three central taps, 2 e^-t / (1 + 2 e^-t) (which solves for t when
    # sigma^2 < 2/3; wider kernels are within a factor e of the continuous t)
    hi = (0.5 / var).log()
    lo = torch.where(var < 0.5, (2.0 / var.clamp_max(0.5) - 2.0).log().log(), hi - 1.0)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        too_narrow = (kernel(mid.exp()) * n2).sum(dim=1) < var  # larger t is narrower
        hi = torch.where(too_narrow, mid, hi)
        lo = torch.where(too_narrow, lo, mid)
    return kernel((0.5 * (lo + hi)).exp()).to(sigma.dtype)


def _band_factors(channels: int) -> torch.Tensor:
    """How much wider the seeing is in each band than in r, ``(lambda_b / lambda_r) ** -0.2``
    (Kolmogorov), for g r z; 1 for any other number of channels. Shape ``[channels]``."""
    if channels != len(DECAM_WAVELENGTH_NM):
        return torch.ones(channels)
    wl = torch.tensor(DECAM_WAVELENGTH_NM)
    return (wl / wl[1]) ** -0.2


def psf_blur(x: torch.Tensor, fwhm, pixel_scale: float | None = None,
             max_fwhm: float | None = None) -> torch.Tensor:
    """Convolve each image with its own Gaussian PSF of ``fwhm`` arcsec in r, times
    ``(lambda_band / lambda_r) ** -0.2`` in g and z (Kolmogorov seeing scales as
    lambda^-0.2; for another number of channels every channel gets ``fwhm``).

    ``pixel_scale`` (arcsec per pixel; default ``galaxies.FIELD_ARCSEC / W``, the simulator's)
    converts the FWHM to pixels; :func:`gaussian_kernels_1d` keeps the kernel's width right
    below a pixel. ``fwhm = 0`` leaves an image as it is. Flux is kept: the kernels sum to 1.
    The kernels reach 4 sigma of ``max_fwhm`` (default: the largest ``fwhm``;
    ``augment.RandomPSFBlur`` passes the top of its range, so the size of the kernels does not
    depend on the draws).

    Shapes: ``x [B, C, H, W]``, ``fwhm [B]`` arcsec ``-> [B, C, H, W]``.

    Raises:
        ValueError: for images that are not a float batch ``[B, C, H, W]`` or a ``fwhm`` that
            does not hold one value per image.
    """
    _check_batch(x)
    b, c, h, w = x.shape
    fwhm = _per_image("fwhm", fwhm, x)
    scale = pixel_scale or FIELD_ARCSEC / w
    band = _band_factors(c).to(x.device)
    sig = (fwhm[:, None] * band[None, :]).reshape(-1) / (FWHM_PER_SIGMA * scale)  # [B*C] px
    max_fwhm = float(fwhm.max()) if max_fwhm is None else max_fwhm
    radius = max(1, math.ceil(4 * max_fwhm * float(band.max()) / (FWHM_PER_SIGMA * scale)))
    k1 = gaussian_kernels_1d(sig.float(), radius).to(x.dtype)  # [B*C, k]
    # a Gaussian is separable: two grouped 1-D convolutions, every (image, band) plane with
    # its own kernel, cost 2k instead of k^2 per pixel
    out = x.reshape(1, b * c, h, w)
    out = F.conv2d(out, k1[:, None, :, None], padding=(radius, 0), groups=b * c)
    out = F.conv2d(out, k1[:, None, None, :], padding=(0, radius), groups=b * c)
    return out.reshape(b, c, h, w)


def redden(x: torch.Tensor, ebv, coefficients=DECAM_EXTINCTION) -> torch.Tensor:
    """Dim each image as Milky-Way dust would: ``flux_b * 10 ** (-0.4 * R_b * E(B-V))``.

    ``R_b`` are the extinction coefficients of the bands, A_b / E(B-V) (default
    :data:`DECAM_EXTINCTION`, g r z), so blue bands are dimmed more than red ones.

    Shapes: ``x [B, 3, H, W]`` (one channel per coefficient), ``ebv [B]`` mag
    ``-> [B, 3, H, W]``.

    Raises:
        ValueError: for images that are not a float batch ``[B, C, H, W]``, a number of
            channels other than the number of coefficients, or an ``ebv`` that does not hold
            one value per image.
    """
    _check_batch(x)
    r = torch.as_tensor(coefficients, device=x.device)
    if x.shape[1] != len(r):
        raise ValueError(f"reddening needs one channel per band ({len(r)}: g, r, z), got "
                         f"{x.shape[1]} channels")
    ebv = _per_image("ebv", ebv, x)
    factor = 10 ** (-0.4 * ebv[:, None] * r[None, :])  # [B, bands]
    return x * factor.to(x.dtype)[:, :, None, None]


def brighten(x: torch.Tensor, delta_mag) -> torch.Tensor:
    """Scale all bands of each image by ``10 ** (-0.4 * delta_mag)``: ``delta_mag > 0`` is
    fainter. Colours are kept.

    Shapes: ``x [B, C, H, W]``, ``delta_mag [B]`` mag ``-> [B, C, H, W]``.
    """
    _check_batch(x)
    dm = _per_image("delta_mag", delta_mag, x)
    return x * (10 ** (-0.4 * dm)).to(x.dtype)[:, None, None, None]


def add_noise(x: torch.Tensor, std, noise: torch.Tensor) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``std`` per image and band:
    ``x + std * noise``, with ``noise`` drawn from N(0, 1) for every pixel.

    Shapes: ``x [B, C, H, W]``, ``std [B, C]``, ``noise [B, C, H, W]`` ``-> [B, C, H, W]``.

    Raises:
        ValueError: if ``noise`` does not have the shape of ``x`` or ``std`` is not ``[B, C]``.
    """
    _check_batch(x)
    std = _per_image("std", std, x, x.shape[1])
    if noise.shape != x.shape:
        raise ValueError(f"noise must have the shape of the images {list(x.shape)}, got "
                         f"{list(noise.shape)}")
    return x + noise.to(x.dtype) * std.to(x.dtype)[:, :, None, None]
