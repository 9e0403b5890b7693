"""P-DARTS (Chen et al., 2019): progressive depth, op pruning between stages, skip dropout, a skip cap.

The search runs in S stages (equal shares of the epochs). Stage s runs the first
N_s = ⌈N·(s+1)/S⌉ search cells of each of the three network stages (N: the supernet's
``cells_per_stage``, the depth of the retrained cell's network), so the searched depth
grows towards the evaluated one. At the end of a stage each edge keeps only its
``|active| − ops_dropped`` ops with the largest α (always at least one op other than
``none``, and at least two), the pruned ops are no longer computed, and α is drawn anew
(with a fresh Adam state) for the next stage, as the paper's code rebuilds its network.

Dropout on the output of skip_connect in the supernet, at rate r_s = ``skip_dropout``·s/(S−1)
in stage s, decaying linearly to 0 over the stage, keeps the weights from favouring the
parameter-free skip, which trains fastest. The derived cell has at most ``skip_cap`` skip
edges: the excess skip edges with the lowest skip weight take their best other active op.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.space.space import CellSpace
from gennas.weightsharing.mixed import MixedOp, SearchCell, SuperNetwork


class PrunableMixedOp(MixedOp):
    """A :class:`MixedOp` whose pruned ops are skipped, with dropout on skip_connect's output."""

    def __init__(self, ops: tuple[str, ...], channels: int) -> None:
        super().__init__(ops, channels)
        self.register_buffer("active", torch.ones(len(ops), dtype=torch.bool))
        self.skip_dropout = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, chosen: int | None = None) -> torch.Tensor:
        """Σ over the active ops other than ``none`` of w_k·op_k(x) (skip_connect through dropout)."""
        terms = []
        for k, name in enumerate(self.names):
            if name == "none" or not bool(self.active[k]):
                continue
            out = self.candidates[name](x)
            terms.append(weights[k] * (self.skip_dropout(out) if name == "skip_connect" else out))
        return sum(terms[1:], terms[0])


class ProgressiveSuperNetwork(SuperNetwork):
    """The supernet of P-DARTS: prunable edges and a depth (search cells run per network stage)."""

    def __init__(self, space: CellSpace, config: NetworkConfig, mean: tuple[float, ...], std: tuple[float, ...]
                 ) -> None:
        super().__init__(space, config, mean, std, op_factory=PrunableMixedOp)
        self.register_buffer("depth", torch.tensor(config.cells_per_stage))

    def running_layers(self) -> list[nn.Module]:
        """Every reduction, and the first ``depth`` search cells after the stem and after each reduction."""
        out, run = [], 0
        for layer in self.layers:
            run = run + 1 if isinstance(layer, SearchCell) else 0
            if not isinstance(layer, SearchCell) or run <= int(self.depth):
                out.append(layer)
        return out

    def edge_ops(self, edge: int) -> list[PrunableMixedOp]:
        """Edge ``edge``'s mixed op in every cell (α and the pruning are shared by all cells)."""
        return [layer.mixed[edge] for layer in self.layers if isinstance(layer, SearchCell)]

    def active(self) -> torch.Tensor:
        """Shape (E, |ops|): which ops each edge still has."""
        return torch.stack([self.edge_ops(e)[0].active for e in range(self.space.num_edges)])

    def configure(self, depth: int, dropout: float) -> None:
        """Set the searched depth and the skip dropout rate of every edge."""
        self.depth.fill_(depth)
        for module in self.modules():
            if isinstance(module, PrunableMixedOp):
                module.skip_dropout.p = dropout

    def prune(self, keep: int) -> None:
        """Each edge keeps its ``keep`` active ops of largest α (at least one of them not ``none``)."""
        ops = self.space.ops
        for e, row in enumerate(self.alpha.detach().cpu().tolist()):
            active = self.edge_ops(e)[0].active.tolist()
            ranked = sorted((k for k in range(len(ops)) if active[k]), key=lambda k: -row[k])
            kept = ranked[:keep]
            if all(ops[k] == "none" for k in kept):
                kept[-1] = next(k for k in ranked if ops[k] != "none")
            mask = torch.zeros(len(ops), dtype=torch.bool, device=self.alpha.device)
            mask[kept] = True
            for op in self.edge_ops(e):
                op.active.copy_(mask)


def masked_softmax(alpha: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """softmax of α over each edge's active ops, 0 on the pruned (shapes (E, |ops|) -> (E, |ops|))."""
    return torch.softmax(alpha.masked_fill(~active, float("-inf")), dim=-1)


def stage_of(epoch: int, epochs: int, stages: int) -> tuple[int, int, int]:
    """(stage, its first epoch, its epoch count) of ``epoch``: stages split the epochs as evenly as they go."""
    stages = min(stages, epochs)
    bounds = [round(epochs * s / stages) for s in range(stages + 1)]
    stage = max(s for s in range(stages) if bounds[s] <= epoch)
    return stage, bounds[stage], bounds[stage + 1] - bounds[stage]


def stage_depth(stage: int, stages: int, cells_per_stage: int) -> int:
    """N_s = ⌈N·(s+1)/S⌉ search cells per network stage."""
    return max(1, math.ceil(cells_per_stage * (stage + 1) / stages))


def capped_cell(probabilities: torch.Tensor, space: CellSpace, cap: int) -> Cell:
    """Argmax over the non-``none`` ops with positive weight, then at most ``cap`` skip_connect edges.

    Args:
        probabilities: shape (E, |ops|), 0 on pruned ops.
        space: the cell space.
        cap: the most skip edges kept; excess skip edges (lowest skip weight first) take their best other op.
    """
    p = probabilities.detach().float().cpu().clone()
    if "none" in space.ops:
        p[:, space.ops.index("none")] = -1.0
    choice = p.argmax(dim=-1).tolist()
    if "skip_connect" in space.ops:
        skip = space.ops.index("skip_connect")
        edges = sorted((e for e, k in enumerate(choice) if k == skip), key=lambda e: float(p[e, skip]))
        for e in edges[:max(0, len(edges) - cap)]:
            other = p[e].clone()
            other[skip] = -1.0
            if float(other.max()) > 0:  # an active op besides skip and none
                choice[e] = int(other.argmax())
    return space.validate(Cell(tuple(space.ops[k] for k in choice)))
