"""PC-DARTS (Xu et al., 2020): partial channel connections and edge normalisation.

Partial channels: on each edge only a fraction 1/K of the input channels goes through the
mixed op; the other (K−1)/K bypass it unchanged, and a channel shuffle interleaves the two
parts so that the next edge samples other channels:

    f_ij(x) = shuffle_K( [ Σ_k w_k · op_k(x[:, :C/K]) ,  x[:, C/K:] ] )

so a search step stores ~1/K of DARTS's mixed-op activations (the paper's point: a larger
batch fits in memory). Edge normalisation: every node weighs its incoming edges by
softmax(β) over those edges, node_i = Σ_{j<i} softmax_j(β_{·→i}) · f_ji(node_j), which
damps the fluctuation that partial sampling adds to α. In the cell spaces of gennas every
edge is kept in the derived cell (the op ``none`` is how an edge goes away), so β only
shapes the search, and the cell is derived from α alone.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from gennas.errors import GennasError
from gennas.nn.network import NetworkConfig
from gennas.space.cell import edge_list
from gennas.space.space import CellSpace
from gennas.weightsharing.mixed import MixedOp, SuperNetwork


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: split C into ``groups`` and interleave them.

    Shapes: x (B, C, H, W) with C divisible by ``groups`` -> (B, C, H, W); output channel
    g' · groups + g holds input channel g · (C / groups) + g'.
    """
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class PartialMixedOp(nn.Module):
    """A :class:`MixedOp` on the first C/K channels of the input; the rest pass by, then a shuffle."""

    def __init__(self, ops: tuple[str, ...], channels: int, k: int) -> None:
        super().__init__()
        if channels % k:
            raise GennasError(f"PC-DARTS needs every stage's channels divisible by partial_k={k}, got {channels}")
        self.k = k
        self.inner = MixedOp(ops, channels // k)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, chosen: int | None = None) -> torch.Tensor:
        """Shapes: x (B, C, H, W), weights (|ops|,) -> (B, C, H, W); the mixed op sees (B, C/K, H, W)."""
        part = x.shape[1] // self.k
        mixed = self.inner(x[:, :part], weights, chosen)
        return channel_shuffle(torch.cat([mixed, x[:, part:]], dim=1), self.k)


def edge_normalisation(beta: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """softmax of β over the edges into each node.

    Args:
        beta: shape (E,), one logit per edge in :func:`~gennas.space.cell.edge_list` order.
        n_nodes: nodes of the cell.

    Returns:
        shape (E,): edge j→i gets exp(β_ji) / Σ_{j'<i} exp(β_j'i) (a single incoming edge gets 1).
    """
    edges = edge_list(n_nodes)
    scale = torch.empty_like(beta)
    for i in range(1, n_nodes):
        into = [e for e, (_, dst) in enumerate(edges) if dst == i]
        scale[into] = torch.softmax(beta[into], dim=0)
    return scale


class PartialSuperNetwork(SuperNetwork):
    """The supernet with :class:`PartialMixedOp` edges and edge-normalisation logits β (shared by all cells)."""

    def __init__(self, space: CellSpace, config: NetworkConfig, mean: tuple[float, ...], std: tuple[float, ...],
                 k: int = 4) -> None:
        super().__init__(space, config, mean, std, op_factory=partial(PartialMixedOp, k=k))
        self.k = k
        self.beta = nn.Parameter(1e-3 * torch.randn(space.num_edges))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha, self.beta]

    def edge_scale(self) -> torch.Tensor:
        return edge_normalisation(self.beta, self.space.n_nodes)
