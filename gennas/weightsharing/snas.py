"""SNAS (Xie et al., 2019): a soft Gumbel-softmax forward under an annealed temperature, and a resource penalty.

Unlike GDAS (a hard one-hot forward, straight-through backward) every op runs and the edge
is the relaxed sample Z = softmax((log_softmax(α) + g) / τ), g ~ Gumbel(0, 1): as τ falls
the samples approach one-hot, so the supernet the weights see drifts from the mixture to
single child networks. τ decays exponentially, τ_e = τ_0 · (τ_E / τ_0)^(e / (E − 1)).

The resource penalty is SNAS's cost term on the sampled child, λ · mean_edges Σ_k Z_ek · c_k,
with c_k the parameter count of op k on an edge normalised to max_k c_k = 1 (``none`` and
the parameter-free ops cost 0); Z is reparameterised, so the penalty's gradient reaches α
through the same relaxation as the loss's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gennas.weightsharing.mixed import MixedOp


def exponential_temperature(epoch: int, epochs: int, tau_start: float, tau_end: float) -> float:
    """τ_0 · (τ_E / τ_0)^(e / (E − 1)): ``tau_start`` in the first epoch, ``tau_end`` in the last."""
    if epochs <= 1:
        return tau_start
    return tau_start * math.exp(math.log(tau_end / tau_start) * epoch / (epochs - 1))


def op_costs(model: nn.Module, ops: tuple[str, ...]) -> torch.Tensor:
    """Parameters of each op on the first edge of ``model``, divided by the largest (shape (|ops|,)).

    All edges of a stage share one shape, so the ratio is the same on every edge of the first
    stage and (convolutions scale as C²) nearly so on the others.
    """
    mixed = next(m for m in model.modules() if isinstance(m, MixedOp))
    counts = [sum(p.numel() for p in mixed.candidates[name].parameters()) if name != "none" else 0 for name in ops]
    top = max(counts) or 1
    device = next(model.parameters()).device
    return torch.tensor([c / top for c in counts], dtype=torch.float32, device=device)


def resource_penalty(weights: torch.Tensor, costs: torch.Tensor, scale: float) -> torch.Tensor:
    """λ · mean_e Σ_k Z_ek c_k.

    Shapes: weights (E, |ops|) (the relaxed sample), costs (|ops|,) -> a scalar.
    """
    return scale * (weights * costs).sum(dim=-1).mean()
