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


def test_stretch_is_one_fixed_asinh_of_the_fluxes():
    # asinh(x / 0.05) / 3 for every image: the simulator's asinh_stretch with beta = 3
    from phys555_cl import galaxies

    torch.manual_seed(0)
    x = 0.05 * torch.randn(2, 3, 32, 32) + torch.rand(2, 3, 1, 1)
    stretch = AsinhStretch()
    torch.testing.assert_close(stretch(x), torch.asinh(x / 0.05) / 3)
    torch.testing.assert_close(stretch(x), galaxies.asinh_stretch(x, scale=0.05, beta=3.0))
    # no per-image sky or noise estimate: an image is stretched the same on its own or in a
    # batch, whatever its border holds
    torch.testing.assert_close(stretch(x[:1]), stretch(x)[:1])
    y = x.clone()
    y[..., :4, :] += 10.0
    torch.testing.assert_close(stretch(y)[..., 4:, :], stretch(x)[..., 4:, :])


def test_the_stretched_input_sees_the_flux():
    # a galaxy 0.2 mag brighter is a different input (the previous per-image noise
    # normalisation cancelled any brightness change: 2.4e-7 after a 2-mag dimming)
    torch.manual_seed(0)
    r = torch.arange(32) - 15.5
    galaxy = 2.0 * torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) ** 0.5 / 2)
    x = galaxy.expand(1, 3, 32, 32) + 0.05 * torch.randn(1, 3, 32, 32)
    stretch = AsinhStretch()
    assert (stretch(x * 10 ** (0.4 * 0.2)) - stretch(x)).abs().amax() > 0.05
    assert (stretch(x * 10 ** (-0.4 * 2)) - stretch(x)).abs().amax() > 0.5


def test_byte_image_normalize_maps_8_bit_pictures_to_minus_one_one():
    from phys555_cl.encoders import ByteImageNormalize

    x = torch.tensor([0.0, 0.5, 1.0]).reshape(1, 1, 1, 3).expand(2, 3, 1, 3)
    torch.testing.assert_close(ByteImageNormalize()(x)[0, 0, 0], torch.tensor([-1.0, 0.0, 1.0]))
    per_band = ByteImageNormalize(mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.25))(x)
    torch.testing.assert_close(per_band[0, :, 0, 0], torch.tensor([-0.2, -0.4, -1.2]))
    pictures, normalize = torch.rand(2, 3, 8, 8), ByteImageNormalize()
    assert (normalize(0.8 * pictures) - normalize(pictures)).abs().amax() > 0.1
    with pytest.raises(ValueError, match="std"):
        ByteImageNormalize(std=0)
    model = SimCLR(build_encoder("compact", width=4), normalize=ByteImageNormalize())
    assert model(pictures)[0].shape == (2, 32)
    assert "normalize.mean" not in model.state_dict()  # fixed numbers, not checkpoint state


def test_models_of_galaxy10_pictures_use_the_byte_normalisation():
    from phys555_cl.encoders import ByteImageNormalize, build_model_from_config

    cfg = dict(encoder="compact", width=4, hidden_dim=16, proj_dim=8)
    assert isinstance(build_model_from_config(cfg).normalize, AsinhStretch)
    assert isinstance(build_model_from_config({**cfg, "data": "synthetic"}).normalize, AsinhStretch)
    galaxy10 = build_model_from_config({**cfg, "data": "galaxy10"})
    assert isinstance(galaxy10.normalize, ByteImageNormalize)


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
