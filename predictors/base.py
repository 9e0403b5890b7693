"""What every predictor shares: tasks, predictions with spread, and target tables.

A *task* is a metric, optionally on a dataset: ``flops``, ``accuracy@cifar10``,
``pgd_accuracy@digits``. The part before ``@`` names a registered metric, which gives the
direction used when the predictor steers search or generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.metrics.registry import Metric
from gennas.metrics.task import Task
from gennas.space.cell import Cell


@dataclass(frozen=True)
class Prediction:
    """Per-cell mean and spread (ensemble standard deviation) of one task, in the metric's units."""

    mean: np.ndarray
    std: np.ndarray


def task_metric(task: str) -> Metric:
    """The registered metric a task name refers to."""
    return Task.parse(task).definition()


class Predictor(Protocol):
    """``fit`` on cells with per-task targets (NaN = not measured), ``predict`` mean and spread."""

    tasks: list[str]

    def fit(self, cells: Sequence[Cell], targets: dict[str, np.ndarray]) -> "Predictor": ...

    def predict(self, cells: Sequence[Cell]) -> dict[str, Prediction]: ...


def target_matrix(cells: Sequence[Cell], targets: dict[str, np.ndarray], tasks: Sequence[str]) -> np.ndarray:
    """(N, T) float array with NaN where a task was not measured; checks lengths and labels."""
    y = np.full((len(cells), len(tasks)), np.nan)
    for j, task in enumerate(tasks):
        if task not in targets:
            continue
        values = np.asarray(targets[task], dtype=np.float64)
        if values.shape != (len(cells),):
            raise GennasError(f"targets for {task!r} have shape {values.shape}, expected ({len(cells)},)")
        if np.isinf(values).any():
            raise GennasError(f"targets for {task!r} contain infinite values")
        y[:, j] = values
    unknown = sorted(set(targets) - set(tasks))
    if unknown:
        raise GennasError(f"targets given for tasks {unknown} that the predictor does not have ({list(tasks)})")
    if np.isnan(y).all(axis=0).any():
        empty = [t for t, col in zip(tasks, np.isnan(y).all(axis=0)) if col]
        raise GennasError(f"no measured values for tasks {empty}; give at least two cells per task")
    return y
