"""The light profiles of the galaxy simulator, each normalised to unit total flux, and the
quadrature that turns them into pixel integrals (lengths in arcsec). Pure functions of their
arguments: :mod:`phys555_cl.galaxy_render` places them on a block's pixels.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__: list[str] = []  # internal to the simulator


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
    on the pixel scale); bulges, ellipticals and other cusps use :meth:`_Canvas.draw_sersics`.
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


def _gauss_legendre(m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The m x m Gauss-Legendre points of a pixel, in pixels from its centre, and their
    weights (summing to 1): ``(dx [m*m], dy [m*m], w [m*m])``."""
    x, w = np.polynomial.legendre.leggauss(m)
    dx, dy = np.meshgrid(0.5 * x, 0.5 * x, indexing="ij")
    return (torch.tensor(dx.ravel(), dtype=torch.float32),
            torch.tensor(dy.ravel(), dtype=torch.float32),
            torch.tensor(np.outer(w, w).ravel() / 4, dtype=torch.float32))


#: Sersic pixel integrals: 3x3 Gauss-Legendre points per pixel within _FINE_HALF pixels of
#: each profile's centre (one point, the pixel centre, further out, where a pixel is small
#: against the radius), and a flat top inside _CORE_PIXELS / sqrt(q) pixels (the cusp).
_GL_FINE = _gauss_legendre(3)
_FINE_HALF = 4
_CORE_PIXELS = 0.75



def _cusp(re, n, q, angle, rc):
    """The light of a unit-flux Sersic profile above its value at the elliptical radius
    ``rc`` and inside it (what a flat top at ``rc`` leaves out), and that light's second
    moments: ``(flux [b], (xx, yy, xy) [b, 3] in arcsec^2)``, from incomplete gamma
    functions. All arguments [b]; ``angle`` is the major axis's."""
    b = _b_n(n)
    log_norm = _sersic_log_norm(re, n, q, b)
    xc = b * (rc / re) ** (1 / n)
    i_c = torch.exp(-xc + b - log_norm)  # I(rc)
    inner = torch.special.gammainc(2 * n, xc) - math.pi * q * rc**2 * i_c
    log_m4 = torch.lgamma(4 * n) - 4 * n * torch.log(b) + b - log_norm
    m4 = torch.exp(log_m4) * torch.special.gammainc(4 * n, xc)
    # integral of (I - I(rc)) r_ell^2 over the ellipse r_ell < rc
    m2 = 2 * math.pi * q * n * re**4 * m4 - i_c * math.pi * q * rc**4 / 2
    r2_mean = m2 / inner.clamp(min=1e-30)  # <r_ell^2> of the cusp's light
    su2, sv2 = r2_mean / 2, (q * q) * r2_mean / 2
    cs, sn = torch.cos(angle), torch.sin(angle)
    cov = torch.stack([su2 * cs * cs + sv2 * sn * sn, su2 * sn * sn + sv2 * cs * cs,
                       (su2 - sv2) * cs * sn], dim=1)
    return inner.clamp(min=0), cov
