"""The one search loop: any searcher, any oracle, composed stopping rules, a journal to resume from.

The loop asks the searcher for at most what the budget has left, queries the oracle for
every asked cell (repeats are free), tells the searcher the answers, and journals each
new measurement. Resuming replays the run: the journal's answers are preloaded into the
oracle, the searcher (same seed, same settings) is re-run against them, and the loop
checks that it asks for the journalled cells in the journalled order before it spends
anything new — so a resumed run is the run that would have happened without the stop.

When to stop is a :class:`~gennas.search.stopping.Stopping`: a query budget, and
optionally a deadline (equal search time) and a :class:`Target` ("good enough", or a
benchmark's known optimum, where more queries cannot change the best found). The loop
checks them on the oracle's answers; the searcher never sees them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gennas import interrupt
from gennas.bench.oracle import Oracle
from gennas.errors import GennasError
from gennas.search.backends import EvaluationBackend
from gennas.search.journal import JOURNAL_FORMAT, JOURNAL_VERSION, Journal, SearchRun
from gennas.search.searcher import Searcher
from gennas.search.stopping import MAX_IDLE_ROUNDS, TARGET_STOP, LoopState, Stopping, Target
from gennas.space.cell import Cell
from gennas.tracking import RunLogger

__all__ = ["JOURNAL_FORMAT", "JOURNAL_VERSION", "MAX_IDLE_ROUNDS", "SearchRun", "Target", "run_search"]


def run_search(searcher: Searcher, oracle: Oracle, budget: int, *, method: str, seed: int,
               settings: dict[str, Any] | None = None, journal: str | Path | None = None,
               backend: EvaluationBackend | None = None, progress: bool = False,
               logger: RunLogger | None = None, deadline: float | None = None,
               target: Target | None = None, epochs: int | None = None) -> SearchRun:
    """Run ``searcher`` until ``budget`` distinct cells are measured, or another stopping rule holds.

    Args:
        searcher: the method, freshly built from its context (a resumed run replays it).
        oracle: where cells are measured; its budget is set to ``budget``.
        budget: distinct cells to measure at most.
        method, seed, settings: the run's identity; a journal must match it to be resumed.
        journal: the run's journal and result file; resumed when it exists.
        backend: where the cells of a round are measured (serial or Ray); unused with ``deadline``.
        progress: show a progress bar.
        logger: receives one record per new measurement.
        deadline: a :func:`time.monotonic` instant. No round starts after it; within a round cells are
            measured one by one and the round is cut at it; a round that ends past it is recorded but
            not told to the searcher (its refit could only overrun the clock). An ask that starts
            before it runs to its end: ``search_seconds`` reports the real time.
        target: stop after the round whose answers reach it. A journal that already reaches it is
            finished as it is, whatever budget it was written under.
        epochs: a budget of training epochs (a :class:`~gennas.bench.training.TrainingOracle`'s
            ``epochs_spent``): no cell is measured whose training would take the total past it, so
            full-fidelity and multi-fidelity runs compare on one currency.

    Returns:
        The run: every measurement in query order, the time spent, and why it stopped.
    """
    if budget < 1:
        raise GennasError(f"the budget must be at least 1 query, got {budget}")
    stop = Stopping.of(budget, deadline, target, epochs)
    if epochs is not None and not hasattr(oracle, "epoch_cost"):
        raise GennasError("an epoch budget counts training epochs: it needs a training oracle (a dataset), "
                          "not a table")
    run = SearchRun(method, seed, budget, settings=dict(settings or {}))
    book = Journal(journal)
    saved = book.load(run)
    if _finished(run, saved, stop):
        return run
    run.stopped = "budget"
    oracle.budget = budget
    oracle.preload([(searcher.space.parse(r["arch"]), {k: v for k, v in r.items() if k != "arch"}) for r in saved])
    run.history = [dict(r) for r in saved]
    if saved and stop.epochs is not None and stop.epochs.epochs < oracle.epochs_spent:
        raise GennasError(f"{journal} already used {oracle.epochs_spent} training epochs, more than the "
                          f"{stop.epochs.epochs} asked for now")
    loop = _Loop(searcher, oracle, run, stop, saved, book, backend, logger)
    bar = tqdm(total=budget, desc=f"{method} seed {seed}", disable=not progress, initial=len(saved))
    try:
        while (reason := stop.reason(loop.state)) is None and loop.round(bar):
            pass
        run.stopped = reason or stop.reason(loop.state) or "budget"
    finally:  # an interrupted run keeps every measurement it made
        bar.close()
        book.close(run)
    return run


def _finished(run: SearchRun, saved: list[dict[str, Any]], stop: Stopping) -> bool:
    """True (with ``run`` filled) when the journal is a finished run: its journal is its result, no replay needed."""
    if not saved:
        return False
    reached = stop.target.first_reached(saved) if stop.target else None
    converged = run.stopped != "budget" and not run.stopped.startswith(TARGET_STOP)
    if not (len(saved) >= stop.budget.queries or converged or reached):
        return False
    run.history = [dict(r) for r in saved]
    if reached:  # the journal is left as written, so it still serves its own budget
        run.stopped = stop.target.stop_reason(reached)
    return True


class _Loop:
    """One run's rounds: ask, measure, tell, record; the state the stopping rules read."""

    def __init__(self, searcher: Searcher, oracle: Oracle, run: SearchRun, stop: Stopping,
                 saved: list[dict[str, Any]], journal: Journal, backend: EvaluationBackend | None,
                 logger: RunLogger | None) -> None:
        self.searcher, self.oracle, self.run, self.stop = searcher, oracle, run, stop
        self.saved, self.journal, self.backend, self.logger = saved, journal, backend, logger
        self.asked: dict[str, None] = {}  # distinct cells in the order the searcher first asked for them
        self.state = LoopState(queries=len(run.history), epochs=getattr(oracle, "epochs_spent", 0))

    def round(self, bar: tqdm) -> bool:
        """One ask/measure/tell round; False when the deadline cut it before any cell was measured."""
        interrupt.check()  # swallowed in the last tell: its answers are journalled, no ask uses the cut fit
        self.state.new_rows = []
        replaying = len(self.asked) < len(self.saved)
        cells, ask_seconds = self._ask()
        start = time.perf_counter()
        cells, results = self._measure(cells)
        oracle_seconds = time.perf_counter() - start
        if not cells:
            return False
        fresh = _first_asks(cells, self.asked)
        start = time.perf_counter()
        if not self.stop.past_deadline():  # past it, the search is over: a model refit would only overrun the clock
            self.searcher.tell(cells, [self.oracle.for_searcher(r) for r in results])
        tell_seconds = time.perf_counter() - start
        new_rows = self._record(fresh, dict(zip((c.to_string() for c in cells), results)))
        if not replaying or new_rows:  # replayed rounds were paid for by the run that journalled them
            self.run.searcher_seconds += ask_seconds + tell_seconds
            self.run.oracle_seconds += oracle_seconds
        bar.update(len(new_rows))
        self.state.idle = 0 if fresh else self.state.idle + 1
        return True

    def _ask(self) -> tuple[list[Cell], float]:
        request = min(self.searcher.batch_size, self.stop.budget.queries - len(self.asked))
        start = time.perf_counter()
        cells = self.searcher.ask(request)
        interrupt.check()  # a Ctrl-C swallowed inside ask (sklearn's MLP does) must not shape this round
        seconds = time.perf_counter() - start
        if not cells or len(cells) > request:
            raise GennasError(f"searcher {self.run.method!r} returned {len(cells)} cells for a request of {request}")
        _check_replay(_first_asks(cells, self.asked), self.asked, self.saved, self.journal.path)
        self.oracle.inherit({c.to_string(): p for c in cells if (p := self.searcher.parent_of(c)) is not None})
        return cells, seconds

    def _measure(self, cells: list[Cell]) -> tuple[list[Cell], list[dict[str, Any]]]:
        """Every cell's answer; under a deadline or an epoch budget cell by cell, the measured prefix only."""
        if self.stop.deadline is None and self.stop.epochs is None:
            return cells, self.oracle.query_many(cells, self.backend)
        done: list[Cell] = []
        results: list[dict[str, Any]] = []
        for cell in cells:
            if self.stop.deadline is not None and self.stop.deadline.passed():
                break
            if self.stop.epochs is not None:
                if not self.stop.epochs.fits(self.oracle.epochs_spent, self.oracle.epoch_cost(cell)):
                    self.state.epochs_blocked = True
                    break
            results.append(self.oracle.query(cell))
            done.append(cell)
            self.state.epochs = getattr(self.oracle, "epochs_spent", 0)
        return done, results

    def _record(self, fresh: list[Cell], answers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """History rows for the cells first asked this round that the journal did not already hold."""
        new_rows = []
        for cell in fresh:
            key = cell.to_string()
            self.asked[key] = None
            if len(self.asked) > len(self.saved):
                new_rows.append({"arch": key, **answers[key]})
        self.state.asked, self.state.new_rows = len(self.asked), new_rows
        if new_rows:
            self.run.history.extend(new_rows)
            self.state.queries = len(self.run.history)
            self.journal.save_if_due(self.run)
            for row in new_rows if self.logger is not None else ():
                self.logger.log({"query": len(self.run.history), **{k: v for k, v in row.items() if k != "arch"}})
        return new_rows


def _first_asks(cells: list[Cell], asked: dict[str, None]) -> list[Cell]:
    out: dict[str, Cell] = {}
    for cell in cells:
        key = cell.to_string()
        if key not in asked:
            out.setdefault(key, cell)
    return list(out.values())


def _check_replay(fresh: list[Cell], asked: dict[str, None], saved: list[dict], journal: Path | None) -> None:
    """A resumed searcher must retrace the journal exactly, or its continuation is another run."""
    for offset, cell in enumerate(fresh):
        i = len(asked) + offset
        if i < len(saved) and cell.to_string() != saved[i]["arch"]:
            raise GennasError(
                f"resuming {journal}: query {i + 1} was {saved[i]['arch']} but the searcher now asks for "
                f"{cell.to_string()}; the journal was written by other code or settings. Delete it to start over"
            )
