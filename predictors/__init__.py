"""Multi-objective performance predictors over cell graphs.

- :class:`GNNPredictor` — ensemble of dense-GIN cell encoders with one head per metric and
  one embedding per (metric, dataset); differentiable on soft/noisy cells for guidance.
- :class:`SklearnPredictor` — gradient boosting / random forest baselines, same interface.
- :mod:`predictors.transfer` — the NB201 transfer prior (pretrained on the non-target tables).
- :mod:`predictors.checkpoint` — versioned save/load.
"""

from gennas.metrics.task import task_name
from predictors.base import Prediction, Predictor, task_metric
from predictors.baselines import SklearnPredictor
from predictors.checkpoint import load_predictor, save_predictor
from predictors.gnn_predictor import GNNConfig, GNNPredictor

__all__ = ["GNNConfig", "GNNPredictor", "Prediction", "Predictor", "SklearnPredictor", "load_predictor",
           "save_predictor", "task_metric", "task_name"]
