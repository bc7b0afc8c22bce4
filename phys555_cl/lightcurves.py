"""Variable-star light curves: a small, offline, deterministic simulator of 1-D sequences.

Contrastive Predictive Coding (notebook 07) needs sequences whose future is predictable from
their past *because of physics*: a pulsating star repeats its cycle, an eclipsing binary dips
twice per orbit, a spotted star rotates its spots in and out of view. The kind of star and its
period are exactly what a good summary of the past must hold, so they make natural labels for a
linear probe.

Six classes, each a textbook light-curve shape (periods in days, amplitudes in magnitudes):

| id | class | period | shape |
| --- | --- | --- | --- |
| 0 | RR Lyrae ab | 0.45-0.9 | fast rise, slow decline (sawtooth), 0.5-1.2 mag |
| 1 | RR Lyrae c | 0.22-0.42 | nearly sinusoidal, 0.2-0.5 mag |
| 2 | classical Cepheid | 2-16 | skewed wave; a Hertzsprung bump at 6-16 d whose phase follows P |
| 3 | detached eclipsing binary (Algol) | 0.6-6 | flat, two narrow eclipses of unequal depth |
| 4 | contact binary (W UMa) | 0.25-0.7 | continuous, two nearly equal minima per orbit |
| 5 | spotted rotator | 0.5-8 | small quasi-sinusoid whose amplitude drifts as spots evolve |

Cepheids stop at 16 days so that the 21-day sequences of notebook 07 (504 hourly bins) still
hold at least 1.3 cycles; real Cepheids go on to 100 days and more.

Nuisances that a representation has to see through: the phase at the first sample, white noise
of 3-30 mmag, a slow instrumental trend, and gaps. Sampling is on a regular grid (one bin per
`cadence_hours`) with a mask of which bins hold a measurement: a space survey (70 %) loses a
0.5-1.5 day downlink gap and a few random points; a ground survey (30 %) only sees 6-10 hours a
night and loses whole nights to weather, which puts 1-day aliases into the data.

Everything is drawn from a counter-based hash of (seed, index, stream), so a light curve depends
only on its seed and index: not on the batch it is made in, nor on the device.

Example:
    >>> data = LightCurves(1000, seed=0)
    >>> x, labels = data[3]          # x: [2, 512] network input, labels: dict of scalars
    >>> data.x.shape, data.labels["star_class"].shape
    (torch.Size([1000, 2, 512]), torch.Size([1000]))
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

__all__ = [
    "CLASS_NAMES", "LABEL_KEYS", "LightCurves", "N_CLASSES", "PERIOD_RANGE",
    "hertzsprung_bump", "simulate_light_curves", "skewed_wave", "to_network_input"
]

CLASS_NAMES = (
    "RR Lyrae ab",
    "RR Lyrae c",
    "Cepheid",
    "Detached eclipsing binary",
    "Contact binary",
    "Spotted rotator",
)
N_CLASSES = len(CLASS_NAMES)

# (min, max) period in days per class; drawn log-uniformly.
PERIOD_RANGE = {
    0: (0.45, 0.9),
    1: (0.22, 0.42),
    2: (2.0, 16.0),
    3: (0.6, 6.0),
    4: (0.25, 0.7),
    5: (0.5, 8.0),
}

# ---------------------------------------------------------------------------------------------
# Counter-based random numbers: deterministic per (seed, index), batched, device independent.
# ---------------------------------------------------------------------------------------------

_MASK32 = 0xFFFFFFFF


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """Mix the bits of uint32 values held in an int64 tensor (a 'lowbias32'-style hash).

    The multipliers are below 2**31 so that products of 32-bit values fit in int64.
    """
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x2C1B3C6D) & _MASK32
    x = x ^ (x >> 16)
    return x


def _uniform(seed: int, index: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """Uniform numbers in (0, 1): [N] indices -> [N, n], the same for an index in any batch."""
    key = _hash32(torch.full_like(index, seed & _MASK32))
    key = _hash32(key ^ (index & _MASK32))
    key = _hash32(key ^ (stream * 0x3C6EF372 & _MASK32))
    counter = torch.arange(n, dtype=torch.int64)
    bits = _hash32(key[:, None] ^ counter[None, :])
    return ((bits >> 8).to(torch.float64) + 0.5) / float(1 << 24)


def _normal(seed: int, index: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """Standard normal numbers [N, n] (Box-Muller on two uniform streams)."""
    u1 = _uniform(seed, index, stream, n)
    u2 = _uniform(seed, index, stream + 1, n)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)


# ---------------------------------------------------------------------------------------------
# Light-curve shapes, all functions of the phase in [0, 1): [N, T] -> [N, T].
# ---------------------------------------------------------------------------------------------


def _circular_distance(phase: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Signed phase difference wrapped to [-0.5, 0.5)."""
    return torch.remainder(phase - centre + 0.5, 1.0) - 0.5


def skewed_wave(phase: torch.Tensor, rise: torch.Tensor, n_harmonics: int) -> torch.Tensor:
    """A triangle wave that rises during a fraction `rise` of the cycle, as a Fourier series.

    Minimum 0 at phase 0, maximum 1 at phase `rise`; keeping only `n_harmonics` terms rounds the
    corners (few harmonics: nearly a sine, as for RRc stars; many: a sawtooth, as for RRab).
    Closed form of the series: f(p) = 1/2 - sum_n [cos 2 pi n p - cos 2 pi n (p - r)]
    / (2 pi^2 n^2 r (1 - r)).

    Args:
        phase: [N, T] phase in cycles. rise: [N, 1] in (0, 1). n_harmonics: number of terms.

    Returns:
        [N, T] brightness between about 0 and 1.
    """
    out = torch.full_like(phase, 0.5)
    norm = 2.0 * math.pi**2 * rise * (1.0 - rise)
    for n in range(1, n_harmonics + 1):
        w = 2.0 * math.pi * n
        out = out - (torch.cos(w * phase) - torch.cos(w * (phase - rise))) / (n * n * norm)
    return out


def _rr_lyrae_ab(phase, u, log_period, time):
    brightness = skewed_wave(phase, 0.12 + 0.08 * u[:, 0:1], n_harmonics=8)
    return -(0.5 + 0.7 * u[:, 1:2]) * brightness


def _rr_lyrae_c(phase, u, log_period, time):
    brightness = skewed_wave(phase, 0.35 + 0.13 * u[:, 0:1], n_harmonics=3)
    return -(0.2 + 0.3 * u[:, 1:2]) * brightness


def hertzsprung_bump(log_period: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Hertzsprung progression: where a classical Cepheid's bump sits, and how strong it is.

    Classical Cepheids with periods of about 6-16 days show a secondary bump whose place on the
    light curve follows the period (Hertzsprung 1926; Bono, Marconi & Stellingwerf 2000, A&A
    360, 245; Soszynski et al. 2008, AcA 58, 163, OGLE LMC): on the descending branch at 6-9 d,
    at maximum light near P_HP = 10 d (flat-topped or double maxima), on the rising branch at
    11-16 d. Shorter- and longer-period Cepheids have smooth curves. Here, with x = log10 P:

        offset = -A tanh((x - log10 P_HP) / 0.04),  A = 0.25 for P < P_HP, 0.15 above,
        strength = sin(pi (x - log10 6) / log10(16 / 6))  for 6 < P < 16 d, else 0,

    so the bump lies 0.25 cycles after maximum light at 6-8 d (0.20 at 9 d), crosses maximum at
    10 d and lies 0.12-0.15 cycles before it (halfway up the rising branch) at 11-16 d; its
    strength is largest at 9.8 d and fades to 0 at 6 and 16 d.

    Args:
        log_period: [N, 1] log10 of the period in days.

    Returns:
        (offset, strength): [N, 1] phase of the bump after maximum light (cycles; negative:
        before it) and [N, 1] relative strength in [0, 1].
    """
    lo, hi, centre = math.log10(6.0), math.log10(16.0), math.log10(10.0)
    step = torch.tanh((log_period - centre) / 0.04)
    offset = -torch.where(step < 0, 0.25, 0.15) * step
    x = (log_period - lo) / (hi - lo)
    strength = torch.where((x > 0) & (x < 1), torch.sin(math.pi * x), torch.zeros_like(x))
    return offset, strength


def _cepheid(phase, u, log_period, time):
    rise = 0.25 + 0.13 * u[:, 0:1]
    brightness = skewed_wave(phase, rise, n_harmonics=6)
    # Bump: a Gaussian of 0.05 cycles, 0.08-0.2 of the amplitude at its strongest, placed
    # relative to maximum light (the 6-term series peaks 0.011-0.020 cycles after `rise`).
    offset, strength = hertzsprung_bump(log_period)
    centre = rise + 0.015 + offset
    height = (0.08 + 0.12 * u[:, 2:3]) * strength
    bump = height * torch.exp(-0.5 * (_circular_distance(phase, centre) / 0.05) ** 2)
    return -(0.3 + 0.7 * u[:, 1:2]) * (brightness + bump)


def _detached_binary(phase, u, log_period, time):
    width = 0.03 + 0.05 * u[:, 0:1]
    depth1 = 0.15 + 0.55 * u[:, 1:2]
    depth2 = depth1 * (0.05 + 0.65 * u[:, 2:3])
    phase2 = 0.5 + 0.06 * (u[:, 3:4] - 0.5)  # a small eccentricity moves the secondary
    primary = torch.exp(-0.5 * (_circular_distance(phase, torch.zeros_like(phase2)) / width) ** 2)
    secondary = torch.exp(-0.5 * (_circular_distance(phase, phase2) / width) ** 2)
    flux = 1.0 - depth1 * primary - depth2 * secondary
    return -2.5 * torch.log10(flux)


def _contact_binary(phase, u, log_period, time):
    a = 0.1 + 0.3 * u[:, 0:1]
    b = a * 0.2 * u[:, 1:2]  # primary minimum a little deeper than the secondary
    c = 0.03 * (u[:, 2:3] - 0.5)  # O'Connell effect: unequal maxima
    angle = 2.0 * math.pi * phase
    flux = 1.0 - a * (1 + torch.cos(2 * angle)) / 2 - b * (1 + torch.cos(angle)) / 2
    flux = flux + c * torch.sin(angle)
    return -2.5 * torch.log10(flux)


def _spotted_rotator(phase, u, log_period, time):
    amplitude = 10 ** (-2.2 + 1.0 * u[:, 0:1])  # semi-amplitude 6-60 mmag
    spot_lifetime = 5.0 + 25.0 * u[:, 1:2]  # days
    evolution = 1.0 + 0.4 * torch.sin(2 * math.pi * (time / spot_lifetime + u[:, 2:3]))
    angle = 2.0 * math.pi * phase
    second = 0.5 * u[:, 3:4] * torch.cos(2 * angle + 2 * math.pi * u[:, 4:5])
    return amplitude * evolution * (torch.cos(angle) + second)


# One function per class, in CLASS_NAMES order: (phase [n, T], u [n, 6] uniforms, log_period
# [n, 1], time [1, T] days) -> magnitude offsets [n, T] (positive = fainter).
_SHAPES = (
    _rr_lyrae_ab,
    _rr_lyrae_c,
    _cepheid,
    _detached_binary,
    _contact_binary,
    _spotted_rotator,
)

# ---------------------------------------------------------------------------------------------
# The simulator.
# ---------------------------------------------------------------------------------------------


def _sampling_mask(seed: int, index: torch.Tensor, time: torch.Tensor, u: torch.Tensor,
                   ground: torch.Tensor) -> torch.Tensor:
    """Which bins are observed, ``[N, T]`` bool: a space survey (a downlink gap and random
    dropouts) or, where ``ground``, a ground survey (nights of 6-10 hours, whole nights lost to
    clouds, the same dropouts). ``u`` [N, 16] are the curves' parameter draws; the sampling's
    own draws come from streams 3-5 of ``(seed, index)``. At least the first bins of a curve
    are kept when it would otherwise hold fewer than 8."""
    n = index.numel()
    drop = _uniform(seed, index, stream=3, n=time.numel()) < 0.1 * u[:, 13:14]
    gap_start = (0.3 + 0.3 * u[:, 14:15]) * time[-1]
    gap_len = 0.5 + 1.0 * u[:, 15:16]
    in_gap = (time[None, :] >= gap_start) & (time[None, :] < gap_start + gap_len)
    space_mask = ~(in_gap | drop)
    v = _uniform(seed, index, stream=4, n=4)
    night_hours = 6.0 + 4.0 * v[:, 0:1]
    hour = torch.remainder(time[None, :] * 24.0 + 24.0 * v[:, 1:2], 24.0)
    night = hour < night_hours
    day_number = torch.floor(time[None, :] + v[:, 1:2]).long()
    n_days = int(day_number.max()) + 1
    cloudy = _uniform(seed, index, stream=5, n=n_days) < 0.3 * v[:, 2:3]  # one draw per night
    lost_night = torch.gather(cloudy, 1, day_number.expand(n, -1))
    ground_mask = night & ~lost_night & ~drop
    mask = torch.where(ground[:, None], ground_mask, space_mask)
    # Never leave a curve (almost) empty: keep at least the first few bins.
    mask[:, :4] |= mask.sum(dim=1, keepdim=True) < 8
    return mask


def _checked_index(indices, n_samples: int, cadence_hours: float) -> torch.Tensor:
    """The light-curve indices as an int64 tensor [N], after checking the arguments of
    :func:`simulate_light_curves` (ValueError saying which is wrong)."""
    if n_samples < 16:
        raise ValueError(f"n_samples must be at least 16 time bins, got {n_samples}.")
    if cadence_hours <= 0:
        raise ValueError(f"cadence_hours must be positive, got {cadence_hours}.")
    index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if (index < 0).any():
        raise ValueError(f"indices must be non-negative, got min {int(index.min())}.")
    return index


def simulate_light_curves(
    indices,
    seed: int = 0,
    *,
    n_samples: int = 512,
    cadence_hours: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Simulate the light curves with the given indices, all at once.

    Args:
        indices: [N] int sequence or tensor; light curve `i` is the same in any batch.
        seed: the survey's seed.
        n_samples: T, the number of time bins.
        cadence_hours: width of a time bin (hours); the baseline is n_samples * cadence_hours.

    Returns:
        dict with
        `time` [T] float32 days; `mag` [N, T] float32 magnitude relative to the median of the
        observed bins (positive = fainter, 0 where not observed); `mask` [N, T] bool (observed);
        `clean` [N, T] float32 noise-free model on the full grid;
        labels [N]: `star_class` int64 (see CLASS_NAMES), `period` float32 days, `log_period`
        float32 log10(days), `amplitude` float32 peak-to-peak of the clean model (mag),
        `noise` float32 per-point sigma (mag), `ground_based` int64 (1: nightly gaps),
        `phase0` float32 phase at t = 0.
    """
    index = _checked_index(indices, n_samples, cadence_hours)
    n, t_len = index.numel(), n_samples
    time = torch.arange(t_len, dtype=torch.float64) * cadence_hours / 24.0  # [T] days

    u = _uniform(seed, index, stream=0, n=16)  # [N, 16] parameters
    star_class = torch.clamp((u[:, 0] * N_CLASSES).long(), max=N_CLASSES - 1)
    lo = torch.tensor([math.log10(PERIOD_RANGE[k][0]) for k in range(N_CLASSES)], dtype=u.dtype)
    hi = torch.tensor([math.log10(PERIOD_RANGE[k][1]) for k in range(N_CLASSES)], dtype=u.dtype)
    log_period = lo[star_class] + (hi - lo)[star_class] * u[:, 1]
    period = 10**log_period
    phase0 = u[:, 2]
    phase = torch.remainder(time[None, :] / period[:, None] + phase0[:, None], 1.0)  # [N, T]

    # Each class's shape on its own rows (float32 is plenty once the phase is reduced).
    shape_u, phase32, time32 = u[:, 3:9].float(), phase.float(), time.float()[None, :]
    clean = torch.empty(n, t_len)
    for k, shape in enumerate(_SHAPES):
        rows = star_class == k
        clean[rows] = shape(phase32[rows], shape_u[rows], log_period[rows, None].float(), time32)
    amplitude = clean.amax(dim=1) - clean.amin(dim=1)

    # Nuisances: white noise and a slow linear + quadratic instrumental trend.
    noise = 10 ** (-2.5 + 1.0 * u[:, 9])  # 3-30 mmag
    x = time[None, :] / time[-1] - 0.5
    trend = 0.02 * (u[:, 10:11] - 0.5) * x + 0.02 * (u[:, 11:12] - 0.5) * x**2
    noise_draw = _normal(seed, index, stream=1, n=t_len)
    mag = clean.double() + trend + noise[:, None] * noise_draw

    ground = u[:, 12] < 0.3
    mask = _sampling_mask(seed, index, time, u, ground)

    masked = torch.where(mask, mag, torch.nan)
    median = torch.nanmedian(masked, dim=1, keepdim=True).values
    mag = torch.where(mask, mag - median, torch.zeros_like(mag))

    return {
        "time": time.float(),
        "mag": mag.float(),
        "mask": mask,
        "clean": (clean - median).float(),
        "star_class": star_class,
        "period": period.float(),
        "log_period": log_period.float(),
        "amplitude": amplitude.float(),
        "noise": noise.float(),
        "ground_based": ground.long(),
        "phase0": phase0.float(),
    }


LABEL_KEYS = (
    "star_class",
    "period",
    "log_period",
    "amplitude",
    "noise",
    "ground_based",
    "phase0",
)


def to_network_input(mag: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Turn light curves into the 2-channel input of a 1-D conv net.

    Channels: 0 the magnitudes standardised per curve (0 in gaps), 1 the mask (1 observed).
    Standardising removes the amplitude in magnitudes on purpose: a per-curve constant would
    let a contrastive model tell curves apart without looking at their shape (it does, and
    learns less). The ratio of signal to noise, which the shape shows, is kept.

    Args:
        mag: [N, T] magnitudes (0 where not observed). mask: [N, T] bool.

    Returns:
        [N, 2, T] float32.
    """
    if mag.shape != mask.shape or mag.dim() != 2:
        raise ValueError(
            f"mag and mask must both be [N, T]; got {tuple(mag.shape)} and {tuple(mask.shape)}."
        )
    m = mask.to(mag.dtype)
    count = m.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (mag * m).sum(dim=1, keepdim=True) / count
    std = (((mag - mean) * m) ** 2).sum(dim=1, keepdim=True).div(count).sqrt().clamp(min=1e-3)
    value = (mag - mean) / std * m
    return torch.stack([value, m], dim=1).float()


class LightCurves(Dataset):
    """A fixed set of simulated light curves, made in one batched call.

    Args:
        size: number of light curves N.
        seed: survey seed; curve i is `simulate_light_curves([offset + i], seed)`.
        offset: index of the first curve, so that disjoint sets (train / held-out) come from
            one survey: `LightCurves(1000, offset=0)` and `LightCurves(500, offset=1000)`.
        n_samples, cadence_hours: see `simulate_light_curves`.

    Attributes:
        x: [N, 2, T] network input (`to_network_input`). mag, mask, clean: [N, T]. time: [T].
        labels: dict of [N] tensors (`LABEL_KEYS`).

    `dataset[i]` returns `(x[i], {key: labels[key][i]})`.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        *,
        offset: int = 0,
        n_samples: int = 512,
        cadence_hours: float = 1.0,
    ):
        if size < 1:
            raise ValueError(f"size must be a positive number of light curves, got {size}.")
        if offset < 0:
            raise ValueError(f"offset must be non-negative, got {offset}.")
        out = simulate_light_curves(
            torch.arange(offset, offset + size),
            seed,
            n_samples=n_samples,
            cadence_hours=cadence_hours,
        )
        self.time, self.mag, self.mask = out["time"], out["mag"], out["mask"]
        self.clean = out["clean"]
        self.labels = {key: out[key] for key in LABEL_KEYS}
        self.x = to_network_input(self.mag, self.mask)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int):
        return self.x[i], {key: value[i] for key, value in self.labels.items()}
