"""Hyperband and BOHB on a training oracle: Optuna's ``HyperbandPruner`` over epochs of real training.

Fidelity is training epochs. A trial is one cell trained epoch by epoch on the full recipe's
schedule (:meth:`~gennas.bench.training.TrainingOracle.query_at`); after each epoch its
validation accuracy is reported to the study and Optuna's pruner decides whether it goes on,
so the brackets, rungs and promotions are Optuna's, not re-implemented here. ``hyperband``
samples cells with Optuna's ``RandomSampler`` (Li et al.'s Hyperband); ``bohb`` with its
``TPESampler``, which under a ``HyperbandPruner`` models each bracket's trials on their own
(Optuna's counterpart of Falkner et al.'s BOHB). A trial that survives every rung is measured
at full fidelity, test figures included.

The budget currency is epochs: every epoch trained is charged once (a repeated cell continues
from its checkpoint), so an epoch budget compares these methods fairly with full-fidelity ones.
A run stops at a number of distinct cells, an epoch budget, or a deadline, whichever comes first;
the epoch that would overrun a budget is never started.

The journal holds one row per distinct cell, in the order first tried, with its learning curve.
Resuming preloads those curves (already paid for) and replays the study with the same seed and
study name: the replay answers from the curves, and must try the journalled cells in the
journalled order before anything new is trained.
"""

from __future__ import annotations

import time
from typing import Any

from gennas.bench.training import TrainingOracle
from gennas.errors import GennasError
from gennas.search.journal import Journal, SearchRun
from gennas.search.optuna_peers import OptunaSearcher
from gennas.search.peers import require
from gennas.search.searcher import SearchContext
from gennas.search.stopping import MAX_IDLE_ROUNDS, Stopping
from gennas.space.cell import Cell

#: Option defaults: the lowest fidelity (epochs) and Hyperband's η.
MIN_EPOCHS, REDUCTION_FACTOR = 1, 3


class HyperbandSearcher(OptunaSearcher):
    """Optuna's ``RandomSampler`` under its ``HyperbandPruner`` (max resource: the recipe's epochs)."""

    method = "hyperband"

    def __init__(self, context: SearchContext, max_epochs: int) -> None:
        if len(context.objectives) != 1 or context.objectives[0].metric != "accuracy":
            raise GennasError(f"{self.method} prunes on validation accuracy after each epoch: it searches the one "
                              "objective accuracy:max (Optuna's pruners are single-objective)")
        optuna = require("optuna", self.method)
        low = int(context.options.get("min_epochs", MIN_EPOCHS))
        if low >= max_epochs:
            raise GennasError(f"--option min_epochs={low} leaves no rung below the recipe's {max_epochs} epochs; "
                              "lower it or raise --epochs")
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=low, max_resource=max_epochs,
            reduction_factor=int(context.options.get("reduction_factor", REDUCTION_FACTOR)))
        super().__init__(context, pruner=pruner)

    def make_sampler(self, options: dict[str, Any]) -> Any:
        return self.optuna.samplers.RandomSampler(seed=self.context.seed)


class BOHBSearcher(HyperbandSearcher):
    """Optuna's ``TPESampler`` (multivariate) under its ``HyperbandPruner``."""

    method = "bohb"

    def make_sampler(self, options: dict[str, Any]) -> Any:
        return self.optuna.samplers.TPESampler(seed=self.context.seed, multivariate=True,
                                               n_startup_trials=int(options.get("n_startup", 10)))


def run_multifidelity(searcher: HyperbandSearcher, oracle: TrainingOracle, stop: Stopping, *, method: str,
                      seed: int, settings: dict[str, Any] | None = None, journal: Any = None) -> SearchRun:
    """Run ``searcher``'s study against ``oracle`` until ``stop`` holds.

    Args:
        searcher: a fresh :class:`HyperbandSearcher` or :class:`BOHBSearcher` (a resumed run replays it).
        oracle: the training oracle; its ``epochs_spent`` is the run's epoch count.
        stop: distinct cells (``budget.queries``), optional epoch budget and deadline.
        method, seed, settings: the run's identity; a journal must match it to be resumed.
        journal: the run's journal and result file; resumed when it exists.

    Returns:
        The run: one row per distinct cell (``curve``, ``epochs``, ``pruned``: stopped below full fidelity by
        the pruner or by the end of the run; full metrics when completed).
    """
    run = SearchRun(method, seed, stop.budget.queries, settings=dict(settings or {}))
    book = Journal(journal)
    saved = book.load(run)
    if saved and (len(saved) >= stop.budget.queries or run.stopped not in ("budget", "time budget", "epoch budget")):
        run.history = [dict(r) for r in saved]
        return run
    driver = _Driver(searcher, oracle, stop, run, saved)
    try:
        run.stopped = driver.drive()
    finally:
        book.close(run)
    return run


class _Driver:
    """The trials of one run: propose, train epoch by epoch under the pruner, record the cell's row."""

    def __init__(self, searcher: HyperbandSearcher, oracle: TrainingOracle, stop: Stopping, run: SearchRun,
                 saved: list[dict[str, Any]]) -> None:
        self.searcher, self.oracle, self.stop, self.run, self.saved = searcher, oracle, stop, run, saved
        self.rows: dict[str, dict[str, Any]] = {}
        self.spent = 0  # epochs the rows have trained, in trial order (a replay recounts what the journal paid)
        for row in saved:
            cell = searcher.space.parse(row["arch"])
            oracle.preload_curve(cell, row["curve"])
            if not row["pruned"] and "accuracy" in row:
                oracle.preload([(cell, {k: v for k, v in row.items() if k not in ROW_KEYS})])
        if stop.epochs is not None and oracle.epochs_spent > stop.epochs.epochs:
            raise GennasError(f"the journal already used {oracle.epochs_spent} training epochs, more than the "
                              f"{stop.epochs.epochs} asked for now")

    def drive(self) -> str:
        """Trials until a stopping rule holds; returns why the run stopped."""
        idle = 0
        while True:
            if len(self.rows) >= self.stop.budget.queries:
                return "budget"
            if (reason := self._out_of_time_or_epochs()) is not None:
                return reason
            if idle >= MAX_IDLE_ROUNDS:
                return f"no new cell in {MAX_IDLE_ROUNDS} rounds (searcher converged)"
            replaying = len(self.rows) < len(self.saved)  # replayed trials were paid for by the journalled run
            start = time.perf_counter()
            trial, cell = self.searcher.next_trial()
            asked = time.perf_counter()
            new = cell.to_string() not in self.rows
            idle = 0 if new else idle + 1
            self._check_replay(cell, new)
            cut = self._trial(trial, cell)
            if not replaying:
                self.run.searcher_seconds += asked - start
                self.run.oracle_seconds += time.perf_counter() - asked
            if cut is not None:
                return cut

    def _out_of_time_or_epochs(self) -> str | None:
        """Why no further epoch may start: past the deadline, or one more epoch would overrun the budget."""
        if self.stop.deadline is not None and self.stop.deadline.passed():
            return "time budget"
        if self.stop.epochs is not None and not self.stop.epochs.fits(self.oracle.epochs_spent, 1):
            return "epoch budget"
        return None

    def _check_replay(self, cell: Cell, new: bool) -> None:
        i = len(self.rows)
        if new and i < len(self.saved) and self.saved[i]["arch"] != cell.to_string():
            raise GennasError(f"resuming {self.run.method} seed {self.run.seed}: cell {i + 1} was "
                              f"{self.saved[i]['arch']} but the study now tries {cell.to_string()}; the journal "
                              "was written by other code or settings. Delete it to start over")

    def _trial(self, trial: Any, cell: Cell) -> str | None:
        """Train ``cell`` rung by rung under the pruner; a stopping reason when the run ends inside it."""
        optuna, full = self.searcher.optuna, self.oracle.full_epochs
        known = len(self.oracle.curve(cell))
        for epoch in range(1, full + 1):
            if epoch > known and (reason := self._out_of_time_or_epochs()) is not None:
                self.searcher.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return reason
            result = self.oracle.query_at(cell, epoch)
            self._record(cell, result, pruned=epoch < full)
            if epoch == full:
                self.searcher.seen[cell.to_string()] = self.oracle.for_searcher(result)
                self.searcher.study.tell(trial, result["val_accuracy"])
                return None
            trial.report(result["val_accuracy"], epoch)
            if trial.should_prune():
                self.searcher.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                self.oracle.release(cell)
                return None
        return None

    def _record(self, cell: Cell, result: dict[str, Any], pruned: bool) -> None:
        """The cell's row: its curve so far and, once completed, its full measurement."""
        key = cell.to_string()
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = {"arch": key}
            self.run.history.append(row)
        if row.get("pruned") is False:
            return  # completed before: a repeat adds nothing
        # As far as this run has trained it (a preloaded curve may reach further: the replay catches up to it).
        curve = self.oracle.curve(cell)[:max(row.get("epochs", 0), result["epochs"])]
        self.spent += len(curve) - row.get("epochs", 0)
        row.update({**result, "curve": curve, "epochs": len(curve), "pruned": pruned,
                    "val_accuracy": curve[result["epochs"] - 1], "epochs_spent": self.spent})


#: Row keys that describe the trial rather than the measurement (left out when a row is preloaded as an answer).
ROW_KEYS = ("arch", "curve", "pruned", "epochs_spent")
