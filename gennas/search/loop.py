"""The one search loop: any searcher, any oracle, a query budget, a journal to resume from.

The loop asks the searcher for at most what the budget has left, queries the oracle for
every asked cell (repeats are free), tells the searcher the answers, and journals each
new measurement. Resuming replays the run: the journal's answers are preloaded into the
oracle, the searcher (same seed, same settings) is re-run against them, and the loop
checks that it asks for the journalled cells in the journalled order before it spends
anything new — so a resumed run is the run that would have happened without the stop.

A :class:`Target` ends a run early once a measured cell reaches a value ("good enough",
or a benchmark's known optimum, where more queries cannot change the best found). The
loop checks it on the oracle's answers; the searcher never sees it, so every query up to
the stop is the one the run without a target makes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gennas import interrupt
from gennas.bench.oracle import Oracle
from gennas.errors import GennasError
from gennas.io import read_json_checked, write_json_checked
from gennas.search.backends import EvaluationBackend
from gennas.search.searcher import Searcher
from gennas.space.cell import Cell
from gennas.tracking import RunLogger

JOURNAL_FORMAT, JOURNAL_VERSION = "gennas-search-journal", 1
#: Rounds in a row without a new cell after which a searcher is taken to have converged.
MAX_IDLE_ROUNDS = 100
#: Values this close to a target count as reaching it (tables store rounded floats).
TARGET_TOLERANCE = 1e-6
#: Seconds between journal writes (and always at the end, or when the run is interrupted):
#: a table look-up is microseconds, rewriting the journal after each would dominate.
JOURNAL_INTERVAL_S = 5.0


#: How a journal says its run ended at a target (a later run without it may continue it).
TARGET_STOP = "target reached:"


@dataclass(frozen=True)
class Target:
    """Stop once a measured cell has ``metric`` at ``value`` or better (``direction`` max or min)."""

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


@dataclass
class SearchRun:
    """One seed of one method: the queries in order and what the search cost."""

    method: str
    seed: int
    budget: int
    history: list[dict[str, Any]] = field(default_factory=list)  # {"arch": ..., metric: value, ...}
    searcher_seconds: float = 0.0  # time spent inside ask/tell (the method's own overhead)
    oracle_seconds: float = 0.0  # time spent measuring (table look-ups or training)
    stopped: str = "budget"
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_journal(path: Path, run: SearchRun) -> list[dict[str, Any]]:
    payload = read_json_checked(path, "search journal", "rerun: this seed's search starts over")  # old journals without a hash load unchecked
    if payload.get("format") != JOURNAL_FORMAT or payload.get("version") != JOURNAL_VERSION:
        raise GennasError(f"{path} is not a gennas search journal (version {JOURNAL_VERSION}); delete it or use another --out")
    saved = payload["run"]
    mine = {"method": run.method, "seed": run.seed, **run.settings}
    theirs = {"method": saved["method"], "seed": saved["seed"], **saved.get("settings", {})}
    if mine != theirs:
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise GennasError(f"{path} holds a run with other settings ({', '.join(diff)}); use another --out or delete it")
    if len(saved["history"]) > run.budget:  # fewer (a run ended early) can go on under a smaller budget
        raise GennasError(f"{path} already used {len(saved['history'])} queries of a budget of {saved['budget']}, "
                          f"more than the {run.budget} asked for now")
    run.searcher_seconds, run.oracle_seconds = saved["searcher_seconds"], saved["oracle_seconds"]
    run.stopped = saved.get("stopped", "budget")
    return saved["history"]


def _save_journal(path: Path, run: SearchRun) -> None:
    write_json_checked(path, {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, "run": run.to_dict()})


def run_search(searcher: Searcher, oracle: Oracle, budget: int, *, method: str, seed: int,
               settings: dict[str, Any] | None = None, journal: str | Path | None = None,
               backend: EvaluationBackend | None = None, progress: bool = False,
               logger: RunLogger | None = None, deadline: float | None = None,
               target: Target | None = None) -> SearchRun:
    """Run ``searcher`` until ``budget`` distinct cells are measured (or it stops proposing new ones).

    ``deadline`` (a :func:`time.monotonic` instant) adds a wall-clock stop for comparisons
    under equal search time: no round starts after it, and within a round the cells are
    measured one by one and the round is cut at the deadline, so a large batch cannot
    overrun the budget by many trainings; a round that ends past the deadline is recorded
    but not told to the searcher (its refit could only overrun the clock). An ask that
    starts before the deadline runs to its end, so a searcher with an expensive ask can
    still overrun by one ask: ``search_seconds`` reports the real time.

    ``target`` stops the run after the round whose answers reach it. A journal that
    already reaches it is finished as it is, whatever budget it was written under.
    """
    if budget < 1:
        raise GennasError(f"the budget must be at least 1 query, got {budget}")
    run = SearchRun(method, seed, budget, settings=dict(settings or {}))
    journal = Path(journal) if journal else None
    saved = _load_journal(journal, run) if journal and journal.exists() else []
    reached = target.first_reached(saved) if target and saved else None
    converged = run.stopped != "budget" and not run.stopped.startswith(TARGET_STOP)
    if saved and (len(saved) >= budget or converged or reached):
        run.history = [dict(r) for r in saved]  # a finished run: its journal is its result, no replay needed
        if reached:  # the journal is left as written, so it still serves its own budget
            run.stopped = target.stop_reason(reached)
        return run
    run.stopped = "budget"
    oracle.budget = budget
    oracle.preload([(searcher.space.parse(r["arch"]), {k: v for k, v in r.items() if k != "arch"}) for r in saved])
    run.history = [dict(r) for r in saved]
    asked: dict[str, None] = {}  # distinct cells in the order the searcher first asked for them
    idle = 0
    reached = None  # the query that reached the target, once one has
    saved_rows, last_save = len(run.history), time.monotonic()
    bar = tqdm(total=budget, desc=f"{method} seed {seed}", disable=not progress, initial=len(saved))
    try:
        while len(asked) < budget and idle < MAX_IDLE_ROUNDS and not _past(deadline):
            interrupt.check()  # swallowed in the last tell: its answers are journalled, no ask uses the cut fit
            replaying = len(asked) < len(saved)
            request = min(searcher.batch_size, budget - len(asked))
            start = time.perf_counter()
            cells = searcher.ask(request)
            interrupt.check()  # a Ctrl-C swallowed inside ask (sklearn's MLP does) must not shape this round
            ask_seconds = time.perf_counter() - start
            if not cells or len(cells) > request:
                raise GennasError(f"searcher {method!r} returned {len(cells)} cells for a request of {request}")
            _check_replay(_first_asks(cells, asked), asked, saved, journal)
            start = time.perf_counter()
            if deadline is None:
                results = oracle.query_many(cells, backend)
            else:
                cells, results = _query_until(oracle, cells, deadline)
            oracle_seconds = time.perf_counter() - start
            fresh = _first_asks(cells, asked)
            if not cells:
                break
            start = time.perf_counter()
            if not _past(deadline):  # past it, the search is over: a model refit would only overrun the clock
                searcher.tell(cells, [oracle.for_searcher(r) for r in results])
            tell_seconds = time.perf_counter() - start
            answers = {cell.to_string(): result for cell, result in zip(cells, results)}
            new_rows = []
            for cell in fresh:
                key = cell.to_string()
                asked[key] = None
                if len(asked) > len(saved):
                    new_rows.append({"arch": key, **answers[key]})
            if not replaying or new_rows:  # replayed rounds were paid for by the run that journalled them
                run.searcher_seconds += ask_seconds + tell_seconds
                run.oracle_seconds += oracle_seconds
            if new_rows:
                run.history.extend(new_rows)
                bar.update(len(new_rows))
                if journal and time.monotonic() - last_save >= JOURNAL_INTERVAL_S:
                    _save_journal(journal, run)
                    saved_rows, last_save = len(run.history), time.monotonic()
                if logger is not None:
                    for row in new_rows:
                        logger.log({"query": len(run.history), **{k: v for k, v in row.items() if k != "arch"}})
            idle = 0 if fresh else idle + 1
            hit = target.first_reached(new_rows) if target else None
            if hit:
                reached = len(run.history) - len(new_rows) + hit
                break
        if reached:
            run.stopped = target.stop_reason(reached)
        elif _past(deadline):
            run.stopped = "time budget"
        elif len(asked) < budget:
            run.stopped = f"no new cell in {MAX_IDLE_ROUNDS} rounds (searcher converged)"
    finally:  # an interrupted run keeps every measurement it made
        bar.close()
        if journal and (len(run.history) > saved_rows or not journal.exists() or run.stopped != "budget"):
            _save_journal(journal, run)
    return run


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _query_until(oracle: Oracle, cells: list[Cell], deadline: float) -> tuple[list[Cell], list[dict[str, Any]]]:
    """Measure ``cells`` in order until the deadline passes; the measured prefix and its answers."""
    done: list[Cell] = []
    results: list[dict[str, Any]] = []
    for cell in cells:
        if _past(deadline):
            break
        results.append(oracle.query(cell))
        done.append(cell)
    return done, results


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
