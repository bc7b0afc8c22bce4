"""Encoders, the projection head and the SimCLR model: ``x -> h = f(x) -> z = g(h)``.

The lecture's framework (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
Visual Representations", arXiv:2002.05709):

- an **encoder** ``f`` (a ResNet) turns an image into the representation ``h``, used downstream;
- a **projection head** ``g``, a two-layer MLP, turns ``h`` into the embedding ``z``;
- the NT-Xent loss (``phys555_cl.losses.nt_xent``) compares the ``z`` of two views.

Galaxy cutouts are small (32-96 pixels), so the torchvision ResNets get a 3x3 stride-1 stem and
no max-pool (as for CIFAR in the SimCLR paper, appendix B.9): the standard 7x7/2 stem plus
max-pool would shrink a 64-pixel galaxy to 16 pixels before the first block.

The input normalisation lives inside the model, so raw ``simulate()`` fluxes go in as they
are: :class:`AsinhStretch`, one fixed asinh stretch for the whole survey, so that the network
sees each galaxy's flux. A model of 8-bit pictures (Galaxy10 images in [0, 1]) takes
:class:`ByteImageNormalize` instead.

Example::

    model = SimCLR(build_encoder("compact"))
    h, z = model(images)          # images [B, 3, 64, 64] -> h [B, 256], z [B, 128]
"""

from __future__ import annotations

import torch
from torch import nn

from phys555_cl._checks import check_int

__all__ = [
    "ASINH_SCALE", "ASINH_SOFTENING", "ENCODERS", "AsinhStretch", "ByteImageNormalize",
    "CompactEncoder", "ProjectionHead", "SimCLR", "UnitLength", "build_encoder",
    "build_model_from_config", "build_simclr", "small_embedder",
]

ENCODERS = ("compact", "resnet18", "resnet50")


#: Softening of the survey-wide asinh stretch, nanomaggies per arcsec^2: about the sky noise
#: of one pixel of a 32-pixel stamp (0.03-0.07 for a survey of DECaLS DR9 depth), i.e. a
#: surface brightness of 25.75 mag per arcsec^2. Fainter is stretched linearly, brighter
#: logarithmically.
ASINH_SOFTENING = 0.05
#: ``asinh(x / ASINH_SOFTENING)`` is about +-0.9 for one sigma of sky noise (r, 32 pixels) and
#: 6-11 in the cores of the simulated galaxies; divided by 3 one sigma of sky is about +-0.3
#: and the cores 2-3.7 (the stretched pixels of ``simulate`` have a standard deviation of 0.4
#: at 32 pixels, 0.5 at 64).
ASINH_SCALE = 3.0


class AsinhStretch(nn.Module):
    """A fixed, survey-wide asinh stretch of the fluxes: ``asinh(x / softening) / scale``.

    Astronomers display galaxies with an asinh stretch (Lupton et al. 1999, AJ 118, 1406):
    linear near the sky noise, logarithmic for the bright core, so faint outskirts and the
    nucleus both stay visible. The input is sky-subtracted surface brightness in nanomaggies
    per arcsec^2 (as ``galaxies.simulate`` returns it); ``softening`` (nanomaggies per
    arcsec^2, default :data:`ASINH_SOFTENING` = 0.05, about the sky noise of a pixel at 32
    pixels) is where the stretch turns from linear to logarithmic, and ``scale`` (default
    :data:`ASINH_SCALE` = 3) brings the values near unit range. It is the same formula as
    ``galaxies.asinh_stretch(x, scale=softening, beta=scale)``.

    The stretch is the same for every image (no per-image sky or noise estimate), so the
    network sees each galaxy's flux and surface brightness, which carry redshift
    information, and a brighter view (``augment.RandomBrightness``) is a different input.
    All bands share it, so colours are kept. For 8-bit pictures already stretched for display
    (Galaxy10 DECaLS, values in [0, 1]) use :class:`ByteImageNormalize` instead.

    Shapes: ``[B, C, H, W] -> [B, C, H, W]`` (float32).
    """

    def __init__(self, softening: float = ASINH_SOFTENING, scale: float = ASINH_SCALE):
        super().__init__()
        if not (softening > 0 and scale > 0):
            raise ValueError(f"softening and scale must be positive, got {softening}, {scale}")
        self.softening, self.scale = float(softening), float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images of shape [B, C, H, W], got {tuple(x.shape)}")
        return torch.asinh(x.float() / self.softening) / self.scale

    def extra_repr(self) -> str:
        return f"softening={self.softening:g}, scale={self.scale:g}"


class ByteImageNormalize(nn.Module):
    """The normalisation for 8-bit pictures converted to floats in [0, 1]:
    ``(x - mean) / std``, by default ``2 x - 1`` (values in [-1, 1]).

    Galaxy10 DECaLS images (``data.Galaxy10DECaLS``) and the Hubble press image are already
    stretched for display and quantised to 8 bits: they are not fluxes, so
    :class:`AsinhStretch` does not apply. A model trained on them takes this module instead:
    ``SimCLR(encoder, normalize=ByteImageNormalize())`` (``train`` with ``data="galaxy10"``
    does so). ``mean`` and ``std`` are fixed numbers (one, or one per band), not statistics
    of a batch, so a brighter picture is still a different input.

    Shapes: ``[B, C, H, W] -> [B, C, H, W]`` (float32).
    """

    def __init__(self, mean: float | tuple[float, ...] = 0.5,
                 std: float | tuple[float, ...] = 0.5):
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        if not (std_t > 0).all():
            raise ValueError(f"std must be positive, got {std!r}")
        self.register_buffer("mean", mean_t, persistent=False)
        self.register_buffer("std", std_t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images of shape [B, C, H, W], got {tuple(x.shape)}")
        return (x.float() - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class UnitLength(nn.Module):
    """Scale each row to unit Euclidean length: ``[B, D] -> [B, D]``."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(z, dim=1)


def small_embedder(width: int = 16, dim: int = 16) -> nn.Sequential:
    """The f_theta of notebooks 01 and 02: images ``[B, 3, H, W]`` -> ``[B, dim]`` on the sphere.

    The asinh stretch, three 3x3 convolution blocks (the first two halve the image), an
    average over the image and a linear layer down to ``dim`` numbers, scaled to unit length.
    On the unit sphere every distance lies between 0 and 2, which gives the margin of the
    contrastive and triplet losses (Hadsell et al. 2006; Schroff et al. 2015) a fixed meaning.
    """
    width, dim = check_int("width", width, minimum=1), check_int("dim", dim, minimum=1)
    return nn.Sequential(
        AsinhStretch(),
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4 * width, dim), UnitLength(),
    )


def _conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CompactEncoder(nn.Module):
    """A small VGG-like CNN that trains in minutes on a laptop CPU.

    Four stages of two 3x3 conv-BN-ReLU layers; each stage after the first halves the
    resolution (stride-2 conv) and the widths are ``width * (1, 2, 4, 8)``. Global average
    pooling gives ``h`` of size ``8 * width``.

    Shapes: ``[B, in_channels, H, W] -> [B, out_dim]`` with ``out_dim = 8 * width``.
    """

    def __init__(self, in_channels: int = 3, width: int = 32):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be a positive number of channels, got {width}")
        w = (width, 2 * width, 4 * width, 8 * width)
        self.features = nn.Sequential(
            _conv_bn(in_channels, w[0], 1),
            _conv_bn(w[0], w[0], 1),
            _conv_bn(w[0], w[1], 2),
            _conv_bn(w[1], w[1], 1),
            _conv_bn(w[1], w[2], 2),
            _conv_bn(w[2], w[2], 1),
            _conv_bn(w[2], w[3], 2),
            _conv_bn(w[3], w[3], 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.out_dim = w[3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _torchvision_resnet(name: str, in_channels: int) -> nn.Module:
    import torchvision  # deferred on purpose: only the ResNet encoders need its import time

    net = getattr(torchvision.models, name)(weights=None)
    out_dim = net.fc.in_features
    # small-cutout stem: 3x3 stride 1, no max-pool (SimCLR appendix B.9, CIFAR variant)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    net.out_dim = out_dim
    return net


def build_encoder(name: str = "compact", *, in_channels: int = 3, width: int = 32) -> nn.Module:
    """Build the encoder ``f`` by name; the result has an ``out_dim`` attribute (size of h).

    Args:
        name: ``"compact"`` (:class:`CompactEncoder`, h of size ``8 * width``, fast on a CPU),
            ``"resnet18"`` (h of 512) or ``"resnet50"`` (h of 2048), torchvision ResNets with a
            3x3 stride-1 stem and no max-pool, randomly initialised.
        in_channels: number of bands (3 for g, r, z).
        width: channel width of the compact encoder (ignored by the ResNets).

    Shapes: the encoder maps ``[B, in_channels, H, W] -> [B, out_dim]`` for any H, W >= 8.
    """
    if name == "compact":
        return CompactEncoder(in_channels, width)
    if name in ("resnet18", "resnet50"):
        return _torchvision_resnet(name, in_channels)
    raise ValueError(f"unknown encoder {name!r}; choose one of {ENCODERS}")


class ProjectionHead(nn.Module):
    """The SimCLR projection head ``g``: ``z = W2 ReLU(BN(W1 h))``, the slide's two-layer MLP.

    Shapes: ``h [B, in_dim] -> z [B, out_dim]``.

    Reference: Chen et al. 2020, section 2.1 (the BatchNorm follows their code and SimCLR v2).
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128):
        super().__init__()
        for nm, v in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            if v < 1:
                raise ValueError(f"{nm} must be a positive size, got {v}")
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class SimCLR(nn.Module):
    """SimCLR model: normalisation, encoder ``f`` and projection head ``g``.

    ``forward(x)`` returns ``(h, z)``: the representation ``h = f(normalize(x))`` (use it for
    probes, UMAPs, retrieval) and the embedding ``z = g(h)`` (feed it to NT-Xent).

    Args:
        encoder: a module with an ``out_dim`` attribute, e.g. from :func:`build_encoder`.
        head: a :class:`ProjectionHead` (default: ``ProjectionHead(encoder.out_dim)``).
        normalize: the input normalisation (default :class:`AsinhStretch`, for fluxes);
            :class:`ByteImageNormalize` for 8-bit pictures such as Galaxy10; ``nn.Identity()``
            when the images are already normalised.

    Shapes: ``x [B, 3, H, W] -> h [B, encoder.out_dim], z [B, head.out_dim]``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module | None = None,
        normalize: nn.Module | None = None,
    ):
        super().__init__()
        if not hasattr(encoder, "out_dim"):
            raise ValueError(
                "the encoder needs an `out_dim` attribute (the size of h); build it with "
                "phys555_cl.encoders.build_encoder or set encoder.out_dim yourself"
            )
        self.normalize = normalize if normalize is not None else AsinhStretch()
        self.encoder = encoder
        self.head = head if head is not None else ProjectionHead(encoder.out_dim)

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """``h`` only. ``[B, 3, H, W] -> [B, out_dim]``."""
        return self.encoder(self.normalize(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.representation(x)
        return h, self.head(h)


def build_simclr(
    encoder: str = "compact",
    *,
    width: int = 32,
    hidden_dim: int = 512,
    proj_dim: int = 128,
    in_channels: int = 3,
    normalize: nn.Module | None = None,
) -> SimCLR:
    """Convenience builder: ``SimCLR(build_encoder(encoder), ProjectionHead(...), normalize)``
    (``normalize`` None: :class:`AsinhStretch`).

    Shapes: the model maps ``[B, in_channels, H, W] -> (h [B, D], z [B, proj_dim])``.
    """
    enc = build_encoder(encoder, in_channels=in_channels, width=width)
    return SimCLR(enc, ProjectionHead(enc.out_dim, hidden_dim, proj_dim), normalize)


def conv_memory_format(device, enabled: bool = True) -> torch.memory_format:
    """The memory format to train and run the convolutions in on ``device``: channels-last
    on the CPU (1.24x for the compact encoder on 2 cores, ``benchmarks/bench_training.py``)
    and on CUDA (the usual choice); contiguous on Apple GPUs (not measured there) or when
    not ``enabled``. Use it for the model (``model.to(memory_format=...)``) and its inputs
    (``x.contiguous(memory_format=...)``)."""
    fast = enabled and torch.device(device or "cpu").type in ("cpu", "cuda")
    return torch.channels_last if fast else torch.contiguous_format


def build_model_from_config(cfg: dict) -> SimCLR:
    """The SimCLR model a training configuration describes (randomly initialised).

    ``cfg`` is a ``phys555_cl.train`` config (e.g. the one ``load_checkpoint`` returns): its
    ``encoder``, ``width``, ``hidden_dim`` and ``proj_dim`` are used, and its ``data``: 8-bit
    Galaxy10 pictures (``"galaxy10"``) are normalised with :class:`ByteImageNormalize`,
    simulated fluxes with :class:`AsinhStretch`. The package's one way from a config to a
    model: training, ``load_checkpoint`` and the study all build with it.

    Shapes: the model maps ``[B, 3, H, W] -> (h [B, D], z [B, cfg["proj_dim"]])``.
    """
    normalize = ByteImageNormalize() if cfg.get("data") == "galaxy10" else AsinhStretch()
    return build_simclr(
        cfg["encoder"], width=cfg["width"], hidden_dim=cfg["hidden_dim"],
        proj_dim=cfg["proj_dim"], normalize=normalize,
    )
