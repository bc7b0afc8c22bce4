"""Galaxy augmentations for SimCLR: two random "views" of the same galaxy.

SimCLR learns whatever the two views of one galaxy have in common and ignores what differs
between them, so each augmentation below is a statement about physics: "this change does not
alter what the galaxy *is*". Every module works on a batch ``x`` of shape ``[B, 3, H, W]``
(bands g, r, z; sky-subtracted surface brightness in nanomaggies per arcsec^2 as
``phys555_cl.galaxies.simulate`` returns it, or Galaxy10 pictures in [0, 1]) on any device,
and draws **independent parameters for every image** from an optional ``torch.Generator``
(same generator state -> same augmentation). No Python loop runs per image: geometry is one
``affine_grid`` / ``grid_sample`` per batch and blurs are one grouped convolution.

=====================  ==========================  ===============================================
module                 default range               invariance it teaches
=====================  ==========================  ===============================================
RandomFlip             p = 0.5                     a galaxy and its mirror image are the same
                                                   kind; a mirror image also reverses the
                                                   winding sense of spiral arms, which no label
                                                   asks about, so the invariance is safe
RandomAffine           angle U(0, 360) deg         the sky has no "up": orientation is nuisance
                       shift U(-s, s), s = 4 px    centring / astrometric errors of the cutout
                       scale U(0.9, 1.1)           the same galaxy at another apparent size (the
                                                   scatter of the size-luminosity relation);
                                                   the flux is kept, so it is *not* the galaxy
                                                   at another distance, which would also dim it
RandomPSFBlur          FWHM U(0, 1.04) arcsec      seeing changes from night to night: at most
                       in r, x (lambda/r)^-0.2     the survey's largest change of seeing, from
                                                   0.6" to 1.2" (sqrt(1.2^2 - 0.6^2) = 1.04"),
                                                   at any pixel scale; wider in g than in z
RandomReddening        E(B-V) U(0, 0.02)           Milky-Way dust in front of the galaxy, with
                                                   DECam g r z coefficients 3.214 2.165 1.211
RandomBrightness       dm U(-0.2, 0.2) mag         calibration zero points and exposure depth:
                                                   all bands together, so colours are kept
restore_sky_noise      back to the input's noise   none: it undoes the smoothing of the steps
                                                   above, so views are never cleaner than the
                                                   exposure (GalaxyAugment, before the noise)
RandomGaussianNoise    sigma U(0, 1) x sky noise   a shallower exposure adds sky noise
=====================  ==========================  ===============================================

The ranges follow Hayat et al. 2021 ("Self-supervised Representation Learning for Astronomical
Images", ApJL 911 L33, on SDSS images) and Stein et al. 2021 ("Self-supervised similarity
search for large scientific datasets"); reddening and brightness are kept narrower than theirs
by default because colour and flux carry redshift information we want the representation to
keep (in the simulator g - r reddens by about 3 mag per unit redshift, so E(B-V) = 0.05, which
reddens g - r by 0.05 mag, already blurs redshifts by about 0.02). The network sees the flux
(``encoders.AsinhStretch`` is one fixed, survey-wide stretch), so ``RandomBrightness`` is a
real trade: invariance to a +-0.2 mag calibration or depth change, against keeping the flux;
0.2 mag is what a redshift change of 0.01-0.02 does to a galaxy's flux at z = 0.1-0.2, small
against the spread of galaxy luminosities.

**Sky noise.** Interpolation (rotation, shift, rescaling) and blurring average neighbouring
pixels and so smooth the sky noise away (a rotation alone leaves about 0.65 of it). Views
cleaner than any real exposure would be an easy shortcut for SimCLR, so
:class:`GalaxyAugment` measures each image's sky noise per band before it starts
(:func:`robust_sigma`), and after the steps that change the galaxy's light adds the Gaussian
noise that brings every view back to it (:func:`restore_sky_noise`); only then does
:class:`RandomGaussianNoise` add the "shallower exposure", in units of that original noise.

Angular scales are in arcsec: the pixel scale is ``galaxies.FIELD_ARCSEC / W`` (the
simulator's stamps cover 32 arcsec at any size ``W``) unless a ``pixel_scale`` is given.
The affine shift alone stays in pixels.

**Two halves of every step**, as in torchvision: a plain function applies the change for
parameters already drawn (``redden(x, ebv)`` with ``ebv [B]``; :func:`flip`, :func:`affine`,
:func:`psf_blur`, :func:`redden`, :func:`brighten`, :func:`add_noise`, in
``phys555_cl.augment_functional`` and importable from here), and each module below draws those
parameters for every image from the generator and calls it.

Example::

    aug = GalaxyAugment()
    g = torch.Generator().manual_seed(0)
    v1, v2 = aug.two_views(images, generator=g)   # each [B, 3, H, W]
"""

from __future__ import annotations

import math

import torch
from torch import nn

from phys555_cl.augment_functional import (
    DECAM_EXTINCTION,
    DECAM_WAVELENGTH_NM,
    FWHM_PER_SIGMA,
    _check_batch,
    add_noise,
    affine,
    brighten,
    flip,
    gaussian_kernels_1d,
    psf_blur,
    redden,
)
from phys555_cl.galaxies import FIELD_ARCSEC, SEEING_FWHM
from phys555_cl.photometry import robust_sigma

__all__ = [
    "RandomFlip", "RandomAffine", "RandomPSFBlur", "RandomReddening", "RandomBrightness",
    "restore_sky_noise", "RandomGaussianNoise", "GalaxyAugment",
    "FLIP_P", "DEGREES", "MAX_SHIFT", "SCALE", "BLUR_FWHM", "EBV", "DELTA_MAG", "NOISE_LEVEL",
    # the changes themselves, from augment_functional
    "flip", "affine", "gaussian_kernels_1d", "psf_blur", "redden", "brighten", "add_noise",
    "DECAM_EXTINCTION", "DECAM_WAVELENGTH_NM", "FWHM_PER_SIGMA",
]

# The survey's seeing, FWHM in r in arcsec, is the simulator's SEEING_FWHM (0.6-1.2). The
# largest extra blur that keeps a view within it turns the sharpest exposure into the
# blurriest one: sqrt(1.2^2 - 0.6^2) = 1.04 arcsec (BLUR_FWHM below).

# The default ranges of the table above, in one place: every module and GalaxyAugment use
# them (tests/test_augment.py checks that the table shows them).
FLIP_P = 0.5
DEGREES = (0.0, 360.0)
MAX_SHIFT = 4.0  # pixels
SCALE = (0.9, 1.1)
# extra seeing, FWHM in arcsec in r: at most sqrt(1.2^2 - 0.6^2) = 1.04
BLUR_FWHM = (0.0, round(math.sqrt(SEEING_FWHM[1] ** 2 - SEEING_FWHM[0] ** 2), 2))
EBV = (0.0, 0.02)  # E(B-V), mag
DELTA_MAG = (-0.2, 0.2)  # mag
NOISE_LEVEL = (0.0, 1.0)  # in units of the image's own (original) sky noise


def _uniform(n: int, low: float, high: float, generator, device) -> torch.Tensor:
    """``n`` independent draws from U(low, high) on ``device``, reproducible from ``generator``."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, device=gen_device)
    return (low + (high - low) * u).to(device)


def _standard_normal(shape, generator, device) -> torch.Tensor:
    """Draws from N(0, 1) of the given shape on ``device``, reproducible from ``generator``."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device).to(device)


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
        return flip(x, _uniform(x.shape[0], 0.0, 1.0, generator, x.device) < self.p)


class RandomAffine(nn.Module):
    """Rotate, shift and rescale each image by its own random amounts (:func:`affine`).

    Rotation angle ``U(*degrees)``, shift ``U(-max_shift, max_shift)`` pixels in x and y, scale
    ``U(*scale)``. A rescaled view is the same galaxy at another apparent size, not at another
    distance (which would also dim it): the flux is kept. The interpolation smooths the sky
    noise (to about 0.65 of it for a rotation); :class:`GalaxyAugment` restores it.

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
        b, device = x.shape[0], x.device
        angle = _uniform(b, *self.degrees, generator, device)
        dx = _uniform(b, -self.max_shift, self.max_shift, generator, device)
        dy = _uniform(b, -self.max_shift, self.max_shift, generator, device)
        s = _uniform(b, *self.scale, generator, device)
        return affine(x, angle, torch.stack([dx, dy], dim=1), s, self.out_size)


class RandomPSFBlur(nn.Module):
    """Convolve each image with its own extra Gaussian PSF, a little wider in bluer bands
    (:func:`psf_blur`).

    The extra seeing of each image is ``FWHM = U(*fwhm)`` arcsec in r, applied with
    ``probability`` per image (otherwise none). The default range keeps a view within the
    survey's seeing (:data:`SEEING_FWHM`, 0.6-1.2 arcsec in r): Gaussian blurs add in
    quadrature, and sqrt(1.2^2 - 0.6^2) = 1.04 arcsec turns the sharpest exposure into the
    blurriest. The kernel is the same in arcsec at any image size: ``pixel_scale`` (arcsec per
    pixel; default ``galaxies.FIELD_ARCSEC / W``, the simulator's) converts it to pixels.

    Shapes: ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self, fwhm: tuple[float, float] = BLUR_FWHM, pixel_scale: float | None = None,
                 probability: float = 1.0):
        super().__init__()
        _check_range("fwhm", fwhm, low_min=0.0)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        if pixel_scale is not None and not pixel_scale > 0:
            raise ValueError(f"pixel_scale must be positive arcsec per pixel, got {pixel_scale}")
        self.fwhm, self.pixel_scale, self.probability = fwhm, pixel_scale, probability

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                pixel_scale: float | None = None) -> torch.Tensor:
        """``pixel_scale`` (arcsec per pixel) overrides the module's for this call."""
        _check_batch(x)
        b, c, h, w = x.shape
        if self.fwhm[1] == 0 or self.probability == 0:
            return x
        scale = pixel_scale or self.pixel_scale or FIELD_ARCSEC / w
        fwhm = _uniform(b, *self.fwhm, generator, x.device)
        fwhm = fwhm * (_uniform(b, 0.0, 1.0, generator, x.device) < self.probability)
        return psf_blur(x, fwhm, scale, max_fwhm=self.fwhm[1])


class RandomReddening(nn.Module):
    """Dim each image as Milky-Way dust would (:func:`redden`), ``E(B-V) ~ U(*ebv)`` per image.

    ``coefficients``: ``R_b`` of the bands (default :data:`DECAM_EXTINCTION`, g r z). Needs one
    channel per coefficient.

    Shapes: ``[B, 3, H, W] -> [B, 3, H, W]``.
    """

    def __init__(self, ebv: tuple[float, float] = EBV, coefficients=DECAM_EXTINCTION):
        super().__init__()
        _check_range("ebv", ebv, low_min=0.0)
        self.ebv = ebv
        self.register_buffer("coefficients", torch.tensor(coefficients), persistent=False)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        ebv = _uniform(x.shape[0], *self.ebv, generator, x.device)
        return redden(x, ebv, self.coefficients.to(x.device))


class RandomBrightness(nn.Module):
    """Scale all bands of each image by ``10 ** (-0.4 * dm)``, ``dm ~ U(*delta_mag)``
    (:func:`brighten`).

    Shapes: ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self, delta_mag: tuple[float, float] = DELTA_MAG):
        super().__init__()
        _check_range("delta_mag", delta_mag)
        self.delta_mag = delta_mag

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_batch(x)
        return brighten(x, _uniform(x.shape[0], *self.delta_mag, generator, x.device))


def restore_sky_noise(view: torch.Tensor, sigma: torch.Tensor,
                      generator: torch.Generator | None = None,
                      pixel_scale: float | None = None) -> torch.Tensor:
    """Add the Gaussian noise that brings each view back to the sky noise ``sigma`` per band.

    Interpolation and blurring smooth the noise of a view; this adds white Gaussian noise of
    ``sqrt(max(sigma**2 - sigma_view**2, 0))``, with ``sigma_view`` measured on the view the
    same way (:func:`robust_sigma`). A view noisier than ``sigma`` is left as it is. The
    restored noise has the right level per pixel; it is a little smoother from pixel to pixel
    than the original's (part of it is the smoothed original).

    Shapes: ``view [B, C, H, W]``, ``sigma [B, C]`` (e.g. ``robust_sigma(original)``)
    ``-> [B, C, H, W]``.
    """
    _check_batch(view)
    sigma_view = robust_sigma(view, pixel_scale=pixel_scale)
    std = (sigma.to(view.device).float() ** 2 - sigma_view**2).clamp_min(0).sqrt()  # [B, C]
    return add_noise(view, std, _standard_normal(view.shape, generator, view.device))


class RandomGaussianNoise(nn.Module):
    """Add Gaussian noise of ``U(*level)`` times each band's sky noise: a shallower exposure
    (:func:`add_noise`).

    The sky noise is the image's own (:func:`robust_sigma`, measured on its border) unless
    ``sigma`` ``[B, C]`` is given (``GalaxyAugment`` passes the noise of the original image).
    Measuring the level in units of the image's own noise makes the same module right for
    simulated fluxes and for Galaxy10 8-bit images. Shapes: ``[B, C, H, W] -> [B, C, H, W]``.
    """

    def __init__(self, level: tuple[float, float] = NOISE_LEVEL):
        super().__init__()
        _check_range("level", level, low_min=0.0)
        self.level = level

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                sigma: torch.Tensor | None = None) -> torch.Tensor:
        _check_batch(x)
        if self.level[1] == 0:
            return x
        sigma = robust_sigma(x) if sigma is None else sigma.to(x.device)
        std = sigma * _uniform(x.shape[0], *self.level, generator, x.device)[:, None]  # [B, C]
        return add_noise(x, std, _standard_normal(x.shape, generator, x.device))


class GalaxyAugment(nn.Module):
    """The default SimCLR view generator for galaxies: flip, rotate/shift/rescale, PSF blur,
    reddening, brightness, then the sky noise restored and extra noise added (the order light
    takes: geometry of the source, then the atmosphere and telescope, then the detector).

    Before the steps, the sky noise of every image and band is measured
    (:func:`robust_sigma`); after the steps that change the galaxy's light,
    :func:`restore_sky_noise` brings every view back to it (interpolation and blurring smooth
    the noise; a view cleaner than any real exposure is an easy shortcut for SimCLR), and the
    extra noise of :class:`RandomGaussianNoise` is in units of that original noise.

    Args:
        out_size: crop size of the views (default: the input size).
        flip_p, degrees, max_shift, scale, blur_fwhm, ebv, delta_mag, noise_level: the ranges
            documented in the module docstring; a range of (0, 0) switches a step off.
        pixel_scale: arcsec per pixel of the input images, for the blur and the noise
            estimate (default ``galaxies.FIELD_ARCSEC / W``, the simulator's; Galaxy10 DECaLS
            stamps are 256 pixels of 0.262 arcsec).
        restore_noise: bring each view back to its original sky noise (default True).

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
        blur_fwhm: tuple[float, float] = BLUR_FWHM,
        ebv: tuple[float, float] = EBV,
        delta_mag: tuple[float, float] = DELTA_MAG,
        noise_level: tuple[float, float] = NOISE_LEVEL,
        pixel_scale: float | None = None,
        restore_noise: bool = True,
    ):
        super().__init__()
        if pixel_scale is not None and not pixel_scale > 0:
            raise ValueError(f"pixel_scale must be positive arcsec per pixel, got {pixel_scale}")
        self.pixel_scale, self.restore_noise = pixel_scale, restore_noise
        self.flip = RandomFlip(flip_p)
        self.affine = RandomAffine(degrees, max_shift, scale, out_size)
        self.blur = RandomPSFBlur(blur_fwhm)
        self.reddening = RandomReddening(ebv)
        self.brightness = RandomBrightness(delta_mag)
        self.noise = RandomGaussianNoise(noise_level)

    @property
    def steps(self) -> list[nn.Module]:
        """The six random steps, in the order they are applied (the noise restoration runs
        between the brightness and the noise)."""
        return [self.flip, self.affine, self.blur, self.reddening, self.brightness, self.noise]

    def _pixel_scale(self, x: torch.Tensor) -> float:
        """Arcsec per pixel of the input (a crop to ``out_size`` keeps it)."""
        return self.pixel_scale or FIELD_ARCSEC / x.shape[-1]

    def _view(self, x: torch.Tensor, sigma: torch.Tensor, generator) -> torch.Tensor:
        pixel_scale = self._pixel_scale(x)
        x = self.flip(x, generator=generator)
        x = self.affine(x, generator=generator)
        x = self.blur(x, generator=generator, pixel_scale=pixel_scale)
        x = self.reddening(x, generator=generator)
        x = self.brightness(x, generator=generator)
        if self.restore_noise:
            x = restore_sky_noise(x, sigma, generator=generator, pixel_scale=pixel_scale)
        return self.noise(x, generator=generator, sigma=sigma)

    def sky_noise(self, x: torch.Tensor) -> torch.Tensor:
        """The sky noise of every image and band, that the views are brought back to
        (:func:`robust_sigma` at the input's pixel scale). ``[B, 3, H, W] -> [B, 3]``.

        It depends on the image alone: measure it once for images that are augmented again
        and again, and pass it to :meth:`forward`, which then measures only the view's.
        """
        _check_batch(x)
        return robust_sigma(x, pixel_scale=self._pixel_scale(x))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                sigma: torch.Tensor | None = None) -> torch.Tensor:
        """One random view of every image. ``[B, 3, H, W] -> [B, 3, out, out]``.

        ``sigma [B, 3]``: the images' :meth:`sky_noise`, if already measured (the same views
        either way)."""
        _check_batch(x)
        if sigma is None:
            sigma = self.sky_noise(x)  # [B, C]: the original's
        elif tuple(sigma.shape) != tuple(x.shape[:2]):
            raise ValueError(f"sigma must hold one sky noise per image and band, shape "
                             f"{tuple(x.shape[:2])}; got {tuple(sigma.shape)}")
        return self._view(x, sigma, generator)

    def two_views(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent random views ``(v1, v2)`` of the batch, each ``[B, 3, out, out]``.

        ``v1[i]`` and ``v2[i]`` are the positive pair of SimCLR; every other view is a negative.
        The same as calling the module twice (the sky noise of the input is measured once).
        """
        sigma = self.sky_noise(x)
        return self._view(x, sigma, generator), self._view(x, sigma, generator)
