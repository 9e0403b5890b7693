"""Classic regressors on one-hot cell encodings, behind the same interface as the GNN.

The field's standard references (NASLib, BANANAS): gradient boosting and random forests
on the flat per-edge one-hot vector, and the BANANAS surrogate: an ensemble of small
feed-forward networks. Spread comes from the model itself: the per-tree spread of a
forest, and the spread of an ensemble of subsampled boosting models or of networks
started from different seeds.

``features="one-hot+proxies"`` appends what the untrained network says about each cell
(:func:`gennas.metrics.proxies.proxy_features`: synflow, naswot, log FLOPs and params), free
for every cell: trees split on them from the first few measurements on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.neural_network import MLPRegressor

from gennas.errors import GennasError
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace
from predictors.base import Prediction, target_matrix

KINDS = ("gbr", "rf", "mlp")
FEATURES = ("one-hot", "one-hot+proxies")


class SklearnPredictor:
    def __init__(self, space: ArchSpace, tasks: Sequence[str], kind: str = "gbr", seed: int = 0,
                 n_models: int = 5, features: str = "one-hot") -> None:
        if kind not in KINDS:
            raise GennasError(f"unknown baseline {kind!r}; choose one of {KINDS}")
        if features not in FEATURES:
            raise GennasError(f"unknown features {features!r}; choose one of {FEATURES}")
        self.space, self.tasks, self.kind, self.seed, self.n_models = space, list(tasks), kind, seed, n_models
        self.features = features
        self.models: dict[str, list] = {}
        self.scale: dict[str, tuple[float, float]] = {}

    def _features(self, cells: Sequence[Cell]) -> np.ndarray:
        one_hot = np.stack([self.space.one_hot(c) for c in cells]) if cells else np.empty((0, self.space.one_hot_size))
        if self.features == "one-hot":
            return one_hot
        from gennas.metrics.proxies import proxy_features

        return np.hstack([one_hot, proxy_features(list(cells))])

    def fit(self, cells: Sequence[Cell], targets: dict[str, np.ndarray]) -> "SklearnPredictor":
        y = target_matrix(cells, targets, self.tasks)
        x = self._features(cells)
        for j, task in enumerate(self.tasks):
            rows = ~np.isnan(y[:, j])
            values = y[rows, j]
            # Networks need standardised targets (trees do not); predict() undoes the scale.
            mean, std = (float(values.mean()), float(values.std()) or 1.0) if self.kind == "mlp" else (0.0, 1.0)
            self.scale[task] = (mean, std)
            self.models[task] = [m.fit(x[rows], (values - mean) / std) for m in self._models()]
        return self

    def _models(self) -> list:
        if self.kind == "rf":
            return [RandomForestRegressor(n_estimators=200, min_samples_leaf=1, random_state=self.seed, n_jobs=1)]
        if self.kind == "mlp":
            return [MLPRegressor(hidden_layer_sizes=(64, 64), alpha=1e-3, learning_rate_init=3e-3, max_iter=400,
                                 random_state=self.seed * 100 + i) for i in range(self.n_models)]
        return [GradientBoostingRegressor(n_estimators=200, learning_rate=0.05, max_depth=3, subsample=0.8,
                                          random_state=self.seed * 100 + i) for i in range(self.n_models)]

    def predict(self, cells: Sequence[Cell], tasks: Sequence[str] | None = None) -> dict[str, Prediction]:
        x = self._features(cells)
        out = {}
        for task in tasks or self.tasks:
            if task not in self.models:
                raise GennasError(f"baseline has no fitted model for {task!r}; it predicts {list(self.models)}")
            models = self.models[task]
            if self.kind == "rf":
                per_tree = np.stack([tree.predict(x) for tree in models[0].estimators_])
                out[task] = Prediction(per_tree.mean(0), per_tree.std(0))
            else:
                mean, std = self.scale[task]
                preds = np.stack([m.predict(x) for m in models]) * std + mean
                out[task] = Prediction(preds.mean(0), preds.std(0))
        return out
