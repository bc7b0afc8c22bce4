"""Specification of phys555_cl.augment: per-image random galaxy augmentations."""

import inspect
import math
import re

import pytest
import torch

from phys555_cl import augment, galaxies
from phys555_cl.augment import (
    BLUR_FWHM,
    DECAM_EXTINCTION,
    DECAM_WAVELENGTH_NM,
    FWHM_PER_SIGMA,
    SEEING_FWHM,
    GalaxyAugment,
    RandomAffine,
    RandomBrightness,
    RandomFlip,
    RandomGaussianNoise,
    RandomPSFBlur,
    RandomReddening,
    add_noise,
    affine,
    brighten,
    flip,
    psf_blur,
    redden,
    restore_sky_noise,
)
from phys555_cl.encoders import SimCLR, build_encoder
from phys555_cl.photometry import border_pixels, robust_sigma, sky_and_noise


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
    y = RandomPSFBlur(fwhm=(2.0, 4.0))(x, generator=torch.Generator().manual_seed(0))
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


# --------------------------------------------------------------------------------------------
# every module draws the parameters of every image, then applies its plain function
# --------------------------------------------------------------------------------------------


def _draws(seed, *shapes):
    """The random numbers a module draws from a generator seeded with ``seed``, in order:
    an int n is torch.rand(n), a tuple is torch.randn(shape)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(s, generator=g) if isinstance(s, int) else torch.randn(s, generator=g)
            for s in shapes]


def test_each_module_is_its_function_applied_to_its_draws():
    x, b = elongated_galaxies(b=5) + 0.01 * torch.randn(5, 3, 32, 32), 5
    run = lambda module: module(x, generator=torch.Generator().manual_seed(3))  # noqa: E731
    (u,) = _draws(3, b)
    assert torch.equal(run(RandomFlip(0.5)), flip(x, u < 0.5))
    assert torch.equal(run(RandomReddening((0.0, 0.3))), redden(x, 0.3 * u))
    assert torch.equal(run(RandomBrightness((-1.0, 1.0))), brighten(x, -1.0 + 2.0 * u))
    angle, dx, dy, s = _draws(3, b, b, b, b)
    shift = torch.stack([8 * dx - 4, 8 * dy - 4], 1)
    expected = affine(x, 360 * angle, shift, 0.9 + (1.1 - 0.9) * s)  # U(low, high) as drawn
    assert torch.equal(run(RandomAffine()), expected)
    fwhm, apply = _draws(3, b, b)
    expected = psf_blur(x, 1.5 * fwhm * (apply < 0.5), max_fwhm=1.5)
    assert torch.equal(run(RandomPSFBlur((0.0, 1.5), probability=0.5)), expected)
    level, noise = _draws(3, b, tuple(x.shape))
    sigma = robust_sigma(x)
    expected = add_noise(x, sigma * 2.0 * level[:, None], noise)
    assert torch.equal(run(RandomGaussianNoise((0.0, 2.0))), expected)


def test_redden_dims_each_band_by_its_extinction_coefficient():
    y = redden(torch.ones(2, 3, 4, 4), torch.tensor([0.0, 1.0]))
    assert torch.equal(y[0], torch.ones(3, 4, 4))
    expected = 10 ** (-0.4 * torch.tensor(DECAM_EXTINCTION))  # E(B-V) = 1: A_b = R_b mag
    torch.testing.assert_close(y[1, :, 0, 0], expected)


def test_brighten_by_one_magnitude_dims_every_band_by_10_to_the_minus_0_4():
    y = brighten(gaussian_galaxies(b=2), torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(y / gaussian_galaxies(b=2),
                               torch.tensor([10**-0.4, 10**0.4])[:, None, None, None]
                               .expand_as(y), rtol=1e-6, atol=0)


def test_a_single_number_is_the_parameter_of_every_image():
    x = gaussian_galaxies(b=3)
    assert torch.equal(brighten(x, 0.5), brighten(x, torch.full((3,), 0.5)))
    assert torch.equal(affine(x, 90.0, 0.0, 1.0), affine(x, torch.full((3,), 90.0),
                                                         torch.zeros(3, 2), torch.ones(3)))


def test_psf_blur_of_zero_fwhm_leaves_the_image_as_it_is():
    x = gaussian_galaxies(b=2)
    torch.testing.assert_close(psf_blur(x, torch.zeros(2)), x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda x: redden(x, torch.zeros(3)), r"ebv must hold the value of every image, shape \[4\]"),
    (lambda x: affine(x, torch.zeros(4), torch.zeros(4), torch.ones(4)), r"shift.*\[4, 2\]"),
    (lambda x: add_noise(x, torch.ones(4, 3), torch.randn(4, 3, 8, 9)), "noise must have"),
    (lambda x: redden(x[:, :2], torch.zeros(4)), "one channel per band"),
])
def test_the_functions_say_which_parameter_has_the_wrong_shape(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(4, 3, 8, 8))


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
    return inspect.signature(module).parameters[argument].default


def _range(r):
    return f"U({r[0]:g}, {r[1]:g})"


def test_the_module_docstring_table_shows_the_default_ranges_of_the_code():
    rows = {
        "RandomFlip": f"p = {_default(RandomFlip, 'p'):g}",
        "RandomAffine": f"angle {_range(_default(RandomAffine, 'degrees'))} deg",
        "RandomPSFBlur": f"FWHM {_range(_default(RandomPSFBlur, 'fwhm'))} arcsec",
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
    (RandomPSFBlur, "fwhm", "blur_fwhm"), (RandomReddening, "ebv", "ebv"),
    (RandomBrightness, "delta_mag", "delta_mag"), (RandomGaussianNoise, "level", "noise_level"),
])
def test_every_module_defaults_to_what_galaxy_augment_uses(module, argument, galaxy_argument):
    assert _default(module, argument) == _default(GalaxyAugment, galaxy_argument)


# ---------------------------------------------------------------------------------------------
# Physical units: the sky noise of the views, the PSF in arcsec, a noise estimate that galaxy
# light does not bias, and augmentations the model can see
# ---------------------------------------------------------------------------------------------

BAND_SIGMA = torch.tensor([0.8, 1.0, 1.6])  # relative sky noise in g, r, z


def sky_noise(b, size, seed=0):
    """Noise-only images: Gaussian sky noise of a known sigma per band (0.05 nanomaggies per
    arcsec^2 in r at 32 pixels, twice that at 64, as for a survey of DECaLS depth)."""
    sigma = 0.05 * (size / 32) * BAND_SIGMA
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, size, size, generator=g) * sigma[:, None, None], sigma


def centred_galaxy(size, r_e, mag, profile="exponential", oversample=4):
    """A round galaxy of half-light radius ``r_e`` arcsec and r magnitude ``mag`` in the centre
    of a 32-arcsec stamp of ``size`` pixels, as surface brightness in nanomaggies per arcsec^2
    (the profile averaged over each pixel). ``[size, size]``."""
    b, n = (1.678, 1) if profile == "exponential" else (7.669, 4)  # de Vaucouleurs: n = 4
    flux = 10 ** (-0.4 * (mag - 22.5))  # nanomaggies
    # total flux of I_e exp(-b ((R / r_e)^(1/n) - 1)): I_e r_e^2 2 pi n e^b Gamma(2n) / b^(2n)
    i_e = flux / (r_e**2 * 2 * math.pi * n * math.exp(b) * math.gamma(2 * n) / b ** (2 * n))
    pix = 32.0 / size
    t = (torch.arange(size * oversample, dtype=torch.float64) + 0.5) * pix / oversample - 16.0
    radius = torch.sqrt(t[:, None] ** 2 + t[None, :] ** 2)
    image = i_e * torch.exp(-b * ((radius / r_e) ** (1 / n) - 1))
    return torch.nn.functional.avg_pool2d(image[None, None], oversample)[0, 0].float()


@pytest.mark.parametrize("size", [32, 64])
def test_every_view_keeps_at_least_90_percent_of_the_sky_noise(size):
    # interpolation and blurring smooth the noise (a rotation leaves about 0.65 of it); the
    # views are brought back to the input's noise before the extra noise is added
    x, sigma = sky_noise(64, size)
    views = torch.cat(GalaxyAugment().two_views(x, generator=torch.Generator().manual_seed(1)))
    view_noise = (views / sigma[:, None, None]).flatten(1).std(dim=1)  # in units of the input's
    assert view_noise.min() >= 0.9, view_noise.min()
    # without the restoration the views would be far cleaner than the input
    smooth = GalaxyAugment(restore_noise=False, noise_level=(0, 0))(
        x, generator=torch.Generator().manual_seed(1))
    assert (smooth / sigma[:, None, None]).flatten(1).std(dim=1).median() < 0.8


@pytest.mark.parametrize("size", [32, 64])
def test_without_extra_noise_views_have_the_input_sky_noise(size):
    x, sigma = sky_noise(64, size, seed=2)
    views = GalaxyAugment(noise_level=(0, 0))(x, generator=torch.Generator().manual_seed(3))
    per_band = views.std(dim=(2, 3)) / sigma  # [B, 3]
    assert abs(per_band.median().item() - 1) < 0.1
    for band in range(3):
        assert abs(per_band[:, band].median().item() - 1) < 0.1, band


def test_extra_noise_is_in_units_of_the_original_sky_noise():
    x, sigma = sky_noise(64, 32, seed=4)
    views = GalaxyAugment(noise_level=(1, 1))(x, generator=torch.Generator().manual_seed(5))
    # restored to sigma, then sigma more in quadrature: sqrt(2) sigma
    ratio = (views.std(dim=(2, 3)) / sigma).median().item()
    assert math.isclose(ratio, math.sqrt(2), rel_tol=0.1), ratio


def test_the_sky_noise_measured_beforehand_gives_the_same_views():
    x, _ = sky_noise(48, 32, seed=6)
    aug = GalaxyAugment()
    every_time = aug(x[:16], generator=torch.Generator().manual_seed(7))
    noise = aug.sky_noise(x)  # measured on more images, in one call
    once = aug(x[:16], generator=torch.Generator().manual_seed(7), sigma=noise[:16])
    assert torch.equal(every_time, once)
    with pytest.raises(ValueError, match="one sky noise per image and band"):
        aug(x[:16], sigma=noise)


def test_restore_sky_noise_adds_only_what_is_missing():
    x, sigma = sky_noise(32, 64, seed=6)
    s = robust_sigma(x)
    half = restore_sky_noise(0.5 * x, s, generator=torch.Generator().manual_seed(0))
    ratio = (half.std(dim=(2, 3)) / sigma).median().item()
    assert math.isclose(ratio, 1.0, rel_tol=0.05), ratio
    noisier = restore_sky_noise(2 * x, s, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(noisier, 2 * x)  # nothing to remove, nothing added


def _fwhm_arcsec(y, size):
    """FWHM in arcsec of the blurred point sources ``y`` [B, C, H, W], from the variance of
    each along x (a 32-arcsec field)."""
    p = y.sum(dim=-2) / y.sum(dim=(-2, -1))[..., None]  # [B, C, W]
    pos = torch.arange(y.shape[-1], dtype=y.dtype)
    mean = (p * pos).sum(-1, keepdim=True)
    sigma_px = ((p * (pos - mean) ** 2).sum(-1)).sqrt()
    return FWHM_PER_SIGMA * sigma_px * 32.0 / size


def _point_sources(b, size):
    x = torch.zeros(b, 3, size, size, dtype=torch.float64)
    x[..., size // 2, size // 2] = 1.0
    return x


@pytest.mark.parametrize("size", [32, 64, 96])
def test_psf_blur_has_the_same_fwhm_in_arcsec_at_every_image_size(size):
    band = torch.tensor(DECAM_WAVELENGTH_NM) / DECAM_WAVELENGTH_NM[1]
    for fwhm in (0.3, 0.6, 1.04):
        y = RandomPSFBlur(fwhm=(fwhm, fwhm))(_point_sources(2, size))
        torch.testing.assert_close(_fwhm_arcsec(y, size)[0],
                                   (fwhm * band ** -0.2).double(), rtol=2e-3, atol=0)
    # the default range: never above the survey's largest change of seeing in r
    y = RandomPSFBlur()(_point_sources(300, size), generator=torch.Generator().manual_seed(0))
    r_fwhm = _fwhm_arcsec(y, size)[:, 1]
    assert r_fwhm.max() <= BLUR_FWHM[1] * 1.002 and r_fwhm.max() > 0.95 * BLUR_FWHM[1]


def test_the_blur_range_is_the_survey_seeing_range():
    low, high = SEEING_FWHM
    assert math.isclose(BLUR_FWHM[1], math.sqrt(high**2 - low**2), abs_tol=0.005)
    assert BLUR_FWHM[0] == 0
    assert galaxies.SEEING_FWHM == SEEING_FWHM  # one fact: the simulator's r-band seeing


def test_galaxy_augment_blurs_at_its_pixel_scale():
    off = dict(flip_p=0.0, degrees=(0, 0), max_shift=0, scale=(1, 1), ebv=(0, 0),
               delta_mag=(0, 0), noise_level=(0, 0), restore_noise=False)
    x = _point_sources(1, 64)
    # 0.25 arcsec per pixel: a 1-arcsec FWHM is 4 pixels in r
    y = GalaxyAugment(blur_fwhm=(1, 1), pixel_scale=0.25, **off)(x)
    fwhm_px = _fwhm_arcsec(y, 64)[0, 1] * 64 / 32.0
    assert math.isclose(fwhm_px.item(), 4.0, rel_tol=2e-3)
    # the default: the simulator's 32-arcsec field, 0.5 arcsec per pixel at 64 pixels
    y = GalaxyAugment(blur_fwhm=(1, 1), **off)(x)
    assert math.isclose(_fwhm_arcsec(y, 64)[0, 1].item(), 1.0, rel_tol=2e-3)
    with pytest.raises(ValueError, match="pixel_scale"):
        GalaxyAugment(pixel_scale=0)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("profile", ["exponential", "de Vaucouleurs"])
def test_the_noise_estimate_is_not_biased_by_galaxy_light(size, profile):

    noise, sigma = sky_noise(16, size, seed=7)
    for r_e in (1, 3, 5, 8):
        for mag in (14, 16, 18):
            x = centred_galaxy(size, r_e, mag, profile) + noise
            ratio = (robust_sigma(x) / sigma).median().item()
            assert abs(ratio - 1) < 0.1, (r_e, mag, ratio)
    # the spread of the border values is the galaxy's: a bright, large one lights up the
    # whole border (what the previous estimate, a MAD of the border values, measured)
    x = centred_galaxy(size, 8, 14, profile) + noise
    assert (sky_and_noise(border_pixels(x))[1] / sigma).median() > 1.3


def test_sky_and_noise_clips_outliers_and_keeps_gaussian_noise_unbiased():
    g = torch.Generator().manual_seed(0)
    values = 2.0 + 0.5 * torch.randn(4, 20000, generator=g)
    sky, noise = sky_and_noise(values)
    assert sky.shape == (4, 1) and noise.shape == (4,)
    torch.testing.assert_close(noise, torch.full((4,), 0.5), rtol=0.02, atol=0)
    values[:, :2000] += 10 * torch.rand(4, 2000, generator=g)  # 10% bright outliers
    sky, noise = sky_and_noise(values)
    torch.testing.assert_close(noise, torch.full((4,), 0.5), rtol=0.05, atol=0)
    torch.testing.assert_close(sky[:, 0], torch.full((4,), 2.0), rtol=0, atol=0.05)


def test_robust_sigma_is_right_for_smoothed_noise():
    # the noise of a rotated view is correlated between neighbouring pixels; the estimate
    # compares pixels 2 arcsec apart, so it still measures the noise of one pixel

    x, _ = sky_noise(64, 64, seed=8)
    view = RandomAffine()(x, generator=torch.Generator().manual_seed(0))
    ratio = (robust_sigma(view) / view.std(dim=(2, 3))).median().item()
    assert math.isclose(ratio, 1.0, rel_tol=0.05), ratio


def _model_input():
    return SimCLR(build_encoder("compact", width=4)).normalize


def test_every_default_step_changes_what_the_model_sees():
    # the model's normalisation is one fixed stretch: flux, colour, blur and noise all reach it
    normalize = _model_input()
    noise, _ = sky_noise(32, 32, seed=9)
    galaxy = centred_galaxy(32, 3, 16)
    x = torch.roll(galaxy, shifts=(3, 5), dims=(0, 1)) + noise  # off-centre: a flip shows
    for step in GalaxyAugment().steps:
        view = step(x, generator=torch.Generator().manual_seed(0))
        change = (normalize(view) - normalize(x)).abs().amax(dim=(1, 2, 3))  # per image
        # half the images are flipped; the other steps draw amounts from 0 up: the median
        if isinstance(step, RandomFlip):
            assert (change > 0.05).float().mean() >= 0.3, step
        else:
            assert change.median() > 0.005, (step, change.median())


def test_a_brighter_view_is_a_different_input():
    normalize = _model_input()
    noise, _ = sky_noise(8, 32, seed=10)
    x = centred_galaxy(32, 2, 17) + noise
    brighter = RandomBrightness(delta_mag=(-0.2, -0.2))(x)
    assert (normalize(brighter) - normalize(x)).abs().amax() > 0.05
