"""Specification of phys555_cl.evaluate (embeddings, probes, retrieval) and its plots."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from phys555_cl.encoders import build_simclr
from phys555_cl.evaluate import (
    embed,
    fit_linear_probe,
    knn_predict,
    knn_probe,
    linear_probe,
    nearest_neighbours,
    raw_pixels,
    retrieval_precision,
    umap_embedding,
)
from phys555_cl.plotting import plot_neighbours, plot_umap


def tiny_model():
    torch.manual_seed(0)
    return build_simclr("compact", width=4, hidden_dim=16, proj_dim=8)


def blobs(n=60, size=16, seed=0):
    """Round (label 0) or elongated (label 1) blobs, redshift-like float from their size."""
    g = torch.Generator().manual_seed(seed)
    r = torch.arange(size) - (size - 1) / 2
    y = torch.randint(2, (n,), generator=g)
    s = 1.5 + 2 * torch.rand(n, generator=g)
    sx = s * (1 + 1.5 * y)
    img = torch.exp(-(r[None, None, :] ** 2 / (2 * sx[:, None, None] ** 2)
                      + r[None, :, None] ** 2 / (2 * s[:, None, None] ** 2)))
    x = img[:, None].repeat(1, 3, 1, 1) + 0.01 * torch.randn(n, 3, size, size, generator=g)
    edge = torch.where(y == 1, torch.randint(2, (n,), generator=g), -1)
    labels = {"smooth_or_featured": y, "edge_on": edge, "odd_feature": torch.randint(4, (n,)),
              "redshift_high": (s > 2.5).long(), "redshift": s.float()}
    return x, labels


def test_embed_returns_h_on_the_cpu_as_float32():
    x, _ = blobs(10)
    h = embed(tiny_model(), x, batch_size=4)
    assert h.shape == (10, 32) and h.dtype == torch.float32 and h.device.type == "cpu"


def test_embed_does_not_depend_on_the_batch_size():
    x, _ = blobs(10)
    model = tiny_model()
    torch.testing.assert_close(embed(model, x, batch_size=3), embed(model, x, batch_size=10))


def test_linear_probe_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(2, (200,), generator=g)
    h = torch.randn(200, 5, generator=g) + 4 * y[:, None]
    assert linear_probe(h[:100], y[:100], h[100:], y[100:]) > 0.95


def test_probes_ignore_not_applicable_labels():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(2, (200,), generator=g)
    h = torch.randn(200, 5, generator=g) + 4 * y[:, None]
    y_na = torch.where(torch.arange(200) % 3 == 0, -1, y)
    assert linear_probe(h[:100], y_na[:100], h[100:], y_na[100:]) > 0.95
    assert knn_probe(h[:100], y_na[:100], h[100:], y_na[100:], k=5) > 0.95


@pytest.mark.parametrize("float_labels", [False, True])
def test_knn_probe_agrees_with_scikit_learn(float_labels):
    """The package's one kNN gives scikit-learn's answer (cosine metric, standardised
    features) for classes and for a regression."""
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    g = torch.Generator().manual_seed(3)
    h = torch.randn(300, 6, generator=g, dtype=torch.float64) * torch.tensor([1, 2, 3, 4, 5, 9.])
    y = h[:, 0] + 0.5 * torch.randn(300, generator=g, dtype=torch.float64)
    y = y if float_labels else (y > 0).long() + (y > 1).long()
    sk = (KNeighborsRegressor if float_labels else KNeighborsClassifier)(n_neighbors=7,
                                                                         metric="cosine")
    expected = make_pipeline(StandardScaler(), sk).fit(h[:200].numpy(), y[:200].numpy())
    expected = expected.score(h[200:].numpy(), y[200:].numpy())
    assert knn_probe(h[:200], y[:200], h[200:], y[200:], k=7) == pytest.approx(expected, abs=1e-6)


def test_knn_predict_majority_weighted_and_ties():
    train = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    y = torch.tensor([2, 2, 0, 0])
    query = torch.tensor([[1.0, 0.05], [0.05, 1.0], [1.0, 0.9]])
    assert knn_predict(train, y, query, 1).tolist() == [2, 0, 2]
    # k = 4: every query sees two votes for each class; a tie goes to the smaller class
    assert knn_predict(train, y, query, 4).tolist() == [0, 0, 0]
    # weighted by exp(similarity / T), the closer pair wins the tie
    assert knn_predict(train, y, query, 4, temperature=0.1).tolist() == [2, 0, 2]
    # k larger than the training set uses all of it; float labels give the weighted mean
    values = torch.tensor([1.0, 1.0, 3.0, 3.0])
    assert knn_predict(train, values, query, 10).tolist() == pytest.approx([2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn_predict(train, y, query, 0)
    with pytest.raises(ValueError, match="leave out the rows labelled -1"):
        knn_predict(train, torch.tensor([2, -1, 0, 0]), query, 3)


def test_float_labels_give_r2():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(200, 3, generator=g)
    z = (h[:, 0] * 0.5 + 0.01 * torch.randn(200, generator=g)).float()
    assert linear_probe(h[:100], z[:100], h[100:], z[100:]) > 0.95
    assert knn_probe(h[:100], z[:100], h[100:], z[100:], k=5) > 0.5


def test_probe_shapes_are_checked():
    with pytest.raises(ValueError, match="one label per row"):
        linear_probe(torch.zeros(4, 2), torch.zeros(3).long(), torch.zeros(2, 2),
                     torch.zeros(2).long())


def test_raw_pixels_are_the_models_asinh_stretch_flattened_in_channel_order():
    from phys555_cl.encoders import AsinhStretch

    x, _ = blobs(4)
    r = raw_pixels(x)
    assert r.shape == (4, 3 * 16 * 16)
    torch.testing.assert_close(r, AsinhStretch()(x).flatten(1))
    # the stretch keeps the order of the fluxes within an image: brighter pixel, larger value
    flat = x[0].flatten()
    i, j = int(flat.argmax()), int(flat.argmin())
    assert r[0, i] > r[0, j]


def test_float_labels_with_whole_values_are_refused_not_regressed():
    h = torch.randn(20, 4)
    y = torch.tensor([0.0, 1.0] * 10)
    with pytest.raises(ValueError, match="integers"):
        linear_probe(h, y, h, y)
    # real floats are a regression (R^2)
    z = h[:, 0] * 2 + 0.01 * torch.randn(20)
    assert linear_probe(h, z, h, z) > 0.99


def test_linear_probe_says_what_to_do_when_no_galaxy_is_labelled():
    h = torch.randn(6, 3)
    with pytest.raises(ValueError, match="all labels are -1"):
        linear_probe(h, torch.full((6,), -1), h, torch.zeros(6, dtype=torch.long))


def test_fit_linear_probe_predicts_the_only_class_it_saw():
    probe = fit_linear_probe(torch.randn(5, 3), torch.full((5,), 2))
    assert probe.predict(np.zeros((4, 3))).tolist() == [2, 2, 2, 2]


def test_retrieval_precision_counts_same_kind_neighbours_excluding_the_query():
    # two tight clusters of kinds 0 and 1, one outlier of kind 1 inside cluster 0
    feats = torch.tensor([[1.0, 0.0], [0.99, 0.05], [0.98, 0.1], [0.97, 0.12],
                          [0.0, 1.0], [0.05, 0.99], [0.1, 0.98]])
    kinds = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    out = retrieval_precision(feats, kinds, ks=(1, 2), names=("a", "b"))
    assert out["a"]["queries"] == 3 and out["b"]["queries"] == 4
    # kind 0: each query's nearest other galaxy is kind 0 except the last (the kind-1 outlier)
    assert out["a"]["p@1"] == pytest.approx(2 / 3)
    assert out["a"]["chance"] == pytest.approx(2 / 6)
    # kind 1: the outlier (index 3) retrieves kind-0 galaxies first
    assert out["b"]["p@1"] == pytest.approx(3 / 4)


def test_retrieval_precision_rejects_k_larger_than_the_gallery():
    with pytest.raises(ValueError, match="between 1 and N - 1"):
        retrieval_precision(torch.randn(5, 2), torch.zeros(5, dtype=torch.long), ks=(5,))


def test_nearest_neighbour_of_a_gallery_item_is_itself():
    h = torch.randn(20, 8)
    idx, sim = nearest_neighbours(h[:5], h, k=3)
    assert idx.shape == sim.shape == (5, 3)
    assert idx[:, 0].tolist() == [0, 1, 2, 3, 4]
    torch.testing.assert_close(sim[:, 0], torch.ones(5))
    assert (sim[:, :-1] >= sim[:, 1:]).all()  # most similar first


def test_exclude_self_drops_the_query():
    h = torch.randn(20, 8)
    idx, _ = nearest_neighbours(h[:5], h, k=3, exclude_self=True)
    assert all(i not in row for i, row in enumerate(idx.tolist()))


def _neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """The k nearest other rows of every row of x [n, d], by Euclidean distance: [n, k]."""
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1)[:, :k]


@pytest.mark.slow  # the first UMAP call compiles umap-learn's numba code: 10-50 s, not the data
def test_umap_keeps_each_points_nearest_neighbours_and_the_groups_apart():
    # three well-separated groups of 20 points in 8-D, each spread along its own line
    g = torch.Generator().manual_seed(0)
    centres = 6.0 * torch.randn(3, 8, generator=g)
    along = 4.0 * torch.rand(60, 1, generator=g)
    directions = torch.randn(3, 8, generator=g)
    group = torch.arange(60) % 3
    h = centres[group] + along * directions[group] + 0.3 * torch.randn(60, 8, generator=g)
    e = umap_embedding(h, n_neighbors=5, random_state=0)
    assert e.shape == (60, 2) and np.isfinite(e).all()
    x = h.numpy()
    before = _neighbours((x - x.mean(0)) / x.std(0), 5)  # UMAP sees the standardised h
    after = _neighbours(e, 5)
    kept = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(before, after)])
    assert kept > 0.6  # most of every point's 5 neighbours (0.83 here; random points: 0.08)
    assert (group.numpy()[after] == group.numpy()[:, None]).all()  # the groups stay apart


def test_plot_umap_draws_every_galaxy_once_with_named_classes_and_grey_not_applicable():
    x, labels = blobs(40)
    e = np.random.default_rng(0).normal(size=(40, 2))
    fig = plot_umap(e, labels, "edge_on")  # with -1 entries
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "n/a" and set(legend[1:]) <= {"face-on", "edge-on"}
    assert sum(len(c.get_offsets()) for c in ax.collections) == 40
    fig = plot_umap(e, labels, "redshift")  # floats: one scatter with a colour bar
    assert len(fig.axes) == 2 and len(fig.axes[0].collections[0].get_offsets()) == 40


def test_plot_neighbours_shows_each_query_then_its_neighbours_with_similarities():
    x, labels = blobs(40)
    h = embed(tiny_model(), x)
    idx, sim = nearest_neighbours(h[:2], h, k=3)
    fig = plot_neighbours(x[:2], x, idx, sim, labels=labels)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "query" and titles[4] == "query"
    assert titles[1].startswith(f"{float(sim[0, 0]):.2f}")


def test_plot_umap_names_the_available_labels():
    with pytest.raises(ValueError, match="redshift"):
        plot_umap(np.zeros((3, 2)), {"redshift": torch.zeros(3)}, "colour")


def test_evaluate_has_no_command_line_and_never_loads_the_study():
    """The study's command is the study's: evaluate points at it and does not import it."""
    code = "import sys, phys555_cl.evaluate; print('phys555_cl.study' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert imported.stdout.strip() == "False", imported.stderr[-2000:]
    old = subprocess.run([sys.executable, "-m", "phys555_cl.evaluate", "model.pt"],
                         capture_output=True, text=True)
    assert old.returncode == 1 and "python -m phys555_cl.study CHECKPOINT" in old.stderr
