"""Contrastive Predictive Coding (CPC) for 1-D sequences such as light curves.

van den Oord, Li, Vinyals 2018, "Representation Learning with Contrastive Predictive Coding",
arXiv:1807.03748. Three pieces, read top to bottom:

    x  [B, C, T]  --g_enc-->  z_t  [B, L, D]    one latent per window of the sequence
    z_<=t         --g_ar--->  c_t  [B, L, H]    a GRU summarises the past
    c_t           --W_k---->  W_k c_t  [D]      a linear prediction of z_{t+k}, k = 1..K

and the prediction is scored with f_k(x_{t+k}, c_t) = z_{t+k}^T W_k c_t against the latents of
every window of every sequence in the batch (negatives from other sequences and other times).
The loss is InfoNCE, the same core as SimCLR's NT-Xent (`phys555_cl.losses.info_nce`): the query
is W_k c_t, the keys are all z's, the target is the index of z_{t+k}.

Example:
    >>> model = CPC(in_channels=2, n_steps=4, strides=(4, 3, 2))   # windows of 24 samples
    >>> x = torch.randn(8, 2, 504)
    >>> loss, per_step = model.loss(x)          # scalar, [4]
    >>> features = model.representation(x, pool="mean")  # [8, 64]: c_t averaged over windows
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from . import config
from .losses import info_nce

__all__ = [
    "CPC", "WindowEncoder", "cpc_prediction_loss", "embed", "prediction_accuracy",
    "prediction_scores", "train_cpc"
]

# --------------------------------------------------------------------------------------------
# The model.
# --------------------------------------------------------------------------------------------


class WindowEncoder(nn.Module):
    """g_enc: strided 1-D convolutions giving one latent vector per window of the sequence.

    Each layer is Conv1d(kernel 2s, stride s) + ReLU with the padding all on the left (s
    zeros), so output j of a layer sees its inputs up to s (j + 1) - 1 and never beyond: z_t
    depends on the samples of window t and of the windows before it, never on a later one
    (the context c_t must predict z_{t+1} from the past alone). A window is prod(strides)
    samples. No batch or group normalisation: statistics shared across the batch or the whole
    sequence would let z_t peek at other sequences or at the future, which the contrastive
    task would exploit.

    Args:
        in_channels: C, input channels. dim: D, size of z_t. hidden: conv width.
        strides: one stride per layer; the window length is their product.

    Shapes: x [B, C, T] -> z [B, L, D] with L = T // prod(strides).
    """

    def __init__(self, in_channels: int = 2, dim: int = 64, hidden: int = 64,
                 strides: tuple[int, ...] = (4, 3, 2)):
        super().__init__()
        if not strides or any(int(s) < 1 for s in strides):
            raise ValueError(f"strides must be a non-empty list of integers >= 1, got {strides}.")
        layers, channels = [], in_channels
        for s in strides:
            # s zeros on the left only: the output is exactly T / s long and causal
            layers += [nn.ConstantPad1d((s, 0), 0.0),
                       nn.Conv1d(channels, hidden, kernel_size=2 * s, stride=s),
                       nn.ReLU()]
            channels = hidden
        layers.append(nn.Conv1d(hidden, dim, kernel_size=1))
        self.net = nn.Sequential(*layers)
        self.window = math.prod(strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"WindowEncoder expects x of shape [B, C, T], got {tuple(x.shape)}.")
        if x.shape[-1] % self.window:
            raise ValueError(
                f"the sequence length T={x.shape[-1]} must be a multiple of the window "
                f"length {self.window} (the product of the strides)."
            )
        return self.net(x).transpose(1, 2)  # [B, L, D]


class CPC(nn.Module):
    """Contrastive Predictive Coding: encoder g_enc, GRU context g_ar, predictors W_1..W_K.

    Args:
        in_channels: C of the input sequences.
        z_dim: D, size of the window latents z_t.
        c_dim: H, size of the context c_t (the representation used downstream).
        n_steps: K, how many windows ahead to predict.
        strides: of the window encoder (window length = product).
        temperature: of the InfoNCE scores (1.0 as in the paper; the scale is learnt by W_k).

    Shapes: forward(x [B, C, T]) -> (z [B, L, D], c [B, L, H]).
    """

    def __init__(self, in_channels: int = 2, z_dim: int = 64, c_dim: int = 64,
                 n_steps: int = 4, strides: tuple[int, ...] = (4, 3, 2),
                 temperature: float = 1.0):
        super().__init__()
        if n_steps < 1:
            raise ValueError(f"n_steps (K, windows to predict ahead) must be >= 1, got {n_steps}.")
        self.encoder = WindowEncoder(in_channels, z_dim, hidden=z_dim, strides=strides)
        self.context = nn.GRU(z_dim, c_dim, batch_first=True)
        # W_k maps a context to a predicted latent k windows ahead; weight shape [D, H].
        self.predictors = nn.ModuleList(
            nn.Linear(c_dim, z_dim, bias=False) for _ in range(n_steps)
        )
        self.n_steps = n_steps
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        c, _ = self.context(z)
        return z, c

    def loss(self, x: torch.Tensor, prediction_loss: Callable | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """CPC loss of a batch: the mean over k = 1..K of the InfoNCE of predicting z_{t+k}.

        Args:
            x: [B, C, T] sequences.
            prediction_loss: the prediction step `(z, c, W, k) -> scalar`; default
                `cpc_prediction_loss` (notebook 07 plugs in the student's version).

        Returns:
            (loss scalar, per-step losses [K] detached).
        """
        z, c = self(x)
        if self.n_steps >= z.shape[1]:
            raise ValueError(
                f"the sequence has only L={z.shape[1]} windows, too few to predict "
                f"n_steps={self.n_steps} ahead; use longer sequences or a smaller K."
            )
        step = prediction_loss or cpc_prediction_loss
        losses = torch.stack([
            step(z, c, w.weight, k, temperature=self.temperature)
            for k, w in enumerate(self.predictors, start=1)
        ])
        return losses.mean(), losses.detach()

    @torch.no_grad()
    def representation(self, x: torch.Tensor, pool: str = "last") -> torch.Tensor:
        """The representation of whole sequences (the package's one name for it, as
        ``SimCLR.representation``): c at the last window ("last") or the mean of c_t over
        windows ("mean"). x [B, C, T] -> [B, H]. ``represent`` is the same method."""
        _, c = self(x)
        if pool == "last":
            return c[:, -1]
        if pool == "mean":
            return c.mean(dim=1)
        raise ValueError(f"pool must be 'last' or 'mean', got {pool!r}.")

    represent = representation  # the earlier name, kept for notebooks that call it


# --------------------------------------------------------------------------------------------
# The prediction step and its loss.
# --------------------------------------------------------------------------------------------


def cpc_prediction_loss(z: torch.Tensor, c: torch.Tensor, W: torch.Tensor, k: int, *,
                        temperature: float = 1.0) -> torch.Tensor:
    """InfoNCE of predicting the latent k windows ahead, with negatives from the whole batch.

    For every sequence b and every time t with t + k < L, the query is the prediction
    W_k c_{b,t}; the keys are the latents z of every window of every sequence in the batch
    (B*L candidates: other times of the same sequence and all times of the other sequences);
    the positive is z_{b,t+k}, row b*L + t + k of the flattened keys.

    Args:
        z: [B, L, D] window latents. c: [B, L, H] contexts.
        W: [D, H] the predictor W_k (the weight of nn.Linear(H, D)). k: steps ahead, 1 <= k < L.
        temperature: divides the scores.

    Returns:
        Scalar: mean over the B*(L-k) predictions of -log softmax(scores)[positive].
    """
    if z.dim() != 3 or c.dim() != 3 or z.shape[:2] != c.shape[:2]:
        raise ValueError(
            f"z and c must be [B, L, D] and [B, L, H] with the same B and L, got "
            f"{tuple(z.shape)} and {tuple(c.shape)}."
        )
    B, L, D = z.shape
    if W.shape != (D, c.shape[2]):
        raise ValueError(f"W must have shape [D, H] = [{D}, {c.shape[2]}], got {tuple(W.shape)}.")
    if not 1 <= k < L:
        raise ValueError(f"k must be between 1 and L-1 = {L - 1}, got {k}.")
    prediction = c[:, : L - k] @ W.T  # [B, L-k, D], W_k c_t for t = 0 .. L-k-1
    t = torch.arange(L - k, device=z.device)
    b = torch.arange(B, device=z.device)
    targets = (b[:, None] * L + t[None, :] + k).reshape(-1)  # where z_{b, t+k} sits in keys
    return info_nce(prediction.reshape(-1, D), z.reshape(B * L, D), targets,
                    temperature=temperature)


@torch.no_grad()
def prediction_scores(model: CPC, x: torch.Tensor, k: int) -> torch.Tensor:
    """Scores of every prediction W_k c_t against every window latent z_t' of the batch.

    Args:
        model: a CPC model. x: [B, C, T]. k: 1..K.

    Returns:
        [B, L, B, L] scores s[b, t, b', t'] = z_{b',t'} . W_k c_{b,t} / temperature (rows
        t >= L - k have no target inside the sequence but are scored all the same).
    """
    if not 1 <= k <= model.n_steps:
        raise ValueError(f"k must be between 1 and n_steps = {model.n_steps}, got {k}.")
    z, c = model(x)
    prediction = model.predictors[k - 1](c)  # [B, L, D]
    return torch.einsum("btd,psd->btps", prediction, z) / model.temperature


@torch.no_grad()
def prediction_accuracy(model: CPC, x: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy of each predictor: how often W_k c_t scores z_{t+k} highest among all
    B*L window latents of the batch. x [B, C, T] -> [K] (chance level 1 / (B*L))."""
    B = x.shape[0]
    accuracy = []
    for k in range(1, model.n_steps + 1):
        scores = prediction_scores(model, x, k)
        L = scores.shape[1]
        best = scores[:, : L - k].reshape(B, L - k, B * L).argmax(dim=-1)  # [B, L-k]
        target = torch.arange(B, device=best.device)[:, None] * L + torch.arange(
            k, L, device=best.device)[None, :]
        accuracy.append((best == target).float().mean())
    return torch.stack(accuracy).cpu()


# --------------------------------------------------------------------------------------------
# Training and features.
# --------------------------------------------------------------------------------------------


def _as_inputs(data) -> torch.Tensor:
    x = data.x if hasattr(data, "x") else data
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(
            "data must be a [N, C, T] tensor or a dataset with an `.x` tensor "
            f"(e.g. phys555_cl.lightcurves.LightCurves), got {type(data).__name__}."
        )
    return x


def train_cpc(model: CPC, data, *, epochs: int = 10, batch_size: int = 64, lr: float = 2e-3,
              weight_decay: float = 1e-4, device: torch.device | str | None = None,
              seed: int = 0, prediction_loss: Callable | None = None,
              progress: bool = True) -> dict[str, list]:
    """Train a CPC model with Adam; the loop is visible below and short on purpose.

    Args:
        model: the CPC model (moved to `device`, trained in place).
        data: [N, C, T] tensor, or a dataset with `.x` (LightCurves).
        epochs, batch_size, lr, weight_decay: the usual. Every batch is a set of whole
            sequences; its other windows are the negatives, so bigger batches = more negatives.
        device: default `config.device()` (CUDA, then MPS, then CPU).
        seed: for the shuffling.
        prediction_loss: optional replacement of `cpc_prediction_loss` (notebook exercise).
        progress: show a progress bar (tqdm.auto; `PHYS555_QUIET=1` hides it).

    Returns:
        history: {"loss": [per step], "step_losses": [per step, list of K], "epoch_loss": [...]}.
    """
    x = _as_inputs(data)
    if epochs < 1 or batch_size < 2:
        raise ValueError(
            f"need epochs >= 1 and batch_size >= 2 (other sequences are the negatives), "
            f"got epochs={epochs}, batch_size={batch_size}."
        )
    device = torch.device(device) if device is not None else config.device()
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    n_batches = max(1, len(x) // batch_size)  # drop the ragged last batch
    history = {"loss": [], "step_losses": [], "epoch_loss": []}
    quiet = {} if progress else {"disable": True}
    bar = config.progress(total=epochs * n_batches, desc="CPC", **quiet)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        epoch_loss = 0.0
        for i in range(n_batches):
            batch = x[order[i * batch_size:(i + 1) * batch_size]].to(device, non_blocking=True)
            loss, per_step = model.loss(batch, prediction_loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
            history["step_losses"].append(per_step.tolist())
            epoch_loss += loss.item() / n_batches
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        history["epoch_loss"].append(epoch_loss)
    bar.close()
    model.eval()
    return history


@torch.no_grad()
def embed(model: CPC, data, *, batch_size: int = 256, pool: str = "last",
          device: torch.device | str | None = None) -> torch.Tensor:
    """Representations of many sequences (see `CPC.represent`): [N, C, T] -> [N, H] on CPU."""
    x = _as_inputs(data)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).eval()
    return torch.cat([
        model.representation(x[i:i + batch_size].to(device), pool=pool).cpu()
        for i in range(0, len(x), batch_size)
    ])
