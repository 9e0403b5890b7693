"""Cost metrics of cells (FLOPs, params, memory) and a cached table for whole spaces.

`cell_costs` is the one entry point callers use; it is closed-form, so costing a cell
never builds a network. While a latency table is in use (``--latency-table``), the table's
latency is one more free cost (:func:`cost_metrics`), and :func:`linear_costs` gives every
cost that is a sum of per-edge op costs, for exact guidance. `CostTable` evaluates every cell of an enumerable space once and
keeps the arrays on disk, keyed by space and network config, so oracles, predictors and
benchmarks share one copy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gennas.errors import GennasError
from gennas.io import read_cached_columns, write_cached_columns
from gennas.metrics.flops import analytic_flops_params, count_flops, count_params, per_op_costs
from gennas.metrics.lut import table_in_use
from gennas.metrics.registry import COST_METRICS, TABLE_LATENCY
from gennas.metrics.memory import analytic_peak_memory, measure_peak_memory
from gennas.nn.network import NetworkConfig, build_network
from gennas.settings import cache_dir
from gennas.space.cell import Cell
from gennas.space.space import ENUMERATION_LIMIT, CellSpace



def cost_metrics() -> tuple[str, ...]:
    """The free cost metrics now: the built-in ones, and the table's latency while a table is in use."""
    return COST_METRICS + ((TABLE_LATENCY,) if table_in_use() is not None else ())


def cell_costs(cell: Cell, config: NetworkConfig = NetworkConfig()) -> dict[str, float]:
    """``flops`` (M), ``params`` (M), ``memory_bytes`` of the cell's network, closed form.

    With a latency table in use, also ``lut_latency_ms``: the sum of the table's entries for
    the network's blocks (an error if the table was measured on another skeleton).
    """
    flops, params = analytic_flops_params(cell, config)
    costs = {"flops": flops, "params": params, "memory_bytes": analytic_peak_memory(cell, config)}
    table = table_in_use()
    if table is not None:
        costs[TABLE_LATENCY] = table.cell_latency(cell, config)
    return costs


def linear_costs(ops: tuple[str, ...], n_edges: int, config: NetworkConfig = NetworkConfig()
                 ) -> dict[str, tuple[float, list[float]]]:
    """Every free cost that is ``base + sum over edges of cost[op]``: FLOPs, params, and a table's latency.

    Returns:
        Per metric, ``(base, [cost of each op in ops order])`` (see :func:`gennas.metrics.flops.per_op_costs`).
    """
    out = per_op_costs(ops, n_edges, config)
    table = table_in_use()
    if table is not None:
        out[TABLE_LATENCY] = table.linear_form(config, ops)
    return out


def measured_costs(cell: Cell, config: NetworkConfig = NetworkConfig()) -> dict[str, float]:
    """The same three metrics from a real network (hooks and a tracked forward): the reference."""
    net = build_network(cell, config)
    shape = (config.in_channels, config.image_size, config.image_size)
    return {
        "flops": count_flops(net, shape),
        "params": count_params(net),
        "memory_bytes": measure_peak_memory(net, shape),
    }


@dataclass
class CostTable:
    """Cost metrics for every cell of an enumerable space, in the space's ordinal order."""

    space: CellSpace
    config: NetworkConfig
    values: dict[str, np.ndarray]

    def lookup(self, cell: Cell) -> dict[str, float]:
        row = self.space.ordinal(cell)
        return {name: float(column[row]) for name, column in self.values.items()}

    @classmethod
    def build(cls, space: CellSpace, config: NetworkConfig = NetworkConfig(), progress: bool = False) -> "CostTable":
        if space.size > ENUMERATION_LIMIT:
            raise GennasError(f"space {space.name!r} has {space.size:.3g} cells, too many for a cost table; use cell_costs")
        # Every op assignment, valid or not: costs are defined for all of them and rows stay = ordinals.
        cells = [space.from_ordinal(i) for i in range(space.size)]
        columns = {name: np.empty(len(cells), dtype=np.float64) for name in COST_METRICS}
        for row, cell in enumerate(tqdm(cells, desc=f"costing {space.name}", disable=not progress)):
            costs = cell_costs(cell, config)
            for name in COST_METRICS:  # the built-in costs only: a latency table in use is not part of the cache
                columns[name][row] = costs[name]
        return cls(space, config, columns)

    @staticmethod
    def cache_path(space: CellSpace, config: NetworkConfig, root: Path | None = None) -> Path:
        key = json.dumps({"n": space.n_nodes, "ops": space.ops, "net": config.to_dict(), "v": 3}, sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]  # v3: FLOPs count pooling
        return (root or cache_dir()) / "costs" / f"{space.name}-{digest}.npz"

    @classmethod
    def load_or_build(
        cls, space: CellSpace, config: NetworkConfig = NetworkConfig(), root: Path | None = None, progress: bool = False
    ) -> "CostTable":
        """Read the cached table, or build and cache it (a corrupt cache file is rebuilt)."""
        path = cls.cache_path(space, config, root)
        values = read_cached_columns(path, COST_METRICS, space.size)
        if values is not None:
            return cls(space, config, values)
        table = cls.build(space, config, progress=progress)
        write_cached_columns(path, table.values)
        return table
