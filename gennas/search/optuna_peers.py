"""Optuna's samplers (TPE, GP, NSGA-II) as gennas searchers, through Optuna's own ask/tell API.

The cell is one Optuna parameter per edge, each a ``CategoricalDistribution`` over the
space's ops; the study has one direction per objective and is told every objective value
of a measured cell (free costs included: to Optuna they are just values). Nothing of the
samplers is re-implemented: the searcher only translates trials into cells and answers
into ``study.tell``.

Repeats: a sampler may propose a cell that is already measured. Its answer is known, so
the searcher tells the study that answer at once (no query is spent, as the loop would
not count it either) and asks the study again; only after :data:`FREE_REPEATS` such
proposals in a row is the repeat handed to the loop, which answers it free and counts the
round as idle. A proposal the space forbids is told to the study as failed.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import Any, ClassVar, Sequence

from gennas.errors import GennasError
from gennas.search.peers import prior_cells, require
from gennas.search.searcher import Result, SearchContext, Searcher
from gennas.space.cell import Cell
from gennas.space.protocol import decode_valid

#: Proposals of already measured cells answered inside one ask before one is handed to the loop.
FREE_REPEATS = 1000


class OptunaSearcher(Searcher):
    """One Optuna study per run; subclasses choose the sampler."""

    #: Sequential, as Optuna's samplers are meant to run (a pending trial carries no answer).
    batch_size = 1
    method: ClassVar[str] = "optuna"
    #: The option that sizes the sampler's startup design (random trials, or the prior's cells), and its default.
    startup_option: ClassVar[str] = "n_startup"
    startup_default: ClassVar[int] = 10

    def __init__(self, context: SearchContext, pruner: Any = None) -> None:
        """``pruner``: an Optuna pruner for multi-fidelity studies (None: trials are never pruned)."""
        super().__init__(context)
        self.optuna = require("optuna", self.method)
        self.optuna.logging.set_verbosity(self.optuna.logging.WARNING)  # one INFO line per trial otherwise
        self.names = [f"edge_{i}" for i in range(len(self.space.choices))]  # one per search variable
        self.distributions = {n: self.optuna.distributions.CategoricalDistribution(labels)
                              for n, labels in zip(self.names, self.space.choices)}
        with warnings.catch_warnings():  # multivariate TPE and the GP sampler are marked experimental
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            sampler = self.make_sampler(context.options)
        directions = ["maximize" if o.direction == "max" else "minimize" for o in self.objectives]
        # A fixed name: Optuna's Hyperband assigns a trial its bracket from a hash of the study's name.
        self.study = self.optuna.create_study(directions=directions, sampler=sampler, pruner=pruner,
                                              study_name=f"gennas-{self.method}-seed{context.seed}")
        for cell in prior_cells(context, self.warm_start(context.options)):
            self.study.enqueue_trial(self._params(cell))
        self.pending: dict[str, list[Any]] = {}  # cell string -> trials handed out, told at the next tell

    @abstractmethod
    def make_sampler(self, options: dict[str, Any]) -> Any:
        """The Optuna sampler, seeded with the run's seed."""

    def warm_start(self, options: dict[str, Any]) -> int:
        """The sampler's startup design: how many of the prior's best cells open the study when there is one."""
        return int(options.get(self.startup_option, self.startup_default))

    def ask(self, n: int) -> list[Cell]:
        cells = []
        for _ in range(n):
            trial, cell = self.next_trial()
            self.pending.setdefault(cell.to_string(), []).append(trial)
            cells.append(cell)
        return cells

    def tell(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        super().tell(cells, results)
        for cell, result in zip(cells, results):
            for trial in self.pending.pop(cell.to_string(), []):
                self.study.tell(trial, self._values(result))

    def next_trial(self) -> tuple[Any, Cell]:
        """The study's next proposal that needs a query; measured repeats are answered from what was told."""
        for attempt in range(FREE_REPEATS + 1):
            trial = self.study.ask(self.distributions)
            cell = decode_valid(self.space, [labels.index(trial.params[n])
                                             for n, labels in zip(self.names, self.space.choices)])
            if cell is None:
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
                continue
            key = cell.to_string()
            if key in self.seen and attempt < FREE_REPEATS:
                self.study.tell(trial, self._values(self.seen[key]))
                continue
            return trial, cell
        raise GennasError(f"{self.method}: {FREE_REPEATS + 1} proposals in a row were cells the space forbids")

    def _params(self, cell: Cell) -> dict[str, str]:
        """The trial parameters of a cell: each variable's label."""
        return {n: labels[i] for n, labels, i in zip(self.names, self.space.choices, self.space.encode(cell))}

    def _values(self, result: Result) -> list[float]:
        return [float(result[o.metric]) for o in self.objectives]


class OptunaTPE(OptunaSearcher):
    """``TPESampler``; multivariate (one density over all edges), as the issue's anchor figures were taken."""

    method = "optuna-tpe"

    def make_sampler(self, options: dict[str, Any]) -> Any:
        return self.optuna.samplers.TPESampler(seed=self.context.seed, n_startup_trials=self.warm_start(options),
                                               multivariate=options.get("multivariate", "on") == "on")


class OptunaGP(OptunaSearcher):
    """``GPSampler``: Optuna's GP-based BO (categorical parameters through its own kernel)."""

    method = "optuna-gp"

    def make_sampler(self, options: dict[str, Any]) -> Any:
        # The table is deterministic: each cell has one answer, so the GP need not model noise.
        return self.optuna.samplers.GPSampler(seed=self.context.seed, n_startup_trials=self.warm_start(options),
                                              deterministic_objective=True)


class OptunaNSGA2(OptunaSearcher):
    """``NSGAIISampler`` with Optuna's default operators; the prior, when given, is its first generation."""

    method = "optuna-nsga2"
    startup_option, startup_default = "population_size", 50  # Optuna's default population

    def make_sampler(self, options: dict[str, Any]) -> Any:
        return self.optuna.samplers.NSGAIISampler(seed=self.context.seed, population_size=self.warm_start(options))
