"""A cell as a module: node i is the sum of its incoming edge ops applied to earlier nodes."""

from __future__ import annotations

from typing import Callable

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
        return run_cell(x, self.cell, self.last_use, lambda key, op: self.edge_ops[key])

    def extra_repr(self) -> str:
        return f"{self.cell.to_string()}, C={self.channels}"


def last_use_of_nodes(cell: Cell) -> list[int]:
    """For each node, the last node whose computation reads it (-1 if none does)."""
    last = [-1] * cell.n_nodes
    for (src, dst), op in zip(cell.edges, cell.ops):
        if op != "none":
            last[src] = max(last[src], dst)
    return last


def run_cell(x: torch.Tensor, cell: Cell, last_use: list[int], edge_op: Callable[[str, str], nn.Module]) -> torch.Tensor:
    """Evaluate ``cell`` on ``x``; ``edge_op(key, op)`` returns the module of edge ``"src_dst"``.

    Shared by standalone cells and supernet cells so a subnet computes exactly what the
    standalone network of its cell computes. Lifetimes here are deliberate:
    gennas.metrics.memory replays this exact order to count peak memory analytically,
    and a test checks the two agree byte for byte.
    """
    n = cell.n_nodes
    nodes: list[torch.Tensor | None] = [x] + [None] * (n - 1)
    for i in range(1, n):
        total: torch.Tensor | None = None
        for j, op in cell.incoming(i):
            if op != "none":
                out = edge_op(f"{j}_{i}", op)(nodes[j])
                total = out if total is None else total + out
                del out
            if j > 0 and last_use[j] == i:
                nodes[j] = None
        if i < n - 1 and last_use[i] < 0:
            del total  # nothing reads this node: never materialise its value
            continue
        nodes[i] = total if total is not None else torch.zeros_like(x)
        del total
    return nodes[-1]
