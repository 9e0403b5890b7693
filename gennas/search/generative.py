"""gennas' own searcher: a predictor steers the diffusion generator; what it measures teaches the predictor.

One round:
1. the predictor (the transfer prior adapted to the measured cells, or — with no prior —
   a GNN ensemble trained on them) guides the diffusion generator towards the goal's
   objectives, each sample under its own preference vector;
2. the generated pool, plus one- and two-edge mutations of the best measured cells
   (where a good cell's relatives usually are), is scored by an optimistic acquisition
   (mean + kappa * spread for modelled metrics, exact values for free costs);
3. the best unmeasured candidates are asked for; their answers adapt the predictor.
Without a prior the first cells are unguided samples, which match the space's own
distribution, so the first fit sees an unbiased sample.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.search.searcher import Result, SearchContext, Searcher
from gennas.space.cell import Cell


class GenerativeSearch(Searcher):
    def __init__(self, context: SearchContext) -> None:
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
        self.diffusion = CellDiffusion.load(options.get("generator") or generator_path(self.space.name))
        if self.diffusion.space.ops != self.space.ops or self.diffusion.space.n_nodes != self.space.n_nodes:
            raise GennasError(f"generator is for space {self.diffusion.space.name!r}, not {self.space.name!r}")
        self.predictor = None
        self.pool: dict[str, Cell] = {}
        self.rounds = 0
        if self.transfer:
            self._load_prior()

    # ------------------------------------------------------------- predictor
    def _task(self, metric: str) -> str:
        return f"{metric}@{self.context.dataset}" if self.transfer else metric

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

        config = GNNConfig(seed=self.context.seed * 1000 + self.rounds, ensemble=3,
                           steps=int(self.context.options.get("fit_steps", 400)))
        self.predictor = GNNPredictor(self.space, self.modelled, config).fit(cells, values)

    # ------------------------------------------------------------- proposals
    def _regenerate(self) -> None:
        from diffusion.guidance import generate

        seed = self.context.seed * 1000 + self.rounds
        result = generate(self.diffusion, self.objectives, [], self.pool_size, self.predictor, self.context.network,
                          self.context.dataset, self.guidance, seed=seed)
        self.pool = {row["arch"]: self.space.parse(row["arch"]) for row in result["cells"]}

    def _score(self, candidates: list[Cell]) -> list[Result]:
        """Optimistic rows: mean + kappa * spread (towards better) for modelled metrics, exact free costs."""
        optimistic = {}
        if self.modelled:
            predictions = self.predictor.predict(candidates, [self._task(m) for m in self.modelled])
            for objective in self.objectives:
                if objective.metric in self.modelled:
                    p = predictions[self._task(objective.metric)]
                    sign = 1.0 if objective.direction == "max" else -1.0
                    optimistic[objective.metric] = p.mean + sign * self.kappa * p.std
        return self.candidate_rows(candidates, optimistic)

    def ask(self, n: int) -> list[Cell]:
        if len(self.seen) < self.n_init:
            unguided = self.diffusion.sample(self.n_init * 2, seed=self.context.seed)
            fresh = [c for c in unguided if self.unseen(c)]
            return (fresh or self.random_unseen(1))[: min(n, self.n_init - len(self.seen))]
        if self.rounds % self.regenerate_every == 0 or not any(self.unseen(c) for c in self.pool.values()):
            self._regenerate()
        self.rounds += 1
        candidates = self.mutations_of(self.best(self.parents), {k: c for k, c in self.pool.items() if self.unseen(c)})
        if not candidates:
            return self.random_unseen(n)
        cells = list(candidates.values())
        rows = self._score(cells)
        picked: list[int] = []
        for _ in range(min(n, len(cells))):
            scores = self.fitness(rows, self.random_weights())
            scores[picked] = -np.inf
            picked.append(int(scores.argmax()))
        return [cells[i] for i in picked]

    def tell(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        super().tell(cells, results)
        if self.modelled and len(self.seen) >= max(self.n_init, 1):
            self._adapt()
