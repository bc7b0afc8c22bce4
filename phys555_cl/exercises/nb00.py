"""Checks for notebook 00 (setup): a first, tiny exercise."""

from __future__ import annotations

import torch

from .core import Case, Returns, make_check

__all__ = ["ZERO_POINT", "check_flux_to_magnitude", "flux_to_magnitude"]

# Legacy Survey (DECaLS) images are in nanomaggies: an AB magnitude m corresponds to a flux
# f = 10**((22.5 - m) / 2.5) nanomaggies.
ZERO_POINT = 22.5


def flux_to_magnitude(flux: torch.Tensor) -> torch.Tensor:
    """AB magnitude of a flux in nanomaggies: ``m = 22.5 - 2.5 log10(flux)``. Same shape."""
    return ZERO_POINT - 2.5 * torch.log10(flux)


def _cases():
    return [
        Case("a 1000-nanomaggie star", torch.tensor([1000.0])),
        Case("one galaxy in g, r, z", torch.tensor([3.2, 5.5, 9.1])),
        Case("a 2x3 batch of fluxes", torch.tensor([[1.0, 10.0, 100.0], [0.5, 2.0, 40.0]])),
    ]


check_flux_to_magnitude = make_check(
    "0.1", "flux to AB magnitude", flux_to_magnitude, _cases, atol=1e-4,
    returns=Returns.tensor(dtype="input", why="a magnitude for every flux, as a tensor"),
    mistakes=[
        (lambda f: ZERO_POINT - 2.5 * torch.log(f),
         "torch.log is the natural logarithm; magnitudes use log10."),
        (lambda f: ZERO_POINT + 2.5 * torch.log10(f),
         "the sign of the logarithm term: brighter objects have *smaller* magnitudes, so the "
         "magnitude must go down as the flux goes up."),
        (lambda f: -2.5 * torch.log10(f),
         "the zero point 22.5 is missing."),
        (lambda f: ZERO_POINT - torch.log10(f),
         "the factor 2.5 is missing: a factor of 100 in flux is 5 magnitudes, not 2."),
        (lambda f: ZERO_POINT - 0.4 * torch.log10(f),
         "the factor is 2.5, not 0.4 (0.4 = 1/2.5 belongs to the inverse relation, from "
         "magnitudes to fluxes)."),
        (lambda f: 2.5 * torch.log10(f) - ZERO_POINT,
         "the whole result is negated: the zero point and the logarithm term both have the "
         "wrong sign."),
    ],
    hints=[
        "Brighter objects have smaller magnitudes; a factor of 100 in flux is 5 magnitudes, "
        "and 1 nanomaggie is magnitude 22.5.",
        "The magnitude is the zero point 22.5 minus a multiple of the base-10 logarithm of the "
        "flux: torch.log10, not torch.log (the natural logarithm). Tensor arithmetic works on "
        "every element, so no loop is needed and the shape and dtype stay the same.",
        "One return line: 22.5, minus 2.5 times torch.log10 of the flux, exactly the lecture's "
        "formula written with a tensor operation.",
    ],
)
