"""ENAS (Pham et al., 2018): an RNN controller samples one op per edge; REINFORCE on the shared weights' reward.

The controller is an LSTM cell run once per edge (edge order of
:func:`~gennas.space.cell.edge_list`): its input is a learned start token, then the
embedding of the op it chose on the previous edge; its output logits are squashed as in
the paper's code, ``2.5 · tanh(W h / 5)``, and an op is drawn from their softmax. It is
trained by REINFORCE on the validation accuracy R ∈ [0, 1] of the sampled cell with the
shared weights (no gradient reaches the supernet):

    L(θ) = −(R − b) · Σ_e log π_θ(o_e | o_<e) − λ_H · Σ_e H(π_θ(· | o_<e)),

with the moving-average baseline b ← 0.95·b + 0.05·R (a buffer, so it is checkpointed)
and the entropy bonus λ_H (1e-4 in NAS-Bench-201's ENAS). The shared weights are trained
on the paths the controller samples; the result is the best of sampled cells by the shared
weights (:mod:`gennas.weightsharing.oneshot`).
"""

from __future__ import annotations

import torch
from torch import nn

from gennas.nn.network import NetworkConfig
from gennas.space.space import CellSpace
from gennas.weightsharing.oneshot import SelectingSuperNetwork

#: The paper's logit squashing: TANH_CONSTANT · tanh(logits / TEMPERATURE).
TANH_CONSTANT = 2.5
TEMPERATURE = 5.0
BASELINE_DECAY = 0.95


class Controller(nn.Module):
    """An LSTM policy over the op of each edge in turn."""

    def __init__(self, n_edges: int, n_ops: int, hidden: int = 32) -> None:
        super().__init__()
        self.n_edges, self.n_ops = n_edges, n_ops
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embed = nn.Embedding(n_ops, hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.head = nn.Linear(hidden, n_ops)
        nn.init.uniform_(self.head.weight, -0.1, 0.1)
        self.register_buffer("baseline", torch.zeros(()))
        self.register_buffer("baseline_set", torch.zeros((), dtype=torch.bool))

    def _logits(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = self.cell(x, state)
        return TANH_CONSTANT * torch.tanh(self.head(h) / TEMPERATURE), (h, c)

    def sample(self, generator: torch.Generator | None = None, greedy: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One cell from the policy.

        Returns:
            (op indices (E,), Σ_e log π(o_e), Σ_e entropy, the conditional probabilities (E, |ops|)).
        """
        x, state = self.start, None
        ops, log_p, entropy, probs = [], [], [], []
        for _ in range(self.n_edges):
            logits, state = self._logits(x, state)
            p = torch.softmax(logits, dim=-1)
            op = p.argmax(-1) if greedy else torch.multinomial(p.detach(), 1, generator=generator).squeeze(-1)
            log_all = torch.log_softmax(logits, dim=-1)
            ops.append(op)
            log_p.append(log_all.gather(-1, op.unsqueeze(-1)).squeeze(-1))
            entropy.append(-(p * log_all).sum(-1))
            probs.append(p)
            x = self.embed(op)
        return torch.cat(ops), torch.cat(log_p).sum(), torch.cat(entropy).sum(), torch.cat(probs)

    def reinforce_loss(self, log_p: torch.Tensor, entropy: torch.Tensor, reward: float, entropy_weight: float
                       ) -> torch.Tensor:
        """−(R − b)·log π − λ_H·H, then b moves towards R (the first reward sets it)."""
        if not bool(self.baseline_set):
            self.baseline.fill_(reward)
            self.baseline_set.fill_(True)
        loss = -(reward - float(self.baseline)) * log_p - entropy_weight * entropy
        self.baseline.mul_(BASELINE_DECAY).add_((1 - BASELINE_DECAY) * reward)
        return loss


class ControlledSuperNetwork(SelectingSuperNetwork):
    """The selecting supernet with an ENAS controller; the controller's parameters are the architecture parameters."""

    def __init__(self, space: CellSpace, config: NetworkConfig, mean: tuple[float, ...], std: tuple[float, ...]
                 ) -> None:
        super().__init__(space, config, mean, std)
        self.controller = Controller(space.num_edges, len(space.ops))

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.controller.parameters())
