"""The geometry of an embedding on the unit sphere: alignment, uniformity and collapse.

NT-Xent compares embeddings by their cosine, so what matters is where the *normalised* embeddings
z / |z| sit on the unit sphere. Wang & Isola 2020 ("Understanding Contrastive Representation
Learning through Alignment and Uniformity on the Hypersphere", ICML, arXiv:2005.10242, section
4.1) measure two properties of them:

    alignment   = E_(x, x+) ||f(x) - f(x+)||^alpha                (alpha = 2)
                  how close the two views of a positive pair are: 0 when they coincide;
    uniformity  = log E_(x, y) exp(-t ||f(x) - f(y)||^2)          (t = 2)
                  how evenly the embeddings of *different* inputs spread over the sphere:
                  0 when all of them sit on one point, more negative the more they spread;

with f the normalised embedding, x+ a positive of x, and x, y two independent inputs. A loss
that only pulls positives together (alignment alone) is minimised by an encoder that sends
every input to the same point: a *collapsed* encoder, perfectly aligned and useless.

The third measure, `dimension_std`, is the standard deviation of each coordinate of the
normalised embedding over the inputs (Chen & He 2021, "Exploring Simple Siamese Representation
Learning", CVPR, arXiv:2011.10566, section 4.1): 0 in every coordinate when the embedding has
collapsed, about 1 / sqrt(D) when the embeddings spread like an isotropic Gaussian in D
dimensions.

Notebook 04 watches all three while a small encoder trains with alignment alone and with
NT-Xent; notebook 05 does the same for SimSiam with and without its stop-gradient.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

__all__ = ["alignment", "uniformity", "dimension_std"]


def _check_embeddings(name: str, z, min_rows: int = 1) -> None:
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"{name} must be a 2-D tensor [N, D] (one embedding per row), got {got}.")
    if z.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {z.shape[0]}.")


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}.")
    return float(value)


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Alignment of positive pairs (Wang & Isola 2020): the mean of ||u1_i - u2_i||^alpha.

    u = z / |z| are the normalised rows, so only the directions of the embeddings count. With
    the default alpha = 2, ||u1 - u2||^2 = 2 - 2 cos(z1, z2): 0 when the two views point the
    same way, 2 when they are orthogonal, 4 when they are opposite. With alpha = 2 this is also
    the "positives only" loss of notebook 04.

    Args:
        z1: [N, D] embeddings of the first view of N inputs.
        z2: [N, D] embeddings of the second view; z1[i], z2[i] are a positive pair.
        alpha: the power alpha > 0.

    Returns:
        A 0-d tensor (it keeps the gradient), between 0 and 2^alpha.
    """
    _check_embeddings("z1", z1)
    _check_embeddings("z2", z2)
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape (row i of one is the positive of row "
                         f"i of the other), got {tuple(z1.shape)} and {tuple(z2.shape)}.")
    alpha = _check_positive("alpha", alpha)
    squared = (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).pow(2).sum(dim=1)
    if alpha == 2.0:
        return squared.mean()
    return squared.clamp_min(0).pow(alpha / 2).mean()


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity (Wang & Isola 2020): log of the mean Gaussian potential over pairs.

        uniformity = log( 1/P sum_{i<j} exp(-t ||u_i - u_j||^2) ),   u = z / |z|,

    over the P = N(N-1)/2 pairs of different rows (as Wang & Isola's code does with
    `torch.pdist`). Every term lies between exp(-4t) and 1, so the value lies between -4t and 0:
    exactly 0 when all rows point the same way (a collapsed embedding), lower the more evenly
    the rows spread over the sphere. Computed with `logsumexp` (no underflow) and from
    ||u_i - u_j||^2 = 2 - 2 u_i.u_j (a finite gradient even for identical rows).

    Args:
        z: [N, D] embeddings, N >= 2 (typically one view of N different inputs).
        t: the scale t > 0 of the Gaussian potential.

    Returns:
        A 0-d tensor (it keeps the gradient).
    """
    _check_embeddings("z", z, min_rows=2)
    t = _check_positive("t", t)
    u = F.normalize(z, dim=1)
    i, j = torch.triu_indices(len(u), len(u), offset=1, device=u.device)
    squared = (2 - 2 * (u[i] * u[j]).sum(dim=1)).clamp_min(0)
    return torch.logsumexp(-t * squared, dim=0) - math.log(squared.numel())


def dimension_std(z: torch.Tensor) -> torch.Tensor:
    """Standard deviation over the rows of each coordinate of the normalised embedding z / |z|.

    The collapse detector of Chen & He 2021 (section 4.1): every entry is 0 when all rows point
    the same way; for rows drawn from an isotropic Gaussian in D dimensions every entry is
    about 1 / sqrt(D). (The population standard deviation, dividing by N.)

    Args:
        z: [N, D] embeddings, N >= 1.

    Returns:
        [D] tensor, one standard deviation per coordinate (average it for one number).
    """
    _check_embeddings("z", z)
    return F.normalize(z, dim=1).std(dim=0, correction=0)
