"""Plotting helpers: galaxy images as colour composites, label captions.

The colour composite follows Lupton et al. (2004, PASP 116, 133): the three bands share one
asinh stretch of their mean intensity, which keeps the colours of bright cores (unlike a
per-band stretch, which turns every core white). Bands map z -> red, r -> green, g -> blue.

Every function returns the matplotlib ``Figure`` and never calls ``plt.show()``, so it works
headless (the Agg backend) in tests and scripts.
"""

from __future__ import annotations

import numpy as np
import torch

from phys555_cl.galaxies import KIND_NAMES, LABEL_SCHEMA, ODD_FEATURE_NAMES, simulate

__all__ = ["lupton_rgb", "show_galaxies", "caption", "kind_gallery", "LEGACY_WEIGHTS"]


def _to_numpy(images) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        images = images.detach().to("cpu", torch.float32).numpy()
    return np.asarray(images, dtype=np.float32)


#: Band weights (g, r, z) of the Legacy Surveys viewer colour scheme (g 6.0, r 3.4, z 2.2),
#: relative to z: they make a typical galaxy look white-yellow and star formation blue.
LEGACY_WEIGHTS = (2.73, 1.55, 1.0)


def lupton_rgb(images, *, stretch: float | None = None, Q: float = 8.0,
               per_image: bool = True, band_weights=LEGACY_WEIGHTS) -> np.ndarray:
    """Asinh colour composites of 3-band images (Lupton et al. 2004).

    Args:
        images: ``[N, 3, H, W]`` or ``[3, H, W]`` tensor or array, bands (g, r, z) — fluxes from
            the simulator or 8-bit-like values from Galaxy10 (any non-negative-ish scale).
        stretch: linear range of the stretch in image units. ``None`` picks it per image (or
            for the whole batch when ``per_image=False``) from the 99.5th percentile of the
            intensity, so faint and bright galaxies are both visible.
        Q: asinh softening; larger shows fainter structure.
        per_image: scale every image separately (default) or all with one scale.
        band_weights: multipliers of the (g, r, z) bands before the stretch. The default
            suits fluxes (the simulator); use ``(1, 1, 1)`` for images that are already
            colour-balanced RGB, such as Galaxy10 or the Hubble cutouts.

    Returns:
        float array ``[N, H, W, 3]`` (or ``[H, W, 3]``) in [0, 1], RGB = (z, r, g).
    """
    x = _to_numpy(images)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(
            f"images must have shape [N, 3, H, W] or [3, H, W] (bands g, r, z), got {x.shape}"
        )
    if Q <= 0:
        raise ValueError(f"Q must be positive, got {Q!r}")
    if len(x) == 0:
        raise ValueError("lupton_rgb needs at least one image, got an empty batch")
    if len(band_weights) != 3:
        raise ValueError(f"band_weights needs 3 numbers (g, r, z), got {band_weights!r}")
    x = x * np.asarray(band_weights, dtype=np.float32)[None, :, None, None]
    rgb = x[:, ::-1]  # g, r, z -> z, r, g = red, green, blue
    intensity = rgb.mean(1, keepdims=True)
    if stretch is None:
        axes = (1, 2, 3) if per_image else (0, 1, 2, 3)
        top = np.percentile(intensity, 99.5, axis=axes, keepdims=True)
        scale = np.maximum(top, 1e-12) / (np.arcsinh(Q) / Q * 1.0)
    else:
        if stretch <= 0:
            raise ValueError(f"stretch must be positive, got {stretch!r}")
        scale = np.full((1, 1, 1, 1), stretch * np.arcsinh(Q) / Q, dtype=np.float32)
    # f(I) = asinh(Q I / scale) / Q, and each band is multiplied by f(I) / I
    i = np.maximum(intensity, 1e-12)
    f = np.arcsinh(Q * i / scale) / np.arcsinh(Q)
    out = rgb * (f / i)
    out = np.where(intensity > 0, out, 0.0)
    out = np.clip(out, 0.0, None)
    peak = out.max(1, keepdims=True)
    out = np.where(peak > 1, out / np.maximum(peak, 1e-12), out)  # keep hue when saturated
    out = np.clip(out, 0, 1).transpose(0, 2, 3, 1)
    return out[0] if single else out


def caption(labels: dict, i: int) -> str:
    """A short caption of galaxy ``i`` from a label dict in the package schema.

    Example: ``"featured, face-on, z=0.05"`` or ``"smooth, odd: merger, z=0.12"``.
    """
    parts = []
    sf = labels.get("smooth_or_featured")
    if sf is not None:
        parts.append("featured" if int(sf[i]) == 1 else "smooth")
    eo = labels.get("edge_on")
    if eo is not None and int(eo[i]) >= 0:
        parts.append("edge-on" if int(eo[i]) == 1 else "face-on")
    of = labels.get("odd_feature")
    if of is not None and int(of[i]) >= 0:
        parts.append(f"odd: {ODD_FEATURE_NAMES[int(of[i])]}")
    bar = labels.get("bar")
    if bar is not None and int(bar[i]) == 1:
        parts.append("barred")
    z = labels.get("redshift")
    if z is not None and float(z[i]) >= 0:
        parts.append(f"z={float(z[i]):.3f}")
    return ", ".join(parts)


def show_galaxies(images, labels: dict | None = None, *, ncols: int = 8, titles=None,
                  panel_size: float = 1.6, stretch: float | None = None, Q: float = 8.0,
                  per_image: bool = True, band_weights=LEGACY_WEIGHTS, fontsize: float = 6.5,
                  suptitle: str | None = None):
    """Show a grid of galaxies as asinh RGB composites, with optional captions.

    Works for simulator fluxes and for Galaxy10 / Hubble cutouts alike.

    Args:
        images: ``[N, 3, H, W]`` tensor or array (bands g, r, z).
        labels: optional label dict (package schema); captions come from :func:`caption`.
        ncols: panels per row.
        titles: optional list of N strings, overrides the captions from ``labels``.
        panel_size: inches per panel.
        stretch, Q, per_image, band_weights: passed to :func:`lupton_rgb` (use
            ``band_weights=(1, 1, 1)`` for Galaxy10 and Hubble images, already RGB).
        fontsize: caption font size.
        suptitle: optional figure title.

    Returns:
        The matplotlib ``Figure`` (not shown; call ``fig.savefig`` or let Jupyter display it).
    """
    import matplotlib.pyplot as plt

    rgb = lupton_rgb(images, stretch=stretch, Q=Q, per_image=per_image,
                     band_weights=band_weights)
    if rgb.ndim == 3:
        rgb = rgb[None]
    n = len(rgb)
    if n == 0:
        raise ValueError("show_galaxies needs at least one image, got an empty batch")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols!r}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have one entry per image ({n}), got {len(titles)}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows + 0.3),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        ax.imshow(rgb[i], origin="upper", interpolation="nearest")
        text = titles[i] if titles is not None else (caption(labels, i) if labels else None)
        if text:
            ax.set_title(text, fontsize=fontsize, pad=2)
    if suptitle:
        fig.suptitle(suptitle, fontsize=fontsize + 3)
        fig.tight_layout(pad=0.3, rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    else:
        fig.tight_layout(pad=0.3)
    return fig


def kind_gallery(per_kind: int = 6, *, size: int = 64, seed: int = 0, n_pool: int = 512,
                 **kwargs):
    """A gallery of simulated galaxies, one row per kind (smooth, face-on disk, edge-on disk,
    ring, irregular, lens, merger), captioned with redshift and r magnitude.

    Args:
        per_kind: galaxies per row.
        size: image side (default: the simulator's default, 64).
        seed: simulator seed; the first ``per_kind`` galaxies of each kind among ``n_pool``.
        n_pool: how many galaxies to simulate to find them.
        kwargs: passed to :func:`show_galaxies`.

    Returns:
        The matplotlib ``Figure``.
    """
    images, labels = simulate(n_pool, size=size, seed=seed)
    pretty = {"disk_face_on": "face-on disk", "disk_edge_on": "edge-on disk",
              "lens": "lens (odd: other)"}
    picked, titles = [], []
    for code, name in enumerate(KIND_NAMES):
        idx = torch.nonzero(labels["kind"] == code).squeeze(1)[:per_kind].tolist()
        if len(idx) < per_kind:
            raise ValueError(f"only {len(idx)} {name} galaxies among n_pool={n_pool}; raise n_pool")
        picked += idx
        for i in idx:
            extra = ", barred" if int(labels["bar"][i]) else ""
            titles.append(f"{pretty.get(name, name)}{extra}\nz={float(labels['redshift'][i]):.3f}"
                          f" r={float(labels['mag_r'][i]):.1f}")
    kwargs.setdefault("fontsize", 6.5)
    kwargs.setdefault("suptitle", f"phys555_cl.galaxies.simulate: {size} px, "
                                  f"one row per kind (seed {seed})")
    return show_galaxies(images[picked], titles=titles, ncols=per_kind, **kwargs)


# --------------------------------------------------------------------------------------------
# representations: UMAP and nearest neighbours (computed in phys555_cl.evaluate)
# --------------------------------------------------------------------------------------------


def _to_array(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


_CLASS_NAMES = {k: v["classes"] for k, v in LABEL_SCHEMA.items() if v["classes"]}


def plot_umap(embedding, labels: dict, key: str, *, ax=None, s: float = 4.0, title=None):
    """Scatter a 2-D embedding coloured by ``labels[key]``; -1 ("not applicable") in grey.

    Integer labels get one colour per class with a legend; float labels a colour bar.
    Returns the matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    if key not in labels:
        raise ValueError(f"no label {key!r}; available: {sorted(labels)}")
    e, y = _to_array(embedding), _to_array(labels[key])
    if e.ndim != 2 or e.shape[1] != 2 or len(e) != len(y):
        raise ValueError(f"embedding must be [N, 2] with one label each, got {e.shape}, {y.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
    else:
        fig = ax.figure
    if np.issubdtype(y.dtype, np.floating):
        sc = ax.scatter(e[:, 0], e[:, 1], c=y, s=s, cmap="viridis", linewidths=0)
        fig.colorbar(sc, ax=ax, label=key)
    else:
        na = y < 0
        if na.any():
            ax.scatter(e[na, 0], e[na, 1], c="lightgrey", s=s, linewidths=0, label="n/a")
        names = _CLASS_NAMES.get(key, ())
        for c in np.unique(y[~na]):
            m = y == c
            name = names[c] if c < len(names) else str(c)
            ax.scatter(e[m, 0], e[m, 1], s=s, linewidths=0, label=name)
        ax.legend(markerscale=3, fontsize=8, frameon=False)
    ax.set_title(title or f"UMAP of h, coloured by {key}")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def plot_neighbours(query_images, gallery_images, indices, similarity=None, *, labels=None,
                    **kwargs):
    """Gallery plot: each row is a query galaxy followed by its nearest neighbours.

    Args:
        query_images: ``[Q, 3, H, W]``; gallery_images: ``[G, 3, H, W]``.
        indices: ``[Q, k]`` from :func:`nearest_neighbours` (similarity ``[Q, k]`` optional,
            shown in the titles).
        labels: optional gallery label dict, shown as captions.
        kwargs: passed to ``phys555_cl.plotting.show_galaxies`` (e.g. ``band_weights``).

    Returns the matplotlib ``Figure``.
    """
    idx = torch.as_tensor(indices)
    q, k = idx.shape
    panels, titles = [], []
    for i in range(q):
        panels.append(torch.as_tensor(query_images[i]))
        titles.append("query")
        for j in range(k):
            panels.append(torch.as_tensor(gallery_images[int(idx[i, j])]))
            t = f"{float(similarity[i, j]):.2f}" if similarity is not None else f"#{j + 1}"
            if labels is not None:
                t += "\n" + caption(labels, int(idx[i, j]))
            titles.append(t)
    return show_galaxies(torch.stack(panels), ncols=k + 1, titles=titles, **kwargs)
