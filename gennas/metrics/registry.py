"""The metric registry: every objective gennas can optimise, report or threshold on.

A metric is a name with a direction and a unit, plus *how it is obtained*: ``cost``
metrics are computed from the network alone (free, exact), ``hardware`` metrics are
measured by running the network on a device, and ``training`` metrics need a trained
model (a training oracle) or a benchmark table. New metrics register themselves here and
every caller (predictor heads, generator objectives, reports, pruning) sees them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Literal

from gennas.errors import GennasError

Direction = Literal["max", "min"]
Source = Literal["cost", "hardware", "training"]


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction
    unit: str
    source: Source
    description: str = ""

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise GennasError(f"metric {self.name!r}: direction must be 'max' or 'min', got {self.direction!r}")
        if self.source not in ("cost", "hardware", "training"):
            raise GennasError(f"metric {self.name!r}: source must be cost, hardware or training, got {self.source!r}")

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` for this metric."""
        return a > b if self.direction == "max" else a < b


_REGISTRY: dict[str, Metric] = {}
_ALIASES: dict[str, str] = {"robustness": "pgd_accuracy", "memory": "memory_bytes", "latency": "latency_ms"}


def register_metric(metric: Metric, *, overwrite: bool = False) -> Metric:
    """Add a metric. Re-registering the same definition is a no-op; a different one needs ``overwrite``.

    The definition is the direction, unit and source; the description is documentation, so a
    checkpoint saved under an older wording of a metric (the predictor checkpoints record the
    metrics of their heads) loads and the registered wording stays.

    Returns:
        The metric now registered under ``metric.name``.
    """
    existing = _REGISTRY.get(metric.name)
    if existing is not None and not overwrite:
        if _definition(existing) != _definition(metric):
            raise GennasError(f"metric {metric.name!r} is already registered as {existing}; "
                              "pass overwrite=True to replace it")
        return existing
    _REGISTRY[metric.name] = metric
    return metric


def _definition(metric: Metric) -> tuple[str, str, str]:
    return metric.direction, metric.unit, metric.source


def get_metric(name: str) -> Metric:
    """Look a metric up by name or alias (``robustness`` = ``pgd_accuracy``)."""
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY) + sorted(_ALIASES))
        raise GennasError(f"unknown metric {name!r}; known metrics: {known} (or register a new one)")
    return _REGISTRY[key]


def all_metrics() -> list[Metric]:
    return list(_REGISTRY.values())


@contextlib.contextmanager
def alias_to(alias: str, target: str) -> Iterator[None]:
    """Let ``alias`` name ``target`` inside the block (``latency`` the table's latency under --latency-table)."""
    get_metric(target)
    before = _ALIASES.get(alias)
    _ALIASES[alias] = target
    try:
        yield
    finally:
        if before is None:
            _ALIASES.pop(alias, None)
        else:
            _ALIASES[alias] = before


#: The cost metric a latency table answers (gennas.metrics.lut): free and exact only while one is in use.
TABLE_LATENCY = "lut_latency_ms"


for _m in (
    Metric("accuracy", "max", "%", "training", "top-1 accuracy on the held-out test split (or the benchmark table)"),
    Metric("fgsm_accuracy", "max", "%", "training", "accuracy under a one-step FGSM L-inf attack"),
    Metric("pgd_accuracy", "max", "%", "training", "accuracy under a k-step PGD L-inf attack"),
    Metric("noise_accuracy", "max", "%", "training", "accuracy under Gaussian-noise corruption"),
    Metric("flops", "min", "M", "cost", "millions of conv and linear multiply-accumulates plus pooling window "
           "reads, as the NAS-Bench-201 API counts them (see gennas.metrics.flops)"),
    Metric("params", "min", "M", "cost", "parameters, millions (NB201 convention, BN affine included)"),
    Metric("memory_bytes", "min", "B", "cost", "peak inference memory at batch 1: live activations + parameters and buffers"),
    Metric("latency_ms", "min", "ms", "hardware", "median forward time at batch 1 on the chosen device"),
    Metric(TABLE_LATENCY, "min", "ms", "cost", "batch-1 latency as the sum of the --latency-table file's measured "
                                               "blocks (free; exact for the table); `latency` under --latency-table"),
):
    register_metric(_m)

#: The built-in metrics computed from the network alone (free, exact), in registration order; the
#: table's latency is free too, but only while a table is in use (gennas.metrics.costs.cost_metrics).
COST_METRICS: tuple[str, ...] = tuple(m.name for m in all_metrics() if m.source == "cost" and m.name != TABLE_LATENCY)
