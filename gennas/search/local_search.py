"""Local search (White et al., 2020): best-improvement hill climbing with random restarts.

From the current cell every one-edge neighbour is measured; the search moves to the best
if it improves, otherwise it restarts from a random cell. On NB201 this simple method is
a strong baseline because the landscape is smooth around good cells.
"""

from __future__ import annotations

from typing import Sequence

from gennas.search.searcher import Result, SearchContext, Searcher
from gennas.space.cell import Cell


class LocalSearch(Searcher):
    batch_size = 24  # about one neighbourhood of an NB201 cell per round
    derives_children = True  # each neighbour from the current cell (warm_start=net2net)

    def __init__(self, context: SearchContext) -> None:
        super().__init__(context)
        self.current: Cell | None = None
        self.pending: list[Cell] = []
        self.weights = self.random_weights()

    def ask(self, n: int) -> list[Cell]:
        while not self.pending:
            if self.current is None:
                return self.random_unseen(1)
            neighbours = self.space.neighbours(self.current)
            order = self.rng.permutation(len(neighbours))
            self.pending = [neighbours[i] for i in order if self.unseen(neighbours[i])]
            self.derived_from.update({c.to_string(): self.current for c in self.pending})
            if not self.pending:  # the whole neighbourhood is known already: climb or restart now
                self._step()
        batch, self.pending = self.pending[:n], self.pending[n:]
        return batch

    def tell(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        super().tell(cells, results)
        if self.current is None:
            self.current = cells[0]
        elif not self.pending:
            self._step()

    def _step(self) -> None:
        """Move to the best neighbour if it beats the current cell, else restart at random."""
        assert self.current is not None
        known = [c for c in self.space.neighbours(self.current) if not self.unseen(c)] + [self.current]
        scores = self.fitness([self.seen[c.to_string()] for c in known], self.weights)
        best = int(scores.argmax())
        if scores[best] > scores[-1] + 1e-12:  # strictly better only: ties would let it walk in circles
            self.current = known[best]
        else:
            self.current, self.weights = None, self.random_weights()
