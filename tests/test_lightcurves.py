"""The light-curve simulator: deterministic per (seed, index), labelled, physically shaped."""

import math

import pytest
import torch

from phys555_cl import config
from phys555_cl.lightcurves import (
    _SHAPES,
    CLASS_NAMES,
    LABEL_KEYS,
    PERIOD_RANGE,
    LightCurves,
    simulate_light_curves,
    skewed_wave,
    to_network_input,
)

T = 128


def test_a_curve_depends_only_on_seed_and_index_not_on_its_batch():
    a = simulate_light_curves([5, 6, 7], seed=3, n_samples=T)
    b = simulate_light_curves([7, 40, 5], seed=3, n_samples=T)
    for key in ("mag", "mask", "clean", *LABEL_KEYS):
        assert torch.equal(a[key][0], b[key][2]), key
        assert torch.equal(a[key][2], b[key][0]), key


def test_another_seed_gives_another_survey():
    a = simulate_light_curves(range(20), seed=0, n_samples=T)
    b = simulate_light_curves(range(20), seed=1, n_samples=T)
    assert not torch.equal(a["mag"], b["mag"])
    assert not torch.equal(a["star_class"], b["star_class"])


def test_labels_have_the_documented_dtypes_shapes_and_ranges():
    out = simulate_light_curves(range(600), seed=0, n_samples=T)
    for key in LABEL_KEYS:
        assert out[key].shape == (600,), key
    assert out["star_class"].dtype == torch.int64
    assert out["ground_based"].dtype == torch.int64
    assert out["log_period"].dtype == torch.float32
    assert set(out["star_class"].tolist()) == set(range(len(CLASS_NAMES)))
    for k, (lo, hi) in PERIOD_RANGE.items():
        periods = out["period"][out["star_class"] == k]
        assert periods.min() >= lo * 0.999 and periods.max() <= hi * 1.001, CLASS_NAMES[k]
    assert torch.allclose(10 ** out["log_period"], out["period"], rtol=1e-5)
    assert (out["amplitude"] > 0).all()
    assert ((out["noise"] > 0.003) & (out["noise"] < 0.032)).all()  # 3-30 mmag
    assert ((out["phase0"] >= 0) & (out["phase0"] < 1)).all()


def test_classes_are_roughly_balanced():
    counts = torch.bincount(simulate_light_curves(range(1200), n_samples=16)["star_class"])
    assert counts.min() > 150 and counts.max() < 250


def test_unobserved_bins_are_zero_and_ground_surveys_see_less():
    out = simulate_light_curves(range(300), seed=0, n_samples=512)
    assert (out["mag"][~out["mask"]] == 0).all()
    observed = out["mask"].float().mean(dim=1)
    ground = out["ground_based"].bool()
    assert observed[ground].mean() < 0.5 < observed[~ground].mean()
    assert (out["mask"].sum(dim=1) >= 8).all()


def test_noise_is_the_scatter_around_the_clean_model():
    out = simulate_light_curves(range(200), seed=2, n_samples=512)
    residual = (out["mag"] - out["clean"]) * out["mask"]
    # The trend is at most 0.02 mag over the baseline, small next to the noise ratio tested.
    rms = (residual**2).sum(1).div(out["mask"].sum(1)).sqrt()
    ratio = rms / out["noise"]
    assert 0.5 < ratio.median() < 2.0


def test_skewed_wave_has_its_minimum_at_phase_0_and_maximum_at_the_rise_fraction():
    phase = torch.linspace(0, 1, 1001)[:-1].expand(2, -1)
    rise = torch.tensor([[0.15], [0.4]])
    wave = skewed_wave(phase, rise, n_harmonics=40)
    assert torch.allclose(phase[0, wave.argmax(dim=1)], rise[:, 0], atol=0.01)
    assert torch.allclose(wave[:, 0], wave.min(dim=1).values, atol=0.03)
    peak_to_peak = wave.max(dim=1).values - wave.min(dim=1).values
    assert torch.allclose(peak_to_peak, torch.ones(2), atol=0.03)


def test_detached_binaries_spend_most_of_the_orbit_at_maximum_light():
    out = simulate_light_curves(range(300), seed=0, n_samples=512)
    clean = out["clean"][out["star_class"] == 3]
    brightest = clean.min(dim=1, keepdim=True).values  # magnitudes: smaller is brighter
    near_max = (clean - brightest) < 0.1 * (clean.max(dim=1, keepdim=True).values - brightest)
    assert near_max.float().mean() > 0.5


def test_network_input_is_standardised_magnitudes_and_the_mask():
    data = LightCurves(50, seed=0, n_samples=T)
    x = data.x
    assert x.shape == (50, 2, T) and x.dtype == torch.float32
    mask = data.mask.float()
    assert torch.equal(x[:, 1], mask)
    n = mask.sum(1)
    mean = (x[:, 0] * mask).sum(1) / n
    std = ((x[:, 0] ** 2) * mask).sum(1).div(n).sqrt()
    assert torch.allclose(mean, torch.zeros(50), atol=1e-4)
    assert torch.allclose(std, torch.ones(50), atol=1e-3)
    assert (x[:, 0][~data.mask] == 0).all()


def test_dataset_items_and_offsets_match_the_simulator():
    data = LightCurves(5, seed=4, offset=10, n_samples=T)
    x, labels = data[2]
    single = simulate_light_curves([12], seed=4, n_samples=T)
    assert torch.equal(x, to_network_input(single["mag"], single["mask"])[0])
    assert labels["star_class"] == single["star_class"][0]
    assert len(data) == 5 and set(labels) == set(LABEL_KEYS)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 8}, "n_samples"),
        ({"cadence_hours": 0}, "cadence_hours"),
        ({"indices": [-1]}, "non-negative"),
    ],
)
def test_invalid_arguments_raise_value_errors_that_name_them(kwargs, match):
    args = {"indices": [0, 1], **kwargs}
    with pytest.raises(ValueError, match=match):
        simulate_light_curves(args.pop("indices"), **args)


def test_bad_dataset_size_and_input_shapes_raise():
    with pytest.raises(ValueError, match="size"):
        LightCurves(0)
    with pytest.raises(ValueError, match=r"\[N, T\]"):
        to_network_input(torch.zeros(3, 4), torch.zeros(3, 5, dtype=torch.bool))


def test_period_ranges_are_positive_and_ordered():
    for lo, hi in PERIOD_RANGE.values():
        assert 0 < lo < hi and math.isfinite(hi)


# ---------------------------------------------------------------------------------------------
# The Hertzsprung progression of classical Cepheids, measured as an astronomer would: on
# noise-free curves, the bump is what is left after subtracting the same star at a period
# without a bump (3 d), and its phase is counted from maximum light of the full curve.
# ---------------------------------------------------------------------------------------------

CEPHEID = CLASS_NAMES.index("Cepheid")
PHASE = (torch.arange(2000) / 2000.0)[None, :]
# Nine stars: three rise times (the shape's u[0]) times three bump strengths (its u[2]).
STARS = torch.tensor([[a, 0.5, b, 0.5, 0.5, 0.5] for a in (0, 0.5, 1) for b in (0, 0.5, 1)])


def cepheid_brightness(period: float) -> torch.Tensor:
    """[9, T] noise-free brightness (minus the magnitude) of the nine STARS over one cycle."""
    log_period = torch.full((len(STARS), 1), math.log10(period))
    phase = PHASE.expand(len(STARS), -1)
    return -_SHAPES[CEPHEID](phase, STARS, log_period, PHASE)


def wrapped(phase: torch.Tensor) -> torch.Tensor:
    return torch.remainder(phase + 0.5, 1.0) - 0.5


def measure_bump(period: float):
    """(height [9] mag, phase of the bump after maximum light [9], of minimum light [9])."""
    brightness = cepheid_brightness(period)
    residual = brightness - cepheid_brightness(3.0)
    maximum = PHASE[0, brightness.argmax(dim=1)]
    bump_phase = wrapped(PHASE[0, residual.argmax(dim=1)] - maximum)
    min_phase = wrapped(PHASE[0, brightness.argmin(dim=1)] - maximum)
    return residual.abs().amax(dim=1), bump_phase, min_phase


def test_short_period_cepheids_are_smooth_with_one_maximum_and_one_minimum_per_cycle():
    brightness = cepheid_brightness(3.0)
    slope = torch.diff(brightness, dim=1, append=brightness[:, :1])
    turns = (torch.sign(slope) != torch.sign(torch.roll(slope, 1, dims=1))).sum(dim=1)
    assert (turns == 2).all(), turns


@pytest.mark.parametrize("period", [2.0, 4.0, 5.0, 5.9, 16.1, 20.0, 40.0])
def test_cepheids_outside_6_to_16_days_have_no_hertzsprung_bump(period):
    height, _, _ = measure_bump(period)
    assert (height < 1e-5).all(), height


@pytest.mark.parametrize("period", [6.5, 7.0, 8.0, 9.0])
def test_at_6_to_9_days_the_bump_is_on_the_descending_branch(period):
    height, bump_phase, _ = measure_bump(period)
    assert (height > 0.005).all()
    assert ((bump_phase > 0.15) & (bump_phase < 0.35)).all(), bump_phase


def test_near_10_days_the_bump_coincides_with_maximum_light():
    _, bump_phase, _ = measure_bump(10.0)
    assert (bump_phase.abs() < 0.05).all(), bump_phase


@pytest.mark.parametrize("period", [11.0, 12.0, 14.0, 15.5])
def test_at_11_to_16_days_the_bump_is_on_the_rising_branch(period):
    height, bump_phase, min_phase = measure_bump(period)
    assert (height > 0.005).all()
    # Between minimum light and maximum light, at least 0.05 cycles before the maximum.
    assert ((bump_phase > min_phase) & (bump_phase < -0.05)).all(), (bump_phase, min_phase)


def test_the_bump_is_strongest_near_10_days_and_fades_at_6_and_16_days():
    periods = [6.2, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 14.0, 15.8]
    heights = torch.stack([measure_bump(p)[0] for p in periods])  # [periods, stars]
    at_10 = periods.index(10.0)
    assert (heights.argmax(dim=0) == at_10).all()
    assert (heights[0] < 0.25 * heights[at_10]).all()
    assert (heights[-1] < 0.25 * heights[at_10]).all()
    # Clearly seen in between: 0.02 mag or more at 7-14 d, 0.1 mag for the strongest bumps.
    assert (heights[1:-1] > 0.02).all() and heights[at_10].max() > 0.1


def test_cepheid_periods_cover_the_progression_and_show_more_than_a_cycle_in_notebook_07():
    lo, hi = PERIOD_RANGE[CEPHEID]
    assert lo <= 6.0 and hi >= 16.0
    for mode in ("fast", "normal"):
        days = config.SIZES["07"][mode]["n_samples"] / 24.0  # hourly bins
        for k, (_, longest) in PERIOD_RANGE.items():
            assert days / longest >= 1.25, (mode, CLASS_NAMES[k])


def test_a_simulated_survey_has_cepheids_with_and_without_a_bump():
    out = simulate_light_curves(range(400), seed=0, n_samples=16)
    period = out["period"][out["star_class"] == CEPHEID]
    with_bump = ((period > 6.0) & (period < 16.0)).float().mean()
    assert 0.3 < with_bump < 0.65 and period.min() < 6.0
