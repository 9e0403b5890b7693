"""Scoring a search against the truth, after it has ended: optimum, Pareto front, HV ratio, IGD+.

Only reports and benchmarks build a `Reference`; it reads the full target table, so it
must never be handed to a searcher. Indicators are pymoo's; the reference point follows
DESIGN.md: (best error + 10 points, 1.05 x the largest cost), generalised to every
objective as "best + 10 units" for maximised metrics and "1.05 x worst" for minimised ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.indicators.igd_plus import IGDPlus

from gennas.errors import GennasError
from gennas.objectives import Objective, minimisation_matrix, pareto_indices


def protocol_reference(points: np.ndarray, objectives: list[Objective]) -> np.ndarray:
    """The reference point of a minimisation matrix: best + 10 units for maximised metrics, 1.05 x worst for minimised.

    One rule for scoring (over the whole table) and for searchers that aim at the same
    hypervolume (over what they know: measured values, exact costs).
    """
    low, high = points.min(0), points.max(0)
    return np.array([low[j] + 10.0 if o.direction == "max" else 1.05 * high[j] for j, o in enumerate(objectives)])


@dataclass
class Reference:
    """The truth of a finite benchmark for one goal: every cell's objective values."""

    objectives: list[Objective]
    points: np.ndarray  # (N, J) minimisation matrix over every cell of the space

    def __post_init__(self) -> None:
        self.front = self.points[pareto_indices(self.points)]
        self.ref_point = protocol_reference(self.points, self.objectives)
        self._hv = HV(ref_point=self.ref_point)
        self._front_hv = float(self._hv(self.front)) if len(self.objectives) > 1 else 1.0
        # IGD+ on objectives scaled to [0, 1] by the true front's ideal and nadir, so bytes,
        # MFLOPs and accuracy points weigh alike (raw IGD+ would be a memory-only figure).
        self._igd = IGDPlus(self.front, zero_to_one=True)

    @property
    def optimum(self) -> float:
        """Best value of the first objective, in its own units."""
        best = self.points[:, 0].min()
        return float(-best if self.objectives[0].direction == "max" else best)

    def hv_ratio(self, rows: list[dict]) -> float:
        if not rows:
            return 0.0
        return float(self._hv(minimisation_matrix(rows, self.objectives))) / self._front_hv

    def igd_plus(self, rows: list[dict]) -> float:
        return float(self._igd(minimisation_matrix(rows, self.objectives))) if rows else float("inf")


def _linear_column(metric: str, space, network, archs) -> np.ndarray:
    """``metric`` of every arch from its per-edge linear form (the sum :func:`cell_costs` returns)."""
    from gennas.metrics.costs import linear_costs
    from gennas.space.cell import Cell

    linear = linear_costs(space.ops, space.num_edges, network)
    if metric not in linear:
        raise GennasError(f"objective {metric!r} has no value for every NB201 cell to score the runs against")
    base, costs = linear[metric]
    cost = dict(zip(space.ops, costs))
    return np.array([base + sum(cost[op] for op in Cell.from_string(a).ops) for a in archs])


def nb201_reference(dataset: str, objectives: list[Objective]) -> Reference:
    """Every NB201 cell's accuracy (from the table) and exact costs, for scoring only."""
    from gennas.bench.nb201 import canonical_dataset, load_table
    from gennas.bench.tabular import nb201_network
    from gennas.metrics.costs import CostTable
    from gennas.space.cell import Cell
    from gennas.space.space import nb201_space

    dataset = canonical_dataset(dataset)
    table, space = load_table(), nb201_space()
    costs = CostTable.load_or_build(space, nb201_network(dataset))
    ordinals = np.array([space.ordinal(Cell.from_string(a)) for a in table.archs])
    columns = {"accuracy": table.accuracy[dataset], **{m: v[ordinals] for m, v in costs.values.items()}}
    for metric in {o.metric for o in objectives} - set(columns):  # e.g. a latency table's, while one is in use
        columns[metric] = _linear_column(metric, space, nb201_network(dataset), table.archs)
    rows = [{o.metric: float(columns[o.metric][i]) for o in objectives} for i in range(len(table.archs))]
    return Reference(objectives, minimisation_matrix(rows, objectives))
