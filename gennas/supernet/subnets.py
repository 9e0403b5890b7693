"""Which cells a supernet can become: one block per (edge, op) used by any of its cells.

A subnet switches each edge to one of the ops that have a block there, or off
(``none``), so it is always a cell of the space and every source cell is exactly one
configuration. Only *well-formed* configurations count as reachable: every node that
feeds another has a live input, and the output has one. A node without inputs is a
constant zero in NB201 semantics; feeding it onward wastes compute and is the one case
where switching a block off could raise peak memory, so such configurations are left
out (source cells are kept whatever their shape).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.space.cell import KNOWN_OPS, Cell, edge_list

#: Ops ordered from the most to the least expensive: the "largest" subnet takes the first present.
COST_ORDER: tuple[str, ...] = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect")
#: Above this many configurations :meth:`SubnetSpace.enumerate` refuses and callers sample.
ENUMERATION_LIMIT = 50_000


def well_formed(cell: Cell) -> bool:
    """Every node with a live outgoing edge has a live incoming edge, and the output has one."""
    live_in = [False] * cell.n_nodes
    live_in[0] = True
    for (src, dst), op in zip(cell.edges, cell.ops):
        if op != "none":
            live_in[dst] = True
    if not live_in[-1]:
        return False
    return all(live_in[src] for (src, _), op in zip(cell.edges, cell.ops) if op != "none")


@dataclass(frozen=True)
class SubnetSpace:
    """Per edge, the ops that own a block; plus the source cells the space was built from."""

    choices: tuple[tuple[str, ...], ...]
    sources: tuple[Cell, ...]

    @classmethod
    def from_cells(cls, cells: Sequence[Cell]) -> "SubnetSpace":
        cells = list(dict.fromkeys(cells))
        if not cells:
            raise GennasError("a supernet needs at least one cell to be built from")
        n_edges = {len(c.ops) for c in cells}
        if len(n_edges) != 1:
            raise GennasError(f"cells of a supernet must have the same number of edges, got {sorted(n_edges)}")
        choices = []
        for e in range(n_edges.pop()):
            used = {c.ops[e] for c in cells} - {"none"}
            choices.append(tuple(op for op in KNOWN_OPS if op in used))
        return cls(tuple(choices), tuple(cells))

    @property
    def n_nodes(self) -> int:
        return self.sources[0].n_nodes

    @property
    def blocks(self) -> list[tuple[int, str]]:
        """Every switchable block as (edge index, op)."""
        return [(e, op) for e, ops in enumerate(self.choices) for op in ops]

    @property
    def listable(self) -> bool:
        """Whether :meth:`enumerate` lists the subnets (else callers sample)."""
        return self.configurations <= ENUMERATION_LIMIT

    @property
    def configurations(self) -> int:
        """All on/off settings, well-formed or not: each edge picks one of its blocks or none."""
        return int(np.prod([len(ops) + 1 for ops in self.choices], dtype=object))

    def contains(self, cell: Cell) -> bool:
        return len(cell.ops) == len(self.choices) and all(
            op == "none" or op in ops for op, ops in zip(cell.ops, self.choices))

    def check(self, cell: Cell) -> Cell:
        """``cell`` if this supernet can become it, else an error naming the missing blocks."""
        if len(cell.ops) != len(self.choices):
            raise GennasError(f"cell {cell} has {len(cell.ops)} edges; this supernet's cells have {len(self.choices)}")
        missing = [f"{s}->{d}: {op}" for (s, d), op, ops in zip(edge_list(self.n_nodes), cell.ops, self.choices)
                   if op != "none" and op not in ops]
        if missing:
            raise GennasError(f"cell {cell} is not a subnet of this supernet: no block for {', '.join(missing)}")
        return cell

    def largest(self) -> Cell:
        """Every edge on its most expensive block: the top of the sandwich."""
        return Cell(tuple(next((op for op in COST_ORDER if op in ops), "none") for ops in self.choices))

    def smallest(self, network) -> Cell:
        """The reachable subnet with the fewest FLOPs (exact when the space can be listed, else among
        the sources and 2,000 samples): the bottom of the sandwich."""
        from gennas.metrics.flops import analytic_flops_params

        if self.configurations <= ENUMERATION_LIMIT:
            candidates = list(self.enumerate())
        else:
            rng = np.random.default_rng(0)
            candidates = list(self.sources) + [self.sample(rng) for _ in range(2000)]
        return min(candidates, key=lambda c: (analytic_flops_params(c, network)[0], c.ops))

    def _options(self) -> list[tuple[str, ...]]:
        return [("none", *ops) for ops in self.choices]

    def enumerate(self) -> Iterator[Cell]:
        """Every reachable subnet: the well-formed configurations, then sources that are not."""
        if self.configurations > ENUMERATION_LIMIT:
            raise GennasError(f"this supernet has {self.configurations} configurations, too many to list "
                              f"(limit {ENUMERATION_LIMIT}); sample them with SubnetSpace.sample")
        for ops in itertools.product(*self._options()):
            cell = Cell(ops)
            if well_formed(cell):
                yield cell
        yield from (c for c in self.sources if not well_formed(c))

    def count(self) -> int:
        """How many subnets are reachable (listed when possible, else estimated from 20,000 draws)."""
        if self.configurations <= ENUMERATION_LIMIT:
            return sum(1 for _ in self.enumerate())
        rng = np.random.default_rng(0)
        options = self._options()
        hits = sum(well_formed(Cell(tuple(o[rng.integers(len(o))] for o in options))) for _ in range(20_000))
        return int(round(self.configurations * hits / 20_000))

    def sample(self, rng: np.random.Generator) -> Cell:
        """A uniformly random well-formed configuration (rejection sampling)."""
        options = self._options()
        for _ in range(10_000):
            cell = Cell(tuple(o[rng.integers(len(o))] for o in options))
            if well_formed(cell):
                return cell
        raise GennasError("could not sample a well-formed subnet; the supernet's blocks leave the output unreachable")

    def to_dict(self) -> dict:
        return {"choices": [list(ops) for ops in self.choices], "sources": [c.to_string() for c in self.sources]}

    @classmethod
    def from_dict(cls, data: dict) -> "SubnetSpace":
        return cls(tuple(tuple(ops) for ops in data["choices"]), tuple(Cell.from_string(a) for a in data["sources"]))
