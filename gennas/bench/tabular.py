"""`TabularOracle`: NAS-Bench-201 accuracies, reachable only through counted queries.

Benchmark honesty lives here. The target dataset's column is private to the oracle and
answered one counted cell at a time; the *other* datasets' tables may be handed out as a
transfer prior (the benchmark's transfer setting); nothing else about the target is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gennas.bench.nb201 import DATASET_SHAPES, DATASETS, NB201Table, canonical_dataset, load_table
from gennas.bench.oracle import Oracle
from gennas.errors import GennasError
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.space.space import nb201_space


@dataclass(frozen=True)
class TransferPrior:
    """Full accuracy tables of the non-target datasets, indexed by official NB201 index."""

    archs: tuple[str, ...]
    accuracy: dict[str, np.ndarray]


def nb201_network(dataset: str) -> NetworkConfig:
    """The skeleton the benchmark used for ``dataset`` (C=16, N=5; its input size and classes)."""
    size, classes = DATASET_SHAPES[canonical_dataset(dataset)]
    return NetworkConfig(channels=16, cells_per_stage=5, in_channels=3, image_size=size, num_classes=classes)


class TabularOracle(Oracle):
    """Test accuracy (%) of the 200-epoch NB201 schedule on ``dataset``, one counted query per cell."""

    def __init__(self, dataset: str = "cifar10", budget: int | None = None, data_dir: str | Path | None = None) -> None:
        self.dataset = canonical_dataset(dataset)
        super().__init__(nb201_space(), nb201_network(self.dataset), budget)
        self._table: NB201Table = load_table(data_dir)

    def _measure(self, cell: Cell) -> dict[str, float]:
        return {"accuracy": float(self._table.accuracy[self.dataset][self._table.index_of(cell)])}

    def prior(self, datasets: list[str] | None = None) -> TransferPrior:
        """The tables a transfer-setting method may see: every dataset except the target."""
        allowed = [d for d in DATASETS if d != self.dataset]
        wanted = allowed if datasets is None else [canonical_dataset(d) for d in datasets]
        if self.dataset in wanted:
            raise GennasError(
                f"the target dataset {self.dataset!r} is reachable only through counted queries; "
                f"a prior may use {allowed}"
            )
        return TransferPrior(self._table.archs, {d: self._table.accuracy[d].copy() for d in wanted})
