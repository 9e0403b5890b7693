"""PNAS (Liu et al., 2018): grow architectures a block at a time, a surrogate ranking the expansions, a beam of K.

PNAS searches from simple to complex: it trains every architecture of the smallest size, fits
a surrogate on what it measured, expands each of the K architectures of its beam by one more
block, and trains only the K expansions the surrogate ranks best, which become the next beam.

What "one more block" is depends on the space (:func:`growth_for`):

* cell DAGs (nb201, dagN; :class:`EdgeGrowth`): a cell is one op per edge of a complete DAG,
  ``none`` being no edge, so an expansion turns one ``none`` edge of a beam cell into an op.
  The nodes stay fixed (a cell's node count is its space's). Level 1 is every cell with a
  single edge that joins input to output; smaller cells compute nothing (dagN rejects them,
  and on nb201 the empty cell, where growing would start, outputs zeros), so they are
  skipped. On nb201 this is the analogue of growing from the empty
cell. Every proposal is a valid cell of the space with its input joined to its output.
* DARTS-like spaces (darts; :class:`NodeGrowth`): PNAS' own kind of space, where a block is a
  node's two inputs and their ops; one more node is decided per level, alike in the normal
  and the reduction cell as PNAS ties them, the undecided nodes placeholders.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.search.bo import BayesianOptimisation
from gennas.search.searcher import Result, SearchContext
from gennas.space.cell import Cell, edge_list
from gennas.space.darts import CELL_TYPES, DartsSpace, input_pairs
from gennas.space.genotype import Genotype
from gennas.space.space import CellSpace

#: Default beam width K.
BEAM = 4


class EdgeGrowth:
    """Growth in a space of ops on the edges of a complete DAG: one more edge per level."""

    def __init__(self, space: CellSpace) -> None:
        self.space = space

    def level_one(self) -> list[Cell]:
        """Every valid cell with one edge, input to output."""
        n = self.space.n_nodes
        cells = [Cell(tuple(op if edge == (0, n - 1) else "none" for edge in edge_list(n)))
                 for op in self.space.ops if op != "none"]
        return [c for c in cells if self.space.contains(c)]

    def expansions(self, cell: Cell) -> list[Cell]:
        """The valid, connected cells with one ``none`` edge of ``cell`` given an op."""
        out = []
        for e, current in enumerate(cell.ops):
            if current != "none":
                continue
            for op in self.space.ops:
                child = Cell(cell.ops[:e] + (op,) + cell.ops[e + 1:])
                if op != "none" and child.is_connected() and self.space.contains(child):
                    out.append(child)
        return out


class NodeGrowth:
    """Growth in a DARTS-like space, where every node takes exactly two inputs: one more node decided per level.

    PNAS' own space is of this kind: it grows a cell block by block (a block = a node's two
    inputs and their ops) and uses one structure for the normal and the reduction cell. Here
    every genotype has all its nodes, so a node not yet decided is a placeholder that adds its
    two latest inputs (``skip_connect`` from nodes k and k + 1 of the cell's states); level b
    decides nodes 0..b-1, alike in both cells, and a level-b genotype's expansions are every
    choice of node b's input pair and two ops.
    """

    PLACEHOLDER_OP = "skip_connect"

    def __init__(self, space: DartsSpace) -> None:
        self.space = space
        self.decided: dict[str, int] = {}  # genotype string -> nodes decided (its level)

    def _genotype(self, nodes: list[tuple[int, int, int]]) -> Genotype:
        """Decided nodes as (pair, op, op) value indices, the rest placeholders; both cells alike."""
        skip = self.space.ops.index(self.PLACEHOLDER_OP) if self.PLACEHOLDER_OP in self.space.ops else 0
        per_cell = []
        for k in range(self.space.steps):
            per_cell += list(nodes[k]) if k < len(nodes) else [len(input_pairs(k)) - 1, skip, skip]
        genotype = self.space.decode(per_cell * len(CELL_TYPES))
        self.decided.setdefault(genotype.to_string(), len(nodes))
        return genotype

    def _nodes(self, genotype: Genotype) -> list[tuple[int, int, int]]:
        x = self.space.encode(genotype)[: 3 * self.space.steps]
        return [tuple(int(v) for v in x[3 * k: 3 * k + 3]) for k in range(self.decided[genotype.to_string()])]

    def _choices(self, node: int) -> list[tuple[int, int, int]]:
        n_ops = len(self.space.ops)
        return [(p, a, b) for p in range(len(input_pairs(node))) for a in range(n_ops) for b in range(n_ops)]

    def level_one(self) -> list[Genotype]:
        return list({g.to_string(): g for g in (self._genotype([c]) for c in self._choices(0))}.values())

    def expansions(self, genotype: Genotype) -> list[Genotype]:
        decided = self._nodes(genotype) if genotype.to_string() in self.decided else None
        if decided is None or len(decided) >= self.space.steps:
            return []
        return [self._genotype(decided + [c]) for c in self._choices(len(decided))]


def growth_for(space) -> EdgeGrowth | NodeGrowth:
    """How ``space``'s architectures grow; a clear error for a space where growth is not defined."""
    if isinstance(space, CellSpace):
        return EdgeGrowth(space)
    if isinstance(space, DartsSpace):
        return NodeGrowth(space)
    raise GennasError(f"pnas grows architectures edge by edge (nb201, dagN) or node by node (darts); it does not "
                      f"know how to grow in space {space.name!r}")


class PNAS(BayesianOptimisation):
    """Progressive growth: level-1 cells first, then the surrogate's top K expansions of the beam."""

    def __init__(self, context: SearchContext) -> None:
        self.growth = growth_for(context.space)
        super().__init__(context)
        self.beam_width = int(context.options.get("beam", BEAM))
        self.batch_size = self.beam_width  # one level of the beam per round: one surrogate fit per expansion
        self.pending: list = self.level_one()
        self.beam: list = list(self.pending)

    def level_one(self) -> list:
        """Every level-1 architecture of the space, in a seeded order."""
        out = self.growth.level_one()
        return [out[i] for i in self.rng.permutation(len(out))]

    def expansions(self, cells: Sequence) -> dict[str, object]:
        """Unmeasured architectures one level larger than one of ``cells``."""
        found: dict[str, object] = {}
        for cell in cells:
            for child in self.growth.expansions(cell):
                if self.unseen(child):
                    found.setdefault(child.to_string(), child)
        return found

    def ask(self, n: int) -> list[Cell]:
        self.pending = [c for c in self.pending if self.unseen(c)]
        if not self.pending:
            self.pending = self._next_level()
        if not self.pending:
            return self.random_unseen(n)
        batch, self.pending = self.pending[:n], self.pending[n:]
        return batch

    def _next_level(self) -> list[Cell]:
        """The surrogate's top K expansions of the beam (mutations of the best once the beam is full-grown)."""
        candidates = list(self.expansions(self.beam).values())
        if not candidates:
            candidates = list(self.mutations_of(self.best(self.beam_width)).values())
        if not candidates:
            return []
        scores = self.fitness(self._predicted_means(candidates))
        self.rounds += 1
        self.beam = [candidates[i] for i in np.argsort(-scores, kind="stable")[:self.beam_width]]
        return list(self.beam)

    def _predicted_means(self, candidates: list[Cell]) -> list[Result]:
        """Rows of the surrogate's mean for modelled metrics and exact free costs (PNAS ranks by the mean)."""
        means = {}
        if self.modelled:
            predictions = self._fit(self.modelled).predict(candidates, self.modelled)
            means = {m: predictions[m].mean for m in self.modelled}
        return self.candidate_rows(candidates, means)
