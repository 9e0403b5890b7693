"""GDAS (Dong & Yang, 2019): one op per edge, sampled by Gumbel-max, trained through the softmax.

The forward pass uses a hard one-hot per edge, so only the sampled op is computed —
GDAS's whole point: a search step costs about one discrete cell, not |ops| of them. The
backward pass uses the straight-through trick ``one_hot − p.detach() + p`` with
``p = softmax((log_softmax(α) + g) / τ)``, giving α the gradient of the relaxed
softmax. τ is annealed linearly from ``tau_max`` to ``tau_min`` over the epochs.
"""

from __future__ import annotations

import torch


def temperature(epoch: int, epochs: int, tau_max: float, tau_min: float) -> float:
    """Linear annealing: ``tau_max`` in the first epoch, ``tau_min`` in the last."""
    if epochs <= 1:
        return tau_max
    return tau_max - (tau_max - tau_min) * epoch / (epochs - 1)


def gumbel_softmax(alpha: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """The relaxed Gumbel-softmax sample p = softmax((log_softmax(α) + g) / τ), g ~ Gumbel(0, 1) i.i.d.

    Shapes: alpha (E, |ops|) -> p (E, |ops|), rows on the simplex, differentiable in α.
    Resamples in the (rare) event that the noise makes a row non-finite, as the reference
    implementation does, so one unlucky draw cannot poison α with NaN.
    """
    log_p = torch.log_softmax(alpha, dim=-1)
    for _ in range(100):
        gumbel = -torch.empty_like(alpha).exponential_(generator=generator).log()
        probs = torch.softmax((log_p + gumbel) / tau, dim=-1)
        if torch.isfinite(probs).all() and torch.isfinite(gumbel).all():
            break
    return probs


def gumbel_hard_weights(alpha: torch.Tensor, tau: float, generator: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """Straight-through one-hot edge weights and the sampled op index of each edge (the sample of :func:`gumbel_softmax`)."""
    probs = gumbel_softmax(alpha, tau, generator)
    index = probs.argmax(dim=-1)
    one_hot = torch.zeros_like(probs).scatter_(-1, index.unsqueeze(-1), 1.0)
    return one_hot - probs.detach() + probs, index.tolist()


def argmax_weights(alpha: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Deterministic GDAS inference: the most likely op of each edge (``none`` included)."""
    index = alpha.argmax(dim=-1)
    return torch.zeros_like(alpha).scatter_(-1, index.unsqueeze(-1), 1.0), index.tolist()
