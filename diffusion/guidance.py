"""Guided generation: turn objectives and constraints into a score, sample, filter, rank.

Each metric is evaluated on (noisy) graphs by the best available differentiable model:
FLOPs, params and a latency table's latency by their exact form over the space's search
variables (``space.soft_costs``: linear in the per-edge ops on cell spaces, see
:mod:`gennas.metrics.soft_costs`), every other metric by
the noise-aware predictor's head. Each sample in a chain carries its own preference
vector, so one batch spreads along the front. After sampling, constraints on cost
metrics are checked exactly and on the rest by the predictor's mean, and only samples
that satisfy them are kept; the report says how many satisfied them before filtering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from diffusion.model import CellDiffusion, mostly_repeats
from gennas.objectives import Constraint, Objective, minimisation_matrix, pareto_indices
from gennas.errors import GennasError
from gennas.metrics.costs import cell_costs, cost_metrics
from gennas.metrics.soft_costs import linear_soft_costs
from gennas.metrics.task import metric_of, task_name
from gennas.nn.network import NetworkConfig
from gennas.seeds import derive_seed
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace
from predictors.gnn_predictor import GNNPredictor

UTOPIA_SHIFT = 3.0  # the ideal point sits 3 standard deviations beyond the mean of each objective
PENALTY = 5.0


def resolve_task(predictor: GNNPredictor | None, metric: str, dataset: str | None) -> str:
    """The predictor task that answers ``metric`` (``accuracy`` -> ``accuracy@cifar10`` when asked for cifar10)."""
    tasks = predictor.tasks if predictor is not None else []
    for candidate in ([task_name(metric, dataset)] if dataset else []) + [metric]:
        if candidate in tasks:
            return candidate
    matches = [t for t in tasks if metric_of(t) == metric]
    if len(matches) == 1:
        return matches[0]
    hint = f"; it predicts {tasks}" if predictor is not None else ""
    raise GennasError(f"no predictor head for {metric!r}{f' on {dataset}' if dataset else ''}{hint}. "
                      "Pass --predictor CKPT trained for it (gennas predictor fit), or pick other objectives")


def chebyshev(values: torch.Tensor, weights: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """Smooth max over objectives of ``weight * normalised loss``; (B, J) -> (B,). Lower is better."""
    return temperature * torch.logsumexp(weights * values / temperature, dim=1)


@dataclass
class MetricModel:
    """Differentiable estimates of metrics on value distributions (B, V, K) at times t (B,).

    Exact free costs come from ``space.soft_costs`` when a space is given, else from the
    per-edge linear form over ``ops`` and ``num_edges`` (a cell space).
    """

    predictor: GNNPredictor | None
    network: NetworkConfig
    dataset: str | None
    ops: tuple[str, ...] = ()
    num_edges: int = 0
    space: ArchSpace | None = None
    _soft: dict = field(init=False)

    def __post_init__(self) -> None:
        self._soft = (self.space.soft_costs(self.network) if self.space is not None
                      else linear_soft_costs(self.ops, self.num_edges, self.network))

    def scale(self, metric: str) -> tuple[float, float]:
        """A (centre, spread) for normalising the metric, from the predictor or the exact cost form."""
        if metric in self._soft:
            return self._soft[metric].centre, self._soft[metric].spread
        task = resolve_task(self.predictor, metric, self.dataset)
        return self.predictor.normalization[task]

    def __call__(self, x: torch.Tensor, t: torch.Tensor, metrics: list[str]) -> torch.Tensor:
        """(B, len(metrics)) estimates."""
        columns: dict[str, torch.Tensor] = {}
        learned = [m for m in metrics if m not in self._soft]
        if learned:
            tasks = [resolve_task(self.predictor, m, self.dataset) for m in learned]
            mean, _ = self.predictor.predict_soft(x, t, tasks)
            mean = mean.to(x.device)  # the predictor may run on the GPU, the sampler on the CPU
            columns.update({m: mean[:, j] for j, m in enumerate(learned)})
        for m in metrics:
            if m in self._soft:
                columns[m] = self._soft[m](x).to(x.dtype)
        return torch.stack([columns[m] for m in metrics], dim=1)


class ParetoGuide:
    """Score = -(smooth Chebyshev distance to the utopia point) - constraint penalties; higher is better."""

    def __init__(self, model: MetricModel, objectives: list[Objective], constraints: list[Constraint]) -> None:
        self.model, self.objectives, self.constraints = model, objectives, constraints
        self.metrics = list(dict.fromkeys([o.metric for o in objectives] + [c.metric for c in constraints]))
        scales = [model.scale(m) for m in self.metrics]
        self.centre = torch.tensor([s[0] for s in scales])
        self.spread = torch.tensor([s[1] for s in scales])
        self.sign = torch.tensor([1.0 if o.direction == "min" else -1.0 for o in objectives])
        self.weights: torch.Tensor | None = None

    def start_chain(self, n: int, generator: torch.Generator) -> None:
        """Draw one preference vector per sample (flat Dirichlet) for the chain about to run."""
        gamma = -torch.log(torch.rand(n, len(self.objectives), generator=generator).clamp_min(1e-12))
        self.weights = gamma / gamma.sum(dim=1, keepdim=True)

    def lookahead(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Exact score change for switching each edge to each op: (B, E, K).

        This is the quantity a gradient only approximates to first order; evaluating it
        costs E*K predictor calls per sample, affordable for cell spaces.
        """
        b, e, k = x.shape
        eye = torch.eye(k, dtype=x.dtype)
        # candidates[b, i, j] = x[b] with edge i set to op j
        candidates = x.unsqueeze(1).unsqueeze(1).repeat(1, e, k, 1, 1)
        idx = torch.arange(e)
        candidates[:, idx, :, idx, :] = eye.expand(e, k, k).unsqueeze(0).expand(b, e, k, k).permute(1, 0, 2, 3)
        flat = candidates.view(b * e * k, e, k)
        weights = self.weights
        self.weights = weights.repeat_interleave(e * k, dim=0)
        try:
            with torch.no_grad():
                scores = self(flat, t.repeat_interleave(e * k)).view(b, e, k)
        finally:
            self.weights = weights
        return scores - scores.mean(dim=2, keepdim=True)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        values = self.model(x, t, self.metrics)
        z = (values - self.centre) / self.spread
        losses = self.sign * z[:, : len(self.objectives)] + UTOPIA_SHIFT
        score = -chebyshev(losses.clamp_min(0), self.weights)
        for c in self.constraints:
            j = self.metrics.index(c.metric)
            score = score - PENALTY * c.violation(values[:, j]) / self.spread[j]
        return score


def generate(diffusion: CellDiffusion, objectives: list[Objective], constraints: list[Constraint], n: int,
             predictor: GNNPredictor | None, network: NetworkConfig, dataset: str | None = None,
             guidance: float = 1.0, seed: int = 0, max_rounds: int = 10) -> dict:
    """Sample until ``n`` distinct cells meet every constraint (or rounds run out); rank them.

    Returns ``{"cells": [...], "sampled": int, "satisfied_before_filter": float, "closest": {constraint:
    value}}`` (``closest``: the sampled value nearest to meeting each constraint); each cell
    row has ``arch``, a value per objective (exact for FLOPs/params/memory, else the
    predictor's mean with ``<metric>_std``), and ``pareto``.
    """
    model = MetricModel(predictor, network, dataset, space=diffusion.space)
    guide = ParetoGuide(model, objectives, constraints)
    metrics = guide.metrics
    for m in metrics:  # fail before sampling if a metric has no model
        model.scale(m)
    kept: dict[str, dict] = {}
    seen: set[str] = set()
    sampled = satisfied = 0
    closest: dict[Constraint, float] = {}  # per constraint, the sampled value nearest to meeting it
    for round_ in range(max_rounds):
        if len(kept) >= n:
            break
        cells = diffusion.sample(n, seed=derive_seed(seed, round_), guide=guide if guidance > 0 else None, scale=guidance)
        fresh = [c for c in cells if c.canonical not in seen]
        if round_ > 0 and mostly_repeats(len(fresh), len(cells)):
            break  # the guided distribution keeps returning the same cells (see MIN_NEW_FRACTION)
        seen.update(c.canonical for c in fresh)
        rows = describe(fresh, metrics, predictor, network, dataset, diffusion.space)
        for cell, row in zip(fresh, rows):
            sampled += 1
            for c in constraints:
                if c not in closest or float(c.violation(torch.tensor(row[c.metric]))) < \
                        float(c.violation(torch.tensor(closest[c]))):
                    closest[c] = row[c.metric]
            if all(c.satisfied(row[c.metric]) for c in constraints):
                satisfied += 1
                if len(kept) < n:
                    kept[cell.canonical] = row
    rows = list(kept.values())
    mark_pareto(rows, objectives)
    return {"cells": rows, "sampled": sampled, "satisfied_before_filter": satisfied / max(sampled, 1),
            "closest": closest}


def describe(cells: list[Cell], metrics: list[str], predictor: GNNPredictor | None, network: NetworkConfig,
             dataset: str | None, space: ArchSpace | None = None) -> list[dict]:
    """Per-cell values: exact costs where computable, predictor mean and spread otherwise."""
    rows = [{"arch": c.to_string()} for c in cells]
    free = cost_metrics()
    learned = [m for m in metrics if m not in free]
    if learned and cells:
        tasks = [resolve_task(predictor, m, dataset) for m in learned]
        predictions = predictor.predict(cells, tasks)
        for m, task in zip(learned, tasks):
            for row, mean, std in zip(rows, predictions[task].mean, predictions[task].std):
                row[m], row[f"{m}_std"] = float(mean), float(std)
    exact = [m for m in metrics if m in free]
    if exact:
        for row, cell in zip(rows, cells):
            costs = space.costs(cell, network) if space is not None else cell_costs(cell, network)
            row.update({m: float(costs[m]) for m in exact})
    return rows


def mark_pareto(rows: list[dict], objectives: list[Objective]) -> None:
    front = set(pareto_indices(minimisation_matrix(rows, objectives)).tolist()) if rows else set()
    for i, row in enumerate(rows):
        row["pareto"] = i in front
