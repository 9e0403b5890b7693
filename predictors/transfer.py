"""The NAS-Bench-201 transfer prior: a predictor pretrained on the tables of other datasets.

In the transfer setting a method may use the full tables of the datasets it is *not*
searching for. The prior predictor learns accuracy on those datasets (one embedding each,
one shared accuracy head) plus the free cost metrics of the target's network, so it can
rank cells for a new dataset before a single one is measured, and adapt from a few.

Pretrained weights for each NB201 target live in ``predictors/weights/`` (small, committed);
``gennas predictor pretrain --dataset D`` regenerates them from scratch. Their cost heads
(flops, params, memory_bytes) are never consulted, since every caller takes those costs
exact; the committed files' flops head was fitted to the conv + linear count that preceded
the NAS-Bench-201 API convention (issue 21), so `gennas predictor predict` on them reports
FLOPs without pooling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gennas.bench.nb201 import canonical_dataset
from gennas.bench.tabular import TransferPrior, nb201_network
from gennas.errors import GennasError
from gennas.metrics.task import task_name
from gennas.metrics.costs import COST_METRICS, CostTable
from gennas.space.cell import Cell
from gennas.space.space import nb201_space
from predictors.checkpoint import load_predictor
from predictors.gnn_predictor import GNNConfig, GNNPredictor

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
PRETRAIN_CONFIG = GNNConfig(steps=2000, batch_per_task=96, hidden=64, layers=4, ensemble=5, seed=0)


def prior_weights_path(target: str) -> Path:
    return WEIGHTS_DIR / f"nb201_prior_{canonical_dataset(target)}.pt"


def pretrain_prior(target: str, prior: TransferPrior, config: GNNConfig = PRETRAIN_CONFIG,
                   progress: bool = False) -> GNNPredictor:
    """Fit accuracy on every non-target table and the target network's costs, on all NB201 cells."""
    target = canonical_dataset(target)
    if target in prior.accuracy:
        raise GennasError(f"a prior for {target!r} must not contain {target!r}'s own table")
    space = nb201_space()
    cells = [Cell.from_string(a) for a in prior.archs]
    costs = CostTable.load_or_build(space, nb201_network(target))
    ordinals = np.array([space.ordinal(c) for c in cells])
    targets = {task_name("accuracy", d): values for d, values in prior.accuracy.items()}
    targets.update({m: costs.values[m][ordinals] for m in COST_METRICS})
    return GNNPredictor(space, list(targets), config).fit(cells, targets, progress=progress)


def load_prior(target: str) -> GNNPredictor:
    """The committed prior predictor for an NB201 target dataset."""
    path = prior_weights_path(target)
    if not path.exists():
        raise GennasError(f"no pretrained prior at {path}; create it with "
                          f"`gennas predictor pretrain --dataset {canonical_dataset(target)}`")
    return load_predictor(path)


class SourceScores:
    """The source tables themselves, standardised: the prior's exact knowledge of the cells they cover.

    The GNN prior is trained to reproduce these tables, yet it misorders their top cells;
    where a cell's source accuracies are known, using them beats predicting them (the
    search benchmark's transfer part compares both). A target's estimate is a weighted mean of the sources' z-scores, weighted as the few-shot
    fit weighs the source datasets (uniform before any measurement).
    """

    def __init__(self, prior: TransferPrior) -> None:
        self.datasets = list(prior.accuracy)
        self.archs = list(prior.archs)
        self.row = {arch: i for i, arch in enumerate(self.archs)}
        columns = [np.asarray(prior.accuracy[d], dtype=np.float64) for d in self.datasets]
        self.z = np.stack([(c - c.mean()) / max(c.std(), 1e-12) for c in columns], axis=1)

    def _weights(self, weights: dict[str, float] | None) -> np.ndarray:
        if not weights:
            return np.full(len(self.datasets), 1.0 / len(self.datasets))
        w = np.array([weights.get(d, 0.0) for d in self.datasets])
        return w / w.sum() if w.sum() > 0 else np.full(len(self.datasets), 1.0 / len(self.datasets))

    def _on_cells(self, cells: list[Cell], per_row: np.ndarray) -> np.ndarray:
        """A value per table row (arch) read for ``cells``; NaN for a cell no source table holds."""
        rows = np.array([self.row.get(c.to_string(), -1) for c in cells], dtype=int)
        out = np.full(len(cells), np.nan)
        out[rows >= 0] = per_row[rows[rows >= 0]]
        return out

    def score(self, cells: list[Cell], weights: dict[str, float] | None = None) -> np.ndarray:
        """Weighted mean z-score per cell; NaN for a cell no source table holds."""
        return self._on_cells(cells, self.z @ self._weights(weights))

    def disagreement(self, cells: list[Cell], weights: dict[str, float] | None = None) -> np.ndarray:
        """Weighted standard deviation of the sources' z-scores per cell; NaN where no table holds it.

        Sources that disagree on a cell leave its target accuracy uncertain whatever their
        mean: with two sources weighted alike, mean + 1 x this is the larger z-score, so
        an optimistic acquisition tries each source's own best cells, not only those the
        sources agree on.
        """
        return self._on_cells(cells, self._spread(self.z, self._weights(weights)))

    @staticmethod
    def _spread(z: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(cells, sources) z-scores, source weights summing to 1 -> (cells,) weighted std."""
        mean = z @ w
        return np.sqrt(np.maximum(((z - mean[:, None]) ** 2) @ w, 0.0))

    def leader(self, source: int, exclude: set[str]) -> str | None:
        """Source ``source``'s own best table cell not in ``exclude`` (None once it has none left)."""
        order = np.argsort(-self.z[:, source], kind="stable")
        return next((self.archs[i] for i in order if self.archs[i] not in exclude), None)

    def top(self, k: int, weights: dict[str, float] | None = None, exclude: set[str] | None = None,
            optimism: float = 0.0) -> list[str]:
        """The ``k`` best-scoring table cells (NB201 strings) not in ``exclude``.

        ``optimism`` ranks by mean + optimism x :meth:`disagreement` instead of the mean.
        """
        w = self._weights(weights)
        score = self.z @ w + (optimism * self._spread(self.z, w) if optimism else 0.0)
        order = np.argsort(-score, kind="stable")
        exclude = exclude or set()
        return [self.archs[i] for i in order if self.archs[i] not in exclude][:k]
