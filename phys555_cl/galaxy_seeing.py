"""The seeing and the sky of the galaxy survey: a per-band Gaussian PSF applied to maps whose
pixels are already pixel integrals, and Gaussian sky noise of each galaxy's depth, drawn from a
fixed bank of normal numbers. :func:`phys555_cl.galaxy_render._render_block` calls them last,
as in a real observation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from phys555_cl.galaxy_catalogue import _BAND_PSF, BLOCK, pixel_noise

__all__: list[str] = []  # internal to the simulator

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



_BAND_LIMITED: dict = {}


def _band_limited_matrix(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre nodes k in [0, 1/2] cycles per pixel [Q], and ``2 w cos(2 pi k d)`` for
    the pixel separations d = -(size - 1) ... size - 1 [Q, 2 size - 1] (cached)."""
    key = (size, str(device))
    if key not in _BAND_LIMITED:
        x, w = np.polynomial.legendre.leggauss(2 * size + 16)
        k, w = 0.25 * (x + 1), 0.25 * w
        d = np.arange(-size + 1, size)
        cos = 2 * w[:, None] * np.cos(2 * np.pi * k[:, None] * d[None, :])
        _BAND_LIMITED[key] = (torch.tensor(k, dtype=torch.float32, device=device),
                              torch.tensor(cos, dtype=torch.float32, device=device))
    return _BAND_LIMITED[key]


def _render_psf(images: torch.Tensor, p: dict, pix: float) -> torch.Tensor:
    """Seeing: per band and per galaxy, a Gaussian PSF, applied to maps whose pixels are
    already pixel integrals. Convolving those with a pixel-integrated PSF would add the pixel
    twice (at 32 px a 0.6" seeing would look like 0.9"), so the kernel is the PSF seen through
    the band limit of the pixel grid: ``K(d) = int_{-1/2}^{1/2} exp(-2 pi^2 sigma^2 k^2)
    cos(2 pi k d) dk`` (sigma in pixels), which is the sampled Gaussian for a PSF wider than a
    pixel and a delta for a point-like one. It is separable, so two batched matrix products,
    K @ image @ K, with K[i, j] = K(i - j)."""
    size, device = images.shape[-1], images.device
    sigma = p["psf_fwhm"][:, None] * torch.tensor(_BAND_PSF, device=device) / 2.3548 / pix
    k, cos = _band_limited_matrix(size, device)
    transfer = torch.exp(-2 * math.pi**2 * sigma.reshape(-1, 1) ** 2 * k**2)  # [B*3, Q]
    k1 = transfer @ cos  # [B*3, 2H-1], K(d) for d = -(H-1) ... H-1
    # row i of the Toeplitz matrix is K(j - i) = k1[H-1-i : 2H-1-i]; K is even, so K^T = K
    kern = k1.unfold(-1, size, 1).flip(1)  # [B*3, H, H]
    flat = images.reshape(-1, size, size)
    return torch.bmm(torch.bmm(kern, flat), kern).reshape(-1, 3, size, size)


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
