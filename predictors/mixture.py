"""An equal-weight mixture of predictors of different kinds: a GNN beside trees on free proxies.

Surrogates of different kinds err on different cells. The GNN reads the cell's graph; a
forest on one-hot ops plus zero-cost proxies (:mod:`gennas.metrics.proxies`) reads what the
untrained network passes. Averaging their predictions ranks NB201 cells better than either
alone (experiments/results/predictor_proxies.md), as ensembles of unlike members do.

For members :math:`m = 1..M` with predictive means :math:`\\mu_m` and spreads
:math:`\\sigma_m`, the mixture's moments are

.. math::
    \\mu = \\tfrac{1}{M} \\sum_m \\mu_m, \\qquad
    \\sigma^2 = \\tfrac{1}{M} \\sum_m (\\sigma_m^2 + \\mu_m^2) - \\mu^2,

so the spread grows where the members disagree, which is where a query teaches most.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.space.cell import Cell
from predictors.base import Prediction, Predictor


class MixturePredictor:
    """Fits every member on the same data and predicts the moments of their equal-weight mixture.

    Args:
        members: predictors over the same tasks (each with ``fit`` and ``predict``).
    """

    def __init__(self, members: Sequence[Predictor]) -> None:
        if not members:
            raise GennasError("a mixture needs at least one member predictor")
        tasks = [list(m.tasks) for m in members]
        if any(t != tasks[0] for t in tasks):
            raise GennasError(f"mixture members predict different tasks: {tasks}")
        self.members, self.tasks = list(members), tasks[0]

    def fit(self, cells: Sequence[Cell], targets: dict[str, np.ndarray]) -> "MixturePredictor":
        for member in self.members:
            member.fit(cells, targets)
        return self

    def predict(self, cells: Sequence[Cell], tasks: Sequence[str] | None = None) -> dict[str, Prediction]:
        """Per task, the mixture's mean and standard deviation over ``cells``.

        Shapes: each member's and the mixture's ``mean`` and ``std`` are (N,).
        """
        per_member = [m.predict(cells, tasks) for m in self.members]
        out = {}
        for task in per_member[0]:
            means = np.stack([p[task].mean for p in per_member])
            second = np.stack([p[task].std ** 2 + p[task].mean ** 2 for p in per_member]).mean(0)
            mean = means.mean(0)
            out[task] = Prediction(mean, np.sqrt(np.maximum(second - mean ** 2, 0.0)))
        return out
