"""Galaxy augmentations for SimCLR: two random "views" of the same galaxy.

SimCLR learns whatever the two views of one galaxy have in common and ignores what differs
between them, so each augmentation below is a statement about physics: "this change does not
alter what the galaxy *is*". Every module works on a batch ``x`` of shape ``[B, 3, H, W]``
(bands g, r, z; fluxes as ``phys555_cl.galaxies.simulate`` returns them, or Galaxy10 images in
[0, 1]) on any device, and draws **independent parameters for every image** from an optional
``torch.Generator`` (same generator state -> same augmentation). No Python loop runs per image:
geometry is one ``affine_grid`` / ``grid_sample`` per batch and blurs are one grouped convolution.

=====================  ==========================  ===============================================
module                 default range               invariance it teaches
=====================  ==========================  ===============================================
RandomFlip             p = 0.5                     a galaxy and its mirror image (seen from the
                                                   other side of the sky) are the same kind
RandomAffine           angle U(0, 360) deg         the sky has no "up": orientation is nuisance
                       shift U(-s, s), s = 4 px    centring / astrometric errors of the cutout
                       scale U(0.9, 1.1)           small size changes (distance, survey zoom);
                                                   total flux is conserved
RandomPSFBlur          sigma U(0, 1) px,           seeing changes from night to night; the PSF
                       per band x (lambda/r)^-0.2  is a little wider in g than in z
RandomReddening        E(B-V) U(0, 0.02)           Milky-Way dust in front of the galaxy, with
                                                   DECam g r z coefficients 3.214 2.165 1.211
RandomBrightness       dm U(-0.2, 0.2) mag         exposure depth / calibration zero points
RandomGaussianNoise    sigma U(0, 1) x sky MAD     a shallower exposure adds sky noise
=====================  ==========================  ===============================================

The ranges follow Hayat et al. 2021 ("Self-supervised representation learning from
Sloan/DESI images", ApJL 911 L33) and Stein et al. 2021 ("Self-supervised similarity search
for large scientific datasets"); reddening and brightness are kept narrower than theirs by
default because colour and flux carry redshift information we want the representation to keep
(in the simulator g - r reddens by about 3 mag per unit redshift, so E(B-V) = 0.05, which
reddens g - r by 0.05 mag, already blurs redshifts by about 0.02).

Example::

    aug = GalaxyAugment()
    g = torch.Generator().manual_seed(0)
    v1, v2 = aug.two_views(images, generator=g)   # each [B, 3, H, W]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# A_band / E(B-V) for DECam g, r, z (Schlafly & Finkbeiner 2011, R_V = 3.1), as used by the
# Legacy Surveys and by Hayat et al. 2021.
DECAM_EXTINCTION = (3.214, 2.165, 1.211)
# Effective wavelengths of DECam g, r, z in nm, for the wavelength dependence of the seeing.
DECAM_WAVELENGTH_NM = (480.0, 640.0, 920.0)

# The default ranges of the table above, in one place: every module and GalaxyAugment use
# them (tests/test_augment.py checks that the table shows them). GalaxyAugment() with these
# defaults made the shipped checkpoint (train.CONFIGS["default"]["augment"] is empty).
FLIP_P = 0.5
DEGREES = (0.0, 360.0)
MAX_SHIFT = 4.0  # pixels
SCALE = (0.9, 1.1)
BLUR_SIGMA = (0.0, 1.0)  # pixels, in r
EBV = (0.0, 0.02)  # E(B-V), mag
DELTA_MAG = (-0.2, 0.2)  # mag
NOISE_LEVEL = (0.0, 1.0)  # in units of the image's own sky noise


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


def _uniform(n: int, low: float, high: float, generator, device) -> torch.Tensor:
    """``n`` independent draws from U(low, high) on ``device``, reproducible from ``generator``."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, device=gen_device)
    return (low + (high - low) * u).to(device)


def _check_range(name: str, value: tuple[float, float], low_min: float | None = None) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {value!r}")
    if low_min is not None and value[0] < low_min:
        raise ValueError(f"{name} must not go below {low_min}, got {value!r}")


class RandomFlip(nn.Module):
    """Mirror each image left-right with probability ``p`` (independently per image).

    Exact (no interpolation). Combined with a random rotation this covers every mirror axis.

    Shapes: ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self, p: float = FLIP_P):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        flip = _uniform(x.shape[0], 0.0, 1.0, generator, x.device) < self.p
        return torch.where(flip[:, None, None, None], x.flip(-1), x)


class RandomAffine(nn.Module):
    """Rotate, shift and rescale each image by its own random amounts, in one resampling.

    Rotation angle ``U(*degrees)``, shift ``U(-max_shift, max_shift)`` pixels in x and y, scale
    ``U(*scale)`` (> 1 makes the galaxy look bigger). The map is applied about the image centre
    with bilinear interpolation.
    The output is multiplied by ``1 / scale**2`` so the total flux of a galaxy is kept (a
    rotation or shift keeps it by itself, up to interpolation). Pixels that come from outside
    the input are filled by reflection, so the corners of a rotated image keep sky noise
    (zero-filled corners would be noiseless and betray the rotation angle).

    ``out_size`` crops the centre of the transformed image (the "jitter crop" of Hayat et al.
    2021 when combined with a shift); by default the output has the input's size.

    Shapes: ``[B, C, H, W] -> [B, C, out_size, out_size]`` (or ``[B, C, H, W]``).
    """

    def __init__(
        self,
        degrees: tuple[float, float] = DEGREES,
        max_shift: float = MAX_SHIFT,
        scale: tuple[float, float] = SCALE,
        out_size: int | None = None,
    ):
        super().__init__()
        _check_range("degrees", degrees)
        _check_range("scale", scale)
        if scale[0] <= 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0 pixels, got {max_shift}")
        if out_size is not None and out_size < 1:
            raise ValueError(f"out_size must be a positive number of pixels, got {out_size}")
        self.degrees, self.max_shift, self.scale = degrees, max_shift, scale
        self.out_size = out_size

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        b, c, h, w = x.shape
        out_h, out_w = (self.out_size, self.out_size) if self.out_size else (h, w)
        angle = _uniform(b, *self.degrees, generator, x.device) * (math.pi / 180.0)
        dx = _uniform(b, -self.max_shift, self.max_shift, generator, x.device)
        dy = _uniform(b, -self.max_shift, self.max_shift, generator, x.device)
        s = _uniform(b, *self.scale, generator, x.device)
        # theta maps output coordinates (normalised to [-1, 1]) to input coordinates. The output
        # grid covers out/in of the input, so a crop is a plain factor; rotating by -angle and
        # zooming by 1/s turns the *image* by +angle and enlarges it by s.
        cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
        fx, fy = out_w / w, out_h / h
        theta = torch.stack(
            [
                torch.stack([cos * fx, sin * fy * h / w, -2 * dx / w], dim=-1),
                torch.stack([-sin * fx * w / h, cos * fy, -2 * dy / h], dim=-1),
            ],
            dim=1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)
        out = F.grid_sample(
            x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        return out / (s * s).to(x.dtype)[:, None, None, None]


def gaussian_kernels_1d(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels. Shapes: ``sigma [N] -> [N, 2*radius+1]``."""
    r = torch.arange(-radius, radius + 1, device=sigma.device, dtype=sigma.dtype)
    g1 = torch.exp(-0.5 * (r[None, :] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    return g1 / g1.sum(dim=1, keepdim=True)


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 2-D Gaussian kernels, one per entry of ``sigma`` (in pixels).

    Shapes: ``sigma [N] -> kernels [N, 2*radius+1, 2*radius+1]`` (each sums to 1). A sigma of 0
    gives the identity kernel.
    """
    g1 = gaussian_kernels_1d(sigma, radius)
    return g1[:, :, None] * g1[:, None, :]


class RandomPSFBlur(nn.Module):
    """Convolve each image with its own extra Gaussian PSF, a little wider in bluer bands.

    ``sigma = U(*sigma) * (lambda_band / lambda_r) ** -0.2`` pixels (Kolmogorov seeing scales as
    lambda^-0.2). Applied with ``probability`` per image (otherwise sigma = 0). Flux is kept: the
    kernels sum to 1. Works on any number of channels; the band factor is used for 3 bands.

    Shapes: ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self, sigma: tuple[float, float] = BLUR_SIGMA, probability: float = 1.0):
        super().__init__()
        _check_range("sigma", sigma, low_min=0.0)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        self.sigma, self.probability = sigma, probability
        wl = torch.tensor(DECAM_WAVELENGTH_NM)
        self.register_buffer("band_factor", (wl / wl[1]) ** -0.2, persistent=False)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        b, c, h, w = x.shape
        if self.sigma[1] == 0 or self.probability == 0:
            return x
        sig = _uniform(b, *self.sigma, generator, x.device)
        sig = sig * (_uniform(b, 0.0, 1.0, generator, x.device) < self.probability)
        band = self.band_factor.to(x.device) if c == 3 else torch.ones(c, device=x.device)
        sig = (sig[:, None] * band[None, :]).reshape(-1)  # [B*C]
        radius = max(1, math.ceil(3 * self.sigma[1] * float(band.max())))
        k1 = gaussian_kernels_1d(sig.float(), radius).to(x.dtype)  # [B*C, k]
        # a Gaussian is separable: two grouped 1-D convolutions, every (image, band) plane with
        # its own kernel, cost 2k instead of k^2 per pixel
        out = x.reshape(1, b * c, h, w)
        out = F.conv2d(out, k1[:, None, :, None], padding=(radius, 0), groups=b * c)
        out = F.conv2d(out, k1[:, None, None, :], padding=(0, radius), groups=b * c)
        return out.reshape(b, c, h, w)


class RandomReddening(nn.Module):
    """Dim each image as Milky-Way dust would: ``flux_b *= 10 ** (-0.4 * R_b * E(B-V))``.

    ``E(B-V) ~ U(*ebv)`` per image, ``R_b`` the g r z extinction coefficients
    (:data:`DECAM_EXTINCTION`). Needs exactly 3 channels (g, r, z).

    Shapes: ``[B, 3, H, W] -> [B, 3, H, W]``.
    """

    def __init__(self, ebv: tuple[float, float] = EBV, coefficients=DECAM_EXTINCTION):
        super().__init__()
        _check_range("ebv", ebv, low_min=0.0)
        self.ebv = ebv
        self.register_buffer("coefficients", torch.tensor(coefficients), persistent=False)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        if x.shape[1] != len(self.coefficients):
            raise ValueError(
                f"RandomReddening needs one channel per band {len(self.coefficients)} (g, r, z), "
                f"got {x.shape[1]} channels"
            )
        ebv = _uniform(x.shape[0], *self.ebv, generator, x.device)
        factor = 10 ** (-0.4 * ebv[:, None] * self.coefficients.to(x.device)[None, :])
        return x * factor.to(x.dtype)[:, :, None, None]


class RandomBrightness(nn.Module):
    """Scale all bands of each image by ``10 ** (-0.4 * dm)``, ``dm ~ U(*delta_mag)``.

    Shapes: ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self, delta_mag: tuple[float, float] = DELTA_MAG):
        super().__init__()
        _check_range("delta_mag", delta_mag)
        self.delta_mag = delta_mag

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        dm = _uniform(x.shape[0], *self.delta_mag, generator, x.device)
        return x * (10 ** (-0.4 * dm)).to(x.dtype)[:, None, None, None]


def border_pixels(x: torch.Tensor, width: int = 4) -> torch.Tensor:
    """The pixels of a frame ``width`` pixels wide around each image: mostly empty sky.

    Shapes: ``[B, C, H, W] -> [B, C, 2 * width * (H + W - 2 * width)]`` (the whole image when
    it is smaller than the frame).
    """
    h, w = x.shape[-2:]
    if 2 * width >= min(h, w):
        return x.flatten(2)
    top_bottom = torch.cat([x[..., :width, :], x[..., -width:, :]], dim=-2).flatten(2)
    sides = torch.cat([x[..., width:-width, :width], x[..., width:-width, -width:]], -1)
    return torch.cat([top_bottom, sides.flatten(2)], dim=-1)


#: The standard deviation of a Gaussian is 1.4826 times its median absolute deviation (MAD).
MAD_TO_SIGMA = 1.4826


def sky_and_noise(values: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """Robust sky level and noise of ``values`` along ``dim``: the median and ``1.4826 * MAD``.

    Both ignore the few bright values (galaxy light) among mostly sky pixels, so they measure
    the sky and its Gaussian noise. Shapes: ``[..., n] -> [..., 1]`` (median, kept for
    broadcasting) and ``[...]`` (noise), for ``dim=-1``. Used by :func:`robust_sigma`,
    ``encoders.AsinhStretch`` and ``data.hubble_deep_field_cutouts``.
    """
    med = values.median(dim=dim, keepdim=True).values
    return med, MAD_TO_SIGMA * (values - med).abs().median(dim=dim).values


def robust_sigma(x: torch.Tensor, width: int = 4) -> torch.Tensor:
    """Sky noise per image and band: ``1.4826 * MAD`` of the :func:`border_pixels`.

    The border of a galaxy cutout is mostly sky, and the median absolute deviation ignores the
    few galaxy pixels there, so this measures the noise. Shapes: ``[B, C, H, W] -> [B, C]``.
    """
    return sky_and_noise(border_pixels(x, width).float())[1]


class RandomGaussianNoise(nn.Module):
    """Add Gaussian noise of ``U(*level)`` times each band's own sky noise (:func:`robust_sigma`,
    measured on the image border).

    Measuring the level in units of the image's own noise makes the same module right for
    simulated fluxes and for Galaxy10 8-bit images. Shapes: ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self, level: tuple[float, float] = NOISE_LEVEL):
        super().__init__()
        _check_range("level", level, low_min=0.0)
        self.level = level

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        b = x.shape[0]
        if self.level[1] == 0:
            return x
        std = robust_sigma(x) * _uniform(b, *self.level, generator, x.device)[:, None]  # [B, C]
        gen_device = generator.device if generator is not None else x.device
        noise = torch.randn(x.shape, generator=generator, device=gen_device).to(x.device)
        return x + noise.to(x.dtype) * std.to(x.dtype)[:, :, None, None]


class GalaxyAugment(nn.Module):
    """The default SimCLR view generator for galaxies: flip, rotate/shift/rescale, PSF blur,
    reddening, brightness, noise (in that order, the order light takes: geometry of the source,
    then the atmosphere and telescope, then the detector).

    Args:
        out_size: crop size of the views (default: the input size).
        flip_p, degrees, max_shift, scale, blur_sigma, ebv, delta_mag, noise_level: the ranges
            documented in the module docstring; a range of (0, 0) switches a step off.

    Shapes: ``[B, 3, H, W] -> [B, 3, out_size, out_size]``.

    Reference: Chen et al. 2020 (SimCLR, arXiv:2002.05709) section 3; Hayat et al. 2021.
    """

    def __init__(
        self,
        out_size: int | None = None,
        flip_p: float = FLIP_P,
        degrees: tuple[float, float] = DEGREES,
        max_shift: float = MAX_SHIFT,
        scale: tuple[float, float] = SCALE,
        blur_sigma: tuple[float, float] = BLUR_SIGMA,
        ebv: tuple[float, float] = EBV,
        delta_mag: tuple[float, float] = DELTA_MAG,
        noise_level: tuple[float, float] = NOISE_LEVEL,
    ):
        super().__init__()
        self.steps = nn.ModuleList(
            [
                RandomFlip(flip_p),
                RandomAffine(degrees, max_shift, scale, out_size),
                RandomPSFBlur(blur_sigma),
                RandomReddening(ebv),
                RandomBrightness(delta_mag),
                RandomGaussianNoise(noise_level),
            ]
        )

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One random view of every image. ``[B, 3, H, W] -> [B, 3, out, out]``."""
        for step in self.steps:
            x = step(x, generator=generator)
        return x

    def two_views(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent random views ``(v1, v2)`` of the batch, each ``[B, 3, out, out]``.

        ``v1[i]`` and ``v2[i]`` are the positive pair of SimCLR; every other view is a negative.
        """
        return self(x, generator=generator), self(x, generator=generator)
