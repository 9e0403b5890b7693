"""What `gennas predictor ...` does: pretrain the transfer prior, fit a metric, predict.

Kept apart from the argument parsing in :mod:`gennas.cli` so scripts and tests call the
same functions the command line does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.stats import kendalltau

from gennas.metrics.task import metric_of
from gennas.errors import GennasError
from gennas.metrics.registry import Metric, get_metric, register_metric
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace
from gennas.space.space import same_space
from predictors.checkpoint import load_predictor, save_predictor
from predictors.gnn_predictor import GNNConfig, GNNPredictor


def ensure_metric(task: str, direction: str | None, unit: str) -> Metric:
    """The task's metric, registering a user's new metric when its direction is given."""
    name = metric_of(task)
    try:
        return get_metric(name)
    except GennasError:
        if direction is None:
            raise GennasError(f"metric {name!r} is new: say whether higher or lower is better with "
                              "--direction max|min (and optionally --unit)") from None
        return register_metric(Metric(name, direction, unit, "training", "user-defined metric"))


def fit_metric(task: str, cells: Sequence[Cell], values: np.ndarray, space: ArchSpace, out: str | Path,
               base: str | Path | None = None, config: GNNConfig | None = None, cv_folds: int = 0) -> dict:
    """Fit ``task`` (a new predictor, or a new head on ``base``), save it, optionally cross-validate."""
    def build() -> GNNPredictor:
        if base is None:
            return GNNPredictor(space, [task], config)
        predictor = load_predictor(base)
        if not same_space(predictor.space, space):
            raise GennasError(f"base checkpoint {base} is for space {predictor.space.name!r}, "
                              f"the measurements are for {space.name!r}")
        return predictor

    def train(predictor: GNNPredictor, cs: Sequence[Cell], vs: np.ndarray) -> GNNPredictor:
        return predictor.fit(cs, {task: vs}) if base is None else predictor.fit_task(task, cs, vs)

    report: dict = {"task": task, "cells": len(cells)}
    if cv_folds:
        report["cv_kendall_tau"] = cross_validated_tau(lambda: build(), train, task, list(cells), values, cv_folds)
    predictor = train(build(), cells, values)
    save_predictor(predictor, out)
    report.update({"out": str(out), "tasks": predictor.tasks, "base": str(base) if base else None})
    return report


def cross_validated_tau(build, train, task: str, cells: list[Cell], values: np.ndarray, folds: int,
                        seed: int = 0) -> dict:
    """K-fold Kendall tau of held-out predictions, pooled over folds and per fold."""
    if folds < 2 or folds > len(cells):
        raise GennasError(f"--cv needs 2 <= folds <= number of cells ({len(cells)}), got {folds}")
    order = np.random.default_rng(seed).permutation(len(cells))
    predicted = np.empty(len(cells))
    per_fold = []
    for held in np.array_split(order, folds):
        keep = np.setdiff1d(order, held)
        model = train(build(), [cells[i] for i in keep], values[keep])
        predicted[held] = model.predict([cells[i] for i in held], [task])[task].mean
        if len(held) > 2:
            per_fold.append(float(kendalltau(predicted[held], values[held])[0]))
    return {"pooled": float(kendalltau(predicted, values)[0]), "per_fold_mean": float(np.mean(per_fold)) if per_fold else None,
            "folds": folds}


def predict_cells(checkpoint: str | Path, cells: Sequence[Cell]) -> list[dict]:
    predictor = load_predictor(checkpoint)
    predictions = predictor.predict(cells)
    return [{"arch": c.to_string(),
             "metrics": {task: {"mean": float(p.mean[i]), "std": float(p.std[i])} for task, p in predictions.items()}}
            for i, c in enumerate(cells)]
