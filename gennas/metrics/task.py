"""A `Task`: a metric, optionally on a dataset — what one predictor head answers.

Its name is ``metric@dataset`` (``accuracy@cifar10``, ``pgd_accuracy@digits``) or the bare
metric for dataset-free ones (``flops``). Predictor checkpoints key their heads by that
name; every place that builds or splits one goes through this type.
"""

from __future__ import annotations

from dataclasses import dataclass

from gennas.metrics.registry import Metric, get_metric


@dataclass(frozen=True)
class Task:
    """``metric`` (a registered name) on ``dataset`` (None: the same on every dataset)."""

    metric: str
    dataset: str | None = None

    @classmethod
    def parse(cls, name: str) -> Task:
        """``accuracy@cifar10`` -> Task("accuracy", "cifar10"); ``flops`` -> Task("flops")."""
        metric, sep, dataset = name.partition("@")
        return cls(metric, dataset if sep else None)

    @property
    def name(self) -> str:
        return f"{self.metric}@{self.dataset}" if self.dataset else self.metric

    def __str__(self) -> str:
        return self.name

    def definition(self) -> Metric:
        """The registered metric (direction, unit, source)."""
        return get_metric(self.metric)


def task_name(metric: str, dataset: str | None = None) -> str:
    """The name of ``metric`` on ``dataset`` (the bare metric without one)."""
    return Task(metric, dataset).name


def metric_of(task: str) -> str:
    """The metric part of a task name."""
    return Task.parse(task).metric
