"""Weight-sharing search on the DARTS space: the paper's search network (``cnn/model_search.py``) and its derivation.

Each cell has a mixed op of DARTS' 8 primitives on every edge (node k, input i < k + 2):
14 edges per cell. α has one row per edge of the normal cell, then one per edge of the
reduction cell (28 x 8), shared by every cell of its type, as in DARTS. Preprocessing
and the ops' BN have no affine parameters (``affine=False``, as the search code). A node
is the sum of its incoming mixed edges; the cell concatenates its 4 nodes.

The interface is the one-cell supernet's (:class:`~gennas.weightsharing.mixed.SuperNetwork`):
``model(x, weights, chosen)`` with ``weights`` (E, |ops|) and, for one-path methods (GDAS),
the chosen op per edge, so DARTS, GDAS and the methods that only change how α becomes
weights (SNAS, DrNAS, SDARTS) run through the same loop. The genotype is derived as DARTS
derives it: per node the two inputs whose strongest non-``none`` op weighs most, each with
that op.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gennas.nn.darts_network import DartsNetworkConfig, STEM_MULTIPLIER, cell_plan
from gennas.nn.darts_ops import FactorizedReduce, ReLUConvBN, make_darts_op
from gennas.space.darts import CELL_TYPES, DARTS_PRIMITIVES, DartsSpace
from gennas.space.genotype import Genotype
from gennas.train.trainer import Normalize
from gennas.weightsharing.mixed import MixedOp


def edge_labels(steps: int) -> list[str]:
    """α row labels: ``normal:2<-0`` is the edge from input 0 into node 2 of the normal cell."""
    return [f"{kind}:{k + 2}<-{i}" for kind in CELL_TYPES for k in range(steps) for i in range(k + 2)]


class DartsMixedOp(MixedOp):
    """Every DARTS primitive on one edge (stride 2 on a reduction cell's edges from its inputs)."""

    def __init__(self, ops: tuple[str, ...], channels: int, stride: int) -> None:
        nn.Module.__init__(self)
        self.names, self.stride = ops, stride
        # As DARTS' search code: ops without affine BN, pools followed by a (non-affine) BN.
        self.candidates = nn.ModuleDict({
            name: (nn.Sequential(make_darts_op(name, channels, stride), nn.BatchNorm2d(channels, affine=False))
                   if "pool" in name else make_darts_op(name, channels, stride, affine=False))
            for name in ops if name != "none"})


class DartsSearchCell(nn.Module):
    def __init__(self, steps: int, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction, self.steps = reduction, steps
        self.preprocess0 = (FactorizedReduce(c_pp, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.mixed = nn.ModuleList(DartsMixedOp(DARTS_PRIMITIVES, c, 2 if reduction and i < 2 else 1)
                                   for k in range(steps) for i in range(k + 2))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor, chosen: list[int] | None
                ) -> torch.Tensor:
        """Shapes: weights (14, 8) of this cell type; chosen: 14 op indices or None (dense)."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        edge = 0
        for _ in range(self.steps):
            total = None
            for i in range(len(states)):
                out = self.mixed[edge](states[i], weights[edge], None if chosen is None else chosen[edge])
                total = out if total is None else total + out
                edge += 1
            states.append(total)
        return torch.cat(states[-self.steps:], dim=1)


class DartsSearchNetwork(nn.Module):
    """DARTS' search network on a :class:`DartsNetworkConfig` skeleton, α (28, 8) shared per cell type."""

    def __init__(self, space: DartsSpace, config: DartsNetworkConfig, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> None:
        super().__init__()
        self.space, self.config = space, config
        self.normalize = Normalize(mean, std)
        c_stem = STEM_MULTIPLIER * config.channels
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        plan = cell_plan(config)
        self.cells = nn.ModuleList(DartsSearchCell(space.steps, *row) for row in plan)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * plan[-1][2], config.num_classes)
        self.edges_per_cell = sum(k + 2 for k in range(space.steps))
        self.alpha = nn.Parameter(1e-3 * torch.randn(2 * self.edges_per_cell, len(DARTS_PRIMITIVES)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p is not self.alpha]

    def running_layers(self) -> list[nn.Module]:
        return list(self.cells)

    def edge_scale(self) -> torch.Tensor | None:
        return None

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None, chosen: list[int] | None = None
                ) -> torch.Tensor:
        """Logits for [0, 1] images; ``weights`` (28, 8) default to softmax(α) (the DARTS mixture)."""
        if weights is None:
            weights = torch.softmax(self.alpha, dim=-1)
        e = self.edges_per_cell
        s0 = s1 = self.stem(self.normalize(x))
        for cell in self.cells:
            part = slice(e, 2 * e) if cell.reduction else slice(0, e)
            s0, s1 = s1, cell(s0, s1, weights[part], None if chosen is None else chosen[part])
        out = self.global_pooling(s1)
        return self.classifier(torch.flatten(out, 1))


def derive_genotype(alpha: np.ndarray, space: DartsSpace) -> Genotype:
    """DARTS' ``genotype()``: per node the two inputs with the strongest non-``none`` op, each with that op.

    ``alpha`` (28, 8) in :func:`edge_labels` order, columns DARTS' primitives; softmax is
    monotone per row, so α itself ranks as softmax(α) does within an edge, and DARTS compares
    edges by their softmax weights, which is what is computed here.
    """
    weights = np.exp(alpha - alpha.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    usable = [j for j, op in enumerate(DARTS_PRIMITIVES) if op in space.ops]
    cells, row = [], 0
    for _ in CELL_TYPES:
        pairs = []
        for k in range(space.steps):
            block = weights[row:row + k + 2][:, usable]
            strongest = sorted(range(k + 2), key=lambda i: -block[i].max())[:2]
            pairs += [(DARTS_PRIMITIVES[usable[int(block[i].argmax())]], i) for i in strongest]
            row += k + 2
        cells.append(tuple(pairs))
    return space.validate(Genotype(cells[0], space.concat, cells[1], space.concat))
