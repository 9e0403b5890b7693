"""Cells as tensors for the predictor: per-edge op distributions plus the space's line graph.

A batch is ``P`` of shape (B, E, K): for clean cells a one-hot over the space's ops, for
noisy or soft cells any distribution. The op-on-node graph (input, one node per edge,
output) has a fixed adjacency per space; an edge node's probability of *not* being
``none`` gates its messages, so hard cells see only their real data paths and soft cells
get a differentiable blend of them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from gennas.space.cell import Cell
from gennas.space.space import CellSpace


def op_indices(space: CellSpace, cells: Sequence[Cell]) -> torch.Tensor:
    """(B, E) long tensor of op indices (validates every cell against the space)."""
    return torch.from_numpy(np.stack([space.encode(c) for c in cells])) if cells else torch.empty(0, space.num_edges, dtype=torch.long)


def one_hot_ops(space: CellSpace, cells: Sequence[Cell]) -> torch.Tensor:
    return torch.nn.functional.one_hot(op_indices(space, cells), len(space.ops)).float()


def line_graph(space: CellSpace) -> torch.Tensor:
    """(E+2, E+2) adjacency, ``A[i, j] = 1`` when node i feeds node j."""
    return torch.from_numpy(Cell.line_graph(space.n_nodes)).float()


def node_inputs(ops: torch.Tensor, none_index: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Node features (B, E+2, 2+K) and alive weights (B, E+2) from op distributions (B, E, K)."""
    b, e, k = ops.shape
    special = torch.eye(2, 2 + k, dtype=ops.dtype, device=ops.device)  # rows: input, output
    middle = torch.cat([ops.new_zeros(b, e, 2), ops], dim=-1)
    x = torch.cat([special[0].expand(b, 1, -1), middle, special[1].expand(b, 1, -1)], dim=1)
    alive = ops.new_ones(b, e + 2)
    if none_index is not None:
        alive = torch.cat([alive[:, :1], 1.0 - ops[..., none_index], alive[:, -1:]], dim=1)
    return x, alive
