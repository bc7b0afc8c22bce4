"""Checks for notebook 03 (augmentations): a random rotation + flip, and reddening."""

from __future__ import annotations

import math

import torch

from phys555_cl.augment import DECAM_EXTINCTION, RandomAffine, RandomFlip, redden
from phys555_cl.exercises.core import Case, Returns, make_check

__all__ = ["rotate_flip_reference", "check_rotate_flip", "check_redden"]

# --------------------------------------------------------------------------------------------
# Exercise 3.1: rotation by any angle and a flip, drawn independently for every image
# --------------------------------------------------------------------------------------------

_ROTATE = RandomAffine(degrees=(0.0, 360.0), max_shift=0.0, scale=(1.0, 1.0))
_FLIP = RandomFlip(0.5)


def rotate_flip_reference(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image flipped with probability 1/2 and rotated by U(0, 360) deg about its centre."""
    return _ROTATE(_FLIP(x, generator=generator), generator=generator)


def _test_galaxy(size: int = 32) -> torch.Tensor:
    """An asymmetric, centred, smooth test image [3, size, size]: a bar with a blob at one end,
    so every rotation and mirror image looks different. It is compact, so whatever a rotation
    puts in the corners (zeros, or reflected pixels as `RandomAffine` does) changes no flux."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    bar = torch.exp(-0.5 * ((x / 4.0) ** 2 + (y / 1.5) ** 2))
    blob = 0.8 * torch.exp(-0.5 * (((x - 4.0) ** 2 + (y - 3.0) ** 2) / 1.5 ** 2))
    core = torch.exp(-0.5 * (x ** 2 + y ** 2) / 1.5 ** 2)
    image = bar + blob + core
    return torch.stack([0.6 * image, image, 1.3 * image])


def _rotate_cases():
    batch = _test_galaxy()[None].repeat(16, 1, 1, 1)
    return [Case("16 copies of one galaxy", batch, torch.Generator().manual_seed(3))]


def _radial_profile(x: torch.Tensor) -> torch.Tensor:
    size = x.shape[-1]
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, xx = torch.meshgrid(r, r, indexing="ij")
    ring = (torch.sqrt(xx ** 2 + y ** 2)).round().long().clamp(max=size // 2 - 1).flatten()
    flat = x.sum(-3).flatten(-2)  # [..., pixels]
    sums = torch.zeros(*flat.shape[:-1], size // 2).index_add_(-1, ring, flat)
    counts = torch.zeros(size // 2).index_add_(0, ring, torch.ones_like(ring, dtype=torch.float32))
    return sums / counts


def _dihedral(image: torch.Tensor) -> list[torch.Tensor]:
    out = []
    for flipped in (image, image.flip(-1)):
        for k in range(4):
            out.append(torch.rot90(flipped, k, dims=(-2, -1)))
    return out


FLUX_CHANGED = ("a rotation or a flip must move light around, not create or remove it (check the "
                "interpolation and that the rotation is about the image centre)")
OFF_CENTRE = ("the light moved away from the centre: rotate about the image centre (with "
              "F.affine_grid the centre is coordinate (0, 0)), and do not shift the image")
ONE_DRAW = ("all the images came out identical: draw a separate random angle and flip for "
            "*every* image, not one for the whole batch")
QUARTER_TURNS = ("the angles look like multiples of 90 degrees only: galaxies have no preferred "
                 "orientation, so draw the angle uniformly in [0, 360) degrees")
ALL_OR_NONE_MIRRORED = ("either every image or no image was mirrored: flip each image with "
                        "probability 1/2, independently")
NOT_REPEATABLE = ("two calls with generators in the same state gave different views. Draw every "
                  "random number from the `generator` argument (torch.rand(..., "
                  "generator=generator)), so an experiment can be repeated")


def _compare_rotate_flip(got, expected, case) -> str | None:
    x, generator = case.args
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch.Tensor, but it is a {type(got).__name__}"
    if got.shape != x.shape:
        return f"the result has shape {tuple(got.shape)}, expected shape {tuple(x.shape)}"
    if got.dtype != x.dtype:
        return f"the result has dtype {got.dtype}, expected {x.dtype}"
    if not torch.isfinite(got).all():
        return "the result contains NaN or inf values"
    flux_in, flux_out = x.sum(dim=(1, 2, 3)), got.sum(dim=(1, 2, 3))
    worst = ((flux_out - flux_in).abs() / flux_in).max().item()
    if worst > 0.03:
        return f"the total flux of an image changed by {100 * worst:.0f}%: {FLUX_CHANGED}"
    profiles = _radial_profile(got)
    reference_profile = _radial_profile(x[:1])
    err = ((profiles - reference_profile).abs().amax(dim=1) / reference_profile.max()).max()
    if err.item() > 0.08:
        return OFF_CENTRE
    distance = torch.cdist(got.flatten(1), got.flatten(1))
    identical = distance < 1e-4 * got.flatten(1).norm(dim=1).max()
    if identical.all():
        return ONE_DRAW
    off_grid = sum(
        min((image - d).abs().max().item() for d in _dihedral(x[0])) > 1e-3 * image.abs().max()
        for image in got
    )
    if off_grid < len(got) // 2:
        return QUARTER_TURNS
    if identical.sum().item() - len(got) > len(got):
        return ("many images came out identical: every image needs its own random angle")
    upright, mirror = _rotations_of(x[0]), _rotations_of(x[0].flip(-1))
    mirrored = sum(
        min((image - d).abs().max().item() for d in mirror)
        < min((image - d).abs().max().item() for d in upright)
        for image in got
    )
    if mirrored in (0, len(got)):
        return ALL_OR_NONE_MIRRORED
    return None


def _rotations_of(image: torch.Tensor, steps: int = 72) -> list[torch.Tensor]:
    angles = torch.arange(steps, dtype=torch.float32) * (2 * math.pi / steps)
    batch = image[None].repeat(steps, 1, 1, 1)
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, sin, zero], -1), torch.stack([-sin, cos, zero], -1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(batch.shape), align_corners=False)
    return list(torch.nn.functional.grid_sample(batch, grid, align_corners=False))


def _rotate_flip_repeatable(student_fn) -> str | None:
    """Same generator state -> same output (reproducible augmentations)."""
    x = _test_galaxy()[None].repeat(4, 1, 1, 1)
    a = student_fn(x.clone(), torch.Generator().manual_seed(11))
    b = student_fn(x.clone(), torch.Generator().manual_seed(11))
    return None if torch.equal(a, b) else NOT_REPEATABLE


def _rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate every image of x by its own angle (radians) about the image centre."""
    cos, sin, zero = angles.cos(), angles.sin(), torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, sin, zero], -1), torch.stack([-sin, cos, zero], -1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, align_corners=False)


def _one_draw_per_batch(x, generator):
    angle = torch.rand(1, generator=generator) * 2 * math.pi
    flip = torch.rand(1, generator=generator) < 0.5
    return _rotate(x.flip(-1) if flip else x, angle.expand(x.shape[0]))


def _quarter_turns(x, generator):
    k = torch.randint(0, 4, (x.shape[0],), generator=generator)
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return torch.stack([torch.rot90(im, int(kk), dims=(-2, -1)) for im, kk in zip(x, k)])


def _no_flip(x, generator):
    return _ROTATE(x, generator=generator)


def _about_the_corner(x, generator):
    angles = torch.rand(x.shape[0], generator=generator) * 2 * math.pi
    cos, sin = angles.cos(), angles.sin()
    theta = torch.stack([torch.stack([cos, sin, 1 - cos], -1),
                         torch.stack([-sin, cos, 1 + sin], -1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, align_corners=False)


def _global_random_numbers(x, generator):
    return rotate_flip_reference(x, None)


check_rotate_flip = make_check(
    "3.1", "random rotation and flip per image", rotate_flip_reference, _rotate_cases,
    compare=_compare_rotate_flip, also=_rotate_flip_repeatable,
    returns=Returns.tensor(dtype="input", why="the views go straight into the encoder"),
    mistakes=[
        (_one_draw_per_batch, ONE_DRAW),
        (_quarter_turns, QUARTER_TURNS),
        (_no_flip, ALL_OR_NONE_MIRRORED),
        (_about_the_corner, FLUX_CHANGED),
        (_global_random_numbers, NOT_REPEATABLE),
    ],
    hints=[
        "Every image needs its own coin flip and its own angle, drawn from the given "
        "generator, and one rotation matrix per image.",
        "Draw B uniform numbers from the generator for the flips (below 1/2: mirror the image "
        "left-right, torch.flip on the last axis) and B more for the angles, scaled to "
        "[0, 2 pi). Build theta, one [2, 3] matrix per image with the cosines and sines and no "
        "shift, so [B, 2, 3]; F.affine_grid turns it into sampling grids and F.grid_sample "
        "resamples the images (align_corners=False in both).",
        "torch.rand(B, generator=generator) gives B draws; torch.where(flip[:, None, None, None],"
        " x.flip(-1), x) mirrors the chosen images; stack the rows [cos, sin, 0] and "
        "[-sin, cos, 0] into theta [B, 2, 3]; then grid = F.affine_grid(theta, list(x.shape), "
        "align_corners=False) and F.grid_sample(x, grid, align_corners=False).",
    ],
)


# --------------------------------------------------------------------------------------------
# Exercise 3.2: Milky-Way reddening with the DECam g r z extinction coefficients. The reference
# is the package's `augment.redden(x, ebv)`, which `augment.RandomReddening` calls.
# --------------------------------------------------------------------------------------------


def _redden_cases():
    g = torch.Generator().manual_seed(32)
    small = torch.rand(2, 3, 3, 3, generator=g)
    return [
        Case("2 galaxies, 3x3 images", small, torch.tensor([0.4, 0.1])),
        Case("4 galaxies, E(B-V) from 0 to 0.3", torch.rand(4, 3, 8, 8, generator=g),
             torch.tensor([0.0, 0.05, 0.1, 0.3])),
        Case("one galaxy, E(B-V) = 1", torch.rand(1, 3, 5, 5, generator=g), torch.tensor([1.0])),
        Case("3 galaxies, non-square images", torch.rand(3, 3, 4, 6, generator=g),
             torch.tensor([0.2, 0.02, 0.5])),

    ]


def _r():
    return torch.tensor(DECAM_EXTINCTION)


check_redden = make_check(
    "3.2", "Milky-Way reddening", redden, _redden_cases, atol=1e-6, rtol=1e-5,
    returns=Returns.tensor(dtype="input", why="the reddened images go into the encoder"),
    mistakes=[
        (lambda x, e: x * 10 ** (0.4 * e[:, None, None, None] * _r()[None, :, None, None]),
         "the exponent has the wrong sign: dust makes galaxies fainter, so every factor on "
         "the flux must be below 1."),
        (lambda x, e: x * torch.exp(-0.4 * e[:, None, None, None] * _r()[None, :, None, None]),
         "the base is e: magnitudes are base-10 logarithms, so the factor is a power of 10."),
        (lambda x, e: x * 10 ** (-0.4 * e[:, None, None, None] * _r()[0]),
         "every band got the g-band coefficient: use R_g, R_r, R_z for the three bands."),
        (lambda x, e: x * 10 ** (-0.4 * e[:, None, None, None]),
         "the extinction coefficients R_b are missing: A_b = R_b * E(B-V)."),
        (lambda x, e: x * 10 ** (-0.4 * e[:, None, None, None] * _r()[None, None, None, :3]),
         "the coefficients are broadcast along the image width instead of the bands "
         "(shape them [1, 3, 1, 1])."),
        (lambda x, e: x * 10 ** (-e[:, None, None, None] * _r()[None, :, None, None]),
         "the factor 0.4 is missing: one magnitude is a factor of 10**0.4 (about 2.512) in "
         "flux, not 10."),
        (lambda x, e: x * 10 ** (-2.5 * e[:, None, None, None] * _r()[None, :, None, None]),
         "the factor is 0.4, not 2.5 (2.5 goes the other way, from fluxes to magnitudes)."),
        (lambda x, e: x - 0.4 * e[:, None, None, None] * _r()[None, :, None, None],
         "the extinction is subtracted from the flux: A_b is in magnitudes, and a change of "
         "magnitude *multiplies* the flux by a factor."),
    ],
    hints=[
        "Dust dims each band by its own number of magnitudes, coefficient times colour "
        "excess; a magnitude change multiplies the flux.",
        "In band b the extinction is A_b = R_b E(B-V) magnitudes, and A magnitudes dim a flux "
        "by the factor 10**(-0.4 A). Shape E(B-V) as [B, 1, 1, 1] and the coefficients as "
        "[1, 3, 1, 1] (indexing with None) so that their product broadcasts to one factor per "
        "image and band, then multiply the images by the factors.",
        "ebv[:, None, None, None] * R_GRZ[None, :, None, None] is [B, 3, 1, 1] (move R_GRZ to "
        "x's dtype and device first); x times 10 to the power of -0.4 times that product is "
        "the reddened batch.",
    ],
)
