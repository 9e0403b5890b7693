"""The `Oracle` contract: answer metric queries and charge each distinct cell once.

A query is "one trained architecture": asking again about a cell already measured is
free, cost metrics (FLOPs, params, memory) are always free, and the budget is checked
before any expensive work starts. Every searcher talks to an oracle through `query`, so
budgets are counted the same way for every method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Sequence

from gennas.errors import BudgetExhausted
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace

if TYPE_CHECKING:
    from gennas.search.backends import EvaluationBackend


class Oracle(ABC):
    """Base class: subclasses implement :meth:`_measure`; this class does the accounting."""

    def __init__(self, space: ArchSpace, network: NetworkConfig, budget: int | None = None) -> None:
        self.space = space
        self.network = network
        self.budget = budget
        self._answers: dict[str, dict[str, float]] = {}
        self.history: list[tuple[Cell, dict[str, float]]] = []

    @property
    def queries(self) -> int:
        """Distinct cells measured so far (the budget currency)."""
        return len(self._answers)

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def query(self, cell: Cell) -> dict[str, float]:
        """Measured metrics plus the free cost metrics; charges one query for a new cell."""
        return self.query_many([cell])[0]

    def query_many(self, cells: Sequence[Cell], backend: "EvaluationBackend | None" = None) -> list[dict[str, float]]:
        """``query`` for each cell, the new ones measured together through ``backend`` (e.g. on Ray).

        The budget is checked for the whole batch before anything is measured, and answers
        are recorded in the order the cells were given, so a parallel backend produces the
        same history as a serial one.
        """
        keys = [self.space.validate(c).to_string() for c in cells]
        new: dict[str, Cell] = {}
        for key, cell in zip(keys, cells):
            if key not in self._answers:
                new.setdefault(key, cell)
        if self.budget is not None and self.queries + len(new) > self.budget:
            raise BudgetExhausted(
                f"{len(new)} new cell(s) would exceed the query budget of {self.budget} distinct cells "
                f"({self.queries} used); raise the budget or stop searching"
            )
        measured = backend.map(self._measure, list(new.values())) if backend is not None and len(new) > 1 \
            else [self._measure(c) for c in new.values()]
        for (key, cell), result in zip(new.items(), measured):
            self._record(key, cell, {**result, **self.cost(cell)})
        return [dict(self._answers[k]) for k in keys]

    def preload(self, answers: Sequence[tuple[Cell, dict[str, float]]]) -> None:
        """Take earlier answers (a resumed run's journal) as already measured and charged."""
        for cell, result in answers:
            key = self.space.validate(cell).to_string()
            if key not in self._answers:
                self._record(key, cell, dict(result))

    def _record(self, key: str, cell: Cell, result: dict[str, float]) -> None:
        self._answers[key] = result
        self.history.append((cell, result))

    def inherit(self, parents: dict[str, Cell]) -> None:
        """Which measured cell each cell about to be measured may start from (a table has no weights: ignored)."""

    def for_searcher(self, result: dict[str, float]) -> dict[str, float]:
        """What a searcher is told about a measurement (the split it may select on)."""
        return result

    def cost(self, cell: Cell) -> dict[str, float]:
        """Free, exact cost metrics of the cell's network (no query charged)."""
        return self.space.costs(cell, self.network)

    @abstractmethod
    def _measure(self, cell: Cell) -> dict[str, float]:
        """The expensive part: accuracy and other measured metrics."""
