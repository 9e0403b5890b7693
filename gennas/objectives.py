"""What a search or a generation aims for: objectives (``accuracy:max,flops:min``) and
constraints (``flops<=100``), parsed once and shared by the generator, the search loop,
every searcher and the reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from gennas.errors import GennasError
from gennas.metrics.registry import get_metric

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w@.\-]*)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "max" or "min"


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str  # "<=" or ">="
    bound: float

    def satisfied(self, value: float) -> bool:
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def violation(self, value: torch.Tensor) -> torch.Tensor:
        """Positive amount by which ``value`` breaks the constraint (0 when it holds)."""
        return torch.relu(value - self.bound) if self.op == "<=" else torch.relu(self.bound - value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


def parse_objectives(spec: str) -> list[Objective]:
    """``accuracy:max,flops:min`` (direction defaults to the metric's own)."""
    objectives = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, direction = part.partition(":")
        metric = get_metric(name.strip())
        direction = direction.strip() or metric.direction
        if direction not in ("max", "min"):
            raise GennasError(f"objective {part!r}: direction must be 'max' or 'min'")
        objectives.append(Objective(metric.name, direction))
    if not objectives:
        raise GennasError("no objectives given; e.g. --objectives accuracy:max,flops:min")
    if len({o.metric for o in objectives}) != len(objectives):
        raise GennasError(f"objectives {spec!r} name a metric twice")
    return objectives


def parse_constraint(spec: str) -> Constraint:
    """``flops<=100``, ``memory_bytes<=2e6``, ``accuracy>=90``."""
    match = _CONSTRAINT.match(spec)
    if not match:
        raise GennasError(f"malformed constraint {spec!r}; write METRIC<=VALUE or METRIC>=VALUE, e.g. 'flops<=100'")
    name, op, value = match.groups()
    try:
        bound = float(value)
    except ValueError:
        raise GennasError(f"constraint {spec!r}: {value!r} is not a number") from None
    return Constraint(get_metric(name).name, op, bound)


def minimisation_matrix(rows: list[dict], objectives: list[Objective]) -> np.ndarray:
    """(N, J) objective values of result rows, each on a "lower is better" scale."""
    return np.array([[-r[o.metric] if o.direction == "max" else r[o.metric] for o in objectives] for r in rows],
                    dtype=np.float64).reshape(len(rows), len(objectives))


def pareto_indices(points: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of a minimisation matrix (pymoo's sorting)."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    if len(points) == 0:
        return np.empty(0, dtype=int)
    return np.asarray(NonDominatedSorting().do(points, only_non_dominated_front=True), dtype=int)
