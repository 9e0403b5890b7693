"""gennas' own searcher: a predictor steers the diffusion generator; what it measures teaches the predictor.

One round:
1. the predictor (the transfer prior adapted to the measured cells, or — with no prior —
   a GNN ensemble trained on them) guides the diffusion generator towards the goal's
   objectives, each sample under its own preference vector, every ``regenerate_every``
   rounds; ``pool_source=cached`` instead keeps one unguided sample of ``cached_pool``
   cells for the whole search (drawn again only once all of it is measured) and lets the
   predictor re-score it each round, far cheaper (guided generation was a third of the
   searcher's time, experiments/results/search_profile_ours.md);
2. the generated pool, plus one- and two-edge mutations of the best measured cells
   (where a good cell's relatives usually are; with several objectives, of every cell
   on the measured front), is scored by an acquisition: one objective, optimistic
   (mean + kappa * spread); several, expected hypervolume improvement with the free
   costs exact (``acquisition=chebyshev`` keeps the random-scalarisation variant);
3. the best unmeasured candidates are asked for; their answers adapt the predictor.
With a transfer prior and accuracy as the one goal, the first ``source_portfolio`` queries
instead take each source table's best unmeasured cell in turn (see :meth:`_portfolio`);
with several objectives ``front_portfolio`` queries do (off by default: a source's accuracy
leaders are one end of a front, which helps where that end is what the search misses and costs
where the gap is elsewhere; experiments/results/search_multi_transfer.md).
Without a prior the first cells are unguided samples, which match the space's own
distribution, so the first fit sees an unbiased sample. The ensemble is refitted from
scratch after each batch (``fit_steps`` steps), each time from new initial weights, which
is what keeps the search exploring; ``refit_steps=N`` continues the last fit for N steps
instead (with a fit from scratch every ``full_refit_every`` rounds), several times faster
per query but slower to reach the optimum (experiments/results/search_speed_ours.md), so
not the default.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.metrics.task import Task, task_name
from gennas.objectives import minimisation_matrix, pareto_indices
from gennas.search.acquisition import ehvi_batch
from gennas.search.indicators import protocol_reference
from gennas.search.searcher import Result, SearchContext, Searcher
from gennas.seeds import EHVI_DRAWS_SALT, derive_seed
from gennas.space.cell import Cell
from gennas.space.space import ENUMERATION_LIMIT, CellSpace, same_space


#: Where the generated candidates come from: a guided sample redrawn every few rounds, or
#: one unguided sample kept and re-scored by the predictor.
POOL_SOURCES = ("cached", "guided")
#: What scores the candidates without a prior: the GNN alone, or the GNN mixed with a forest
#: on one-hot ops plus zero-cost proxies (:mod:`predictors.mixture`); guidance always follows the GNN.
SURROGATES = ("gnn", "gnn+proxies")
#: How ``gnn+proxies`` weighs its members: equally, or by the inverse of each member's mean
#: squared error forecasting the cells the search then measured (:func:`predictors.mixture.forecast_weights`).
MIXTURE_WEIGHTS = ("equal", "forecast")
DEFAULT_CACHED_POOL = 500
#: Transfer queries that take the source tables' leaders in turn before the model picks
#: (three per source with NB201's two; experiments/results/search_transfer.md).
DEFAULT_SOURCE_PORTFOLIO = 6


def remembered(costs: Callable[[Cell], Result]) -> Callable[[Cell], Result]:
    """``costs`` computed once per cell.

    Every round prices all its candidates' free costs, and the cached pool and the best
    cells' relatives come back round after round; pricing them again each round cost
    about as much as predicting them (see experiments/results/search_profile_ours_new.md).

    Args:
        costs: the context's exact cost function.

    Returns:
        The same function, remembering each cell's answer by its string.
    """
    known: dict[str, Result] = {}

    def cached(cell: Cell) -> Result:
        key = cell.to_string()
        if key not in known:
            known[key] = dict(costs(cell))
        return dict(known[key])  # a copy: a caller may add to its row

    return cached


class GenerativeSearch(Searcher):
    def __init__(self, context: SearchContext) -> None:
        if context.costs is not None:
            context = replace(context, costs=remembered(context.costs))
        super().__init__(context)
        from diffusion.commands import generator_path
        from diffusion.model import CellDiffusion

        options = context.options
        self.transfer = context.prior is not None
        self.batch_size = int(options.get("batch", 1 if self.transfer else 5))
        self.n_init = 0 if self.transfer else int(options.get("n_init", 10))
        self.pool_size = int(options.get("pool", 48))
        self.guidance = float(options.get("guidance", 30.0))
        self.kappa = float(options.get("kappa", 0.5))
        self.parents = int(options.get("parents", 10))
        self.regenerate_every = int(options.get("regenerate_every", 5 if self.transfer else 3))
        self.fit_steps = int(options.get("fit_steps", 400))
        # Defaults keep the guided pool and fits from scratch: the fast options lose quality
        # (experiments/results/search_speed_ours.md), so they are a choice, not the default.
        self.refit_steps = int(options.get("refit_steps", 0))
        self.full_refit_every = int(options.get("full_refit_every", 0))
        self.pool_source = str(options.get("pool_source", "guided"))
        if self.pool_source not in POOL_SOURCES:
            raise GennasError(f"unknown pool_source {self.pool_source!r}; choose {' or '.join(POOL_SOURCES)}")
        self.cached_pool = int(options.get("cached_pool", DEFAULT_CACHED_POOL))
        self.surrogate = str(options.get("surrogate", "gnn"))
        if self.surrogate not in SURROGATES:
            raise GennasError(f"unknown surrogate {self.surrogate!r}; choose {' or '.join(SURROGATES)}")
        if self.surrogate != "gnn" and not isinstance(self.space, CellSpace):
            raise GennasError(f"surrogate {self.surrogate} reads zero-cost proxies of cells; space "
                              f"{self.space.name!r} has none, use surrogate=gnn")
        if self.surrogate != "gnn" and self.transfer:
            raise GennasError(f"surrogate {self.surrogate} replaces the zero-prior GNN; with a transfer prior "
                              "the prior scores the candidates (use --prior none, or drop the option)")
        self.mixture_weights = str(options.get("mixture_weights", "equal"))
        if self.mixture_weights not in MIXTURE_WEIGHTS:
            raise GennasError(f"unknown mixture_weights {self.mixture_weights!r}; choose {' or '.join(MIXTURE_WEIGHTS)}")
        if self.mixture_weights != "equal" and self.surrogate == "gnn":
            raise GennasError(f"mixture_weights={self.mixture_weights} weighs the members of a mixture; "
                              "add --option surrogate=gnn+proxies")
        # Per mixture member, the summed squared error (and count) of its forecasts of the cells then
        # measured; sized by the first scored forecast (None until then: equal weights).
        self.forecast_errors: np.ndarray | None = None
        self.forecast_counts: np.ndarray | None = None
        # Each candidate's forecast by every member, {task: predicted mean}, kept until it is measured.
        self.forecasts: dict[str, list[dict[str, float]]] = {}
        if self.surrogate != "gnn" and self.space.size <= ENUMERATION_LIMIT:
            from gennas.metrics.proxies import ProxyTable

            ProxyTable.read_cached(self.space)  # a space's cached proxies spare evaluating them per candidate
        self.acquisition = str(options.get("acquisition", "ehvi" if len(self.objectives) > 1 else "ucb"))
        if self.acquisition not in ("ehvi", "ucb", "chebyshev"):
            raise GennasError(f"unknown acquisition {self.acquisition!r}; choose ehvi, ucb or chebyshev")
        if self.acquisition == "ehvi" and len(self.objectives) == 1:
            self.acquisition = "ucb"  # one objective: hypervolume improvement is plain improvement
        # Its own stream, so the searcher's other draws do not depend on the acquisition.
        draws = np.random.default_rng([self.context.seed, EHVI_DRAWS_SALT])
        self.draws = draws.standard_normal((int(options.get("ehvi_samples", 32)), len(self.objectives)))
        self.diffusion = CellDiffusion.load(options.get("generator") or generator_path(self.space.name))
        if not same_space(self.diffusion.space, self.space):
            raise GennasError(f"generator is for space {self.diffusion.space.name!r}, not {self.space.name!r}")
        self.predictor = None
        self.scorer = None  # what _predictions asks: the predictor, or its mixture with the proxy forest
        self.pool: dict[str, Cell] = {}
        self.rounds = 0
        self.sources = None
        self.table_candidates = int(options.get("table_candidates", 20))
        self.source_spread = int(options.get("source_spread", 0))
        self.source_portfolio = int(options.get("source_portfolio", DEFAULT_SOURCE_PORTFOLIO))
        self.front_portfolio = int(options.get("front_portfolio", 0))
        if self.transfer:
            self._load_prior()
            if int(options.get("source_tables", 1)):
                from predictors.transfer import SourceScores

                self.sources = SourceScores(context.prior)

    # ------------------------------------------------------------- predictor
    def _task(self, metric: str) -> str:
        return task_name(metric, self.context.dataset if self.transfer else None)

    def _load_prior(self) -> None:
        from predictors.transfer import load_prior

        if self.modelled != ["accuracy"] or not self.context.dataset:
            raise GennasError("the transfer prior models accuracy on an NB201 dataset; use --prior none for "
                              f"objectives {[o.metric for o in self.objectives]}")
        self.predictor = load_prior(self.context.dataset).fit_task(self._task("accuracy"), [], None)

    def _adapt(self) -> None:
        """Refit on every measured cell: few-shot adaptation of the prior, or a fresh ensemble."""
        cells = list(self.order)
        values = {m: np.array([self.seen[c.to_string()][m] for c in cells]) for m in self.modelled}
        if self.transfer:
            self.predictor.fit_task(self._task("accuracy"), cells, values["accuracy"])
            return
        from predictors.gnn_predictor import GNNConfig, GNNPredictor

        seed = derive_seed(self.context.seed, self.rounds)
        if self._warm_refit():
            self.predictor.fit(cells, values, warm_start=True, steps=self.refit_steps, seed=seed)
        else:
            config = GNNConfig(seed=seed, ensemble=3, steps=self.fit_steps)
            self.predictor = GNNPredictor(self.space, self.modelled, config).fit(cells, values)
        self.scorer = self.predictor
        if self.surrogate == "gnn+proxies":
            from predictors.baselines import SklearnPredictor
            from predictors.mixture import MixturePredictor, forecast_weights

            forest = SklearnPredictor(self.space, self.modelled, "rf", seed=seed, features="one-hot+proxies")
            weights = (forecast_weights(self.forecast_errors, self.forecast_counts)
                       if self.forecast_counts is not None else None)
            self.scorer = MixturePredictor([self.predictor, forest.fit(cells, values)], weights)

    def _warm_refit(self) -> bool:
        """Whether this refit continues the last fit rather than starting from scratch.

        A continuation keeps what the last fit learned from all but the newest cells, so a
        few steps suffice; a periodic fit from scratch (``full_refit_every``) bounds how far
        a chain of continuations can drift from what a fresh fit would learn.

        Returns:
            True for a warm continuation of ``refit_steps`` steps.
        """
        if self.predictor is None or self.refit_steps <= 0:
            return False
        return not (self.full_refit_every and self.rounds % self.full_refit_every == 0)

    # ------------------------------------------------------------- proposals
    def _pool_stale(self) -> bool:
        """Whether the generated pool must be drawn again before this round's proposals.

        A guided pool follows the predictor, so it is redrawn every ``regenerate_every``
        rounds; a cached unguided pool does not depend on it, so only once it is used up.
        """
        used_up = not any(self.unseen(c) for c in self.pool.values())
        return used_up or (self.pool_source == "guided" and self.rounds % self.regenerate_every == 0)

    def _regenerate(self) -> None:
        from diffusion.guidance import generate

        seed = derive_seed(self.context.seed, self.rounds)
        if self.pool_source == "cached":
            self.pool = {c.to_string(): c for c in self.diffusion.sample(self.cached_pool, seed=seed)}
            return
        # Guidance follows what it can differentiate: learned metrics and additive costs. A
        # cost like peak memory is not additive; it still counts exactly when candidates are picked.
        additive = self.space.soft_costs(self.context.network)
        guided = [o for o in self.objectives if o.metric in self.modelled or o.metric in additive]
        result = generate(self.diffusion, guided or self.objectives, [], self.pool_size, self.predictor,
                          self.context.network, self.context.dataset, self.guidance, seed=seed)
        self.pool = {row["arch"]: self.space.parse(row["arch"]) for row in result["cells"]}

    def _predictions(self, candidates: list[Cell]) -> tuple[list[Result], list[Result]]:
        """Rows of predicted means and of spreads: modelled metrics from the predictor, free costs exact (spread 0)."""
        means, spreads = {}, {}
        if self.modelled:
            predictions = self._scored(candidates, [self._task(m) for m in self.modelled])
            for metric in self.modelled:
                means[metric] = predictions[self._task(metric)].mean
                spreads[metric] = predictions[self._task(metric)].std
        if self.sources is not None and "accuracy" in means:
            means["accuracy"] = self._with_source_tables(candidates, means["accuracy"])
            if self.source_spread:
                spreads["accuracy"] = self._source_disagreement(candidates, spreads["accuracy"])
        zero = {o.metric: np.zeros(len(candidates)) for o in self.objectives}
        return self.candidate_rows(candidates, means), self.candidate_rows(candidates, {**zero, **spreads})

    def _scored(self, candidates: list[Cell], tasks: list[str]) -> dict:
        """The scorer's predictions; with forecast weights, each member's forecast is kept for :meth:`_weigh`."""
        if self.mixture_weights != "forecast" or self.scorer is None or self.scorer is self.predictor:
            return (self.scorer or self.predictor).predict(candidates, tasks)
        per_member = self.scorer.predict_members(candidates, tasks)
        self.forecasts = {c.to_string(): [{t: float(p[t].mean[i]) for t in tasks} for p in per_member]
                          for i, c in enumerate(candidates)}
        return self.scorer.combine(per_member)

    def _weigh(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        """Add each member's error forecasting the values just measured (as forecast when picked) to its record."""
        for cell, result in zip(cells, results):
            forecast = self.forecasts.get(cell.to_string())
            if forecast is None:
                continue  # an initial cell, picked before any fit
            for metric in self.modelled:
                value = result.get(metric, np.nan)
                if np.isfinite(value):
                    errors = np.array([(value - member[self._task(metric)]) ** 2 for member in forecast])
                    if self.forecast_errors is None:
                        self.forecast_errors, self.forecast_counts = np.zeros(len(errors)), np.zeros(len(errors))
                    self.forecast_errors += errors
                    self.forecast_counts += 1

    def _source_weights(self) -> dict[str, float] | None:
        """How the few-shot fit weighs each source dataset (None: uniform, before any fit)."""
        mixture = self.predictor.mixtures.get(self._task("accuracy"))
        return {Task.parse(task).dataset: w for task, w in mixture.items()} if mixture else None

    def _with_source_tables(self, cells: list[Cell], predicted: np.ndarray) -> np.ndarray:
        """The prior's estimate from the exact source accuracies where the tables hold the cell."""
        z = self.sources.score(cells, self._source_weights())
        centre, spread = self.predictor.normalization[self._task("accuracy")]
        return np.where(np.isnan(z), predicted, centre + spread * z)

    def _source_disagreement(self, cells: list[Cell], predicted: np.ndarray) -> np.ndarray:
        """``source_spread=1``: a table cell's spread is how much the sources disagree on it (in accuracy
        units), since its mean comes from the tables, not from the ensemble that ``predicted`` spreads."""
        spread = self.sources.disagreement(cells, self._source_weights())
        return np.where(np.isnan(spread), predicted, self.predictor.normalization[self._task("accuracy")][1] * spread)

    def _pick_scalarised(self, mean: list[Result], spread: list[Result], n: int) -> list[int]:
        """Optimistic rows (mean + kappa * spread towards better), one random Chebyshev weight per pick."""
        optimistic = [dict(m) for m in mean]
        for objective in self.objectives:
            sign = 1.0 if objective.direction == "max" else -1.0
            for row, s in zip(optimistic, spread):
                row[objective.metric] += sign * self.kappa * s[objective.metric]
        picked: list[int] = []
        for _ in range(min(n, len(optimistic))):
            scores = self.fitness(optimistic, self.random_weights())
            scores[picked] = -np.inf
            picked.append(int(scores.argmax()))
        return picked

    def _pick_ehvi(self, mean: list[Result], spread: list[Result], n: int) -> list[int]:
        measured = self.measured_points()
        m = minimisation_matrix(mean, self.objectives)
        s = np.abs(minimisation_matrix(spread, self.objectives))
        # The scoring protocol's reference point from what is known: the best measured value
        # of a learned metric (predicted, before any measurement), the worst exact cost among
        # measured cells and candidates.
        ref_known = protocol_reference(np.vstack([measured, m]), self.objectives)
        ref_measured = protocol_reference(measured, self.objectives) if len(measured) else ref_known
        ref = np.array([ref_measured[j] if o.metric in self.modelled else ref_known[j]
                        for j, o in enumerate(self.objectives)])
        return ehvi_batch(measured, m, s, ref, n, self.draws)

    def _parents(self) -> list[Cell]:
        """Cells whose relatives are searched: the best ones, or with several objectives the measured front too."""
        best = self.best(self.parents)
        if len(self.objectives) == 1 or not self.order:
            return best
        front = [self.order[i] for i in pareto_indices(self.measured_points())]
        return list({c.to_string(): c for c in front + best}.values())

    def _portfolio_size(self) -> int:
        """How many first transfer queries the portfolio takes: ``source_portfolio`` for accuracy alone,
        ``front_portfolio`` with several objectives (the accuracy end of the front)."""
        return self.source_portfolio if len(self.objectives) == 1 else self.front_portfolio

    def _portfolio(self, n: int) -> list[Cell]:
        """``source_portfolio=k``: the first k transfer queries take each source table's own best cell in turn.

        A target's best cells are often near the top of *one* source's table and far down the
        other's, so a weighted mean of the sources (what the acquisition scores) ranks them
        late; and a handful of measurements cannot yet tell which source the target follows.
        Trying each source's leaders in turn (the source-wise warm start of transfer HPO)
        bounds the wait by the optimum's rank in its best source times the number of sources.
        With several objectives the same picks are the front's accuracy end, which the
        multi-objective transfer search missed most (front_gap_ours_transfer.md); there the
        portfolio is ``front_portfolio`` long.

        Returns:
            Up to ``n`` cells; empty once the portfolio is spent (or without one).
        """
        if not self._in_portfolio():
            return []
        picked: list[Cell] = []
        exclude = set(self.seen)
        for query in range(len(self.seen), min(self._portfolio_size(), len(self.seen) + n)):
            arch = self.sources.leader(query % len(self.sources.datasets), exclude)
            if arch is None:
                break
            exclude.add(arch)
            picked.append(self.space.parse(arch))
        return picked

    def _in_portfolio(self) -> bool:
        """Whether the next query is still one of the source portfolio's (then no fit is needed for it)."""
        return self.sources is not None and len(self.seen) < self._portfolio_size()

    def ask(self, n: int) -> list[Cell]:
        portfolio = self._portfolio(n)
        if portfolio:
            return portfolio
        if self._in_portfolio():  # the tables ran out of leaders: fit on what the portfolio measured
            self._adapt()
        if len(self.seen) < self.n_init:
            unguided = self.diffusion.sample(self.n_init * 2, seed=self.context.seed)
            fresh = [c for c in unguided if self.unseen(c)]
            return (fresh or self.random_unseen(1))[: min(n, self.n_init - len(self.seen))]
        if self._pool_stale():
            self._regenerate()
        self.rounds += 1
        candidates = self.mutations_of(self._parents(), {k: c for k, c in self.pool.items() if self.unseen(c)})
        if self.sources is not None:  # the cells the source tables rate best are candidates too
            for arch in self.sources.top(self.table_candidates, self._source_weights(), set(self.seen),
                                         optimism=self.kappa if self.source_spread else 0.0):
                candidates.setdefault(arch, self.space.parse(arch))
        if not candidates:
            return self.random_unseen(n)
        cells = list(candidates.values())
        mean, spread = self._predictions(cells)
        pick = self._pick_ehvi if self.acquisition == "ehvi" else self._pick_scalarised
        return [cells[i] for i in pick(mean, spread, n)]

    def tell(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        super().tell(cells, results)
        if self.mixture_weights == "forecast":
            self._weigh(cells, results)
        # Portfolio queries use no model, and a few-shot fit starts from the prior each time,
        # so the fit waits until the portfolio is spent: the same model, several fits fewer.
        if self.modelled and len(self.seen) >= max(self.n_init, 1) and not self._in_portfolio():
            self._adapt()
