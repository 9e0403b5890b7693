"""The NAS-Bench-201 transfer prior: a predictor pretrained on the tables of other datasets.

In the transfer setting a method may use the full tables of the datasets it is *not*
searching for. The prior predictor learns accuracy on those datasets (one embedding each,
one shared accuracy head) plus the free cost metrics of the target's network, so it can
rank cells for a new dataset before a single one is measured, and adapt from a few.

Pretrained weights for each NB201 target live in ``predictors/weights/`` (small, committed);
``gennas predictor pretrain --dataset D`` regenerates them from scratch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gennas.bench.nb201 import canonical_dataset
from gennas.bench.tabular import TransferPrior, nb201_network
from gennas.errors import GennasError
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
    targets = {f"accuracy@{d}": values for d, values in prior.accuracy.items()}
    targets.update({m: costs.values[m][ordinals] for m in COST_METRICS})
    return GNNPredictor(space, list(targets), config).fit(cells, targets, progress=progress)


def load_prior(target: str) -> GNNPredictor:
    """The committed prior predictor for an NB201 target dataset."""
    path = prior_weights_path(target)
    if not path.exists():
        raise GennasError(f"no pretrained prior at {path}; create it with "
                          f"`gennas predictor pretrain --dataset {canonical_dataset(target)}`")
    return load_predictor(path)
