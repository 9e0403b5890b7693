"""Stopping rules of the search loop, in the spirit of pymoo's terminations: small objects the loop composes.

Each rule reads the loop's :class:`LoopState` and answers why the run should end now, or
None. :class:`Stopping` asks them in a fixed order, so when several hold at once the
recorded reason is the most specific one (a target before a deadline, a deadline before a
converged searcher, all before the query budget). A searcher never sees a rule: every
query up to the stop is the one an unstopped run makes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Rounds in a row without a new cell after which a searcher is taken to have converged.
MAX_IDLE_ROUNDS = 100
#: Values this close to a target count as reaching it (tables store rounded floats).
TARGET_TOLERANCE = 1e-6
#: How a journal says its run ended at a target (a later run without it may continue it).
TARGET_STOP = "target reached:"


@dataclass
class LoopState:
    """What the loop knows between rounds."""

    asked: int = 0  # distinct cells the searcher has asked for
    idle: int = 0  # rounds in a row that asked for no new cell
    queries: int = 0  # rows in the run's history
    new_rows: list[dict[str, Any]] = field(default_factory=list)  # the last round's new measurements
    epochs: int = 0  # training epochs charged so far (a training oracle's currency)
    epochs_blocked: bool = False  # the next query would have overrun the epoch budget


class StopRule(Protocol):
    def reason(self, state: LoopState) -> str | None:
        """Why the run ends now, or None to go on."""


@dataclass(frozen=True)
class Budget:
    """End once ``queries`` distinct cells have been asked for."""

    queries: int

    def reason(self, state: LoopState) -> str | None:
        return "budget" if state.asked >= self.queries else None


@dataclass(frozen=True)
class EpochBudget:
    """End before a query whose training would take the epochs charged past ``epochs`` (never overrun)."""

    epochs: int

    def fits(self, spent: int, cost: int) -> bool:
        return spent + cost <= self.epochs

    def reason(self, state: LoopState) -> str | None:
        return "epoch budget" if state.epochs_blocked or state.epochs >= self.epochs else None


@dataclass(frozen=True)
class Deadline:
    """End at a :func:`time.monotonic` instant (equal search time for every method)."""

    at: float

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def reason(self, state: LoopState) -> str | None:
        return "time budget" if self.passed() else None


@dataclass(frozen=True)
class Idle:
    """End when the searcher has asked for nothing new in ``rounds`` rounds in a row."""

    rounds: int = MAX_IDLE_ROUNDS

    def reason(self, state: LoopState) -> str | None:
        return f"no new cell in {self.rounds} rounds (searcher converged)" if state.idle >= self.rounds else None


@dataclass(frozen=True)
class Target:
    """End once a measured cell has ``metric`` at ``value`` or better (``direction`` max or min)."""

    metric: str
    value: float
    direction: str = "max"

    def reached(self, row: dict[str, Any]) -> bool:
        got = row.get(self.metric)
        if got is None:
            return False
        return got >= self.value - TARGET_TOLERANCE if self.direction == "max" else got <= self.value + TARGET_TOLERANCE

    def first_reached(self, history: list[dict[str, Any]]) -> int | None:
        """1-based query at which ``history`` first reached the target, or None."""
        return next((i + 1 for i, row in enumerate(history) if self.reached(row)), None)

    def stop_reason(self, query: int) -> str:
        return f"{TARGET_STOP} {self.metric} {'>=' if self.direction == 'max' else '<='} {self.value:g} at query {query}"

    def reason(self, state: LoopState) -> str | None:
        hit = self.first_reached(state.new_rows)
        return self.stop_reason(state.queries - len(state.new_rows) + hit) if hit else None


@dataclass(frozen=True)
class Stopping:
    """The rules of one run, asked in order of precedence."""

    budget: Budget
    deadline: Deadline | None = None
    target: Target | None = None
    idle: Idle = Idle()
    epochs: EpochBudget | None = None

    @classmethod
    def of(cls, budget: int, deadline: float | None = None, target: Target | None = None,
           epochs: int | None = None) -> Stopping:
        """The rules for a query budget, an optional monotonic deadline, target and budget of training epochs."""
        return cls(Budget(budget), Deadline(deadline) if deadline is not None else None, target,
                   epochs=EpochBudget(epochs) if epochs is not None else None)

    def rules(self) -> list[StopRule]:
        return [r for r in (self.target, self.deadline, self.epochs, self.idle, self.budget) if r is not None]

    def reason(self, state: LoopState) -> str | None:
        """The first rule's reason to stop, or None."""
        return next((why for why in (rule.reason(state) for rule in self.rules()) if why), None)

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.deadline.passed()
