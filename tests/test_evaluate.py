"""Specification of phys555_cl.evaluate: embeddings, probes, label efficiency, UMAP, retrieval."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from phys555_cl.encoders import build_simclr  # noqa: E402
from phys555_cl.evaluate import (  # noqa: E402
    ResultTable,
    embed,
    knn_probe,
    label_efficiency,
    linear_probe,
    nearest_neighbours,
    plot_neighbours,
    plot_umap,
    raw_pixels,
    umap_embedding,
)


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


def test_raw_pixels_flattens_stretched_images():
    x, _ = blobs(4)
    assert raw_pixels(x).shape == (4, 3 * 16 * 16)


def test_label_efficiency_compares_simclr_supervised_and_random_init():
    x, labels = blobs(80)
    table = label_efficiency(tiny_model(), x, labels, fractions=(0.1, 1.0),
                             supervised_steps=2, progress=False)
    assert isinstance(table, ResultTable)
    methods = {(row["fraction"], row["method"]) for row in table}
    for f in (0.1, 1.0):
        for m in ("simclr + linear", "random init + linear", "supervised"):
            assert (f, m) in methods
    assert (1.0, "raw pixels + linear") in methods
    row = table[0]
    assert set(row) >= {"labels", "smooth_or_featured", "edge_on", "odd_feature",
                        "redshift_high", "mean"}
    assert all(0 <= r["mean"] <= 1 for r in table)
    assert str(table).splitlines()[0].startswith("| fraction | labels | method")


def test_label_efficiency_averages_over_random_subsets():
    x, labels = blobs(80)
    kw = dict(fractions=(0.1, 1.0), supervised_steps=0, raw_pixel_baseline=False,
              progress=False)
    one = label_efficiency(tiny_model(), x, labels, repeats=1, **kw)
    five = label_efficiency(tiny_model(), x, labels, repeats=5, **kw)
    rows = {(r["fraction"], r["method"]): r for r in five}
    assert rows[(0.1, "simclr + linear")]["subsets"] == 5
    assert rows[(1.0, "simclr + linear")]["subsets"] == 1  # all labels: one possible subset
    assert rows[(1.0, "simclr + linear")]["std"] == 0.0
    assert all(r["subsets"] == 1 and r["std"] == 0.0 for r in one)
    # with all labels there is nothing to redraw; with 10% the five subsets differ, so their
    # scores spread
    first = {(r["fraction"], r["method"]): r for r in one}
    assert rows[(1.0, "simclr + linear")]["mean"] == first[(1.0, "simclr + linear")]["mean"]
    assert rows[(0.1, "simclr + linear")]["std"] > 0
    assert "| subsets | std" in str(five).splitlines()[0]


def test_compare_pairs_methods_on_the_same_subsets():
    x, labels = blobs(80)
    table = label_efficiency(tiny_model(), x, labels, fractions=(0.1,), repeats=4,
                             supervised_steps=2, raw_pixel_baseline=False, progress=False)
    a = np.asarray(table.subset_means[(0.1, "simclr + linear")])
    b = np.asarray(table.subset_means[(0.1, "supervised")])
    c = table.compare("simclr + linear", "supervised", 0.1)
    assert c["subsets"] == 4 and c["wins"] == int((a > b).sum())
    assert c["difference"] == pytest.approx((a - b).mean())
    assert c["sem"] == pytest.approx((a - b).std(ddof=1) / 2)
    row = next(r for r in table if r["method"] == "supervised")
    assert row["mean"] == pytest.approx(b.mean())
    with pytest.raises(KeyError, match="methods"):
        table.compare("simclr + linear", "no such method", 0.1)


def test_label_efficiency_rejects_bad_repeats():
    x, labels = blobs(20)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="repeats"):
            label_efficiency(tiny_model(), x, labels, repeats=bad, supervised_steps=0)


def test_label_efficiency_rejects_bad_fractions():
    x, labels = blobs(20)
    with pytest.raises(ValueError, match="fractions"):
        label_efficiency(tiny_model(), x, labels, fractions=(0.0,), supervised_steps=0)


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


def test_umap_embedding_is_2d():
    # the first call compiles umap-learn's numba code: the slowest test of this file
    h = torch.randn(30, 6)
    e = umap_embedding(h, n_neighbors=5)
    assert e.shape == (30, 2) and np.isfinite(e).all()


def test_plots_return_figures():
    x, labels = blobs(40)
    h = embed(tiny_model(), x)
    e = np.random.default_rng(0).normal(size=(40, 2))
    fig = plot_umap(e, labels, "edge_on")  # with -1 entries
    assert fig.axes
    fig = plot_umap(e, labels, "redshift")
    assert fig.axes
    idx, sim = nearest_neighbours(h[:2], h, k=3)
    fig = plot_neighbours(x[:2], x, idx, sim, labels=labels)
    assert len(fig.axes) >= 8


def test_plot_umap_names_the_available_labels():
    with pytest.raises(ValueError, match="redshift"):
        plot_umap(np.zeros((3, 2)), {"redshift": torch.zeros(3)}, "colour")


@pytest.mark.parametrize("args, message", [
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--supervised-steps", "-5"], "--supervised-steps must be 0"),
])
def test_evaluate_cli_refuses_bad_numbers_before_any_work(args, message, capsys):
    from phys555_cl.evaluate import main

    with pytest.raises(SystemExit):
        main(["no_such_checkpoint.pt", *args])
    assert message in capsys.readouterr().err
