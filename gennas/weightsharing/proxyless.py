"""ProxylessNAS (Cai et al., 2019): binary gates, path-level binarisation, and a measured latency loss.

Every step keeps one path per edge in memory instead of |ops|. The weight step samples
one op per edge from p = softmax(α) and runs only it. The α step samples two distinct ops
per edge (the paper's memory-saving estimator), runs the first with gate g = 1 and the
second with g = 0 (so its output is computed but contributes nothing), and turns the gate
gradients into α gradients with BinaryConnect's rule over the pair S_e,

    ∂L/∂α_ei = Σ_{j∈S_e} ∂L/∂g_ej · p̃_ej (δ_ij − p̃_ei),   p̃_e = softmax(α_e restricted to S_e),

obtained by differentiating the surrogate Σ_e Σ_{j∈S_e} sg(∂L/∂g_ej) · p̃_ej. After the
update the pair's α is shifted so that its total probability mass is what it was, as the
paper does, so the ops not sampled keep their probabilities.

The latency loss is λ · E[LAT] / LAT_max with E[LAT] = Σ_e Σ_k p_ek · lat_k, differentiable
in α directly; lat_k is op k's batch-1 forward time on one edge of every search cell
(each stage's channels and resolution), measured on this machine's CPU when the supernet
is built (once per process and shape; a checkpoint keeps the table it was searched with).
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from gennas.nn.network import NetworkConfig
from gennas.nn.ops import make_op
from gennas.space.space import CellSpace
from gennas.weightsharing.mixed import MixedOp, SuperNetwork

#: Timed forward passes per (op, channels, size), after warm-up ones; the median is kept.
REPEATS = 15
_LATENCY_MS: dict[tuple[str, int, int], float] = {}


def op_latency_ms(name: str, channels: int, size: int) -> float:
    """Median CPU time (ms) of one batch-1 forward of op ``name`` on (1, channels, size, size); 0 for ``none``."""
    if name == "none":
        return 0.0
    key = (name, channels, size)
    if key not in _LATENCY_MS:
        module = make_op(name, channels).eval()
        x = torch.randn(1, channels, size, size)
        times = []
        with torch.no_grad():
            for i in range(REPEATS + 3):
                tic = time.perf_counter()
                module(x)
                if i >= 3:
                    times.append(1000.0 * (time.perf_counter() - tic))
        _LATENCY_MS[key] = statistics.median(times)
    return _LATENCY_MS[key]


def latency_table(space: CellSpace, config: NetworkConfig) -> torch.Tensor:
    """lat_k: op k on one edge of every search cell, summed over the cells (shape (|ops|,), ms)."""
    sizes = [config.image_size]
    for _ in range(2):
        sizes.append(math.ceil(sizes[-1] / 2))  # each reduction: 3x3 conv, stride 2, padding 1
    return torch.tensor([sum(config.cells_per_stage * op_latency_ms(name, c, s)
                             for c, s in zip(config.stage_channels, sizes)) for name in space.ops])


class GatedMixedOp(MixedOp):
    """A :class:`MixedOp` that can also run a pair of ops: Σ_{k∈pair} g_k·op_k(x) (the gates carry the gradient)."""

    def forward(self, x: torch.Tensor, weights: torch.Tensor, chosen: int | tuple[int, ...] | None = None
                ) -> torch.Tensor:
        if not isinstance(chosen, tuple):
            return super().forward(x, weights, chosen)
        terms = [weights[k] * (x.new_zeros(x.shape) if self.names[k] == "none" else self.candidates[self.names[k]](x))
                 for k in chosen]
        return sum(terms[1:], terms[0])


class GatedSuperNetwork(SuperNetwork):
    """The supernet with gated edges and its measured latency table (a buffer: checkpointed with the weights)."""

    def __init__(self, space: CellSpace, config: NetworkConfig, mean: tuple[float, ...], std: tuple[float, ...]
                 ) -> None:
        super().__init__(space, config, mean, std, op_factory=GatedMixedOp)
        self.register_buffer("op_latency", latency_table(space, config))


def sample_path(alpha: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """The weight step's binarised path: one op per edge drawn from softmax(α); (one-hot, indices)."""
    index = torch.multinomial(torch.softmax(alpha.detach(), dim=-1), 1, generator=generator).squeeze(-1)
    return torch.zeros_like(alpha).scatter_(-1, index.unsqueeze(-1), 1.0), index.tolist()


def sample_pairs(alpha: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Two distinct ops per edge drawn from softmax(α) (the first is the active one); shape (E, 2)."""
    return torch.multinomial(torch.softmax(alpha.detach(), dim=-1), 2, replacement=False, generator=generator)


def pair_surrogate(alpha: torch.Tensor, pairs: torch.Tensor, gate_grad: torch.Tensor) -> torch.Tensor:
    """Σ_e Σ_{j∈S_e} sg(∂L/∂g_ej) · p̃_ej, whose α gradient is BinaryConnect's over each pair.

    Shapes: alpha (E, |ops|), pairs (E, 2), gate_grad (E, |ops|) -> a scalar.
    """
    restricted = torch.softmax(alpha.gather(-1, pairs), dim=-1)
    return (gate_grad.detach().gather(-1, pairs) * restricted).sum()


def expected_latency(alpha: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
    """E[LAT] / LAT_max = Σ_e Σ_k softmax(α)_ek lat_k / (E · max_k lat_k), in [0, 1]."""
    return (torch.softmax(alpha, dim=-1) * latency).sum() / (alpha.shape[0] * latency.max().clamp(min=1e-9))


@torch.no_grad()
def keep_pair_mass(alpha: torch.Tensor, before: torch.Tensor, pairs: torch.Tensor) -> None:
    """Shift each pair's updated α so that log Σ_{j∈S_e} exp α_ej is what it was before the update."""
    old = torch.logsumexp(before.gather(-1, pairs), dim=-1, keepdim=True)
    new = torch.logsumexp(alpha.gather(-1, pairs), dim=-1, keepdim=True)
    alpha.scatter_(-1, pairs, alpha.gather(-1, pairs) + (old - new))
