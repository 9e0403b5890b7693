"""Bayesian optimisation in the BANANAS style (White et al., 2021).

A surrogate ensemble is fitted to every measured cell; candidates are mutations of the
best cells so far plus a few random ones; each round takes the candidates with the best
independent Thompson samples (one draw from each candidate's predicted mean and spread).
Free cost objectives enter with their exact values, so only measured metrics are modelled.
The default surrogate is the BANANAS one, an ensemble of small feed-forward networks on
the cell encoding; ``surrogate="gnn"`` uses gennas' own GNN ensemble instead.
"""

from __future__ import annotations

import warnings
import numpy as np

from gennas.search.searcher import Result, SearchContext, Searcher
from gennas.seeds import derive_seed
from gennas.space.cell import Cell


class BayesianOptimisation(Searcher):
    batch_size = 5

    def __init__(self, context: SearchContext, n_init: int = 10, n_parents: int = 10, n_random: int = 50) -> None:
        super().__init__(context)
        options = context.options
        self.n_init = int(options.get("n_init", n_init))
        self.n_parents, self.n_random = n_parents, n_random
        self.surrogate = str(options.get("surrogate", "mlp"))
        self.rounds = 0

    def ask(self, n: int) -> list[Cell]:
        if len(self.seen) < self.n_init:
            return self.random_unseen(min(n, self.n_init - len(self.seen)))
        candidates = self._candidates()
        if not candidates:
            return self.random_unseen(n)
        rows = self._predicted_rows(candidates)
        scores = self.fitness(rows, self.random_weights())
        self.rounds += 1
        return [candidates[i] for i in np.argsort(-scores, kind="stable")[:n]]

    def _candidates(self) -> list[Cell]:
        found = self.mutations_of(self.best(self.n_parents))
        for cell in self.random_unseen(self.n_random, exclude=set(found)):
            found[cell.to_string()] = cell
        return list(found.values())

    def _predicted_rows(self, candidates: list[Cell]) -> list[Result]:
        """Per candidate: Thompson draws for modelled objectives, exact values for free ones."""
        draws = {}
        if self.modelled:
            predictions = self._fit(self.modelled).predict(candidates, self.modelled)
            draws = {m: self.rng.normal(predictions[m].mean, np.maximum(predictions[m].std, 1e-9)) for m in self.modelled}
        return self.candidate_rows(candidates, draws)

    def _fit(self, metrics: list[str]):
        cells = list(self.order)
        targets = {m: np.array([self.seen[c.to_string()][m] for c in cells]) for m in metrics}
        seed = derive_seed(self.context.seed, self.rounds)
        if self.surrogate == "gnn":
            from predictors.gnn_predictor import GNNConfig, GNNPredictor

            return GNNPredictor(self.space, metrics, GNNConfig(seed=seed, steps=300)).fit(cells, targets)
        from predictors.baselines import SklearnPredictor

        with warnings.catch_warnings():  # small data: the networks stop at max_iter on purpose
            warnings.simplefilter("ignore")
            return SklearnPredictor(self.space, metrics, self.surrogate, seed=seed).fit(cells, targets)
