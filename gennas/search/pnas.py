"""PNAS (Liu et al., 2018): grow cells one edge at a time, a surrogate ranking the expansions, a beam of K.

PNAS searches from simple to complex: it trains every cell of the smallest size, fits a
surrogate on what it measured, expands each of the K cells of its beam by one more block,
and trains only the K expansions the surrogate ranks best, which become the next beam.

In gennas' spaces a cell is one op per edge of a complete DAG, ``none`` being no edge, so
"one more block" is one more edge: an expansion turns one ``none`` edge of a beam cell into
an op. The nodes stay fixed (a cell's node count is its space's), so growth by nodes is not
offered. Level 1 is every cell with a single edge that joins input to output; smaller cells
compute nothing (dagN rejects them, and on nb201 the empty cell, where growing would start,
outputs zeros), so they are skipped. On nb201 this is the analogue of growing from the empty
cell. Every proposal is a valid cell of the space with its input joined to its output.

The surrogate is BO's (:meth:`~gennas.search.bo.BayesianOptimisation._fit`: the BANANAS MLP
ensemble by default, ``surrogate=gnn`` for gennas' GNN), refitted on every measured cell
before each expansion and ranked by its mean, as PNAS does. Keep the MLP: an expansion puts
an op on an edge no measured cell had it on, and tree surrogates (``gbr``, ``rf``) cannot
extrapolate to an unseen one-hot feature, so under them growth is unguided. Once the beam is full-grown
(no ``none`` edge left) the run goes on with the surrogate ranking mutations of the best
cells, so a budget larger than the growth is still spent.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.search.bo import BayesianOptimisation
from gennas.search.searcher import Result, SearchContext
from gennas.space.cell import Cell, edge_list
from gennas.space.space import CellSpace

#: Default beam width K.
BEAM = 4


class PNAS(BayesianOptimisation):
    """Progressive growth: level-1 cells first, then the surrogate's top K one-edge expansions of the beam."""

    def __init__(self, context: SearchContext) -> None:
        if not isinstance(context.space, CellSpace):
            raise GennasError(f"pnas grows cells one edge at a time, which needs a space of ops on the edges of a "
                              f"complete DAG (nb201, dagN); space {context.space.name!r} fixes each node's inputs, so "
                              "growth is not defined there: use rea, bo, ours or another black-box method")
        super().__init__(context)
        self.beam_width = int(context.options.get("beam", BEAM))
        self.batch_size = self.beam_width  # one level of the beam per round: one surrogate fit per expansion
        self.pending: list[Cell] = self.level_one()
        self.beam: list[Cell] = list(self.pending)

    def level_one(self) -> list[Cell]:
        """Every valid cell with one edge, input to output (in a seeded order)."""
        n = self.space.n_nodes
        out = []
        for op in self.space.ops:
            if op == "none":
                continue
            ops = tuple(op if edge == (0, n - 1) else "none" for edge in edge_list(n))
            cell = Cell(ops)
            if self.space.contains(cell):
                out.append(cell)
        return [out[i] for i in self.rng.permutation(len(out))]

    def expansions(self, cells: Sequence[Cell]) -> dict[str, Cell]:
        """Unmeasured valid cells with one more edge than a cell of ``cells``."""
        found: dict[str, Cell] = {}
        for cell in cells:
            for e, current in enumerate(cell.ops):
                if current != "none":
                    continue
                for op in self.space.ops:
                    child = Cell(cell.ops[:e] + (op,) + cell.ops[e + 1:])
                    if op != "none" and child.is_connected() and self.space.contains(child) and self.unseen(child):
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
