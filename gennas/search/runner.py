"""What `gennas search` and `gennas compare` do: build oracle and searcher per seed, run, report.

Each (method, seed) gets a fresh oracle, so budgets and caches never leak between runs,
and a journal under ``OUT/<method>/seed_<k>.json`` that doubles as its result file: an
interrupted command re-run with the same options resumes every unfinished seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gennas.bench.nb201 import DATASETS, canonical_dataset
from gennas.bench.oracle import Oracle
from gennas.errors import GennasError
from gennas.metrics.costs import cost_metrics
from gennas.metrics.lut import table_in_use
from gennas.metrics.registry import TABLE_LATENCY
from gennas.objectives import Objective, parse_objectives
from gennas.search.backends import EvaluationBackend
from gennas.search.journal import SearchRun
from gennas.search.methods import Problem, get_method
from gennas.search.searcher import SearchContext
from gennas.search.spec import RunSpec
from gennas.search.stopping import Stopping, Target
from gennas.space.space import get_space
from gennas.tracking import RunLogger

PRIORS = ("none", "transfer")


@dataclass
class SearchSpec(RunSpec):
    """The options shared by every run of a search or comparison under a query budget."""

    budget: int = 100
    prior: str = "none"
    objectives: str = "accuracy:max"
    stop_at: str | None = None  # METRIC:VALUE, end each run once a measured cell reaches it; not part of its identity
    budget_epochs: int | None = None  # training epochs per run (a training oracle's currency); not part of its identity

    def __post_init__(self) -> None:
        if self.prior not in PRIORS:
            raise GennasError(f"--prior must be one of {PRIORS}, got {self.prior!r}")
        if self.budget < 1 or self.seeds < 1:
            raise GennasError("--budget and --seeds must be at least 1")
        if self.budget_epochs is not None and self.budget_epochs < self.epochs:
            raise GennasError(f"--budget-epochs {self.budget_epochs} is less than one full training of "
                              f"--epochs {self.epochs}; raise it")
        self.goal: list[Objective] = parse_objectives(self.objectives)
        self.target = parse_target(self.stop_at, self.goal) if self.stop_at else None
        self.tabular = get_space(self.space).name == "nb201" and self._nb201_dataset() is not None
        if self.tabular and self.budget_epochs is not None:
            raise GennasError("--budget-epochs counts training epochs: it needs a dataset to train on, not an NB201 "
                              "table")
        if self.prior == "transfer" and not self.tabular:
            raise GennasError("--prior transfer uses the other NB201 tables: it needs --space nb201 and "
                              f"--dataset one of {', '.join(DATASETS)}")

    def _nb201_dataset(self) -> str | None:
        try:
            return canonical_dataset(self.dataset)
        except GennasError:
            return None

    def settings(self) -> dict[str, Any]:
        """What identifies a run (a resumed journal must match it)."""
        out = self.fields(("space", "dataset", "prior", "objectives", "options", "epochs"))
        out["dataset"] = self._nb201_dataset() or self.dataset
        table = table_in_use()
        if table is not None and any(o.metric == TABLE_LATENCY for o in self.goal):
            out["latency_table"] = table.digest  # a resumed run must read the same table
        return out

    def make_oracle(self) -> Oracle:
        if self.tabular:
            from gennas.bench.tabular import TabularOracle

            return TabularOracle(self.dataset)
        from gennas.bench.training import TrainingOracle
        from gennas.train.trainer import TrainConfig

        return TrainingOracle(self.dataset, space=get_space(self.space), train=TrainConfig(epochs=self.epochs),
                              progress=False)

    def context(self, oracle: Oracle, seed: int) -> SearchContext:
        prior = oracle.prior() if self.prior == "transfer" else None  # type: ignore[attr-defined]
        return SearchContext(space=oracle.space, objectives=self.goal, seed=seed, costs=oracle.cost,
                             network=oracle.network, dataset=self._nb201_dataset() or self.dataset, prior=prior,
                             options=dict(self.options))


def parse_target(text: str, goal: list[Objective]) -> Target:
    """``accuracy:94.37`` -> a target on one of the goal's objectives, in its direction."""
    metric, sep, value = text.rpartition(":")
    directions = {o.metric: o.direction for o in goal}
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or number is None or metric not in directions:
        raise GennasError(f"--stop-at {text!r}: write METRIC:VALUE with METRIC one of the objectives "
                          f"({', '.join(directions)}), e.g. --stop-at {goal[0].metric}:94.0")
    return Target(metric, number, directions[metric])


def run_method(spec: SearchSpec, method: str, out: str | Path | None = None, *,
               backend: EvaluationBackend | None = None, progress: bool = False, wandb: bool = False) -> list[SearchRun]:
    """Every seed of one black-box method; finished seeds found under ``out`` are reused, unfinished ones resumed.

    Args:
        spec: the options shared by every run.
        method: a black-box method of the registry.
        out: journals go to ``OUT/<method>/seed_<k>.json``; None keeps nothing.
        backend, progress, wandb: where cells are measured, a progress bar, wandb logging.

    Returns:
        One run per seed, in seed order.
    """
    answered = ("accuracy", *cost_metrics())  # what the NB201 table answers: its accuracy and the free costs
    for objective in spec.goal:
        if spec.tabular and objective.metric not in answered:
            raise GennasError(f"objective {objective.metric!r} is not in the NB201 benchmark; it answers "
                              f"{', '.join(answered)} (and latency with --latency-table FILE)")
    runs = []
    for seed in spec.seed_range():
        oracle = spec.make_oracle()
        logger = RunLogger(wandb, name=f"{method}-seed{seed}", config={"method": method, "seed": seed,
                                                                      **spec.settings()},
                           directory=Path(out) if out else None)
        problem = Problem(spec.context(oracle, seed), oracle=oracle, settings=spec.settings(), backend=backend,
                          journal=Path(out) / method / f"seed_{seed}.json" if out else None, progress=progress,
                          logger=logger)
        try:
            runs.append(get_method(method).search(problem, Stopping.of(spec.budget, target=spec.target,
                                                                   epochs=spec.budget_epochs)).run)
        finally:
            logger.finish()
    return runs
