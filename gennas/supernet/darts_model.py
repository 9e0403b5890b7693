"""The DARTS supernet: the DARTS skeleton whose cells hold a block per (node, input, op), any of them disableable.

Every cell slot has, for each intermediate node ``k`` and each input ``i < k + 2`` it may
read, one block per op of the space (14 edges x 7 ops per cell), built exactly as the
standalone network builds that (op, input) pair (stride 2 on a reduction cell's edges
from the cell inputs). A genotype is a subnet: it switches on one block for each of its
16 pairs, and the cell runs them through :func:`~gennas.nn.darts_network.run_darts_cell`,
the standalone cell's own code. So :meth:`DartsSupernet.extract` is a parameter copy,
and the extracted :class:`~gennas.nn.darts_network.DartsNetwork` computes the subnet's
output bit for bit. Blocks named in ``disabled`` are never built: a genotype that needs
one is refused with the block it needs.
"""

from __future__ import annotations

import re
from typing import Iterable

import torch
from torch import nn

from gennas.errors import GennasError
from gennas.nn.darts_network import DartsNetwork, DartsNetworkConfig, last_reads, run_darts_cell
from gennas.nn.darts_ops import FactorizedReduce, ReLUConvBN, make_darts_op
from gennas.space.darts import CELL_TYPES, DartsSpace
from gennas.space.genotype import Genotype
from gennas.supernet.switch import SubnetSwitch

#: One block: (cell type, node 0..3, input index, op).
Block = tuple[str, int, int, str]

_OP_PARAM = re.compile(r"^cells\.(?P<cell>\d+)\._ops\.(?P<slot>\d+)\.(?P<rest>.+)$")


def _blocks(genotype: Genotype) -> list[Block]:
    """The (cell type, node, input, op) blocks of a genotype's 16 pairs."""
    out = []
    for kind in CELL_TYPES:
        pairs, _ = genotype.cell(kind == "reduce")
        out += [(kind, slot // 2, index, op) for slot, (op, index) in enumerate(pairs)]
    return out


class DartsSuperCell(nn.Module):
    """A cell slot with every enabled block of its cell type; runs the active genotype's pairs."""

    def __init__(self, space: DartsSpace, disabled: frozenset[Block], c_pp: int, c_p: int, c: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.kind = CELL_TYPES[int(reduction)]
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.blocks = nn.ModuleDict()
        for k in range(space.steps):
            for i in range(k + 2):
                ops = {op: make_darts_op(op, c, 2 if reduction and i < 2 else 1) for op in space.ops
                       if (self.kind, k, i, op) not in disabled}
                if ops:
                    self.blocks[f"{k}_{i}"] = nn.ModuleDict(ops)
        self.concat = space.concat

    def activate(self, genotype: Genotype) -> None:
        pairs, self.concat = genotype.cell(self.reduction)
        self.pairs = pairs
        self.indices = [index for _, index in pairs]
        self.last = last_reads(pairs, self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        ops = [self.blocks[f"{slot // 2}_{index}"][op] for slot, (op, index) in enumerate(self.pairs)]
        return run_darts_cell(self, ops, s0, s1, drop_prob)


class DartsSupernet(DartsNetwork, SubnetSwitch):
    """One network for every genotype of ``space`` whose blocks are enabled; :meth:`activate` switches them."""

    def __init__(self, space: DartsSpace, config: DartsNetworkConfig = DartsNetworkConfig(),
                 disabled: Iterable[Block] = (), initial: Genotype | None = None) -> None:
        self.space = space
        self.disabled = frozenset(disabled)
        unknown = [b for b in self.disabled if b[0] not in CELL_TYPES or b[3] not in space.ops
                   or not 0 <= b[2] < b[1] + 2 or not 0 <= b[1] < space.steps]
        if unknown:
            raise GennasError(f"unknown supernet blocks {sorted(unknown)}: a block is (normal|reduce, node 0..3, "
                              f"input 0..node+1, op of {space.ops})")
        initial = initial or self._first_enabled()
        super().__init__(initial, config, make_cell=lambda row: DartsSuperCell(space, self.disabled, *row))
        self.activate(initial)

    @classmethod
    def of_genotypes(cls, space: DartsSpace, genotypes: Iterable[Genotype],
                     config: DartsNetworkConfig = DartsNetworkConfig()) -> "DartsSupernet":
        """The supernet of some genotypes (e.g. generated ones): every block none of them uses is disabled.

        Its subnets are then exactly the genotypes whose every (node, input, op) block one of
        them brought, the given ones included, and a block costs parameters only if some
        genotype needs it.
        """
        genotypes = [space.validate(g) for g in genotypes]
        if not genotypes:
            raise GennasError("a supernet of genotypes needs at least one genotype")
        used = {block for g in genotypes for block in _blocks(g)}
        every = {(kind, k, i, op) for kind in CELL_TYPES for k in range(space.steps) for i in range(k + 2)
                 for op in space.ops}
        return cls(space, config, disabled=every - used, initial=genotypes[0])

    def _first_enabled(self) -> Genotype:
        """A genotype using only enabled blocks (the first of each node's options), to start from."""
        cells = []
        for kind in CELL_TYPES:
            pairs = []
            for k in range(self.space.steps):
                free = [(op, i) for i in range(k + 2) for op in self.space.ops if (kind, k, i, op) not in self.disabled]
                inputs = sorted({i for _, i in free})
                if len(inputs) < 2:
                    raise GennasError(f"node {k} of the {kind} cell has fewer than two inputs with an enabled block")
                pairs += [next(p for p in free if p[1] == inputs[0]), next(p for p in free if p[1] == inputs[1])]
            cells.append(tuple(pairs))
        return Genotype(cells[0], self.space.concat, cells[1], self.space.concat)

    def blocks_of(self, genotype: Genotype) -> list[Block]:
        """The 16 blocks a genotype switches on."""
        return _blocks(genotype)

    def check(self, genotype: Genotype) -> Genotype:
        """``genotype`` if it is a subnet (valid, every block enabled), else one clear error."""
        self.space.validate(genotype)
        off = [b for b in self.blocks_of(genotype) if b in self.disabled]
        if off:
            raise GennasError(f"genotype {genotype} needs disabled supernet block(s) {off}")
        return genotype

    def activate(self, genotype: Genotype) -> "DartsSupernet":
        """Switch to ``genotype``'s blocks (every other block is off: not run, not counted)."""
        self.active = self.check(genotype)
        for cell in self.cells:
            cell.activate(genotype)
        return self

    def supernet_key(self, standalone_key: str, genotype: Genotype) -> str:
        """The supernet tensor a standalone network's tensor of ``genotype`` lives in."""
        match = _OP_PARAM.match(standalone_key)
        if match is None:
            return standalone_key  # stem, preprocessing, classifier, auxiliary head: shared as they are
        cell = int(match["cell"])
        op, index = genotype.cell(self.cells[cell].reduction)[0][int(match["slot"])]
        return f"cells.{cell}.blocks.{int(match['slot']) // 2}_{index}.{op}.{match['rest']}"

    def extract(self, genotype: Genotype) -> DartsNetwork:
        """A standalone network of ``genotype`` holding this subnet's weights and BN statistics."""
        self.check(genotype)
        net = DartsNetwork(genotype, self.config)
        own = self.state_dict()
        net.load_state_dict({key: own[self.supernet_key(key, genotype)].clone() for key in net.state_dict()})
        return net.to(next(self.parameters()).device)

    def load_standalone(self, net: DartsNetwork) -> None:
        """Copy a standalone network's weights into its genotype's blocks (the inverse of :meth:`extract`)."""
        self.check(net.genotype)
        own = self.state_dict()
        with torch.no_grad():
            for key, value in net.state_dict().items():
                own[self.supernet_key(key, net.genotype)].copy_(value)
