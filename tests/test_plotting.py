"""Specification of the plotting helpers (phys555_cl.plotting); headless (conftest: Agg)."""

import matplotlib.pyplot as plt  # headless: tests/conftest.py selects the Agg backend
import numpy as np
import pytest
import torch

from phys555_cl import plotting
from phys555_cl.galaxies import simulate


@pytest.fixture(scope="module")
def galaxies():
    return simulate(6, size=16, seed=0)


def test_lupton_rgb_gives_rgb_in_unit_range(galaxies):
    images, _ = galaxies
    rgb = plotting.lupton_rgb(images)
    assert rgb.shape == (6, 16, 16, 3)
    assert rgb.min() >= 0 and rgb.max() <= 1


def test_lupton_rgb_maps_z_to_red_and_g_to_blue():
    x = torch.zeros(3, 4, 4)
    x[2] = 1.0  # only the z band
    rgb = plotting.lupton_rgb(x, band_weights=(1, 1, 1))
    assert rgb.shape == (4, 4, 3)
    assert rgb[..., 0].min() > 0 and rgb[..., 1:].max() == 0


def test_lupton_rgb_keeps_the_hue_of_saturated_pixels():
    x = torch.zeros(3, 2, 2)
    x[0], x[1], x[2] = 100.0, 50.0, 25.0  # bright, blue-ish (g > r > z)
    rgb = plotting.lupton_rgb(x, stretch=1.0, band_weights=(1, 1, 1))
    assert rgb[0, 0, 2] == pytest.approx(1.0)
    assert rgb[0, 0, 1] == pytest.approx(0.5, rel=1e-3)  # g : r ratio kept
    assert rgb[0, 0, 0] == pytest.approx(0.25, rel=1e-3)


def test_lupton_rgb_rejects_wrong_shapes_and_values():
    with pytest.raises(ValueError, match="shape"):
        plotting.lupton_rgb(np.zeros((2, 4, 8, 8)))
    with pytest.raises(ValueError, match="Q must be positive"):
        plotting.lupton_rgb(np.zeros((3, 8, 8)), Q=0)
    with pytest.raises(ValueError, match="band_weights"):
        plotting.lupton_rgb(np.zeros((3, 8, 8)), band_weights=(1, 1))


def test_show_galaxies_returns_a_figure_with_captions_from_labels(galaxies):
    images, labels = galaxies
    fig = plotting.show_galaxies(images, labels, ncols=3)
    try:
        assert isinstance(fig, plt.Figure)
        axes = [ax for ax in fig.axes if ax.images]
        assert len(axes) == 6
        assert "z=" in axes[0].get_title()
    finally:
        plt.close(fig)


def test_show_galaxies_takes_titles_and_numpy_8bit_like_images():
    images = np.random.default_rng(0).integers(0, 255, (5, 3, 12, 12)).astype(np.float32)
    fig = plotting.show_galaxies(images, titles=list("abcde"), ncols=4,
                                 band_weights=(1, 1, 1), suptitle="Galaxy10-like")
    try:
        assert [ax.get_title() for ax in fig.axes if ax.images] == list("abcde")
    finally:
        plt.close(fig)


def test_show_galaxies_rejects_mismatched_titles_and_empty_batches(galaxies):
    images, _ = galaxies
    with pytest.raises(ValueError, match="titles"):
        plotting.show_galaxies(images, titles=["only one"])
    with pytest.raises(ValueError, match="empty"):
        plotting.show_galaxies(images[:0])


def test_caption_names_the_answers(galaxies):
    _, labels = galaxies
    text = plotting.caption(labels, 0)
    assert text.split(",")[0] in ("smooth", "featured")
    assert "z=" in text


def test_caption_names_odd_features_with_the_schema_names_of_galaxies():
    from phys555_cl.galaxies import ODD_FEATURE_NAMES

    labels = {"smooth_or_featured": torch.tensor([0, 0]), "odd_feature": torch.tensor([2, 3])}
    assert plotting.caption(labels, 0) == "smooth, odd: other"
    assert plotting.caption(labels, 1) == f"smooth, odd: {ODD_FEATURE_NAMES[3]}" == \
        "smooth, odd: merger"


def test_kind_gallery_has_one_row_per_kind():
    fig = plotting.kind_gallery(2, size=16, n_pool=256)
    try:
        assert len([ax for ax in fig.axes if ax.images]) == 14
    finally:
        plt.close(fig)
