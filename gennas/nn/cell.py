"""A cell as a module: node i is the sum of its incoming edge ops applied to earlier nodes."""

from __future__ import annotations

import torch
from torch import nn

from gennas.space.cell import Cell
from gennas.nn.ops import make_op


class CellModule(nn.Module):
    """Executes a :class:`~gennas.space.Cell` on ``channels`` channels.

    Nodes are released as soon as no later edge reads them, so peak activation memory
    is that of the cell's real data flow and not of "keep every node until the end".
    A node with no live incoming edge is a zero tensor (NAS-Bench-201 semantics).
    """

    def __init__(self, cell: Cell, channels: int) -> None:
        super().__init__()
        self.cell = cell
        self.channels = channels
        self.edge_ops = nn.ModuleDict()
        for (src, dst), op in zip(cell.edges, cell.ops):
            if op != "none":
                self.edge_ops[f"{src}_{dst}"] = make_op(op, channels)
        self.last_use = last_use_of_nodes(cell)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Lifetimes here are deliberate: gennas.metrics.memory replays this exact order to
        # count peak memory analytically, and a test checks the two agree byte for byte.
        n = self.cell.n_nodes
        nodes: list[torch.Tensor | None] = [x] + [None] * (n - 1)
        for i in range(1, n):
            total: torch.Tensor | None = None
            for j in range(i):
                key = f"{j}_{i}"
                if key in self.edge_ops:
                    out = self.edge_ops[key](nodes[j])
                    total = out if total is None else total + out
                    del out
                if j > 0 and self.last_use[j] == i:
                    nodes[j] = None
            if i < n - 1 and self.last_use[i] < 0:
                del total  # nothing reads this node: never materialise its value
                continue
            nodes[i] = total if total is not None else torch.zeros_like(x)
            del total
        return nodes[-1]

    def extra_repr(self) -> str:
        return f"{self.cell.to_string()}, C={self.channels}"


def last_use_of_nodes(cell: Cell) -> list[int]:
    """For each node, the last node whose computation reads it (-1 if none does)."""
    last = [-1] * cell.n_nodes
    for (src, dst), op in zip(cell.edges, cell.ops):
        if op != "none":
            last[src] = max(last[src], dst)
    return last
