"""Random search: uniform cells of the space, never the same one twice.

The baseline every NAS paper has to beat; on NB201 it is strong (its best-of-50 is
within a point of the optimum), which is why the other methods are compared to it.
"""

from __future__ import annotations

from gennas.search.searcher import Searcher
from gennas.space.cell import Cell


class RandomSearch(Searcher):
    batch_size = 10

    def ask(self, n: int) -> list[Cell]:
        return self.random_unseen(n)
