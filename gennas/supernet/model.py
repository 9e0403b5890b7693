"""The supernet: the NB201 skeleton whose cell slots hold a block per (edge, op).

Blocks are the standalone network's own edge modules (same classes, same shapes: every
edge maps C channels to C channels at stride 1), so any subnet is compatible by
construction, and :meth:`Supernet.extract` is a parameter copy: the extracted
:class:`~gennas.nn.network.CellNetwork` computes exactly what the subnet computes.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from gennas.nn.cell import last_use_of_nodes, run_cell
from gennas.nn.network import CellNetwork, NetworkConfig, build_network
from gennas.nn.ops import make_op
from gennas.space.cell import Cell, edge_list
from gennas.supernet.subnets import SubnetSpace
from gennas.supernet.switch import SubnetSwitch

_CELL_PARAM = re.compile(r"^(?P<prefix>(?:\d+\.)?layers\.\d+\.)edge_ops\.(?P<edge>\d+_\d+)\.(?P<rest>.+)$")


class SuperCell(nn.Module):
    """A cell slot with every block of the space; runs whichever cell is active."""

    def __init__(self, space: SubnetSpace, channels: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict()
        for (src, dst), ops in zip(edge_list(space.n_nodes), space.choices):
            if ops:
                self.blocks[f"{src}_{dst}"] = nn.ModuleDict({op: make_op(op, channels) for op in ops})
        self.activate(space.largest())

    def activate(self, cell: Cell) -> None:
        self.active = cell
        self.last_use = last_use_of_nodes(cell)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_cell(x, self.active, self.last_use, lambda key, op: self.blocks[key][op])


class Supernet(CellNetwork, SubnetSwitch):
    """One network for every subnet of ``space``; :meth:`activate` switches blocks on and off."""

    def __init__(self, space: SubnetSpace, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__(space.largest(), config, make_cell=lambda channels: SuperCell(space, channels))
        self.space = space
        self.active = space.largest()

    @property
    def subnets(self) -> SubnetSpace:
        """The subnets this supernet can become (what training samples from; the DARTS one has the same)."""
        return self.space

    @property
    def super_cells(self) -> list[SuperCell]:
        return [m for m in self.layers if isinstance(m, SuperCell)]

    def activate(self, cell: Cell) -> "Supernet":
        """Switch to ``cell``'s blocks (every other block is off: not run, not counted)."""
        self.space.check(cell)
        self.active = cell
        for module in self.super_cells:
            module.activate(cell)
        return self

    def supernet_key(self, standalone_key: str, cell: Cell) -> str:
        """The supernet parameter that a standalone network's parameter of ``cell`` lives in."""
        match = _CELL_PARAM.match(standalone_key)
        if match is None:
            return standalone_key  # stem, reductions, head and classifier are shared as they are
        src, dst = (int(v) for v in match["edge"].split("_"))
        op = cell.ops[edge_list(cell.n_nodes).index((src, dst))]
        return f"{match['prefix']}blocks.{match['edge']}.{op}.{match['rest']}"

    def extract(self, cell: Cell) -> CellNetwork:
        """A standalone network of ``cell`` holding this subnet's weights and BN statistics."""
        self.space.check(cell)
        net = build_network(cell, self.config)
        own = self.state_dict()
        net.load_state_dict({key: own[self.supernet_key(key, cell)].clone() for key in net.state_dict()})
        return net.to(next(self.parameters()).device)

    def load_standalone(self, net: CellNetwork) -> None:
        """Copy a standalone network's weights into the blocks of its cell (the inverse of :meth:`extract`)."""
        self.space.check(net.cell)
        own = self.state_dict()
        with torch.no_grad():
            for key, value in net.state_dict().items():
                own[self.supernet_key(key, net.cell)].copy_(value)


def blocks_used(cell: Cell) -> int:
    """How many blocks a subnet switches on (non-``none`` edges)."""
    return sum(op != "none" for op in cell.ops)
