"""Specification of phys555_cl.augment: per-image random galaxy augmentations."""

import math

import pytest
import torch

from phys555_cl.augment import (
    GalaxyAugment,
    RandomAffine,
    RandomBrightness,
    RandomFlip,
    RandomGaussianNoise,
    RandomPSFBlur,
    RandomReddening,
)


def gaussian_galaxies(b=6, size=32, sigma=3.0):
    """Round Gaussian blobs with different fluxes, centred: easy to reason about."""
    r = torch.arange(size) - (size - 1) / 2
    blob = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    colour = torch.tensor([1.0, 2.0, 3.0])[:, None, None]
    flux = torch.linspace(1, 3, b)[:, None, None, None] * colour
    return flux * blob


def elongated_galaxies(b=6, size=32):
    r = torch.arange(size) - (size - 1) / 2
    blob = torch.exp(-(r[:, None] ** 2 / 4 + r[None, :] ** 2 / 40))
    return blob.expand(b, 3, size, size).clone()


ALL_MODULES = [
    RandomFlip(),
    RandomAffine(),
    RandomPSFBlur(),
    RandomReddening(),
    RandomBrightness(),
    RandomGaussianNoise(),
    GalaxyAugment(),
]


@pytest.mark.parametrize("module", ALL_MODULES, ids=lambda m: type(m).__name__)
def test_shape_and_dtype_are_kept(module):
    x = elongated_galaxies() + 0.01 * torch.randn(6, 3, 32, 32)
    y = module(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("module", ALL_MODULES, ids=lambda m: type(m).__name__)
def test_same_generator_seed_gives_the_same_augmentation(module):
    x = elongated_galaxies() + 0.01 * torch.randn(6, 3, 32, 32)
    y1 = module(x, generator=torch.Generator().manual_seed(7))
    y2 = module(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(y1, y2)


def test_parameters_differ_from_image_to_image():
    # the same galaxy repeated: any difference between outputs comes from per-image parameters
    x = elongated_galaxies(b=8)
    for module in [RandomAffine(max_shift=0, scale=(1, 1)), RandomPSFBlur(), RandomReddening(),
                   RandomBrightness(), GalaxyAugment()]:
        y = module(x, generator=torch.Generator().manual_seed(1))
        diffs = [(y[0] - y[i]).abs().max().item() for i in range(1, 8)]
        assert min(diffs) > 1e-4, type(module).__name__


def test_flip_flips_some_images_and_not_others():
    x = elongated_galaxies(b=64)
    x[..., :, :5] += 1.0  # a feature on the left side
    y = RandomFlip(0.5)(x, generator=torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(y[i], x[i].flip(-1)) for i in range(64)])
    kept = torch.tensor([torch.equal(y[i], x[i]) for i in range(64)])
    assert (flipped | kept).all() and 10 < flipped.sum() < 54


def test_two_views_differ():
    x = elongated_galaxies() + 0.01 * torch.randn(6, 3, 32, 32)
    v1, v2 = GalaxyAugment().two_views(x, generator=torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == x.shape
    assert not torch.allclose(v1, v2)


def test_rotation_keeps_total_flux():
    x = gaussian_galaxies(size=48)
    y = RandomAffine(degrees=(0, 360), max_shift=0, scale=(1, 1))(
        x, generator=torch.Generator().manual_seed(3)
    )
    torch.testing.assert_close(y.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=2e-3, atol=0)


def test_rescaling_keeps_total_flux():
    x = gaussian_galaxies(size=48)
    y = RandomAffine(degrees=(0, 0), max_shift=0, scale=(0.8, 1.2))(
        x, generator=torch.Generator().manual_seed(3)
    )
    torch.testing.assert_close(y.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=2e-2, atol=0)


def test_rotation_by_90_degrees_matches_rot90():
    x = elongated_galaxies(b=2)
    y = RandomAffine(degrees=(90, 90), max_shift=0, scale=(1, 1))(x)
    # a quarter turn lands on the pixel grid: no interpolation error
    torch.testing.assert_close(y, torch.rot90(x, -1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_affine_out_size_crops_the_centre():
    x = elongated_galaxies(size=48)
    y = RandomAffine(degrees=(0, 0), max_shift=0, scale=(1, 1), out_size=32)(x)
    torch.testing.assert_close(y, x[..., 8:40, 8:40], atol=1e-5, rtol=0)


def test_psf_blur_keeps_flux_and_lowers_the_peak():
    x = gaussian_galaxies(size=48, sigma=1.5)
    y = RandomPSFBlur(sigma=(1.0, 2.0))(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(y.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=1e-4, atol=0)
    assert (y.amax(dim=(2, 3)) < x.amax(dim=(2, 3))).all()


def test_reddening_dims_g_more_than_z():
    x = torch.ones(16, 3, 8, 8)
    y = RandomReddening(ebv=(0.05, 0.5))(x, generator=torch.Generator().manual_seed(0))
    g, r, z = y[:, 0, 0, 0], y[:, 1, 0, 0], y[:, 2, 0, 0]
    assert (g < r).all() and (r < z).all() and (z < 1).all()


def test_brightness_scales_every_band_by_the_same_factor():
    x = gaussian_galaxies()
    y = RandomBrightness((-0.5, 0.5))(x, generator=torch.Generator().manual_seed(0))
    ratio = y.sum(dim=(2, 3)) / x.sum(dim=(2, 3))
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    assert (ratio > 10 ** (-0.2) - 1e-5).all() and (ratio < 10 ** 0.2 + 1e-5).all()


def test_noise_is_measured_in_units_of_the_image_noise():
    torch.manual_seed(0)
    for scale in (1e-3, 1e3):  # the same relative noise for fluxes of any unit
        x = scale * torch.randn(4, 3, 64, 64)
        y = RandomGaussianNoise(level=(1.0, 1.0))(x, generator=torch.Generator().manual_seed(0))
        added = (y - x).std() / x.std()
        assert math.isclose(added.item(), 1.0, rel_tol=0.1)


def test_generator_on_the_images_device_is_used():
    x = elongated_galaxies()
    y = GalaxyAugment()(x, generator=torch.Generator(device="cpu").manual_seed(0))
    assert y.device == x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_with_a_cuda_generator():
    x = elongated_galaxies().cuda()
    y = GalaxyAugment()(x, generator=torch.Generator(device="cuda").manual_seed(0))
    assert y.is_cuda and y.shape == x.shape


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="probability"):
        RandomFlip(1.5)
    with pytest.raises(ValueError, match="scale"):
        RandomAffine(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        GalaxyAugment()(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="channel"):
        RandomReddening()(torch.zeros(2, 1, 8, 8))


def test_uint8_images_are_refused_saying_how_to_convert():
    x = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"x.float\(\) / 255"):
        GalaxyAugment()(x)


def test_an_empty_batch_is_refused_in_words():
    with pytest.raises(ValueError, match="empty batch"):
        GalaxyAugment().two_views(torch.zeros(0, 3, 16, 16))


def _default(module, argument):
    import inspect

    return inspect.signature(module).parameters[argument].default


def _range(r):
    return f"U({r[0]:g}, {r[1]:g})"


def test_the_module_docstring_table_shows_the_default_ranges_of_the_code():
    import re

    from phys555_cl import augment

    rows = {
        "RandomFlip": f"p = {_default(RandomFlip, 'p'):g}",
        "RandomAffine": f"angle {_range(_default(RandomAffine, 'degrees'))} deg",
        "RandomPSFBlur": f"sigma {_range(_default(RandomPSFBlur, 'sigma'))} px",
        "RandomReddening": f"E(B-V) {_range(_default(RandomReddening, 'ebv'))}",
        "RandomBrightness": f"dm {_range(_default(RandomBrightness, 'delta_mag'))} mag",
        "RandomGaussianNoise": f"sigma {_range(_default(RandomGaussianNoise, 'level'))} x sky",
    }
    for name, text in rows.items():
        assert re.search(rf"^{name} +{re.escape(text)}", augment.__doc__, re.M), (name, text)
    assert f"s = {_default(RandomAffine, 'max_shift'):g} px" in augment.__doc__
    assert f"scale {_range(_default(RandomAffine, 'scale'))}" in augment.__doc__


@pytest.mark.parametrize("module, argument, galaxy_argument", [
    (RandomFlip, "p", "flip_p"), (RandomAffine, "degrees", "degrees"),
    (RandomAffine, "max_shift", "max_shift"), (RandomAffine, "scale", "scale"),
    (RandomPSFBlur, "sigma", "blur_sigma"), (RandomReddening, "ebv", "ebv"),
    (RandomBrightness, "delta_mag", "delta_mag"), (RandomGaussianNoise, "level", "noise_level"),
])
def test_every_module_defaults_to_what_galaxy_augment_uses(module, argument, galaxy_argument):
    assert _default(module, argument) == _default(GalaxyAugment, galaxy_argument)
