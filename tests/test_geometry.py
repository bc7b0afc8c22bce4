"""Specification of phys555_cl.geometry (alignment, uniformity, collapse) and phys555_cl.toy."""

import math

import matplotlib.pyplot as plt
import pytest
import torch

from phys555_cl.geometry import alignment, dimension_std, uniformity
from phys555_cl.losses import nt_xent
from phys555_cl.toy import ToyProblem, plot_geometry, toy_encoder, toy_predictor, train_toy

# ---------------------------------------------------------------------------------------------
# alignment
# ---------------------------------------------------------------------------------------------


def test_alignment_of_identical_views_is_zero():
    z = torch.randn(10, 5, generator=torch.Generator().manual_seed(0))
    assert alignment(z, z).item() == pytest.approx(0.0, abs=1e-6)
    assert alignment(z, 3.0 * z).item() == pytest.approx(0.0, abs=1e-6)  # only directions count


def test_alignment_hand_computed():
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert alignment(e1, e2).item() == pytest.approx(2.0)  # ||e1 - e2||^2
    assert alignment(e1, -e1).item() == pytest.approx(4.0)  # opposite views
    assert alignment(e1, e2, alpha=1).item() == pytest.approx(math.sqrt(2))
    # the mean over pairs: one identical pair (0) and one orthogonal pair (2)
    assert alignment(torch.cat([e1, e1]), torch.cat([e1, e2])).item() == pytest.approx(1.0)


def test_alignment_is_two_minus_twice_the_cosine():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(20, 8, generator=g), torch.randn(20, 8, generator=g)
    cos = torch.nn.functional.cosine_similarity(z1, z2)
    assert alignment(z1, z2).item() == pytest.approx((2 - 2 * cos).mean().item(), rel=1e-5)


def test_alignment_keeps_the_gradient_and_rejects_bad_input():
    z1 = torch.randn(4, 3, requires_grad=True)
    alignment(z1, torch.randn(4, 3)).backward()
    assert torch.isfinite(z1.grad).all()
    with pytest.raises(ValueError, match="same shape"):
        alignment(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="2-D"):
        alignment(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="alpha"):
        alignment(torch.randn(4, 3), torch.randn(4, 3), alpha=0)


# ---------------------------------------------------------------------------------------------
# uniformity
# ---------------------------------------------------------------------------------------------


def test_uniformity_of_collapsed_points_is_zero():
    z = torch.tensor([[1.0, 2.0, 3.0]]).repeat(50, 1)
    assert uniformity(z).item() == pytest.approx(0.0, abs=1e-6)


def test_uniformity_of_points_spread_on_the_sphere_is_lower_than_of_clustered_points():
    g = torch.Generator().manual_seed(2)
    spread = torch.randn(500, 3, generator=g)  # isotropic: uniform directions on the sphere
    clustered = torch.tensor([1.0, 0.0, 0.0]) + 0.1 * torch.randn(500, 3, generator=g)
    collapsed = torch.tensor([[1.0, 0.0, 0.0]]).repeat(500, 1)
    assert uniformity(spread) < uniformity(clustered) < uniformity(collapsed)


def test_uniformity_hand_computed():
    # two opposite points: one pair at squared distance 4, so log exp(-4t) = -4t
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert uniformity(z).item() == pytest.approx(-8.0)
    assert uniformity(z, t=0.5).item() == pytest.approx(-2.0)
    # the four corners of a square on the circle: 4 pairs at squared distance 2, 2 pairs at 4
    square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    expected = math.log((4 * math.exp(-4.0) + 2 * math.exp(-8.0)) / 6)
    assert uniformity(square).item() == pytest.approx(expected, rel=1e-5)


def test_uniformity_is_wang_and_isolas_pdist_formula():
    g = torch.Generator().manual_seed(3)
    z = torch.nn.functional.normalize(torch.randn(40, 6, generator=g, dtype=torch.float64), dim=1)
    reference = torch.pdist(z, p=2).pow(2).mul(-2).exp().mean().log()  # their Figure 6
    assert uniformity(z).item() == pytest.approx(reference.item(), rel=1e-9)


def test_uniformity_has_a_finite_gradient_even_when_collapsed():
    z = torch.tensor([[1.0, 1.0]]).repeat(6, 1).requires_grad_(True)
    uniformity(z).backward()
    assert torch.isfinite(z.grad).all()


def test_uniformity_rejects_fewer_than_two_rows_and_a_bad_t():
    with pytest.raises(ValueError, match="at least 2 rows"):
        uniformity(torch.randn(1, 3))
    with pytest.raises(ValueError, match="t must be"):
        uniformity(torch.randn(5, 3), t=-1)


# ---------------------------------------------------------------------------------------------
# dimension_std
# ---------------------------------------------------------------------------------------------


def test_dimension_std_of_collapsed_points_is_zero():
    z = torch.tensor([[0.3, -2.0, 1.0, 4.0]]).repeat(30, 1)
    assert torch.allclose(dimension_std(z), torch.zeros(4), atol=1e-7)


def test_dimension_std_of_an_isotropic_gaussian_is_about_one_over_sqrt_d():
    d = 64
    z = torch.randn(20000, d, generator=torch.Generator().manual_seed(4))
    std = dimension_std(z)
    assert std.shape == (d,)
    assert std.mean().item() == pytest.approx(1 / math.sqrt(d), rel=0.02)


def test_dimension_std_ignores_the_length_of_the_embeddings():
    z = torch.randn(100, 5, generator=torch.Generator().manual_seed(5))
    scales = torch.rand(100, 1, generator=torch.Generator().manual_seed(6)) + 0.5
    assert torch.allclose(dimension_std(z), dimension_std(scales * z), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# the toy problem
# ---------------------------------------------------------------------------------------------


def test_toy_problem_is_deterministic_and_has_the_documented_shapes():
    problem = ToyProblem()
    x, y = problem.sample(10, torch.Generator().manual_seed(0))
    x2, y2 = problem.sample(10, torch.Generator().manual_seed(0))
    assert x.shape == (10, 32) and y.shape == (10,) and y.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(y, y2)
    v1, v2 = problem.two_views(x, torch.Generator().manual_seed(1))
    assert v1.shape == v2.shape == x.shape and not torch.equal(v1, v2)
    with pytest.raises(ValueError, match=r"\[n, 32\]"):
        problem.two_views(torch.randn(4, 3))


def test_toy_encoders_with_the_same_seed_start_equal_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = toy_encoder(seed=3), toy_encoder(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert toy_predictor()(torch.randn(4, 16)).shape == (4, 16)


def test_alignment_alone_collapses_and_nt_xent_does_not():
    steps = 60
    align_only = train_toy(alignment, toy_encoder(), steps=steps)
    contrastive = train_toy(lambda z1, z2: nt_xent(z1, z2, temperature=0.5), toy_encoder(),
                            steps=steps)
    assert align_only["step"] == list(range(0, steps + 1, 10))
    assert len(align_only["loss"]) == steps and align_only["out_dim"] == 16
    # same start (same seed, same evaluation set), different ends
    assert align_only["std"][0] == pytest.approx(contrastive["std"][0])
    assert align_only["std"][-1] < 0.05 < 0.2 < contrastive["std"][-1]
    assert align_only["uniformity"][-1] > -0.2 > -2.0 > contrastive["uniformity"][-1]


def test_train_toy_restores_the_thread_count_and_trains_extra_modules():
    threads = torch.get_num_threads()
    encoder, predictor = toy_encoder(), toy_predictor()
    before = [p.clone() for p in predictor.parameters()]
    train_toy(lambda z1, z2: -torch.nn.functional.cosine_similarity(predictor(z1), z2).mean(),
              encoder, extra_modules=[predictor], steps=3)
    assert torch.get_num_threads() == threads
    assert any(not torch.equal(p, q) for p, q in zip(before, predictor.parameters()))


def test_plot_geometry_draws_three_panels_with_the_reference_line():
    history = train_toy(alignment, toy_encoder(), steps=2, record_every=1)
    fig = plot_geometry({"a": history, "b": history}, title="t")
    assert len(fig.axes) == 3
    assert len(fig.axes[2].lines) == 3  # two runs and 1/sqrt(D)
    plt.close(fig)
