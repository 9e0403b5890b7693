"""Every search method by its CLI name, black-box and weight-sharing alike: one place to add a method.

A method is a :class:`Method`: ``search(problem, stop) -> SearchResult``. Black-box methods
(:class:`BlackBox`) wrap an ask/tell :class:`~gennas.search.searcher.Searcher` run by the one
loop against the problem's oracle; weight-sharing methods (:class:`WeightSharing`, DARTS
and GDAS) train a supernet on the problem's data and derive a cell from α. Adding a method
is one :data:`REGISTRY` entry plus its class; every command, benchmark and report reads
the registry.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from gennas.bench.oracle import Oracle
from gennas.bench.training import TrainingOracle
from gennas.data import DatasetSplits
from gennas.errors import GennasError
from gennas.search.backends import EvaluationBackend
from gennas.search.bo import BayesianOptimisation
from gennas.search.botorch_peers import BoTorchQLogEI, BoTorchQNEHVI
from gennas.search.evolution import RegularizedEvolution
from gennas.search.generative import MIXTURE_WEIGHTS, SURROGATES, GenerativeSearch
from gennas.search.journal import SearchRun
from gennas.search.local_search import LocalSearch
from gennas.search.loop import run_search
from gennas.search.multifidelity import BOHBSearcher, HyperbandSearcher, run_multifidelity
from gennas.search.nsga2 import NSGA2Searcher
from gennas.search.pnas import PNAS
from gennas.search.optuna_peers import OptunaGP, OptunaNSGA2, OptunaTPE
from gennas.search.options import Option, check_option_tables, choice, real, whole
from gennas.search.random_search import RandomSearch
from gennas.space.space import CellSpace
from gennas.search.reinforce import Reinforce
from gennas.search.searcher import SearchContext, Searcher
from gennas.search.stopping import Stopping
from gennas.space.cell import Cell
from gennas.tracking import RunLogger
from gennas.weightsharing import WeightSharingConfig, search_cell
from gennas.weightsharing.algorithms import ALGORITHMS, resolve_options

#: Steps of the timed pilot from which a weight-sharing method plans its epochs under a deadline.
PILOT_STEPS = 3


@dataclass
class Problem:
    """What one (method, seed) searches and where it measures.

    Attributes:
        context: what a searcher may know up front (space, goal, seed, free costs, prior, options).
        oracle: where black-box methods measure cells.
        splits: the data weight-sharing methods train their supernet on.
        channels, cells_per_stage, device: the supernet skeleton and device of weight-sharing methods.
        journal, settings: a black-box run's journal and the identity a resumed journal must match.
        backend, progress, logger: where cells are measured, a progress bar, per-query logging.
        select: the metric whose best measured cell is a black-box result's cell (None: no selection).
    """

    context: SearchContext
    oracle: Oracle | None = None
    splits: DatasetSplits | None = None
    channels: int = 16
    cells_per_stage: int = 2
    device: str = "auto"
    journal: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    backend: EvaluationBackend | None = None
    progress: bool = False
    logger: RunLogger | None = None
    select: str | None = None


@dataclass
class SearchResult:
    """What a method found: a cell (None when nothing was measured), why it stopped, and its trace.

    Attributes:
        cell: the derived cell (weight-sharing) or the best measured under ``Problem.select`` (black-box).
        stopped: why the search ended ("budget", "time budget", "epochs", a target, ...).
        run: black-box only: every query in order, with the time spent.
        details: method-specific figures for reports (queries, epochs, α mass, ...).
    """

    cell: Cell | None
    stopped: str
    run: SearchRun | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method(ABC):
    """A search method: its name, its ``--option`` table and how it searches."""

    name: str
    options: dict[str, Option] = field(default_factory=dict)
    check: Callable[[dict[str, Any]], None] | None = None  # cross-option rules beyond the table
    kind: ClassVar[str] = ""

    @abstractmethod
    def search(self, problem: Problem, stop: Stopping) -> SearchResult:
        """Search ``problem`` until ``stop`` says so."""


@dataclass(frozen=True)
class BlackBox(Method):
    """An ask/tell searcher run by the one loop (:func:`~gennas.search.loop.run_search`)."""

    searcher: type[Searcher] = RandomSearch
    kind: ClassVar[str] = "black-box"

    def make(self, context: SearchContext) -> Searcher:
        return self.searcher(context)

    def search(self, problem: Problem, stop: Stopping) -> SearchResult:
        if problem.oracle is None:
            raise GennasError(f"{self.name} measures cells: the problem needs an oracle")
        if "warm_start" in self.options:  # a shared --option applies only to the methods whose table has it
            _enable_warm_start(self.name, problem)
        run = run_search(self.make(problem.context), problem.oracle, stop.budget.queries, method=self.name,
                         seed=problem.context.seed, settings=problem.settings, journal=problem.journal,
                         backend=problem.backend, progress=problem.progress, logger=problem.logger,
                         deadline=stop.deadline.at if stop.deadline else None, target=stop.target,
                         epochs=stop.epochs.epochs if stop.epochs else None)
        if problem.select is None or not run.history:
            return SearchResult(None, run.stopped, run, {"queries": len(run.history), "stopped": run.stopped})
        best = max(run.history, key=lambda row: row[problem.select])  # the first measured among ties
        return SearchResult(problem.context.space.parse(best["arch"]), run.stopped, run,
                            {"queries": len(run.history), "stopped": run.stopped,
                             f"search_{problem.select}": best[problem.select]})


def _enable_warm_start(method: str, problem: Problem) -> None:
    """``--option warm_start=net2net``: children inherit their parent's trained weights (a training oracle only)."""
    options = problem.context.options
    if options.get("warm_start", "none") != "net2net":
        return
    if not isinstance(problem.oracle, TrainingOracle):
        raise GennasError(f"{method}: --option warm_start=net2net inherits trained weights: it needs a dataset to "
                          "train on, not a benchmark table")
    if not isinstance(problem.context.space, CellSpace):
        raise GennasError(f"{method}: --option warm_start=net2net morphs a parent's ops edge by edge, which needs a "
                          f"space of ops on the edges of a complete DAG (nb201, dagN), not {problem.context.space.name!r}")
    problem.oracle.warm_start(int(options.get("warm_epochs", max(1, problem.oracle.full_epochs // 2))))


#: The options of a searcher whose children may start from their parent's trained weights.
WARM_OPTIONS = {"warm_start": choice("none", "net2net"), "warm_epochs": whole()}


@dataclass(frozen=True)
class MultiFidelity(Method):
    """Hyperband or BOHB: Optuna's ``HyperbandPruner`` over training epochs on a training oracle.

    The currency is epochs (:attr:`~gennas.bench.training.TrainingOracle.epochs_spent`); the
    found cell is the best of those trained to full fidelity under ``Problem.select``.
    """

    searcher: type[HyperbandSearcher] = HyperbandSearcher
    kind: ClassVar[str] = "multi-fidelity"

    def search(self, problem: Problem, stop: Stopping) -> SearchResult:
        oracle = problem.oracle
        if not isinstance(oracle, TrainingOracle):
            raise GennasError(f"{self.name} trains cells epoch by epoch: it needs a dataset to train on, not a "
                              "benchmark table (fidelity = training epochs)")
        run = run_multifidelity(self.searcher(problem.context, oracle.full_epochs), oracle, stop, method=self.name,
                                seed=problem.context.seed, settings=problem.settings, journal=problem.journal)
        details = {"queries": len(run.history), "stopped": run.stopped, "epochs_spent": oracle.epochs_spent,
                   "completed": sum(not r["pruned"] for r in run.history)}
        completed = [r for r in run.history if not r["pruned"]] or run.history  # partial rows when none finished
        if problem.select is None or not completed:
            return SearchResult(None, run.stopped, run, details)
        best = max(completed, key=lambda row: (row["epochs"], row[problem.select]))
        return SearchResult(problem.context.space.parse(best["arch"]), run.stopped, run,
                            {**details, f"search_{problem.select}": best[problem.select]})


@dataclass(frozen=True)
class WeightSharing(Method):
    """DARTS or GDAS: one supernet trained bi-level on the problem's data, the cell derived from α.

    Under a deadline a :data:`PILOT_STEPS`-step pilot is timed first, then the search runs for as
    many epochs as fit into what is left (a fixed epoch count, so the lr and τ schedules
    complete), with the deadline as a hard stop.
    """

    algorithm: str = "darts"
    order: int = 1
    kind: ClassVar[str] = "weight-sharing"

    def config(self, problem: Problem, **fields: Any) -> WeightSharingConfig:
        """The search config of ``problem``; the method's own ``--option`` values go to ``options``."""
        mine = {k: v for k, v in problem.context.options.items() if k in self.options}
        return WeightSharingConfig(method=self.algorithm, order=self.order, channels=problem.channels,
                                   cells_per_stage=problem.cells_per_stage, seed=problem.context.seed,
                                   device=problem.device, options=mine, **fields)

    def plan_epochs(self, problem: Problem, deadline: float) -> int:
        """Epochs that fit before ``deadline``, from a timed pilot."""
        splits = problem.splits
        pilot = search_cell(splits, problem.context.space,
                            self.config(problem, epochs=1, max_steps=PILOT_STEPS)).trajectory[0]
        steps = max(1, len(splits.train) // min(WeightSharingConfig().batch_size, len(splits.train)))
        # Steps scale with the train split; the per-epoch evaluation of the supernet does not.
        epoch_seconds = pilot["train_seconds"] / pilot["steps"] * steps + pilot["seconds"] - pilot["train_seconds"]
        return max(1, int((deadline - time.monotonic()) / epoch_seconds))

    def search(self, problem: Problem, stop: Stopping) -> SearchResult:
        if problem.splits is None:
            raise GennasError(f"{self.name} trains a supernet: the problem needs data splits")
        deadline = stop.deadline.at if stop.deadline else None
        epochs = self.plan_epochs(problem, deadline) if deadline is not None else WeightSharingConfig().epochs
        result = search_cell(problem.splits, problem.context.space, self.config(problem, epochs=epochs),
                             deadline=deadline, progress=problem.progress)
        final = result.trajectory[-1] if result.trajectory else {}
        return SearchResult(result.cell, result.stopped, None, {
            "epochs_planned": epochs, "epochs": len(result.trajectory), "stopped": result.stopped,
            "label": result.label, "op_mass": final.get("op_mass"),
            "supernet_val_accuracy": final.get("supernet_val_accuracy")})


def _tournament_fits(options: dict[str, Any]) -> None:
    population, tournament = options.get("population_size", 10), options.get("tournament_size", 3)  # REA's defaults
    if tournament > population:
        raise GennasError(f"--option tournament_size={tournament} is larger than population_size={population}; "
                          "a tournament draws from the population")


def _knob_options(algorithm: str) -> dict[str, Option]:
    """The ``--option`` table of a weight-sharing method, from its knobs (one definition of each limit)."""
    return {name: Option("int" if knob.integer else "float", knob.low, help=knob.help)
            for name, knob in ALGORITHMS[algorithm].knobs.items()}


def _knob_check(algorithm: str) -> Callable[[dict[str, Any]], None]:
    """The cross-option rules of a weight-sharing method, checked before any method of a command runs."""

    def check(options: dict[str, Any]) -> None:
        table = ALGORITHMS[algorithm].knobs
        _, problems = resolve_options(algorithm, {k: v for k, v in options.items() if k in table}, None)
        if problems:
            raise GennasError(f"--option for {algorithm}: " + "; ".join(problems))

    return check


#: Every method; keep each option table in step with the ``options.get`` calls of its searcher.
REGISTRY: dict[str, Method] = {m.name: m for m in (
    BlackBox("ours", {"batch": whole(), "n_init": whole(0), "pool": whole(), "guidance": real(), "kappa": real(),
                      "parents": whole(), "regenerate_every": whole(), "fit_steps": whole(), "refit_steps": whole(0),
                      "full_refit_every": whole(0), "pool_source": choice("cached", "guided"), "cached_pool": whole(),
                      "acquisition": choice("ehvi", "ucb", "chebyshev"), "ehvi_samples": whole(),
                      "generator": Option("path"), "table_candidates": whole(0), "source_tables": whole(0),
                      "source_spread": whole(0), "source_portfolio": whole(0), "front_portfolio": whole(0),
                      "surrogate": choice(*SURROGATES), "mixture_weights": choice(*MIXTURE_WEIGHTS), **WARM_OPTIONS},
             searcher=GenerativeSearch),
    BlackBox("random", searcher=RandomSearch),
    BlackBox("rea", {"population_size": whole(2), "tournament_size": whole(1), **WARM_OPTIONS}, _tournament_fits,
             searcher=RegularizedEvolution),
    BlackBox("reinforce", {"lr": Option("float", 1e-12)}, searcher=Reinforce),
    BlackBox("bo", {"n_init": whole(), "surrogate": choice("mlp", "gbr", "rf", "gnn")}, searcher=BayesianOptimisation),
    BlackBox("ls", WARM_OPTIONS, searcher=LocalSearch),
    BlackBox("pnas", {"beam": whole(), "surrogate": choice("mlp", "gbr", "rf", "gnn")}, searcher=PNAS),
    BlackBox("nsga2", {"pop_size": whole(2)}, searcher=NSGA2Searcher),
    # Peers: the libraries' own samplers through their ask/tell (pip install 'gennas[peers]').
    BlackBox("optuna-tpe", {"n_startup": whole(0), "multivariate": choice("on", "off")}, searcher=OptunaTPE),
    BlackBox("optuna-gp", {"n_startup": whole(0)}, searcher=OptunaGP),
    BlackBox("optuna-nsga2", {"population_size": whole(2)}, searcher=OptunaNSGA2),
    BlackBox("botorch-qlogei", {"n_init": whole(), "candidates": whole()}, searcher=BoTorchQLogEI),
    BlackBox("botorch-qnehvi", {"n_init": whole(), "candidates": whole()}, searcher=BoTorchQNEHVI),
    # Multi-fidelity (epochs) on a training oracle: Optuna's HyperbandPruner with its Random / TPE sampler.
    MultiFidelity("hyperband", {"min_epochs": whole(), "reduction_factor": whole(2)}, searcher=HyperbandSearcher),
    MultiFidelity("bohb", {"min_epochs": whole(), "reduction_factor": whole(2), "n_startup": whole(0)},
                  searcher=BOHBSearcher),
    WeightSharing("darts", algorithm="darts", order=1),
    WeightSharing("darts2", algorithm="darts", order=2),
    WeightSharing("gdas", algorithm="gdas", order=1),
    WeightSharing("snas", _knob_options("snas"), _knob_check("snas"), algorithm="snas"),
    WeightSharing("pcdarts", _knob_options("pcdarts"), _knob_check("pcdarts"), algorithm="pcdarts"),
    WeightSharing("drnas", _knob_options("drnas"), _knob_check("drnas"), algorithm="drnas"),
    WeightSharing("sdarts-rs", _knob_options("sdarts-rs"), _knob_check("sdarts-rs"), algorithm="sdarts-rs"),
    WeightSharing("sdarts-adv", _knob_options("sdarts-adv"), _knob_check("sdarts-adv"), algorithm="sdarts-adv"),
    WeightSharing("rsps", _knob_options("rsps"), _knob_check("rsps"), algorithm="rsps"),
    WeightSharing("setn", _knob_options("setn"), _knob_check("setn"), algorithm="setn"),
    WeightSharing("enas", _knob_options("enas"), _knob_check("enas"), algorithm="enas"),
    WeightSharing("pdarts", _knob_options("pdarts"), _knob_check("pdarts"), algorithm="pdarts"),
    WeightSharing("dartspt", _knob_options("dartspt"), _knob_check("dartspt"), algorithm="dartspt"),
    WeightSharing("proxyless", _knob_options("proxyless"), _knob_check("proxyless"), algorithm="proxyless"),
)}
#: Kinds of method a query budget applies to (distinct cells measured; a multi-fidelity one counts cells tried).
QUERY_KINDS = (BlackBox.kind, MultiFidelity.kind)
#: The black-box methods at import (those a query budget applies to); the registry is the truth.
METHODS: dict[str, type[Searcher]] = {n: m.searcher for n, m in REGISTRY.items() if isinstance(m, BlackBox)}


def takes_goal(method: str, objectives: int) -> bool:
    """Whether ``method`` searches a goal of ``objectives`` objectives (botorch-qlogei one, botorch-qnehvi several)."""
    arity = getattr(METHODS.get(method), "arity", None)
    return arity is None or (arity == "several") == (objectives > 1)


def is_peer(method: str) -> bool:
    """Whether ``method`` is a peer: another library's sampler through our loop (Optuna, BoTorch)."""
    return getattr(METHODS.get(method), "__module__", "").endswith("_peers")


def get_method(name: str) -> Method:
    """The registered method ``name``."""
    if name not in REGISTRY:
        raise GennasError(f"unknown search method {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def make_searcher(method: str, context: SearchContext) -> Searcher:
    """A fresh ask/tell searcher of the black-box ``method`` for ``context``."""
    entry = REGISTRY.get(method)
    if not isinstance(entry, BlackBox):
        known = [n for n, m in REGISTRY.items() if isinstance(m, BlackBox)]
        raise GennasError(f"unknown search method {method!r}; choose from {', '.join(known)}")
    return entry.make(context)


def parse_methods(text: str, *, wallclock: bool = False) -> list[str]:
    """Comma-separated method names, in the order given, without repeats.

    Args:
        text: e.g. ``"ours,rea,random"``.
        wallclock: the ``--budget-minutes`` form, where weight-sharing methods run too.

    Returns:
        The names, each registered (and black-box or multi-fidelity unless ``wallclock``).

    Raises:
        GennasError: listing the methods of the form when a name is unknown or none is given.
    """
    methods = [m.strip() for m in text.split(",") if m.strip()]
    known = [n for n, m in REGISTRY.items() if wallclock or m.kind in QUERY_KINDS]
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        form = "with --budget-minutes " if wallclock else ""
        by_clock = [m for m in unknown if m in REGISTRY]
        hint = (f" ({', '.join(by_clock)}: weight-sharing, run by wall clock only: "
                f"gennas compare --methods {','.join(by_clock)} --budget-minutes M)") if by_clock else ""
        raise GennasError(f"unknown method(s) {unknown or text!r}; {form}choose from {', '.join(known)}{hint}")
    return list(dict.fromkeys(methods))


def check_options(options: dict[str, Any], methods: list[str]) -> None:
    """Raise a :class:`GennasError` unless every option is known to one of ``methods`` and well typed.

    Args:
        options: parsed ``--option`` pairs (numbers already parsed, the rest text).
        methods: the methods that will run; weight-sharing methods take none.
    """
    check_option_tables(options, {m: REGISTRY[m].options for m in methods})
    for m in methods:
        if REGISTRY[m].check is not None:
            REGISTRY[m].check(options)
