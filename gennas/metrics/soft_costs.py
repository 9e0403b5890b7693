"""Free costs as exact, differentiable functions of a space's search variables, for guided generation.

A :class:`SoftCost` maps value distributions ``x`` (B, V, K) to (B,) costs. On one-hot
``x`` (a real architecture) it is the exact closed-form cost; on soft ``x`` it is the
expectation under independent variables, so the generator's guidance can differentiate it
or evaluate exact per-variable switches. On cell spaces FLOPs and params (and a latency
table's latency) are a base plus a per-edge op cost (:func:`linear_soft_costs`); on DARTS
they are a base plus a per-(cell, op) cost and one pair-times-op term for a
skip_connect that reads a cell input in a reduction cell (it is then a factorized
reduction): see :func:`gennas.metrics.darts_costs.darts_soft_costs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from gennas.metrics.costs import linear_costs


@dataclass
class SoftCost:
    """One cost metric as a function of value distributions.

    Attributes:
        fn: (B, V, K) -> (B,); exact on one-hots.
        centre, spread: a typical value and scale of the metric over the space (for normalising objectives).
        bounds: the smallest and largest value over the space, where known exactly (None otherwise).
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    centre: float
    spread: float
    bounds: tuple[float, float] | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def linear_soft_costs(ops: tuple[str, ...], n_edges: int, network) -> dict[str, SoftCost]:
    """Cell spaces: every free cost of the form base + sum over edges of cost[op] (see ``linear_costs``)."""
    out = {}
    for metric, (base, per_op) in linear_costs(ops, n_edges, network).items():
        coef = torch.tensor(per_op)

        def fn(x: torch.Tensor, base: float = base, coef: torch.Tensor = coef) -> torch.Tensor:
            return base + (x * coef).sum(dim=(1, 2))

        out[metric] = SoftCost(fn, base + n_edges * float(coef.mean()),
                               max(float(coef.std()) * n_edges ** 0.5, 1e-9),
                               (base + n_edges * min(per_op), base + n_edges * max(per_op)))
    return out
