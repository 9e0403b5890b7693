"""The weight-sharing supernet: the NB201 skeleton with every op on every edge.

One :class:`SuperNetwork` serves DARTS and GDAS. Each edge is a :class:`MixedOp`
holding one module per candidate op; the architecture parameters α (one row per edge,
one column per op) are shared by every cell, as in NAS-Bench-201's DARTS/GDAS, so the
derived cell is one cell of the space. The network takes [0, 1] images and normalises
internally (as every gennas model does) so attacks and evaluation code apply unchanged.

How an edge combines its ops is the only thing the methods disagree on:

* DARTS passes dense weights (softmax of α): every op runs, the edge is their weighted sum;
* GDAS passes a hard one-hot per edge plus the chosen index: only the chosen op runs, and
  the other ops contribute their (zero-valued) weight so that α still gets the softmax
  gradient of every op (the straight-through estimator of the GDAS paper).

``none`` is never built: it contributes zero (times its weight), which is what the
discrete cell does with a ``none`` edge.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from gennas.data import DatasetSplits
from gennas.errors import GennasError
from gennas.nn.network import NetworkConfig
from gennas.nn.ops import ResidualReduction, make_op
from gennas.space.cell import edge_list
from gennas.space.protocol import ArchSpace
from gennas.space.space import CellSpace
from gennas.train.trainer import Normalize


class MixedOp(nn.Module):
    """Every candidate op of one edge; ``ops`` is the space's vocabulary (column order of α)."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.names = ops
        self.stride = 1  # DARTS' reduction edges use 2 (gennas.weightsharing.darts_space)
        # ModuleDict keys cannot be reused across ops, and 'none' has no module at all.
        self.candidates = nn.ModuleDict({name: make_op(name, channels) for name in ops if name != "none"})

    def forward(self, x: torch.Tensor, weights: torch.Tensor, chosen: int | None = None) -> torch.Tensor:
        """Dense (``chosen=None``): Σ_k w_k·op_k(x). Sampled: w_c·op_c(x) + Σ_{k≠c} w_k (w_k is 0 in value)."""
        if chosen is None:
            terms = [weights[k] * self.candidates[name](x) for k, name in enumerate(self.names) if name != "none"]
            return sum(terms[1:], terms[0])
        total = x.new_zeros(())
        for k, name in enumerate(self.names):
            if k != chosen:
                total = total + weights[k]
        name = self.names[chosen]
        if name == "none":
            return x.new_zeros(x[:, :, ::self.stride, ::self.stride].shape) * weights[chosen] + total
        return self.candidates[name](x) * weights[chosen] + total


#: Builds one edge's mixed op from (the space's ops, channels): :class:`MixedOp`, or PC-DARTS's partial one.
OpFactory = Callable[[tuple[str, ...], int], nn.Module]


class SearchCell(nn.Module):
    """A cell of the family with a mixed op on every edge (nodes summed as in NB201)."""

    def __init__(self, n_nodes: int, ops: tuple[str, ...], channels: int, op_factory: OpFactory = MixedOp) -> None:
        super().__init__()
        self.n_nodes = n_nodes
        self.edges = edge_list(n_nodes)
        self.mixed = nn.ModuleList(op_factory(ops, channels) for _ in self.edges)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, chosen: list[int] | None = None,
                edge_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Node i = Σ_{j<i} s_ji · edge_ji(node j); ``edge_scale`` s (shape (E,)) defaults to 1 (PC-DARTS sets it)."""
        nodes = [x]
        edge = 0
        for i in range(1, self.n_nodes):
            total = None
            for j in range(i):
                out = self.mixed[edge](nodes[j], weights[edge], None if chosen is None else chosen[edge])
                if edge_scale is not None:
                    out = edge_scale[edge] * out
                total = out if total is None else total + out
                edge += 1
            nodes.append(total)
        return nodes[-1]


class SuperNetwork(nn.Module):
    """Stem → N search cells → reduction → N → reduction → N → head, with α shared by all cells."""

    def __init__(self, space: CellSpace, config: NetworkConfig, mean: tuple[float, ...], std: tuple[float, ...],
                 op_factory: OpFactory = MixedOp) -> None:
        super().__init__()
        self.space = space
        self.config = config
        c1, c2, c3 = config.stage_channels
        n = config.cells_per_stage
        self.normalize = Normalize(mean, std)
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1))
        stages = (c1, c2, c3)
        layers: list[nn.Module] = []
        for stage, channels in enumerate(stages):
            if stage:
                layers.append(ResidualReduction(stages[stage - 1], channels))
            layers += [SearchCell(space.n_nodes, space.ops, channels, op_factory) for _ in range(n)]
        self.layers = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c3), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c3, config.num_classes)
        # Small random α (as DARTS): near-uniform mixture, ties broken by the seed.
        self.alpha = nn.Parameter(1e-3 * torch.randn(space.num_edges, len(space.ops)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in (self.alpha, *self.arch_parameters())}  # α even where a method does not train it
        return [p for p in self.parameters() if id(p) not in arch]

    def running_layers(self) -> list[nn.Module]:
        """The layers a forward pass runs: all of them here (P-DARTS runs fewer cells in its early stages)."""
        return list(self.layers)

    def edge_scale(self) -> torch.Tensor | None:
        """Per-edge output scale of every cell; None (all ones) here, PC-DARTS's edge normalisation overrides it."""
        return None

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None, chosen: list[int] | None = None) -> torch.Tensor:
        """Logits for [0, 1] images; ``weights`` default to softmax(α) (the DARTS mixture)."""
        if weights is None:
            weights = torch.softmax(self.alpha, dim=-1)
        scale = self.edge_scale()
        h = self.stem(self.normalize(x))
        for layer in self.running_layers():
            h = layer(h, weights, chosen, scale) if isinstance(layer, SearchCell) else layer(h)
        h = self.pool(self.head(h))
        return self.classifier(torch.flatten(h, 1))


class FixedWeights(nn.Module):
    """The supernet under fixed edge weights, as a plain ``x -> logits`` model for evaluation code."""

    def __init__(self, model: SuperNetwork, weights: torch.Tensor, chosen: list[int] | None) -> None:
        super().__init__()
        self.model, self.weights, self.chosen = model, weights, chosen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.weights, self.chosen)


def build_supernet(space: "ArchSpace", splits: DatasetSplits, channels: int, cells_per_stage: int,
                   network: Callable[..., SuperNetwork] = SuperNetwork) -> SuperNetwork:
    """A supernet sized for ``splits`` (input channels, image size, classes); ``network`` a variant's class."""
    if all(op == "none" for op in space.ops):
        raise GennasError(f"space {space.name!r} has no op besides 'none': there is nothing to search")
    if channels < 1 or cells_per_stage < 1:
        raise GennasError(f"the supernet needs channels >= 1 and cells_per_stage >= 1, got {channels} and {cells_per_stage}")
    # The space's training skeleton at this size: NB201's C and N cells per stage, DARTS' C and layers.
    config = space.network_for_data(splits, channels, cells_per_stage)
    return space.search_network(network, config, splits.mean, splits.std)
