"""The NAS-Bench-201 accuracy table: loading, validation, and the official cell index.

The table is the ground truth of search benchmarks, so this module hands it out only
through :class:`~gennas.bench.tabular.TabularOracle`; the index functions here expose
nothing but the row order (the official NB201 index), which carries no accuracy.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from gennas.errors import GennasError
from gennas.settings import NB201_DIR_VAR, nb201_dir
from gennas.space.cell import Cell

TABLE_FILE = "nb201_test_accuracy.csv"
NB201_SIZE = 15_625
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "ImageNet16-120": "ImageNetTestAccuracy200Epochs",
}
_ALIASES = {
    "cifar10": "cifar10", "cifar-10": "cifar10", "c10": "cifar10",
    "cifar100": "cifar100", "cifar-100": "cifar100", "c100": "cifar100",
    "imagenet16-120": "ImageNet16-120", "imagenet16": "ImageNet16-120", "imagenet": "ImageNet16-120",
}
#: Input size and classes of each dataset, for costing networks as the benchmark does.
DATASET_SHAPES: dict[str, tuple[int, int]] = {"cifar10": (32, 10), "cifar100": (32, 100), "ImageNet16-120": (16, 120)}


def canonical_dataset(name: str) -> str:
    """Normalise a dataset name (``CIFAR-10``, ``imagenet16-120``...) to the table's naming."""
    key = _ALIASES.get(name.strip().lower())
    if key is None:
        raise GennasError(f"NAS-Bench-201 has no dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


@dataclass(frozen=True)
class NB201Table:
    path: Path
    archs: tuple[str, ...]
    accuracy: dict[str, np.ndarray]
    index_by_arch: dict[str, int]

    def index_of(self, cell: Cell) -> int:
        try:
            return self.index_by_arch[cell.to_string()]
        except KeyError:
            raise GennasError(f"cell {cell} is not a NAS-Bench-201 cell (4 nodes, NB201 ops)") from None


def _table_error(path: Path, problem: str) -> GennasError:
    return GennasError(
        f"NAS-Bench-201 table {path}: {problem}. Point the environment variable {NB201_DIR_VAR} at the folder "
        f"holding an unmodified {TABLE_FILE} (default ../shared/data/nb201/ beside the project)."
    )


def load_table(directory: str | Path | None = None) -> NB201Table:
    """Load and validate the table from ``directory`` (default: the ``GENNAS_NB201_DIR`` setting)."""
    return _load_table_cached(Path(directory).expanduser().resolve() if directory else nb201_dir())


@lru_cache(maxsize=4)
def _load_table_cached(directory: Path) -> NB201Table:
    path = directory / TABLE_FILE
    if not path.is_file():
        raise _table_error(path, "file not found")
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in (*_COLUMNS.values(), "ArchitectureString") if c not in (reader.fieldnames or [])]
            if missing:
                raise _table_error(path, f"missing columns {missing}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _table_error(path, f"unreadable ({exc})") from exc
    if len(rows) != NB201_SIZE:
        raise _table_error(path, f"expected {NB201_SIZE} rows, found {len(rows)}")
    archs = []
    for row_no, row in enumerate(rows, start=2):
        try:
            archs.append(Cell.from_string(row["ArchitectureString"]).to_string())
        except GennasError as exc:
            raise _table_error(path, f"line {row_no}: {exc}") from exc
    accuracy = {}
    for dataset, column in _COLUMNS.items():
        try:
            accuracy[dataset] = np.array([float(r[column]) for r in rows], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise _table_error(path, f"column {column} has a non-numeric value ({exc})") from exc
        accuracy[dataset].setflags(write=False)
    index_by_arch = {arch: i for i, arch in enumerate(archs)}
    if len(index_by_arch) != NB201_SIZE:
        raise _table_error(path, "duplicate architecture strings")
    return NB201Table(path, tuple(archs), accuracy, index_by_arch)


def nb201_index(cell: Cell, directory: str | Path | None = None) -> int:
    """The official NAS-Bench-201 index of a cell (its row in the shared table)."""
    return load_table(directory).index_of(cell)


def nb201_cell(index: int, directory: str | Path | None = None) -> Cell:
    """The cell at an official NAS-Bench-201 index."""
    table = load_table(directory)
    if not 0 <= index < NB201_SIZE:
        raise GennasError(f"NAS-Bench-201 index must be in [0, {NB201_SIZE}), got {index}")
    return Cell.from_string(table.archs[index])
