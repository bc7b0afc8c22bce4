"""Galaxy datasets with the lecture's labels: simulated, Galaxy10 DECaLS, real Hubble cutouts.

Every dataset exposes ``.images`` (float32 ``[N, 3, H, W]``, bands g, r, z) and ``.labels``
(a dict of length-N tensors in the package schema, see DESIGN.md)::

    SyntheticGalaxies(n, size=64, seed=0)        offline, unlimited (phys555_cl.galaxies)
    Galaxy10DECaLS(path, size=64, download=False) 17,736 real DECaLS galaxies, 2.5 GB HDF5
    hubble_deep_field_cutouts(size=32)           real galaxies from the Hubble XDF image that
                                                 scikit-image ships (offline, RGB press image)

Nothing here touches the network unless asked (``download=True``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request

import numpy as np
import torch
from torch.utils.data import Dataset

from phys555_cl import config
from phys555_cl._checks import check_int
from phys555_cl.fileio import atomic_write
from phys555_cl.galaxies import REDSHIFT_THRESHOLD, simulate
from phys555_cl.photometry import sky_and_noise

__all__ = [
    "SyntheticGalaxies",
    "Galaxy10DECaLS",
    "download_galaxy10",
    "hubble_deep_field_cutouts",
    "GALAXY10_URLS",
    "GALAXY10_SHA256",
    "GALAXY10_CLASSES",
    "GALAXY10_TO_SCHEMA",
    "GALAXY10_FIELD_ARCSEC",
]


class _LabelledImages(Dataset):
    """Common ``__len__`` / ``__getitem__``: item ``i`` is ``(image [3, H, W], {key: label})``."""

    images: torch.Tensor
    labels: dict

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], {key: val[i] for key, val in self.labels.items()}


# --------------------------------------------------------------------------------------------
# Simulated galaxies
# --------------------------------------------------------------------------------------------


class SyntheticGalaxies(_LabelledImages):
    """A simulated sample from :func:`phys555_cl.galaxies.simulate`, as a torch ``Dataset``.

    Args:
        n: number of galaxies.
        size: image side in pixels.
        seed: simulator seed (galaxy ``i`` depends only on ``(seed, i)``).
        device: where to simulate; the dataset keeps the tensors there.

    Attributes:
        images: float32 ``[n, 3, size, size]`` fluxes in g, r, z.
        labels: dict of length-``n`` tensors (schema keys and true physical parameters).

    Example:
        >>> data = SyntheticGalaxies(16, size=32)
        >>> image, labels = data[0]
        >>> image.shape, int(labels["smooth_or_featured"]) in (0, 1)
        (torch.Size([3, 32, 32]), True)
    """

    def __init__(self, n: int, size: int = 64, seed: int = 0, device=None):
        self.n, self.size, self.seed = n, size, seed
        self.images, self.labels = simulate(n, size=size, seed=seed, device=device)

    def __repr__(self) -> str:
        return f"SyntheticGalaxies(n={self.n}, size={self.size}, seed={self.seed})"


# --------------------------------------------------------------------------------------------
# Galaxy10 DECaLS
# --------------------------------------------------------------------------------------------

#: Where Galaxy10 DECaLS is published (Leung & Bovy; Walmsley et al. 2022 labels), then a mirror.
GALAXY10_URLS = (
    "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
    "https://www.astro.utoronto.ca/~hleung/shared/Galaxy10/Galaxy10_DECals.h5",
)
#: SHA256 of ``Galaxy10_DECals.h5`` (2.54 GB).
GALAXY10_SHA256 = "19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571"
GALAXY10_FILENAME = "Galaxy10_DECals.h5"
#: Side of a Galaxy10 DECaLS stamp in arcsec: 256 pixels of 0.262 arcsec (the Legacy Surveys'
#: pixel; a minority of the stamps, large galaxies, have 0.524 arcsec pixels and cover twice
#: this: the file's ``pxscale``). At ``size`` pixels the scale is this over ``size``.
GALAXY10_FIELD_ARCSEC = 256 * 0.262

#: The ten Galaxy10 classes, indexed by the ``ans`` column.
GALAXY10_CLASSES = (
    "Disturbed",
    "Merging",
    "Round Smooth",
    "In-between Round Smooth",
    "Cigar Shaped Smooth",
    "Barred Spiral",
    "Unbarred Tight Spiral",
    "Unbarred Loose Spiral",
    "Edge-on without Bulge",
    "Edge-on with Bulge",
)

#: Galaxy10 class -> (smooth_or_featured, edge_on, odd, odd_feature). Choices where the class
#: does not say: Disturbed and Merging galaxies count as "features or disk" (volunteers answer
#: "features" for visibly disturbed light) seen face-on; Disturbed is the odd feature "other"
#: and Merging is "merger". No Galaxy10 class maps to "ring" or "irregular".
GALAXY10_TO_SCHEMA = {
    0: (1, 0, 1, 2),
    1: (1, 0, 1, 3),
    2: (0, -1, 0, -1),
    3: (0, -1, 0, -1),
    4: (0, -1, 0, -1),
    5: (1, 0, 0, -1),
    6: (1, 0, 0, -1),
    7: (1, 0, 0, -1),
    8: (1, 1, 0, -1),
    9: (1, 1, 0, -1),
}

_HOW_TO_GET = (
    "Get it with Galaxy10DECaLS(path, download=True) (2.5 GB, checked against its SHA256), or "
    "download it yourself from {url} and put it at {path}."
)


def _how_to_get(path: str) -> str:
    return _HOW_TO_GET.format(url=GALAXY10_URLS[0], path=path)


def download_galaxy10(path: str | os.PathLike | None = None, *, url: str | None = None,
                      sha256: str = GALAXY10_SHA256, timeout: float = 60.0,
                      progress: bool = True, chunk_bytes: int = 1 << 20) -> str:
    """Download Galaxy10 DECaLS to ``path``, safely.

    The bytes go to a fresh private temporary file in the destination folder (created with
    ``O_EXCL | O_NOFOLLOW`` under a random name, so a link planted there is never followed
    and two downloads at once never share a file) while their SHA256 is computed; only a
    complete file with the right checksum is renamed onto ``path`` (``os.replace``, which
    replaces a link at ``path`` instead of writing through it). An interrupted or corrupt
    download leaves no file that could be mistaken for a good one; when several downloads of
    the same file run at once, each verifies its own copy and the last rename wins.

    Args:
        path: destination (default ``<data dir>/Galaxy10_DECals.h5``, see ``config.data_dir``).
        url: where to fetch from; default tries :data:`GALAXY10_URLS` in order.
        sha256: expected checksum (hex).
        timeout: seconds to wait for the server on each read.
        progress: show a progress bar (tqdm).
        chunk_bytes: read size.

    Returns:
        The path of the verified file.

    Raises:
        OSError: every URL failed (network error, cut-off transfer or checksum mismatch); the
            message says what happened for each.
    """
    path = os.path.abspath(os.fspath(path or os.path.join(config.data_dir(), GALAXY10_FILENAME)))
    urls = [url] if url else list(GALAXY10_URLS)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    problems = []
    for u in urls:
        # a new private file for every attempt, renamed onto path only once verified
        try:
            atomic_write(path, lambda out, u=u: _fetch(u, out, sha256, timeout, progress,
                                                      chunk_bytes, os.path.basename(path)),
                         suffix=".part")
            return path
        except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as err:
            problems.append(f"{u}: {err}")
    raise OSError(
        f"could not download Galaxy10 DECaLS to {path}:\n  " + "\n  ".join(problems)
        + "\nCheck your internet connection, or download the file by hand from "
        + f"{GALAXY10_URLS[0]} (SHA256 {sha256})."
    )


def _fetch(url: str, out, sha256: str, timeout: float, progress: bool, chunk: int, name: str):
    """Stream ``url`` into the open file ``out``; raise if cut off or if the checksum differs."""
    digest = hashlib.sha256()
    got = 0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total is not None else None
        bar = config.progress(total=total, unit="B", unit_scale=True, disable=not progress
                              or config.quiet(), desc=name)
        with bar:
            while True:
                try:
                    block = response.read(chunk)
                except http.client.IncompleteRead as err:
                    raise OSError(f"download cut off after {got + len(err.partial)} of "
                                  f"{total} bytes") from err
                if not block:
                    break
                out.write(block)
                digest.update(block)
                got += len(block)
                bar.update(len(block))
    if total is not None and got != total:
        raise OSError(f"download cut off after {got} of {total} bytes")
    if digest.hexdigest() != sha256.lower():
        raise ValueError(
            f"checksum mismatch: got SHA256 {digest.hexdigest()}, expected {sha256} "
            "(a corrupt or different file)"
        )
    out.flush()
    os.fsync(out.fileno())


class Galaxy10DECaLS(_LabelledImages):
    """Galaxy10 DECaLS: 17,736 DECaLS galaxies in 10 Galaxy Zoo classes, with the package labels.

    The file ``Galaxy10_DECals.h5`` holds ``images`` (17736, 256, 256, 3) uint8 — the g, r, z
    bands rendered as an RGB picture (R = z, G = r, B = g) — ``ans`` (uint8 class 0-9, see
    :data:`GALAXY10_CLASSES`), ``ra``, ``dec``, ``redshift`` and ``pxscale`` (float64). The
    images are read in chunks (never the whole file as floats), resized with antialiasing to
    ``size``, and cached as uint8 beside the file (``Galaxy10_DECals.64px.npz``), so the next
    load takes seconds.

    Args:
        path: the HDF5 file (default ``<data dir>/Galaxy10_DECals.h5``).
        size: image side after resizing.
        download: fetch the file (2.5 GB) if it is missing; see :func:`download_galaxy10`.
        cache: read / write the resized cache beside the file.
        chunk: galaxies per read.
        url, sha256: passed to :func:`download_galaxy10` (a mirror, or tests).

    Attributes:
        images: float32 ``[N, 3, size, size]`` in [0, 1], bands ordered (g, r, z) like the
            simulator (the channels of the RGB file reversed). Show them with
            ``plotting.show_galaxies(images, band_weights=(1, 1, 1))``. They are 8-bit
            pictures, not fluxes: a model of them normalises with
            ``encoders.ByteImageNormalize`` (not the flux stretch ``AsinhStretch``), and
            ``augment.GalaxyAugment(pixel_scale=GALAXY10_FIELD_ARCSEC / size)`` blurs them in
            arcsec (``train`` with ``data="galaxy10"`` does both).
        labels: the schema keys (mapping in :data:`GALAXY10_TO_SCHEMA`) plus
            ``galaxy10_class``, ``ra``, ``dec``. ``redshift`` is -1 where the catalogue has
            none, and then ``redshift_high`` is -1 too. Every galaxy has a morphology, so
            ``label_tier`` is 2 with a redshift and 0 without (the schema has no
            "morphology only" tier).

    Raises:
        FileNotFoundError: the file is missing and ``download`` is False.
        OSError: the file is not readable HDF5 (truncated or damaged download).
        ValueError: the file has the wrong layout (not Galaxy10 DECaLS).
    """

    def __init__(self, path: str | os.PathLike | None = None, size: int = 64,
                 download: bool = False, *, cache: bool = True, chunk: int = 512,
                 url: str | None = None, sha256: str = GALAXY10_SHA256):
        check_int("size", size, 8, unit="pixels")
        check_int("chunk", chunk, 1)
        self.path = os.fspath(path or os.path.join(config.data_dir(), GALAXY10_FILENAME))
        self.size = int(size)
        if not os.path.exists(self.path):
            if not download:
                raise FileNotFoundError(
                    f"Galaxy10 DECaLS file not found: {self.path}. " + _how_to_get(self.path)
                )
            download_galaxy10(self.path, url=url, sha256=sha256)
        arrays = self._load_cache() if cache else None
        if arrays is None:
            arrays = self._read_and_resize(chunk)
            if cache:
                self._write_cache(arrays)
        self.images = torch.from_numpy(arrays["images"]).float().div_(255.0)
        self.labels = self._labels(arrays)

    def __repr__(self) -> str:
        return f"Galaxy10DECaLS({self.path!r}, size={self.size}, n={len(self)})"

    # -- reading -------------------------------------------------------------------------

    @property
    def cache_path(self) -> str:
        """The resized cache, keyed by size: ``<file without .h5>.<size>px.npz``."""
        root, _ = os.path.splitext(self.path)
        return f"{root}.{self.size}px.npz"

    def _open(self):
        import h5py

        try:
            return h5py.File(self.path, "r")
        except OSError as err:
            raise OSError(
                f"{self.path} is not a readable HDF5 file ({err}); it is probably a truncated "
                f"or damaged download. Delete it and get it again. " + _how_to_get(self.path)
            ) from err

    def _check_layout(self, f) -> int:
        missing = [k for k in ("images", "ans") if k not in f]
        if missing:
            raise ValueError(
                f"{self.path} does not have the Galaxy10 DECaLS layout: missing dataset(s) "
                f"{missing} (found {sorted(f.keys())}); expected images (N, 256, 256, 3) uint8 "
                "and ans (N,) uint8. " + _how_to_get(self.path)
            )
        images, ans = f["images"], f["ans"]
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: images has shape {images.shape} and dtype {images.dtype}; "
                "expected (N, H, W, 3) uint8 as in Galaxy10 DECaLS. " + _how_to_get(self.path)
            )
        if ans.shape != (images.shape[0],):
            raise ValueError(
                f"{self.path}: ans has shape {ans.shape}; expected ({images.shape[0]},), one "
                "class per image. " + _how_to_get(self.path)
            )
        return images.shape[0]

    def _read_and_resize(self, chunk: int) -> dict:
        """Read the file chunk by chunk, resizing each chunk as it comes (bounded memory)."""
        import torch.nn.functional as F

        with self._open() as f:
            n = self._check_layout(f)
            out = np.empty((n, 3, self.size, self.size), dtype=np.uint8)
            starts = range(0, n, chunk)
            try:
                for start in config.progress(starts, desc=f"Galaxy10 -> {self.size}px",
                                             total=len(starts)):
                    block = torch.from_numpy(f["images"][start:start + chunk])
                    # [c, H, W, (R, G, B)] -> [c, (g, r, z), H, W]
                    x = block.permute(0, 3, 1, 2).flip(1).float()
                    if x.shape[-1] != self.size or x.shape[-2] != self.size:
                        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                          antialias=True, align_corners=False)
                    out[start:start + len(x)] = x.round_().clamp_(0, 255).to(torch.uint8).numpy()
                ans = np.asarray(f["ans"][:], dtype=np.int64)
                extra = {k: np.asarray(f[k][:], dtype=np.float64) if k in f else np.full(n, np.nan)
                         for k in ("redshift", "ra", "dec", "pxscale")}
            except OSError as err:
                raise OSError(
                    f"{self.path} could not be read to the end ({err}); it is probably a "
                    "truncated download. Delete it and get it again. " + _how_to_get(self.path)
                ) from err
        bad = (ans < 0) | (ans > 9)
        if bad.any():
            raise ValueError(
                f"{self.path}: ans holds values outside 0-9 (e.g. {ans[bad][0]}); this is not "
                "Galaxy10 DECaLS. " + _how_to_get(self.path)
            )
        return {"images": out, "ans": ans, **extra}

    def _source_stamp(self) -> np.ndarray:
        st = os.stat(self.path)
        return np.array([st.st_size, int(st.st_mtime)], dtype=np.int64)

    def _load_cache(self) -> dict | None:
        """The cached arrays, or None when there is no cache or it belongs to another file."""
        if not os.path.exists(self.cache_path):
            return None
        try:
            with np.load(self.cache_path) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            return None  # a damaged cache is rebuilt
        if not np.array_equal(arrays.get("source"), self._source_stamp()):
            return None
        if arrays["images"].shape[1:] != (3, self.size, self.size):
            return None
        return arrays

    def _write_cache(self, arrays: dict) -> None:
        """Write the cache atomically (temporary name, then rename); skip if not writable."""
        try:
            atomic_write(self.cache_path,
                         lambda fh: np.savez(fh, source=self._source_stamp(), **arrays))
        except OSError:
            pass

    # -- labels --------------------------------------------------------------------------

    @staticmethod
    def _labels(arrays: dict) -> dict:
        ans = arrays["ans"]
        table = np.array([GALAXY10_TO_SCHEMA[c] for c in range(10)], dtype=np.int64)
        cols = table[ans]
        z = arrays["redshift"]
        known = np.isfinite(z) & (z > 0)
        redshift = np.where(known, z, -1.0).astype(np.float32)
        labels = {
            "smooth_or_featured": cols[:, 0],
            "edge_on": cols[:, 1],
            "odd": cols[:, 2],
            "odd_feature": cols[:, 3],
            "redshift": redshift,
            "redshift_high": np.where(known, (z >= REDSHIFT_THRESHOLD).astype(np.int64), -1),
            "label_tier": np.where(known, 2, 0).astype(np.int64),
            "galaxy10_class": ans.astype(np.int64),
            "ra": arrays["ra"].astype(np.float32),
            "dec": arrays["dec"].astype(np.float32),
        }
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in labels.items()}


# --------------------------------------------------------------------------------------------
# Real Hubble galaxies, offline
# --------------------------------------------------------------------------------------------


def hubble_deep_field_cutouts(size: int = 32, *, min_area: int = 60, max_galaxies: int = 200,
                              margin: float = 2.5):
    """Stamps of the larger galaxies in the Hubble eXtreme Deep Field image of scikit-image.

    ``skimage.data.hubble_deep_field()`` ships inside the scikit-image wheel, so this works
    offline. Sources are found by thresholding a smoothed intensity map well above the sky
    (median + 3 robust sigma + 0.02 of full scale), labelling connected pixels and keeping
    those of at least ``min_area`` pixels that sit away from the edges. Each stamp is a square
    of side ``margin`` times the source's diameter (at least ``size``), centred on the source and
    resized with antialiasing to ``size`` pixels.

    These are the RGB channels of a press image (NASA/ESA), not calibrated g, r, z fluxes:
    good for a look at real galaxies and a qualitative test of a representation, not for
    photometry.

    Args:
        size: stamp side in pixels.
        min_area: smallest source kept, in image pixels.
        max_galaxies: keep at most this many, largest first.
        margin: stamp side over source diameter.

    Returns:
        images: float32 ``[n, 3, size, size]`` in [0, 1], channels ordered (B, G, R) to stand
            in for (g, r, z); show with ``plotting.show_galaxies(images, band_weights=(1, 1, 1))``.
        positions: float32 ``[n, 3]``: (x, y) centre of each source in the 1000 x 872 image
            and the side of its stamp in image pixels.
    """
    import torch.nn.functional as F
    from scipy import ndimage
    from skimage import data as skdata
    from skimage import measure

    check_int("size", size, 8, unit="pixels")
    rgb = skdata.hubble_deep_field().astype(np.float32) / 255.0  # (872, 1000, 3)
    h, w, _ = rgb.shape
    gray = ndimage.gaussian_filter(rgb.mean(2), 1.5)
    sky, noise = sky_and_noise(torch.from_numpy(gray).flatten())
    # 3 robust sigma above the sky, plus 0.02 of full scale (5 grey levels, about 3 sigma
    # more): at 3 sigma alone 19% of the image is "source" and neighbours merge through their
    # faint halos into one region; with the floor 13% is, in separate galaxies
    mask = gray > float(sky) + 3 * float(noise) + 0.02
    regions = measure.regionprops(measure.label(mask))
    regions = sorted(regions, key=lambda r: r.area, reverse=True)
    img = torch.from_numpy(rgb).permute(2, 0, 1).flip(0)[None]  # [1, (B, G, R), H, W]
    stamps, positions = [], []
    for r in regions:
        if r.area < min_area or len(stamps) >= max_galaxies:
            break
        cy, cx = r.centroid
        diameter = 2 * np.sqrt(r.area / np.pi)
        side = int(max(size, round(margin * diameter)))
        y0, x0 = int(round(cy - side / 2)), int(round(cx - side / 2))
        if y0 < 0 or x0 < 0 or y0 + side > h or x0 + side > w:
            continue  # too close to the edge for a full stamp
        stamp = img[:, :, y0:y0 + side, x0:x0 + side]
        if side != size:
            stamp = F.interpolate(stamp, size=(size, size), mode="bilinear", antialias=True,
                                  align_corners=False)
        stamps.append(stamp[0])
        positions.append((cx, cy, side))
    if not stamps:
        raise ValueError(f"no source of at least min_area={min_area} pixels was found")
    images = torch.stack(stamps).clamp_(0, 1).contiguous()
    return images, torch.tensor(positions, dtype=torch.float32)
