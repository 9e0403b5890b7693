"""The `Oracle` contract: answer metric queries and charge each distinct cell once.

A query is "one trained architecture": asking again about a cell already measured is
free, cost metrics (FLOPs, params, memory) are always free, and the budget is checked
before any expensive work starts. Every searcher talks to an oracle through `query`, so
budgets are counted the same way for every method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from gennas.errors import BudgetExhausted
from gennas.metrics.costs import cell_costs
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.space.space import CellSpace


class Oracle(ABC):
    """Base class: subclasses implement :meth:`_measure`; this class does the accounting."""

    def __init__(self, space: CellSpace, network: NetworkConfig, budget: int | None = None) -> None:
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
        self.space.validate(cell)
        key = cell.to_string()
        if key not in self._answers:
            if self.budget is not None and self.queries >= self.budget:
                raise BudgetExhausted(
                    f"query budget of {self.budget} distinct cells is used up; raise the budget or stop searching"
                )
            result = {**self._measure(cell), **self.cost(cell)}
            self._answers[key] = result
            self.history.append((cell, result))
        return dict(self._answers[key])

    def cost(self, cell: Cell) -> dict[str, float]:
        """Free, exact cost metrics of the cell's network (no query charged)."""
        return cell_costs(self.space.validate(cell), self.network)

    @abstractmethod
    def _measure(self, cell: Cell) -> dict[str, float]:
        """The expensive part: accuracy and other measured metrics."""
