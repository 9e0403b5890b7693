"""The `Searcher` contract (ask/tell) and what every searcher is told about its task.

A searcher never holds an oracle. It proposes cells with ``ask(n)`` and learns their
measurements through ``tell``; the loop does the querying, so budgets, caching and the
ban on peeking at the target table are enforced in one place for every method. What a
searcher may know up front is in its `SearchContext`: the space, the goal, a seed, the
free cost metrics of any cell, and — in the transfer setting only — the tables of the
*other* datasets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from gennas.bench.tabular import TransferPrior
from gennas.metrics.registry import get_metric
from gennas.nn.network import NetworkConfig
from gennas.objectives import Objective, minimisation_matrix
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace

Result = dict[str, float]


@dataclass
class SearchContext:
    """Everything a searcher may use besides the answers to its own queries."""

    space: ArchSpace
    objectives: list[Objective]
    seed: int = 0
    #: Exact, free cost metrics of a cell (FLOPs, params, memory); never the measured ones.
    costs: Callable[[Cell], Result] | None = None
    #: The network skeleton the costs refer to (for exact cost models in generation).
    network: NetworkConfig | None = None
    #: Name of the target dataset (for picking a pretrained prior); its table stays hidden.
    dataset: str | None = None
    #: Transfer setting only: full tables of the non-target datasets.
    prior: TransferPrior | None = None
    options: dict[str, Any] = field(default_factory=dict)


class Searcher(ABC):
    """Ask/tell black-box searcher. Subclasses keep their own state; the loop owns the budget."""

    #: How many cells the loop asks for at once (a searcher may return fewer, never more).
    batch_size: int = 1
    #: True when the searcher records the parent of each cell it derives (:attr:`derived_from`); its other
    #: cells (a random initial population) then train from scratch under ``warm_start=net2net``.
    derives_children: bool = False

    def __init__(self, context: SearchContext) -> None:
        self.context = context
        self.space = context.space
        self.objectives = context.objectives
        self.rng = np.random.default_rng(context.seed)
        # Objectives a searcher has to learn; cost metrics come exact and free from context.costs.
        free = context.costs is not None
        self.modelled = [o.metric for o in self.objectives if not (free and get_metric(o.metric).source == "cost")]
        self.seen: dict[str, Result] = {}  # every answer told so far, by cell string
        self.order: list[Cell] = []  # distinct cells in the order their answers arrived
        #: ``warm_start=net2net``: child cell string -> the measured cell it was derived from.
        self.derived_from: dict[str, Cell] = {}

    @abstractmethod
    def ask(self, n: int) -> list[Cell]:
        """Up to ``n`` cells to measure next (at least one)."""

    def tell(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        """Record measurements; subclasses extend this to update their model or population."""
        for cell, result in zip(cells, results):
            key = cell.to_string()
            if key not in self.seen:
                self.order.append(cell)
            self.seen[key] = dict(result)

    def parent_of(self, cell: Cell) -> Cell | None:
        """The measured cell whose trained weights ``cell`` starts from under ``warm_start=net2net``, or None.

        The cell it was derived from when the searcher says so (REA's tournament winner, local
        search's current cell; None for its other cells); for a searcher that does not, the
        measured cell nearest in edits (ties: the fitter), so any searcher's proposals can inherit.
        None without the option or before any answer.
        """
        if self.context.options.get("warm_start") != "net2net" or not self.order:
            return None
        if self.derives_children:
            told = self.derived_from.get(cell.to_string())
            return told if told is not None and not self.unseen(told) else None
        ops = np.array(cell.ops)
        distance = np.array([(np.array(c.ops) != ops).sum() for c in self.order])
        scores = self.fitness([self.seen[c.to_string()] for c in self.order])
        return self.order[int(np.lexsort((-scores, distance))[0])]

    # ---------------------------------------------------------------- helpers
    def fitness(self, results: Sequence[Result], weights: np.ndarray | None = None) -> np.ndarray:
        """Scalar "higher is better" score of results.

        One objective: its signed value. Several: an augmented Chebyshev scalarisation
        (ParEGO) of the objectives normalised by the range seen so far, under ``weights``
        (uniform when not given), so single-objective methods still pursue a trade-off.
        """
        f = minimisation_matrix(list(results), self.objectives)
        if len(self.objectives) == 1:
            return -f[:, 0]
        seen = self.measured_points() if self.seen else f
        low, high = np.minimum(seen.min(0), f.min(0)), np.maximum(seen.max(0), f.max(0))
        z = (f - low) / np.where(high - low > 1e-12, high - low, 1.0)
        w = np.full(len(self.objectives), 1 / len(self.objectives)) if weights is None else weights
        return -((w * z).max(axis=1) + 0.05 * (w * z).sum(axis=1))

    def measured_points(self) -> np.ndarray:
        """(N, J) minimisation matrix of every measured cell, in the order answers arrived."""
        return minimisation_matrix([self.seen[c.to_string()] for c in self.order], self.objectives)

    def random_weights(self) -> np.ndarray:
        """A preference vector from the flat Dirichlet, for one scalarised step."""
        return self.rng.dirichlet(np.ones(len(self.objectives)))

    def unseen(self, cell: Cell) -> bool:
        return cell.to_string() not in self.seen

    def random_unseen(self, n: int, exclude: set[str] | None = None, tries: int = 10_000) -> list[Cell]:
        """Up to ``n`` distinct uniformly random cells not measured yet (nor in ``exclude``)."""
        taken = set(self.seen) | (exclude or set())
        out: list[Cell] = []
        for _ in range(tries):
            if len(out) == n:
                break
            cell = self.space.sample(self.rng)
            key = cell.to_string()
            if key not in taken:
                taken.add(key)
                out.append(cell)
        return out

    def mutations_of(self, parents: Sequence[Cell], found: dict[str, Cell] | None = None) -> dict[str, Cell]:
        """Unmeasured one-edge neighbours and five two-edit mutations of each parent, added to ``found``.

        The BANANAS candidate set: good cells' relatives are where better cells usually are.
        """
        found = {} if found is None else found
        for parent in parents:
            for child in self.space.neighbours(parent) + [self.space.mutate(parent, self.rng, 2) for _ in range(5)]:
                if self.unseen(child):
                    found.setdefault(child.to_string(), child)
        return found

    def candidate_rows(self, cells: Sequence[Cell], values: dict[str, Sequence[float]]) -> list[Result]:
        """Result-like rows for unmeasured cells: exact free costs plus the given estimates per metric."""
        rows: list[Result] = [dict(self.context.costs(c)) if self.context.costs else {} for c in cells]
        for metric, column in values.items():
            for row, value in zip(rows, column):
                row[metric] = float(value)
        return rows

    def best(self, k: int = 1, weights: np.ndarray | None = None) -> list[Cell]:
        """The ``k`` best measured cells under the scalar fitness."""
        if not self.order:
            return []
        scores = self.fitness([self.seen[c.to_string()] for c in self.order], weights)
        return [self.order[i] for i in np.argsort(-scores, kind="stable")[:k]]
