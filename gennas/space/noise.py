"""The discrete noise process over edge ops, shared by the generator and the predictor.

D3PM with a marginal prior: ``q(x_t | x_0) = abar(t) * onehot(x_0) + (1 - abar(t)) * m``,
where ``m`` is a distribution over ops (uniform by default, or the training set's op
marginals) and ``abar`` follows the cosine schedule. ``m`` is one distribution shared by
every variable (K,), or one per variable (V, K) where variables take different numbers of
values (DARTS): a value a variable lacks has probability 0 there, so noise never makes it. ``t`` is continuous in [0, 1]:
``t = 0`` is a clean cell, ``t = 1`` pure prior noise. The predictor is trained on the
same process so its guidance gradients are meaningful on noisy graphs.
"""

from __future__ import annotations

import math

import torch


class OpNoiseSchedule:
    def __init__(self, num_ops: int, prior: torch.Tensor | None = None, offset: float = 0.008) -> None:
        self.num_ops = num_ops
        self.prior = (prior if prior is not None else torch.full((num_ops,), 1.0 / num_ops)).float()
        sums = self.prior.sum(-1)
        if self.prior.dim() not in (1, 2) or self.prior.shape[-1] != num_ops or (self.prior < 0).any() \
                or (sums - 1).abs().max() > 1e-5:
            raise ValueError("prior must be a probability vector over the ops (K,), or one per variable (V, K)")
        self.offset = offset

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """Probability mass kept on the clean op at time ``t`` (1 at t=0, 0 at t=1)."""
        s = self.offset
        f = torch.cos((t.clamp(0, 1) + s) / (1 + s) * math.pi / 2) ** 2
        return (f / math.cos(s / (1 + s) * math.pi / 2) ** 2).clamp(0, 1)

    def marginal(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_0)`` for one-hot (or soft) ``x0`` of shape (B, V, K) and times ``t`` (B,)."""
        a = self.alpha_bar(t).view(-1, 1, 1)
        return a * x0 + (1 - a) * self.prior.to(x0.device)

    def sample(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A one-hot draw from ``q(x_t | x_0)``."""
        probs = self.marginal(x0, t)
        flat = probs.reshape(-1, self.num_ops)
        idx = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
        return torch.nn.functional.one_hot(idx, self.num_ops).to(probs.dtype)
