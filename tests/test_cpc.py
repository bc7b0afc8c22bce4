"""Contrastive Predictive Coding: shapes, causality, the InfoNCE prediction step and training.

The checks of notebook 07's exercises are specified in test_exercises_nb07.py and, for every
listed mistake, test_exercises_mistakes.py."""

import math

import pytest
import torch

from phys555_cl import cpc
from phys555_cl.lightcurves import LightCurves


def small_model(**kwargs):
    torch.manual_seed(0)
    options = {"in_channels": 2, "z_dim": 8, "c_dim": 6, "n_steps": 3, "strides": (2, 2)}
    return cpc.CPC(**{**options, **kwargs})


def loop_prediction_loss(z, c, W, k, temperature=1.0):
    """The definition, one prediction at a time: -log of the softmax over all B*L latents."""
    B, L, _ = z.shape
    keys = z.reshape(B * L, -1)
    losses = []
    for b in range(B):
        for t in range(L - k):
            scores = keys @ (W @ c[b, t]) / temperature
            losses.append(-(scores[b * L + t + k] - torch.logsumexp(scores, dim=0)))
    return torch.stack(losses).mean()


def test_encoder_gives_one_latent_per_window():
    model = small_model()
    z, c = model(torch.randn(5, 2, 32))
    assert z.shape == (5, 8, 8) and c.shape == (5, 8, 6)  # 32 samples / window 4


@pytest.mark.parametrize("strides", [(4, 3, 2), (3, 3), (5, 2), (2, 2, 2)])
def test_any_strides_give_exactly_T_over_the_window_latents(strides):
    encoder = cpc.WindowEncoder(2, dim=4, hidden=4, strides=strides)
    assert encoder(torch.randn(1, 2, 7 * encoder.window)).shape == (1, 7, 4)


@pytest.mark.parametrize("strides", [(4, 3, 2), (2, 2), (3,)])
def test_z_t_and_c_t_depend_on_no_sample_after_window_t(strides):
    model = cpc.CPC(in_channels=2, z_dim=8, c_dim=6, n_steps=2, strides=strides)
    window = model.encoder.window
    x = torch.randn(2, 2, 6 * window, requires_grad=True)
    z, c = model(x)
    for t in range(6):
        for out in (z[:, t].sum(), c[:, t].sum()):
            (grad,) = torch.autograd.grad(out, x, retain_graph=True)
            assert grad[:, :, (t + 1) * window:].abs().sum() == 0, f"window {t} sees the future"
            assert grad[:, :, t * window:(t + 1) * window].abs().max() > 0  # and sees its own


def test_the_default_model_is_causal_for_the_light_curves_of_notebook_07():
    model = cpc.CPC()
    x = torch.randn(1, 2, 20 * model.encoder.window)
    later = x.clone()
    later[:, :, 10 * model.encoder.window:] += 5.0  # change windows 10.. only
    z, c = model(x)
    z2, c2 = model(later)
    assert torch.equal(z[:, :10], z2[:, :10]) and torch.equal(c[:, :10], c2[:, :10])
    assert not torch.allclose(z[:, 10:], z2[:, 10:])


def test_a_sequence_is_encoded_independently_of_the_rest_of_the_batch():
    model = small_model()
    x = torch.randn(4, 2, 32)
    assert torch.allclose(model(x)[1][2], model(x[2:3])[1][0], atol=1e-6)


@pytest.mark.parametrize("k, temperature", [(1, 1.0), (2, 0.5), (3, 2.0)])
def test_prediction_loss_matches_the_loop_definition(k, temperature):
    g = torch.Generator().manual_seed(k)
    z, c = torch.randn(3, 6, 4, generator=g), torch.randn(3, 6, 5, generator=g)
    W = torch.randn(4, 5, generator=g)
    got = cpc.cpc_prediction_loss(z, c, W, k, temperature=temperature)
    assert torch.allclose(got, loop_prediction_loss(z, c, W, k, temperature), atol=1e-5)


def test_prediction_loss_gradients_pass_gradcheck():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    W = torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, c, W: cpc.cpc_prediction_loss(z, c, W, 2), (z, c, W))


def test_model_loss_is_the_mean_of_the_per_step_losses():
    model = small_model()
    x = torch.randn(4, 2, 32)
    loss, per_step = model.loss(x)
    z, c = model(x)
    expected = [cpc.cpc_prediction_loss(z, c, w.weight, k)
                for k, w in enumerate(model.predictors, start=1)]
    assert per_step.shape == (3,)
    assert torch.allclose(per_step, torch.stack(expected).detach(), atol=1e-6)
    assert torch.allclose(loss, per_step.mean(), atol=1e-6)


def test_untrained_model_scores_near_chance():
    model = small_model()
    _, per_step = model.loss(torch.randn(8, 2, 32))
    assert (per_step - math.log(8 * 8)).abs().max() < 1.0


def test_a_few_training_steps_lower_the_loss():
    data = LightCurves(64, seed=0, n_samples=128)
    model = small_model(z_dim=32, c_dim=32, strides=(4, 2))
    history = cpc.train_cpc(model, data, epochs=12, batch_size=32, lr=1e-2, device="cpu",
                            progress=False)
    assert len(history["loss"]) == 24 and len(history["step_losses"][0]) == 3
    assert history["epoch_loss"][-1] < history["epoch_loss"][0] - 0.2


def test_training_accepts_the_students_prediction_step():
    calls = []

    def step(z, c, W, k, temperature=1.0):
        calls.append(k)
        return cpc.cpc_prediction_loss(z, c, W, k, temperature=temperature)

    cpc.train_cpc(small_model(), torch.randn(8, 2, 32), epochs=1, batch_size=4, device="cpu",
                  prediction_loss=step, progress=False)
    assert calls == [1, 2, 3, 1, 2, 3]


def test_prediction_accuracy_and_scores_have_the_documented_shapes():
    model = small_model()
    x = torch.randn(4, 2, 32)
    assert cpc.prediction_scores(model, x, 2).shape == (4, 8, 4, 8)
    accuracy = cpc.prediction_accuracy(model, x)
    assert accuracy.shape == (3,) and ((accuracy >= 0) & (accuracy <= 1)).all()


def test_embed_returns_one_vector_per_sequence_for_both_poolings():
    model = small_model()
    x = torch.randn(10, 2, 32)
    last, mean = cpc.embed(model, x, batch_size=4), cpc.embed(model, x, pool="mean")
    assert last.shape == mean.shape == (10, 6)
    assert torch.allclose(last, model(x)[1][:, -1], atol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: m(torch.randn(2, 2, 30)), "multiple of the window"),
        (lambda m: cpc.cpc_prediction_loss(torch.randn(2, 5, 8), torch.randn(2, 5, 6),
                                           torch.randn(6, 8), 1), "W must have shape"),
        (lambda m: cpc.cpc_prediction_loss(torch.randn(2, 5, 8), torch.randn(2, 5, 6),
                                           torch.randn(8, 6), 5), "k must be"),
        (lambda m: m.loss(torch.randn(2, 2, 8)), "too few"),
        (lambda m: m.represent(torch.randn(2, 2, 32), pool="max"), "pool"),
        (lambda m: cpc.train_cpc(m, torch.randn(4, 2, 32), batch_size=1), "batch_size"),
    ],
)
def test_bad_inputs_raise_value_errors_that_say_what_to_do(call, match):
    with pytest.raises(ValueError, match=match):
        call(small_model())
