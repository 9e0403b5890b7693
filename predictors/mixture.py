"""A weighted mixture of predictors of different kinds: a GNN beside trees on free proxies.

Surrogates of different kinds err on different cells. The GNN reads the cell's graph; a
forest on one-hot ops plus zero-cost proxies (:mod:`gennas.metrics.proxies`) reads what the
untrained network passes. Averaging their predictions ranks NB201 cells better than either
alone (experiments/results/predictor_proxies.md), as ensembles of unlike members do.

For members :math:`m = 1..M` with weights :math:`w_m` (summing to one; equal by default),
predictive means :math:`\\mu_m` and spreads :math:`\\sigma_m`, the mixture's moments are

.. math::
    \\mu = \\sum_m w_m \\mu_m, \\qquad
    \\sigma^2 = \\sum_m w_m (\\sigma_m^2 + \\mu_m^2) - \\mu^2,

so the spread grows where the members disagree, which is where a query teaches most.
:func:`forecast_weights` gives the weights a search learns from how well each member
predicted the cells it then measured.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.space.cell import Cell
from predictors.base import Prediction, Predictor


class MixturePredictor:
    """Fits every member on the same data and predicts the moments of their weighted mixture.

    Args:
        members: predictors over the same tasks (each with ``fit`` and ``predict``).
        weights: one non-negative weight per member (normalised here); None for equal weights.
    """

    def __init__(self, members: Sequence[Predictor], weights: Sequence[float] | None = None) -> None:
        if not members:
            raise GennasError("a mixture needs at least one member predictor")
        tasks = [list(m.tasks) for m in members]
        if any(t != tasks[0] for t in tasks):
            raise GennasError(f"mixture members predict different tasks: {tasks}")
        self.members, self.tasks = list(members), tasks[0]
        w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(members),) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise GennasError(f"mixture weights must be {len(members)} non-negative numbers, not all 0: {weights}")
        self.weights = w / w.sum()

    def fit(self, cells: Sequence[Cell], targets: dict[str, np.ndarray]) -> "MixturePredictor":
        for member in self.members:
            member.fit(cells, targets)
        return self

    def predict_members(self, cells: Sequence[Cell], tasks: Sequence[str] | None = None) -> list[dict[str, Prediction]]:
        """Each member's own predictions of ``cells``, in member order (what :meth:`combine` mixes)."""
        return [m.predict(cells, tasks) for m in self.members]

    def combine(self, per_member: Sequence[dict[str, Prediction]]) -> dict[str, Prediction]:
        """Per task, the mixture's mean and standard deviation from the members' predictions.

        Shapes: each member's and the mixture's ``mean`` and ``std`` are (N,).
        """
        w = self.weights[:, None]
        out = {}
        for task in per_member[0]:
            # In double precision: a spread of 0.05 points beside a mean of 75 is lost in
            # float32's sigma^2 + mu^2 - mu^2.
            means = np.stack([p[task].mean for p in per_member]).astype(np.float64)
            stds = np.stack([p[task].std for p in per_member]).astype(np.float64)
            mean = (w * means).sum(0)
            second = (w * (stds ** 2 + means ** 2)).sum(0)
            out[task] = Prediction(mean, np.sqrt(np.maximum(second - mean ** 2, 0.0)))
        return out

    def predict(self, cells: Sequence[Cell], tasks: Sequence[str] | None = None) -> dict[str, Prediction]:
        """Per task, the mixture's mean and standard deviation over ``cells`` (Shapes: (N,) each)."""
        return self.combine(self.predict_members(cells, tasks))


def forecast_weights(squared_errors: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Weights inversely proportional to each member's mean squared forecast error (Bates and Granger).

    Each error is that of a member's forecast of a cell made *before* the cell was measured
    (its prediction when the cell was picked), so the weights score out-of-sample forecasts
    and learn per dataset how far to trust each kind of member. Only the means are scored:
    the members' spreads are not calibrated alike (a GNN ensemble's is far narrower than a
    forest's), and a density score would pick the wider one whatever it ranks.

    Args:
        squared_errors: (M,) summed squared errors per member.
        counts: (M,) how many forecasts each sum holds (0: no evidence yet).

    Returns:
        (M,) weights summing to one; equal while any member has no scored forecast.
    """
    errors, n = np.asarray(squared_errors, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    if (n <= 0).any():
        return np.full(len(errors), 1.0 / len(errors))
    inverse = 1.0 / np.maximum(errors / n, 1e-12)
    return inverse / inverse.sum()
