"""The galaxy survey's pixels: a catalogue's rows drawn as g, r, z surface brightness.

Each light component of a block of galaxies goes into its own map (unit-flux profiles times
fluxes), the maps get their colours in one batched product, then the dust lanes, the PSF and
the sky noise follow, as in a real observation. :func:`_render_block` is the whole recipe;
``phys555_cl.galaxies.observe`` calls it block by block.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from phys555_cl.galaxy_catalogue import (
    _BAND_PSF,
    _COLOURS,
    EDGE_ON,
    FACE_ON,
    FIELD_ARCSEC,
    IRREGULAR,
    LENS,
    MERGER,
    RING,
    _smooth_like,
)
from phys555_cl.galaxy_profiles import (
    _CORE_PIXELS,
    _FINE_HALF,
    _GL_FINE,
    _b_n,
    _cusp,
    _gaussian,
    _gaussian_1d,
    _rotate,
    _sersic,
    _sersic_log_norm,
)
from phys555_cl.galaxy_seeing import _render_psf, _render_sky_noise

__all__: list[str] = []  # internal: phys555_cl.galaxies.observe is the public way in


def _colour(name: str, z: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """Flux ratios ``[B, 3]`` (g, r, z relative to r) of a component at redshift ``z``."""
    (gr0, rz0), (kgr, krz) = _COLOURS[name]
    gr = gr0 + kgr * z + 0.08 * jitter[:, 0]
    rz = rz0 + krz * z + 0.06 * jitter[:, 1]
    return torch.stack([10 ** (-0.4 * gr), torch.ones_like(gr), 10 ** (0.4 * rz)], dim=1)


# --------------------------------------------------------------------------------------------
# Rendering of one block
# --------------------------------------------------------------------------------------------


#: Light components rendered into separate maps, each with its own colour (see _COLOURS). The
#: galaxy's own light is every channel before "neighbour".
_CHANNELS = ("bulge", "disk", "young", "bar", "companion", "tail", "source", "neighbour")
_N_GALAXY = _CHANNELS.index("neighbour")


@dataclasses.dataclass
class _Core:
    """The light of the Sersic cusps within about a pixel of their centres, added after the PSF
    as PSF-convolved Gaussians with the cusps' second moments (see
    :meth:`_Canvas.draw_sersics`). One row per profile."""

    channel: torch.Tensor  # the component's map [b]
    idx: torch.Tensor  # the galaxies [b]
    x0: torch.Tensor  # centre, arcsec from the stamp centre [b]
    y0: torch.Tensor
    cov: torch.Tensor  # (xx, yy, xy) second moments of the cusp's light, arcsec^2 [b, 3]
    flux: torch.Tensor  # [b]


class _Canvas:
    """The pixel grid of one block and its light maps, one single-band map per component.

    ``x, y``: offsets from each galaxy's centre in arcsec, x to the right and y up (north up),
    kept separable ([B, 1, W] and [B, H, 1]; they broadcast to [B, H, W] when combined);
    ``u, v``: the same along the major and minor axes of the main galaxy. ``maps[:, c]`` holds
    component ``c``'s light (unit-flux profiles times fluxes) and ``colours[:, :, c]`` its
    (g, r, z) colour; :meth:`images` mixes them. ``flux`` is each galaxy's total observed
    r-band flux (nanomaggies), which its components share.
    """

    def __init__(self, p: dict, size: int, device: torch.device):
        self.b = b = p["kind"].shape[0]
        self.size, self.device = size, device
        self.pix = pix = FIELD_ARCSEC / size
        self.soft = 0.4 * pix  # stands in for the pixel window (thin disks, rings, arcs)
        self.coords = coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5
                                - size / 2) * pix
        self.cx, self.cy = p["center_x"], p["center_y"]
        self.x = coords[None, None, :] - self.cx[:, None, None]
        self.y = -coords[None, :, None] - self.cy[:, None, None]
        self.u, self.v = _rotate(self.x, self.y, p["position_angle"])
        self.flux = 10 ** (-0.4 * (p["mag_r"] - 22.5))  # nanomaggies, r band
        self.maps = torch.zeros(b, len(_CHANNELS), size, size, device=device)
        self.colours = torch.zeros(b, 3, len(_CHANNELS), device=device)
        self.channel = {name: c for c, name in enumerate(_CHANNELS)}
        self.sersics: list[tuple] = []  # queued by add_sersic, drawn by draw_sersics
        self.core: _Core | None = None

    def add(self, name: str, idx: torch.Tensor | None, light: torch.Tensor) -> None:
        """maps[idx, channel] += light (``idx`` None: every galaxy)."""
        if idx is None:
            self.maps[:, self.channel[name]] += light
        else:
            self.maps[:, self.channel[name]].index_add_(0, idx, light)

    def window(self, cx: torch.Tensor, cy: torch.Tensor, half: int):
        """Columns and rows ``[b, w]`` of the ``w x w`` pixels (``w = 2 half + 1``, at most the
        stamp) nearest each point ``(cx, cy)`` [b] (arcsec from the stamp centre), the square
        moved inside the stamp where it would stick out."""
        size = self.size
        wn = min(size, 2 * half + 1)
        col0 = (torch.round(cx / self.pix + (size - 1) / 2) - half).clamp(0, size - wn).long()
        row0 = (torch.round((size - 1) / 2 - cy / self.pix) - half).clamp(0, size - wn).long()
        ar = torch.arange(wn, device=self.device)
        return col0[:, None] + ar, row0[:, None] + ar

    def add_sersic(self, name, idx, x0, y0, angle, re, n, q, flux) -> None:
        """Queue a Sersic profile of total ``flux`` centred ``(x0, y0)`` arcsec from each
        galaxy's centre (major axis at ``angle``, half-light radius ``re`` along it, axis ratio
        ``q``) in component ``name``. All arguments are [b] tensors for the galaxies ``idx``.
        :meth:`draw_sersics` draws all of a block's profiles in one batch."""
        channel = torch.full_like(idx, self.channel[name])
        self.sersics.append((channel, idx, x0, y0, angle, re, n, q, flux))

    def draw_sersics(self) -> None:
        """Draw the queued Sersic profiles as pixel integrals.

        Within ``_FINE_HALF`` pixels of the centre each pixel is the mean of 3x3
        Gauss-Legendre points; further out the pixel centre (the profile is smooth there on
        the pixel scale). Inside the elliptical radius ``r_c = _CORE_PIXELS pixel / sqrt(q)``
        a cusp cannot be sampled, so the profile there is held at its value at ``r_c`` (a flat
        top) and the rest of the light inside, ``P(2n, b_n (r_c / R_e)^(1/n)) - pi q r_c^2
        I(r_c)`` (exact, from the incomplete gamma function), goes into a :class:`_Core` with
        the same second moments, drawn after the PSF. Against GalSim: see
        benchmarks/validate_simulator.py.
        """
        if not self.sersics:
            return
        channel, idx, x0, y0, angle, re, n, q, flux = (torch.cat(c) for c in zip(*self.sersics))
        self.sersics = []
        if not len(idx):
            return
        pix, size, m = self.pix, self.size, len(idx)
        re_, n_, q_ = (t[:, None, None, None] for t in (re, n, q))  # [b, 1, 1, 1]
        b = _b_n(n_)
        log_norm = _sersic_log_norm(re_, n_, q_, b)
        rc = _CORE_PIXELS * pix / torch.sqrt(q_)
        rc2 = (rc / re_) ** 2
        c, s = torch.cos(angle)[:, None, None, None], torch.sin(angle)[:, None, None, None]
        a_u, a_v = 1 / re_**2, 1 / (q_ * re_) ** 2

        def profile(x, y):  # unit-flux Sersic at offsets [b, P, H, W] (arcsec), flat top
            u, v = x * c + y * s, y * c - x * s
            r2 = torch.maximum(torch.addcmul(u * u * a_u, v * v, a_v), rc2)
            return r2.log_().mul_(0.5 / n_).exp_().mul_(-b).add_(b - log_norm).exp_()

        cx, cy = self.cx[idx] + x0, self.cy[idx] + y0
        light = profile(self.coords - cx[:, None, None, None],
                        -self.coords[:, None] - cy[:, None, None, None]).reshape(m, -1)
        # the pixels within _FINE_HALF of each centre, as 3x3-point integrals
        cols, rows = self.window(cx, cy, _FINE_HALF)
        dx, dy, w = (t.to(self.device) for t in _GL_FINE)
        xw = (self.coords[cols] - cx[:, None])[:, None, None, :] + (dx * pix)[:, None, None]
        yw = (-self.coords[rows] - cy[:, None])[:, None, :, None] - (dy * pix)[:, None, None]
        fine = (profile(xw, yw) * w[:, None, None]).sum(1).reshape(m, -1)
        light.scatter_(1, (rows[:, :, None] * size + cols[:, None, :]).reshape(m, -1), fine)
        n_maps = len(_CHANNELS)
        self.maps.view(self.b * n_maps, -1).index_add_(0, idx * n_maps + channel,
                                                         light.mul_(flux[:, None]))
        inner, cov = _cusp(re, n, q, angle, rc.flatten())
        self.core = _Core(channel, idx, cx, cy, cov, flux * inner)

    def set_colour(self, name: str, colour: torch.Tensor) -> None:
        """The (g, r, z) colour [B, 3] of component ``name``."""
        self.colours[:, :, self.channel[name]] = colour

    def images(self, channels: slice) -> torch.Tensor:
        """images[b, band] = sum over the components ``channels`` of colours * maps."""
        maps = self.maps[:, channels]
        images = torch.bmm(self.colours[:, :, channels], maps.reshape(self.b, maps.shape[1], -1))
        return images.reshape(self.b, 3, self.size, self.size)

    def core_images(self, p: dict, transmission: torch.Tensor) -> torch.Tensor:
        """The cores seen through the PSF, times their colour and the dust ``transmission``
        at the galaxy centre [B, 3]: ``[B, 3, H, W]``. A core is a Gaussian with the cusp's
        second moments plus the r-band PSF's and the pixel's (pixel^2 / 12), sampled at the
        pixel centres within 5 sigma of its centre (one map per core for all three bands: the
        cusp is a pixel across, so the few percent by which the PSF is wider in g and sharper
        in z are left out)."""
        size, hw = self.size, self.size * self.size
        out = torch.zeros(self.b * 3 * hw, device=self.device)
        core = self.core
        if core is not None:
            idx, x0, y0, cov = core.idx, core.x0, core.y0, core.cov
            weight = (self.colours[idx, :, core.channel] * transmission[idx]
                      * core.flux[:, None])  # [m, 3]
            sp2 = (p["psf_fwhm"][idx] / 2.3548) ** 2 + self.pix**2 / 12
            sxx, syy, sxy = cov[:, 0] + sp2, cov[:, 1] + sp2, cov[:, 2]
            det = sxx * syy - sxy * sxy
            half = math.ceil(5 * math.sqrt(float(torch.maximum(sxx, syy).max())) / self.pix)
            cols, rows = self.window(x0, y0, half)
            x = (self.coords[cols] - x0[:, None])[:, None, :]  # [m, 1, w]
            y = (-self.coords[rows] - y0[:, None])[:, :, None]  # [m, w, 1]
            sxx, syy, sxy, det = (t[:, None, None] for t in (sxx, syy, sxy, det))
            quad = (2 * sxy / det * x * y).neg_().add_(sxx / det * y * y).add_(syy / det * x * x)
            g = quad.mul_(-0.5).exp_().mul_(1 / (2 * math.pi * torch.sqrt(det)))
            m = len(idx)
            pixel = (rows[:, :, None] * size + cols[:, None, :]).reshape(m, 1, -1)
            band = torch.arange(3, device=self.device)[None, :, None]
            target = (idx[:, None, None] * 3 + band) * hw + pixel  # [m, 3, w*w]
            out.index_add_(0, target.reshape(-1),
                           (g.reshape(m, 1, -1) * weight[:, :, None]).reshape(-1))
        return out.reshape(self.b, 3, size, size)


def _render_block(p: dict, size: int, gen: torch.Generator | None,
                  device: torch.device) -> torch.Tensor:
    """Render the galaxies of parameters ``p`` into ``[B, 3, size, size]`` fluxes.

    Each light component is drawn (unit flux times its flux) into its own single-band map;
    one batched matrix product then gives every map its (g, r, z) colour. Dust, the PSF and
    the sky noise come last, as in a real observation (no noise when ``gen`` is None).
    """
    canvas = _Canvas(p, size, device)
    z, jit = p["redshift"], p["colour_jitter"]
    for name, j in (("bulge", 0), ("disk", 1), ("young", 2), ("bar", 3), ("tail", 5),
                    ("source", 5)):
        canvas.set_colour(name, _colour(name, z, jit[:, j]))
    canvas.set_colour("companion", _colour("bulge", z, jit[:, 4]))
    # projected axis ratio of a disk of intrinsic thickness q0 at inclination i
    inc = p["inclination"]
    q_disk = torch.sqrt(torch.cos(inc) ** 2 + (p["thickness"] * torch.sin(inc)) ** 2)
    _render_bulge(canvas, p, q_disk)
    plane = _render_disk_and_arms(canvas, p, q_disk)
    _render_bar(canvas, p, plane, q_disk)
    _render_ring(canvas, p, plane, q_disk)
    _render_irregular(canvas, p)
    _render_merger(canvas, p)
    _render_lens(canvas, p)
    _render_neighbour(canvas, p)
    canvas.draw_sersics()
    galaxy, transmission = _render_dust(canvas, p, q_disk)
    images = _render_psf(galaxy + canvas.images(slice(_N_GALAXY, None)), p, canvas.pix)
    images = images + canvas.core_images(p, transmission) + _render_star(canvas, p)
    if gen is None:
        return images
    return _render_sky_noise(images, p, gen)


def _merger_shares(p: dict):
    """A merger's light: tails ``tail_fraction`` of it, the rest shared by the primary and
    the companion as 1 : ``comp_ratio``. Returns (primary, companion, tails) shares [B]."""
    rest = 1 - p["tail_fraction"]
    primary = rest / (1 + p["comp_ratio"])
    return primary, rest - primary, p["tail_fraction"]


def _render_bulge(canvas: _Canvas, p: dict, q_disk: torch.Tensor) -> None:
    """Sersic bulges of disks and ellipticals (irregulars have a bulge fraction of 0); a
    merger's primary is an elliptical or a disk with a 30% bulge; a lens galaxy keeps the
    light the arcs do not have."""
    k, re, flux = p["kind"], p["half_light_radius"], canvas.flux
    is_smooth = _smooth_like(k)
    prim_smooth = (k == MERGER) & (p["primary_smooth"] > 0)
    q_bulge = torch.where(is_smooth | prim_smooth, p["axis_ratio"],
                          torch.maximum(q_disk, 0.6 + 0.4 * q_disk))
    re_bulge = torch.where(is_smooth, re, re * p["bulge_size"])
    re_bulge = torch.where(prim_smooth, re * 0.7, re_bulge)
    fb = torch.where(is_smooth, flux, flux * p["bulge_fraction"])
    fb = torch.where(k == LENS, flux * (1 - p["source_fraction"]), fb)
    primary = _merger_shares(p)[0]
    fb = torch.where(k == MERGER, flux * primary * torch.where(prim_smooth, 1.0, 0.3), fb)
    idx = torch.nonzero(fb > 0).squeeze(1)
    if len(idx):
        zero = torch.zeros(len(idx), device=canvas.device)
        canvas.add_sersic("bulge", idx, zero, zero, p["position_angle"][idx], re_bulge[idx],
                          p["sersic_n"][idx], q_bulge[idx], fb[idx])
@dataclasses.dataclass
class _DiskPlane:
    """The disks of a block in their own plane, for the bar and the ring drawn in it."""

    idx: torch.Tensor  # the galaxies with a disk
    xd: torch.Tensor  # disk-plane coordinates [b, H, W]
    yd: torch.Tensor
    rd: torch.Tensor  # disk-plane radius, softened
    fd: torch.Tensor  # disk flux without the bar's share
    fr: torch.Tensor  # share of it in the ring (0 unless a ring galaxy)
    ring_k: torch.Tensor  # is a ring galaxy [b]


def _render_disk_and_arms(canvas: _Canvas, p: dict, q_disk: torch.Tensor) -> _DiskPlane:
    """Exponential disks seen at an inclination, with logarithmic spiral arms."""
    k, re, flux, soft = p["kind"], p["half_light_radius"], canvas.flux, canvas.soft
    disk_merger = (k == MERGER) & (p["primary_smooth"] == 0)
    has_disk = (k == FACE_ON) | (k == EDGE_ON) | (k == RING) | disk_merger
    idx = torch.nonzero(has_disk).squeeze(1)
    h = (re[idx] / 1.678)[:, None, None]  # exponential scale length
    # a disk thinner than a pixel is drawn one pixel thick (the pixel window), flux unchanged
    qd = torch.sqrt(q_disk[idx] ** 2 + (soft / re[idx]) ** 2)[:, None, None]
    xd, yd = canvas.u[idx], canvas.v[idx] / qd  # disk-plane coordinates
    rd = torch.addcmul(xd * xd, yd, yd).add_(soft**2).sqrt_()
    # unit flux on the sky; e^-x (1 + x) is the light outside the softening radius x = soft / h
    x_s = soft / h
    disk = torch.exp(-rd / h).mul_(1 / (2 * math.pi * h * h * qd * torch.exp(-x_s) * (1 + x_s)))
    fd = flux[idx] * (1 - p["bulge_fraction"][idx])
    fd = torch.where(k[idx] == MERGER, flux[idx] * _merger_shares(p)[0][idx] * 0.7, fd)
    fd = fd * (1 - p["bar"][idx] * p["bar_fraction"][idx])
    # ring galaxies keep a faint inner disk: most of their disk light goes into the ring
    ring_k = k[idx] == RING
    fr = torch.where(ring_k, p["ring_fraction"][idx], torch.zeros_like(fd))
    smooth_part = disk * (fd * (1 - fr))[:, None, None]
    sub = torch.nonzero(p["n_arms"][idx] > 0).squeeze(1)
    if len(sub):
        j = idx[sub]
        a, arm = _spiral_arms(p, j, xd[sub], yd[sub], rd[sub], h[sub])
        arm_light = smooth_part[sub] * a
        smooth_part[sub] -= arm_light
        canvas.add("young", j, arm_light.mul_(arm))
    canvas.add("disk", idx, smooth_part)
    return _DiskPlane(idx, xd, yd, rd, fd, fr, ring_k)


def _spiral_arms(p, j, xd, yd, rd, h):
    """A logarithmic spiral density wave in disks ``j``: ``I = I_disk [(1 - a) + a arm(phase)]``.

    Returns ``a`` (the share of the disk light in the arms, none inside the bulge) and ``arm``
    (the arm pattern, of mean 1 over the phase), [b, H, W] each.
    """
    theta = torch.atan2(yd, xd)
    m = p["n_arms"][j].float()[:, None, None]
    wind = (p["chirality"][j] / torch.tan(p["pitch_angle"][j]))[:, None, None]
    phase = (rd / h).log_().mul_(-wind).add_(theta).mul_(m).sub_(p["arm_phase"][j, None, None])
    c = phase.cos_().add_(1).mul_(0.5)
    arm = c * c * c * (16 / 5)
    inner = 1 - torch.exp(-((rd / (0.8 * h)) ** 2))  # no arms inside the bulge
    return inner.mul_(p["arm_strength"][j, None, None]), arm


def _render_bar(canvas: _Canvas, p: dict, plane: _DiskPlane, q_disk: torch.Tensor) -> None:
    """Bars: a flat (n = 0.5) Sersic ellipse in the disk plane, projected with the disk."""
    sub = torch.nonzero(p["bar"][plane.idx] > 0).squeeze(1)
    if not len(sub):
        return
    j, re, flux = plane.idx[sub], p["half_light_radius"], canvas.flux
    bx, by = _rotate(plane.xd[sub], plane.yd[sub], p["bar_angle"][j])
    bar = _sersic(bx, by, re[j] * p["bar_length"][j], torch.full_like(re[j], 0.5),
                  p["bar_q"][j], canvas.soft)
    canvas.add("bar", j, bar.mul_((flux[j] * p["bar_fraction"][j] / q_disk[j])[:, None, None]))


def _render_ring(canvas: _Canvas, p: dict, plane: _DiskPlane, q_disk: torch.Tensor) -> None:
    """Rings: a Gaussian annulus in the disk plane, knotty with star formation."""
    sub = torch.nonzero(plane.ring_k).squeeze(1)
    if not len(sub):
        return
    j, re = plane.idx[sub], p["half_light_radius"]
    theta = torch.atan2(plane.yd[sub], plane.xd[sub])
    rr = (re[j] * p["ring_radius"][j])[:, None, None]
    w = torch.sqrt((re[j] * p["ring_width"][j])[:, None, None] ** 2 + canvas.soft**2)
    knots = 1 + 0.5 * torch.cos(7 * theta + p["arm_phase"][j, None, None])
    ring = torch.exp(-0.5 * ((plane.rd[sub] - rr) / w) ** 2) * knots
    norm = (plane.fd[sub] * plane.fr[sub])[:, None, None] / (
        2 * math.pi * rr * w * math.sqrt(2 * math.pi) * q_disk[j, None, None])
    canvas.add("young", j, ring.mul_(norm))


def _render_irregular(canvas: _Canvas, p: dict) -> None:
    """Irregulars: a lopsided diffuse body plus bright star-forming clumps."""
    idx = torch.nonzero(p["kind"] == IRREGULAR).squeeze(1)
    if not len(idx):
        return
    r_i, flux, pix = p["half_light_radius"][idx], canvas.flux, canvas.pix
    off = p["irr_offset"][idx] * r_i[:, None]  # along the major and minor axes
    pa = p["position_angle"][idx]
    c, s_ = torch.cos(pa), torch.sin(pa)
    canvas.add_sersic("disk", idx, off[:, 0] * c - off[:, 1] * s_, off[:, 0] * s_ + off[:, 1] * c,
                      pa, r_i, torch.ones_like(r_i), p["axis_ratio"][idx].clamp(min=0.5),
                      0.55 * flux[idx])
    # round clumps are separable in x and y: one batched matrix product renders all 8
    cu = p["clump_xy"][idx, :, 0] * r_i[:, None]  # [b, 8], along the major axis
    cv = p["clump_xy"][idx, :, 1] * r_i[:, None]
    c, s_ = c[:, None], s_[:, None]
    cx = cu * c - cv * s_ + p["center_x"][idx, None]  # [b, 8] offsets from the stamp centre
    cy = cu * s_ + cv * c + p["center_y"][idx, None]
    cs = p["clump_size"][idx] * r_i[:, None]  # [b, 8]
    cf = 0.45 * flux[idx, None] * p["clump_flux"][idx] / p["clump_flux"][idx].sum(1, True)
    gx_ = _gaussian_1d(canvas.coords, cx[..., None], cs[..., None], pix) * cf[..., None]
    gy_ = _gaussian_1d(-canvas.coords, cy[..., None], cs[..., None], pix)  # [b, 8, H]
    canvas.add("young", idx, torch.bmm(gy_.transpose(1, 2), gx_))


def _render_merger(canvas: _Canvas, p: dict) -> None:
    """Mergers: a companion galaxy and two tidal tails."""
    idx = torch.nonzero(p["kind"] == MERGER).squeeze(1)
    if not len(idx):
        return
    r_m, flux = p["half_light_radius"][idx], canvas.flux[idx]
    _, comp_share, tail_share = (share[idx] for share in _merger_shares(p))
    sep = p["comp_sep"][idx] * r_m
    ang = p["comp_angle"][idx]
    cxm, cym = sep * torch.cos(ang), sep * torch.sin(ang)
    canvas.add_sersic("companion", idx, cxm, cym, ang + 0.7, r_m * p["comp_size"][idx],
                      p["sersic_n"][idx], p["axis_ratio"][idx].clamp(min=0.5), flux * comp_share)
    xc, yc = canvas.x[idx] - cxm[:, None, None], canvas.y[idx] - cym[:, None, None]
    tails = _tidal_tails(p, idx, (canvas.x[idx], canvas.y[idx]), (xc, yc), canvas.soft)
    tails = tails / tails.sum((1, 2), keepdim=True).clamp(min=1e-12) / canvas.pix**2
    canvas.add("tail", idx, tails * (flux * tail_share)[:, None, None])


def _tidal_tails(p, idx, primary, companion, soft):
    """Two tails (unnormalised): tightly wound one-armed spirals of low surface brightness,
    one launched from each nucleus in opposite senses (Toomre & Toomre 1972 in cartoon form).
    ``primary``, ``companion``: offsets ``(x, y)`` from each nucleus [b, H, W]."""
    r_m, ang = p["half_light_radius"][idx], p["comp_angle"][idx]
    tails = 0
    for (xs, ys), sgn in ((primary, 1.0), (companion, -1.0)):
        rel = torch.sqrt(xs**2 + ys**2 + soft**2) / r_m[:, None, None]
        th = torch.atan2(ys, xs)
        ph = th - sgn * p["chirality"][idx, None, None] * torch.log(rel) / 0.45
        ph = ph - ang[:, None, None] - (1 - sgn) * math.pi / 2
        band = ((1 + torch.cos(ph)) / 2) ** 10
        env = torch.exp(-rel / 1.4) * (1 - torch.exp(-rel * rel))
        tails = tails + band * env
    return tails


def _render_lens(canvas: _Canvas, p: dict) -> None:
    """Lens arcs: a singular isothermal sphere with external shear bends a blue background
    galaxy (the lens equation maps each pixel to the source plane; Kormann et al. 1994)."""
    idx = torch.nonzero(p["kind"] == LENS).squeeze(1)
    if not len(idx):
        return
    soft = canvas.soft
    te = p["einstein_radius"][idx][:, None, None]
    xs, ys = canvas.x[idx], canvas.y[idx]
    r = torch.sqrt(xs**2 + ys**2 + soft**2)
    g1, g2 = p["shear"][idx, 0, None, None], p["shear"][idx, 1, None, None]
    bx = xs - te * xs / r - (g1 * xs + g2 * ys)  # the lens equation: source-plane position
    by = ys - te * ys / r - (g2 * xs - g1 * ys)
    off = p["source_offset"][idx] * te[:, :, 0]
    ss = torch.sqrt((p["source_size"][idx, None, None] * te) ** 2 + soft**2)
    src = _gaussian(bx - off[:, 0, None, None], by - off[:, 1, None, None], ss)
    # the arcs hold source_fraction of the system's observed light (the source's intrinsic flux
    # is that over the magnification, which the lens equation sets)
    src = src / src.sum((1, 2), keepdim=True).clamp(min=1e-30) / canvas.pix**2
    fs = canvas.flux[idx] * p["source_fraction"][idx]
    canvas.add("source", idx, src * fs[:, None, None])


def _render_neighbour(canvas: _Canvas, p: dict) -> None:
    """A neighbouring galaxy near the edge of some stamps, with its own colour."""
    idx = torch.nonzero(p["neighbour"] > 0).squeeze(1)
    if len(idx):
        rad = FIELD_ARCSEC / 2 * (0.45 + 0.5 * p["neighbour_xy"][idx, 0])
        ang = 2 * math.pi * p["neighbour_xy"][idx, 1]
        qn = 0.4 + 0.6 * p["neighbour_xy"][idx, 0]
        fn = 10 ** (-0.4 * (p["mag_r"][idx] + p["neighbour_dmag"][idx] - 22.5))
        canvas.add_sersic("neighbour", idx, rad * torch.cos(ang), rad * torch.sin(ang), ang * 3,
                          p["neighbour_re"][idx], p["sersic_n"][idx], qn, fn)
    gr = p["neighbour_colour"]
    canvas.set_colour("neighbour",
                      torch.stack([10 ** (-0.4 * gr), torch.ones_like(gr), 10 ** (0.2 * gr)], 1))


def _render_star(canvas: _Canvas, p: dict) -> torch.Tensor:
    """Foreground stars in some stamps, ``[B, 3, H, W]``: a point source is the PSF itself,
    so it is drawn after the seeing, as the pixel integral of each band's Gaussian PSF."""
    out = torch.zeros(canvas.b, 3, canvas.size, canvas.size, device=canvas.device)
    idx = torch.nonzero(p["star"] > 0).squeeze(1)
    if len(idx):
        coords, pix = canvas.coords, canvas.pix
        rad = FIELD_ARCSEC / 2 * (0.35 + 0.6 * p["star_xy"][idx, 0])
        ang = 2 * math.pi * p["star_xy"][idx, 1]
        sx = (rad * torch.cos(ang) + p["center_x"][idx])[:, None, None]
        sy = (rad * torch.sin(ang) + p["center_y"][idx])[:, None, None]
        sigma = (p["psf_fwhm"][idx, None] * torch.tensor(_BAND_PSF, device=canvas.device)
                 / 2.3548)[:, :, None]  # [b, 3, 1]
        gr = p["star_colour"][idx]
        colour = torch.stack([10 ** (-0.4 * gr), torch.ones_like(gr), 10 ** (0.16 * gr)], 1)
        flux = 10 ** (-0.4 * (p["star_mag"][idx] - 22.5))[:, None] * colour  # [b, 3]
        gx = _gaussian_1d(coords, sx, sigma, pix) * flux[:, :, None]
        gy = _gaussian_1d(-coords, sy, sigma, pix)
        out[idx] = gy[:, :, :, None] * gx[:, :, None, :]
    return out


def _render_dust(canvas: _Canvas, p: dict, q_disk: torch.Tensor):
    """Dust lanes of edge-on disks: attenuation along the mid-plane, strongest in g.

    Returns the galaxy's own light ``[B, 3, H, W]`` (neighbours and stars are in front of or
    behind the galaxy, not inside it) and the lane's transmission at each galaxy's centre
    ``[B, 3]`` (for the cores). The galaxy's intrinsic light is scaled up so that its observed
    r-band flux, after the lane, is the catalogue's ``mag_r``: the lane hides light, it does not
    change what the survey measured.
    """
    images = canvas.images(slice(0, _N_GALAXY))
    transmission = torch.ones(canvas.b, 3, device=canvas.device)
    idx = torch.nonzero(p["kind"] == EDGE_ON).squeeze(1)
    if not len(idx):
        return images, transmission
    re, soft = p["half_light_radius"], canvas.soft
    h = re[idx, None, None] / 1.678
    # the lane is a fixed fraction of the disk's drawn thickness (at least a pixel, see
    # _render_disk_and_arms), so it hides the same share of light at any sampling
    q_drawn = torch.sqrt(q_disk[idx] ** 2 + (soft / re[idx]) ** 2)[:, None, None]
    w = 0.4 * q_drawn * h
    v0 = torch.cos(p["inclination"][idx])[:, None, None] * 0.6 * h  # the near side hides the far
    u, v = canvas.u[idx], canvas.v[idx]
    lane = torch.exp(-0.5 * ((v - v0) / w) ** 2) * torch.exp(-(u / (2.5 * h)) ** 2)
    reddening = torch.tensor([1.2, 1.0, 0.7], device=images.device)  # g, r, z
    tau = p["dust_tau"][idx, None] * reddening  # [b, 3]
    seen = images[idx] * torch.exp(-tau[:, :, None, None] * lane[:, None])
    centre = torch.exp(-tau * torch.exp(-0.5 * (v0[:, 0, 0] / w[:, 0, 0]) ** 2)[:, None])
    # r-band light of the cores of these galaxies, before and after the lane
    core_r = torch.zeros(canvas.b, device=canvas.device)
    core = canvas.core
    if core is not None:
        own = core.channel < _N_GALAXY
        core_r.index_add_(0, core.idx[own],
                          (core.flux * canvas.colours[core.idx, 1, core.channel])[own])
    pix2 = canvas.pix**2
    before = images[idx, 1].sum((1, 2)) * pix2 + core_r[idx]
    after = seen[:, 1].sum((1, 2)) * pix2 + core_r[idx] * centre[:, 1]
    scale = (before / after.clamp(min=1e-30))[:, None]
    images[idx] = seen * scale[:, :, None, None]
    transmission[idx] = centre * scale
    return images, transmission
