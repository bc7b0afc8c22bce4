"""Specification of phys555_cl.encoders: encoders f, projection head g, SimCLR (h, z)."""

import pytest
import torch

from phys555_cl.encoders import (
    AsinhStretch,
    ProjectionHead,
    SimCLR,
    build_encoder,
    build_simclr,
    small_embedder,
)


@pytest.mark.parametrize("name,dim", [("compact", 256), ("resnet18", 512), ("resnet50", 2048)])
def test_encoders_map_small_cutouts_to_h(name, dim):
    enc = build_encoder(name).eval()
    assert enc.out_dim == dim
    for size in (24, 40) if name == "compact" else (16,):
        with torch.no_grad():
            h = enc(torch.randn(2, 3, size, size))
        assert h.shape == (2, dim)


def test_resnet_stem_is_adapted_to_small_cutouts():
    enc = build_encoder("resnet18")
    assert enc.conv1.kernel_size == (3, 3) and enc.conv1.stride == (1, 1)
    assert isinstance(enc.maxpool, torch.nn.Identity)


def test_compact_width_sets_the_size_of_h():
    assert build_encoder("compact", width=8).out_dim == 64


def test_unknown_encoder_names_the_choices():
    with pytest.raises(ValueError, match="resnet18"):
        build_encoder("vgg")


def test_projection_head_is_a_two_layer_mlp():
    head = ProjectionHead(64, hidden_dim=32, out_dim=16)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2
    assert head(torch.randn(4, 64)).shape == (4, 16)


def test_simclr_forward_returns_h_and_z():
    model = build_simclr("compact", width=8, hidden_dim=32, proj_dim=16)
    h, z = model(torch.rand(4, 3, 32, 32))
    assert h.shape == (4, 64) and z.shape == (4, 16)
    torch.testing.assert_close(model.representation(torch.rand(4, 3, 32, 32)).shape, h.shape)


def test_simclr_needs_an_encoder_with_out_dim():
    with pytest.raises(ValueError, match="out_dim"):
        SimCLR(torch.nn.Conv2d(3, 8, 3))


def test_stretch_makes_flux_units_irrelevant():
    # raw simulated fluxes (nanomaggies) and [0, 1] images go in as they are
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32).abs() ** 3
    stretch = AsinhStretch()
    torch.testing.assert_close(stretch(x), stretch(1e-3 * x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(stretch(x), stretch(255.0 * x), rtol=1e-4, atol=1e-5)


def test_stretch_is_finite_on_a_noiseless_image():
    x = torch.zeros(1, 3, 16, 16)
    x[..., 8, 8] = 1.0
    assert torch.isfinite(AsinhStretch()(x)).all()
    assert torch.isfinite(AsinhStretch()(torch.zeros(1, 3, 16, 16))).all()


def test_stretch_keeps_colours():
    # all bands share one scale, so a redder galaxy stays redder after the stretch
    x = torch.rand(1, 3, 16, 16) * 0.01
    x[:, 2] += 1.0
    y = AsinhStretch()(x)
    assert y[:, 2].mean() > y[:, 0].mean()


def test_small_embedder_maps_images_onto_the_unit_sphere():
    torch.manual_seed(0)
    f = small_embedder(width=4, dim=16)
    z = f(torch.randn(5, 3, 16, 16) * 10 + 100)
    assert z.shape == (5, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5))
    # three convolutions (width, 2 width, 4 width channels) and the linear layer to dim
    assert sum(p.numel() for p in f.parameters()) == (3 * 4 * 9 + 4) + (4 * 8 * 9 + 8) + \
        (8 * 16 * 9 + 16) + (16 * 16 + 16)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        small_embedder(width=0)
