"""Specification of phys555_cl.losses: NT-Xent (SimCLR) and InfoNCE (CPC)."""

import math
import os
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from conftest import PortTaken, on_a_free_port

from phys555_cl import _info_nce_kernel, losses
from phys555_cl.losses import (
    InfoNCELoss,
    NTXentLoss,
    info_nce,
    info_nce_reference,
    nt_xent,
    nt_xent_reference,
    nt_xent_textbook,
)


def views(n, d, dtype=torch.float64, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_(requires_grad)
    z2 = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_(requires_grad)
    return z1, z2


# ---------------------------------------------------------------------------------------------
# the value is the lecture's formula
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, d, tau", [(1, 3, 0.5), (2, 4, 0.1), (5, 7, 1.0), (8, 16, 0.07),
                                       (13, 2, 0.5), (4, 1, 2.0)])
def test_nt_xent_equals_the_slide_loops_in_float64(n, d, tau):
    z1, z2 = views(n, d, seed=n * d)
    expected = nt_xent_reference(z1, z2, tau)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(expected.item(), rel=1e-13, abs=1e-13)


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_chunked_nt_xent_equals_the_slide_loops_in_float64(chunk):
    z1, z2 = views(6, 5, seed=1)
    expected = nt_xent_reference(z1, z2, 0.3).item()
    assert nt_xent(z1, z2, 0.3, chunk_size=chunk).item() == pytest.approx(expected, rel=1e-13)


def test_nt_xent_with_one_sample_is_zero_since_the_only_other_view_is_the_positive():
    z1, z2 = views(1, 8)
    assert nt_xent(z1, z2).item() == pytest.approx(0.0, abs=1e-15)
    assert nt_xent_reference(z1, z2).item() == pytest.approx(0.0, abs=1e-15)


def test_nt_xent_hand_computed_two_samples():
    # views 1, 2 of sample 1 along x; views 3, 4 of sample 2 along y; tau = 1
    # s(1,2) = 1, s(1,3) = s(1,4) = 0, so l(1,2) = -log(e / (e + 2)), the same for all four terms
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    z2 = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    expected = -math.log(math.e / (math.e + 2))
    assert nt_xent(z1, z2, 1.0).item() == pytest.approx(expected, rel=1e-14)
    assert nt_xent_reference(z1, z2, 1.0).item() == pytest.approx(expected, rel=1e-14)


def test_nt_xent_is_symmetric_in_the_two_views_and_invariant_to_the_sample_order():
    z1, z2 = views(7, 5)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    value = nt_xent(z1, z2, 0.2)
    assert nt_xent(z2, z1, 0.2).item() == pytest.approx(value.item(), rel=1e-13)
    assert nt_xent(z1[perm], z2[perm], 0.2).item() == pytest.approx(value.item(), rel=1e-13)


def test_nt_xent_ignores_the_length_of_the_embeddings():
    z1, z2 = views(5, 4)
    scaled = nt_xent(3.0 * z1, 0.5 * z2, 0.5)
    assert scaled.item() == pytest.approx(nt_xent(z1, z2, 0.5).item(), rel=1e-13)


@pytest.mark.parametrize("n, d, tau", [(1, 3, 0.5), (5, 7, 1.0), (9, 6, 0.5), (8, 16, 0.07)])
def test_the_textbook_four_lines_are_the_slide_loops(n, d, tau):
    z1, z2 = views(n, d, seed=n + d)
    expected = nt_xent_reference(z1, z2, tau).item()
    assert nt_xent_textbook(z1, z2, tau).item() == pytest.approx(expected, rel=1e-13, abs=1e-13)


def test_nt_xent_equals_the_textbook_four_lines_in_value_and_gradient():
    z1, z2 = views(9, 6, requires_grad=True)
    fast, textbook = nt_xent(z1, z2, 0.5), nt_xent_textbook(z1, z2, 0.5)
    assert fast.item() == pytest.approx(textbook.item(), rel=1e-13)
    for a, b in zip(torch.autograd.grad(fast, (z1, z2)), torch.autograd.grad(textbook, (z1, z2))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_nt_xent_module_gives_the_function_value_and_shows_its_settings():
    z1, z2 = views(4, 3)
    module = NTXentLoss(temperature=0.2, chunk_size=2)
    assert module(z1, z2).item() == pytest.approx(nt_xent(z1, z2, 0.2).item(), rel=1e-13)
    assert "temperature=0.2" in repr(module) and "chunk_size=2" in repr(module)


def test_nt_xent_returns_a_float32_scalar_for_float32_inputs():
    z1, z2 = views(4, 3, dtype=torch.float32)
    out = nt_xent(z1, z2)
    assert out.shape == () and out.dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_nt_xent_passes_gradcheck(chunk):
    z1, z2 = views(5, 4, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.3, chunk_size=chunk), (z1, z2))


def test_nt_xent_gradients_equal_the_slide_loops_gradients():
    z1, z2 = views(4, 3, requires_grad=True)
    g_fast = torch.autograd.grad(nt_xent(z1, z2, 0.4), (z1, z2))
    g_ref = torch.autograd.grad(nt_xent_reference(z1, z2, 0.4), (z1, z2))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_equals_full_in_value_and_gradients(chunk):
    z1, z2 = views(50, 8, dtype=torch.float32, requires_grad=True)
    full = nt_xent(z1, z2, 0.1)
    g_full = torch.autograd.grad(full, (z1, z2))
    chunked = nt_xent(z1, z2, 0.1, chunk_size=chunk)
    g_chunked = torch.autograd.grad(chunked, (z1, z2))
    torch.testing.assert_close(chunked, full, rtol=1e-6, atol=1e-6)
    for a, b in zip(g_chunked, g_full):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_backward_can_run_twice_with_retain_graph():
    z1, z2 = views(6, 3, requires_grad=True)
    loss = nt_xent(z1, z2)
    first = torch.autograd.grad(loss, z1, retain_graph=True)[0]
    second = torch.autograd.grad(loss, z1)[0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# half precision
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("chunk", [None, 8])
def test_half_precision_inputs_give_finite_float32_results_close_to_float32(dtype, chunk):
    z1, z2 = views(32, 16, dtype=torch.float32, seed=3)
    h1, h2 = z1.to(dtype).requires_grad_(), z2.to(dtype).requires_grad_()
    with torch.autocast("cpu", dtype=dtype):
        out = nt_xent(h1, h2, 0.1, chunk_size=chunk)
    out.backward()
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert h1.grad.dtype == dtype and torch.isfinite(h1.grad.float()).all()
    # the only error left is the rounding of the inputs to half precision
    reference = nt_xent(h1.detach().float(), h2.detach().float(), 0.1)
    assert out.item() == pytest.approx(reference.item(), rel=1e-5)
    assert out.item() == pytest.approx(nt_xent(z1, z2, 0.1).item(), rel=2e-2)


def test_small_temperature_does_not_overflow():
    z1, z2 = views(16, 4, dtype=torch.float32)
    out = nt_xent(z1, z2, 1e-3)
    assert torch.isfinite(out)
    assert out.item() == pytest.approx(nt_xent(z1.double(), z2.double(), 1e-3).item(), rel=1e-4)


@pytest.mark.parametrize("tau", [0.026, 0.05, 0.01])
def test_opposite_views_at_small_temperature_stay_finite_and_match_float64(tau):
    # every positive pair is as far apart as possible (cosine -1): the hardest case for the
    # log-sum-exp shift, where a logit sits 2 / tau below the largest possible one
    z1 = torch.randn(8, 4, generator=torch.Generator().manual_seed(9))
    for chunk in (None, 3):
        out = nt_xent(z1, -z1, tau, chunk_size=chunk)
        expected = nt_xent_reference(z1.double(), -z1.double(), tau).item()
        assert torch.isfinite(out) and out.item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# InfoNCE (the shared core, for CPC)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("chunk", [None, 2])
def test_info_nce_equals_its_loop_reference(normalize, chunk):
    g = torch.Generator().manual_seed(5)
    query = torch.randn(6, 4, generator=g, dtype=torch.float64)
    keys = torch.randn(9, 4, generator=g, dtype=torch.float64)
    targets = torch.tensor([0, 8, 3, 3, 1, 5])
    kw = dict(temperature=0.7, normalize=normalize)
    expected = info_nce_reference(query, keys, targets, **kw).item()
    assert info_nce(query, keys, targets, chunk_size=chunk, **kw).item() == pytest.approx(
        expected, rel=1e-13)


def test_info_nce_equals_cross_entropy_of_the_logits():
    g = torch.Generator().manual_seed(6)
    query, keys = torch.randn(5, 3, generator=g), torch.randn(7, 3, generator=g)
    targets = torch.tensor([6, 0, 2, 2, 4])
    expected = F.cross_entropy(query @ keys.T / 0.5, targets)
    torch.testing.assert_close(info_nce(query, keys, targets, temperature=0.5), expected)


def test_info_nce_exclude_self_leaves_key_i_out_of_row_i():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    targets = torch.tensor([1, 2, 3, 4, 0])
    logits = x @ x.T
    logits.fill_diagonal_(float("-inf"))
    expected = F.cross_entropy(logits, targets)
    for chunk in (None, 2):
        out = info_nce(x, x, targets, exclude_self=True, chunk_size=chunk)
        assert out.item() == pytest.approx(expected.item(), rel=1e-13)
    ref = info_nce_reference(x, x, targets, exclude_self=True)
    assert ref.item() == pytest.approx(expected.item(), rel=1e-13)


def test_nt_xent_is_info_nce_on_the_stacked_normalised_views():
    z1, z2 = views(6, 4)
    z = torch.cat([z1, z2])
    targets = torch.arange(12).roll(6)
    out = info_nce(z, z, targets, temperature=0.3, normalize=True, exclude_self=True)
    assert out.item() == pytest.approx(nt_xent(z1, z2, 0.3).item(), rel=1e-13)


@pytest.mark.parametrize("chunk", [None, 3])
def test_info_nce_passes_gradcheck_for_queries_and_keys(chunk):
    g = torch.Generator().manual_seed(8)
    query = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([5, 0, 0, 2])
    assert torch.autograd.gradcheck(
        lambda q, k: info_nce(q, k, targets, temperature=0.5, normalize=True, chunk_size=chunk),
        (query, keys))


def test_info_nce_computes_in_float32_for_half_inputs():
    query, keys = torch.randn(4, 8).bfloat16(), torch.randn(6, 8).bfloat16()
    out = info_nce(query, keys, torch.tensor([0, 1, 2, 3]))
    assert out.dtype == torch.float32
    expected = info_nce(query.float(), keys.float(), torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(out, expected)


def test_info_nce_module_gives_the_function_value():
    query, keys, targets = torch.randn(3, 4), torch.randn(5, 4), torch.tensor([4, 0, 1])
    module = InfoNCELoss(temperature=0.2, normalize=True)
    expected = info_nce(query, keys, targets, temperature=0.2, normalize=True)
    torch.testing.assert_close(module(query, keys, targets), expected)


# ---------------------------------------------------------------------------------------------
# bad arguments: ValueError naming the offending value
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("z1, z2, match", [
    (torch.randn(4), torch.randn(4), r"2-D.*\(4,\)"),
    (torch.randn(2, 3, 4), torch.randn(2, 3, 4), r"2-D.*\(2, 3, 4\)"),
    (torch.randn(4, 3), torch.randn(5, 3), r"same shape.*\(4, 3\).*\(5, 3\)"),
    (torch.randn(4, 3), torch.randn(4, 2), r"same shape.*\(4, 3\).*\(4, 2\)"),
    (torch.randn(0, 3), torch.randn(0, 3), r"N = 0"),
    (torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long), r"floating.*int64"),
])
def test_nt_xent_rejects_bad_shapes(z1, z2, match):
    with pytest.raises(ValueError, match=match):
        nt_xent(z1, z2)


@pytest.mark.parametrize("tau", [0, -0.5, float("nan"), float("inf"), "0.5", True])
def test_nt_xent_rejects_a_bad_temperature(tau):
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(2, 3), torch.randn(2, 3), tau)
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=tau)


@pytest.mark.parametrize("chunk", [0, -3, 2.5, "8", True])
def test_nt_xent_rejects_a_bad_chunk_size(chunk):
    with pytest.raises(ValueError, match=r"chunk_size.*" + str(chunk)[:2]):
        nt_xent(torch.randn(2, 3), torch.randn(2, 3), chunk_size=chunk)


@pytest.mark.parametrize("query, keys, targets, kwargs, match", [
    (torch.randn(3), torch.randn(5, 4), torch.zeros(3, dtype=torch.long), {}, r"query.*2-D"),
    (torch.randn(3, 4), torch.randn(5), torch.zeros(3, dtype=torch.long), {}, r"keys.*2-D"),
    (torch.randn(3, 4), torch.randn(5, 2), torch.zeros(3, dtype=torch.long), {},
     r"same embedding size.*\(3, 4\).*\(5, 2\)"),
    (torch.randn(3, 4), torch.randn(5, 4), torch.zeros(2, dtype=torch.long), {},
     r"shape \[M\] = \(3,\), got \(2,\)"),
    (torch.randn(3, 4), torch.randn(5, 4), torch.zeros(3), {}, r"integer.*float32"),
    (torch.randn(3, 4), torch.randn(5, 4), torch.tensor([0, 5, 1]), {}, r"\[0, 4\].*0 to 5"),
    (torch.randn(3, 4), torch.randn(5, 4), torch.tensor([0, -1, 1]), {}, r"-1 to 1"),
    (torch.randn(3, 4), torch.randn(5, 4), torch.tensor([1, 2, 3]), {"exclude_self": True},
     r"M=3.*K=5"),
    (torch.randn(3, 4), torch.randn(3, 4), torch.tensor([1, 1, 0]), {"exclude_self": True},
     r"own key.*\[1\]"),
    (torch.randn(3, 4), torch.randn(5, 4), torch.tensor([0, 1, 2]), {"temperature": 0.0},
     r"temperature.*0.0"),
    (torch.randn(3, 4), torch.randn(5, 4), torch.tensor([0, 1, 2]), {"chunk_size": 0},
     r"chunk_size.*0"),
])
def test_info_nce_rejects_bad_arguments(query, keys, targets, kwargs, match):
    with pytest.raises(ValueError, match=match):
        info_nce(query, keys, targets, **kwargs)


# ---------------------------------------------------------------------------------------------
# distributed: gather=True
# ---------------------------------------------------------------------------------------------


def test_gather_is_a_no_op_when_not_distributed():
    z1, z2 = views(5, 3)
    assert nt_xent(z1, z2, 0.5, gather=True).item() == nt_xent(z1, z2, 0.5).item()
    assert losses.gather_with_grad(z1)[0] is z1


def _run_workers(run, world: int, out_dir: str, deadline: float = 60.0):
    """``run(rank, world, port, out_dir)`` in ``world`` spawned processes, which meet on a free
    port; :class:`PortTaken` if rank 0 could not listen there (EADDRINUSE)."""

    def start(port):
        ctx = mp.start_processes(run, args=(world, port, out_dir), nprocs=world, join=False,
                                 start_method="spawn")
        t0 = time.monotonic()
        try:
            while not ctx.join(timeout=1.0):  # a failed process ends the others, then raises
                if time.monotonic() - t0 > deadline:
                    for p in ctx.processes:
                        p.kill()
                    pytest.fail(f"the {world} gloo processes did not finish within {deadline} s")
        except mp.ProcessRaisedException as err:
            if "EADDRINUSE" in str(err) or "address already in use" in str(err).lower():
                raise PortTaken(f"port {port}") from err
            raise

    on_a_free_port(start)


def test_ddp_with_gather_trains_exactly_like_one_process_on_the_global_batch(tmp_path):
    """Two gloo processes, DDP, gather=True: parameter gradients equal one process on the
    whole batch, for equal local batches (4 + 4) and for a smaller last batch (5 + 2)."""
    sys.path.insert(0, os.path.dirname(__file__))
    import _ddp_worker

    world = 2
    _run_workers(_ddp_worker.run, world, str(tmp_path))

    for case, sizes in _ddp_worker.CASES.items():
        expected = _ddp_worker.single_process_gradients(sizes)
        for rank in range(world):
            got = torch.load(tmp_path / f"{case}_rank{rank}.pt")
            for name, grad in expected["grads"].items():
                torch.testing.assert_close(got["grads"][name], grad, rtol=1e-9, atol=1e-12,
                                           msg=f"{case}, rank {rank}, gradient of {name}")
        mean_loss = sum(torch.load(tmp_path / f"{case}_rank{r}.pt")["loss"] for r in range(world))
        assert mean_loss / world == pytest.approx(expected["loss"], rel=1e-12)


# --------------------------------------------------------------------------------------------
# any finite scale: a diverged or collapsed network must not stall silently
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1e19, 1e30])
def test_nt_xent_in_float32_is_right_at_extreme_scales(scale):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    exact = nt_xent(z1.double(), z2.double(), 0.5)
    a, b = (scale * z1).requires_grad_(), (scale * z2).requires_grad_()
    loss = nt_xent(a, b, 0.5)
    loss.backward()
    assert abs(loss.item() - exact.item()) < 1e-5
    # the loss depends only on directions, so its gradient scales as 1 / scale
    r1, r2 = z1.double().requires_grad_(), z2.double().requires_grad_()
    nt_xent(r1, r2, 0.5).backward()
    torch.testing.assert_close(a.grad.double() * scale, r1.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b.grad.double() * scale, r2.grad, rtol=1e-4, atol=1e-6)


def test_nt_xent_with_a_zero_row_has_bounded_gradients():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    z1[3] = 0
    z1.requires_grad_(), z2.requires_grad_()
    loss = nt_xent(z1, z2, 0.5)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.equal(z1.grad[3], torch.zeros(16))  # no direction, no gradient
    assert z1.grad.abs().max() < 1 and z2.grad.abs().max() < 1


def test_nt_xent_zero_row_counts_as_similarity_zero_to_every_view():
    z1 = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    z2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # as in the textbook lines, where F.normalize leaves a zero row at 0: s = 0 with every view
    torch.testing.assert_close(nt_xent(z1, z2, 0.5), nt_xent_textbook(z1, z2, 0.5))


def test_info_nce_normalize_is_right_at_extreme_scales():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(6, 8, generator=g), torch.randn(10, 8, generator=g)
    targets = torch.arange(6)
    exact = info_nce(q.double(), k.double(), targets, temperature=0.2, normalize=True)
    for scale in (1e-30, 1e30):
        got = info_nce(scale * q, scale * k, targets, temperature=0.2, normalize=True)
        assert abs(got.item() - exact.item()) < 1e-5


# --------------------------------------------------------------------------------------------
# the private kernel behind nt_xent equals the textbook lines it replaces
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 3])
def test_the_fused_kernel_equals_the_textbook_lines_in_value_and_gradient(chunk):
    z1, z2 = views(6, 5, seed=3, requires_grad=True)
    z = _info_nce_kernel.unit_rows(torch.cat([z1, z2]))
    partner = torch.arange(12).roll(6)
    fused = _info_nce_kernel.fused_nt_xent(z, partner, 1 / 0.3, chunk, gather=False)
    textbook = nt_xent_textbook(z1, z2, 0.3)
    assert fused.item() == pytest.approx(textbook.item(), rel=1e-13)
    for a, b in zip(torch.autograd.grad(fused, (z1, z2)),
                    torch.autograd.grad(textbook, (z1, z2))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
