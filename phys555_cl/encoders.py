"""Encoders, the projection head and the SimCLR model: ``x -> h = f(x) -> z = g(h)``.

The lecture's framework (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
Visual Representations", arXiv:2002.05709):

- an **encoder** ``f`` (a ResNet) turns an image into the representation ``h``, used downstream;
- a **projection head** ``g``, a two-layer MLP, turns ``h`` into the embedding ``z``;
- the NT-Xent loss (``phys555_cl.losses.nt_xent``) compares the ``z`` of two views.

Galaxy cutouts are small (32-96 pixels), so the torchvision ResNets get a 3x3 stride-1 stem and
no max-pool (as for CIFAR in the SimCLR paper, appendix B.9): the standard 7x7/2 stem plus
max-pool would shrink a 64-pixel galaxy to 16 pixels before the first block.

The input normalisation lives inside the model (:class:`AsinhStretch`), so raw
``simulate()`` fluxes and Galaxy10 images in [0, 1] go in as they are.

Example::

    model = SimCLR(build_encoder("compact"))
    h, z = model(images)          # images [B, 3, 64, 64] -> h [B, 256], z [B, 128]
"""

from __future__ import annotations

import torch
from torch import nn

from phys555_cl._checks import check_int

ENCODERS = ("compact", "resnet18", "resnet50")


class AsinhStretch(nn.Module):
    """Per-image robust asinh stretch: ``asinh((x - sky) / (softening * noise)) / asinh_scale``.

    ``sky`` is the median and ``noise`` is ``1.4826 * MAD`` of the pixels in a frame
    ``border`` pixels wide around the image (mostly sky; all bands together, so colours are
    kept). Astronomers display galaxies with an asinh stretch (Lupton et al. 1999): linear
    near the noise, logarithmic for the bright core, so faint outskirts and the nucleus both
    stay visible. Measuring flux in units of each image's own noise makes raw simulated fluxes
    and 8-bit Galaxy10 images comparable without any dataset statistics; the floor
    ``min_noise_fraction * max|x|`` keeps noiseless images (a MAD of 0) finite.

    Shapes: ``[B, C, H, W] -> [B, C, H, W]`` (float32).
    """

    def __init__(
        self,
        softening: float = 3.0,
        asinh_scale: float = 3.0,
        min_noise_fraction: float = 1e-3,
        border: int = 4,
    ):
        super().__init__()
        if softening <= 0 or asinh_scale <= 0:
            raise ValueError(
                f"softening and asinh_scale must be positive, got {softening}, {asinh_scale}"
            )
        self.softening, self.asinh_scale = softening, asinh_scale
        self.min_noise_fraction, self.border = min_noise_fraction, border

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from phys555_cl.augment import border_pixels, sky_and_noise

        if x.ndim != 4:
            raise ValueError(f"expected images of shape [B, C, H, W], got {tuple(x.shape)}")
        x = x.float()
        sky, noise = sky_and_noise(border_pixels(x, self.border).flatten(1))  # [B, 1], [B]
        sky = sky[:, :, None, None]
        floor = self.min_noise_fraction * x.flatten(1).abs().amax(dim=1) + 1e-12
        noise = torch.maximum(noise, floor)[:, None, None, None]
        return torch.asinh((x - sky) / (self.softening * noise)) / self.asinh_scale


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
    import torchvision

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
        normalize: the input normalisation (default :class:`AsinhStretch`); ``nn.Identity()``
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
) -> SimCLR:
    """Convenience builder: ``SimCLR(build_encoder(encoder), ProjectionHead(...))``.

    Shapes: the model maps ``[B, in_channels, H, W] -> (h [B, D], z [B, proj_dim])``.
    """
    enc = build_encoder(encoder, in_channels=in_channels, width=width)
    return SimCLR(enc, ProjectionHead(enc.out_dim, hidden_dim, proj_dim))


def build_model_from_config(cfg: dict) -> SimCLR:
    """The SimCLR model a training configuration describes (randomly initialised).

    ``cfg`` is a ``phys555_cl.train`` config (e.g. the one ``load_checkpoint`` returns): its
    ``encoder``, ``width``, ``hidden_dim`` and ``proj_dim`` are used.
    """
    return build_simclr(
        cfg["encoder"], width=cfg["width"], hidden_dim=cfg["hidden_dim"], proj_dim=cfg["proj_dim"]
    )
