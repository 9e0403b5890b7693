"""Reading user measurements: ``arch,value`` CSV files and arch lists, with line-exact errors."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from gennas.errors import GennasError
from gennas.io import write_text
from gennas.space.cell import Cell
from gennas.space.space import CellSpace


def read_measurements(path: str | Path, space: CellSpace) -> tuple[list[Cell], np.ndarray]:
    """Cells and values from a CSV with columns ``arch`` and ``value`` (other columns are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise GennasError(f"measurements file {path} not found (expected a CSV with columns arch,value)")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("arch", "value") if c not in (reader.fieldnames or [])]
        if missing:
            raise GennasError(f"{path}: missing column(s) {missing}; the header must name 'arch' and 'value' "
                              f"(found {reader.fieldnames})")
        cells, values = [], []
        for line, row in enumerate(reader, start=2):
            try:
                cells.append(space.parse(row["arch"] or ""))
            except GennasError as exc:
                raise GennasError(f"{path}, line {line}: {exc}") from None
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                raise GennasError(f"{path}, line {line}: value {row['value']!r} is not a number") from None
            if not math.isfinite(value):
                raise GennasError(f"{path}, line {line}: value {row['value']!r} is not finite; drop the row or measure it")
            values.append(value)
    if len(cells) < 2:
        raise GennasError(f"{path}: need at least 2 measured cells, found {len(cells)}")
    return cells, np.array(values)


def write_measurements(path: str | Path, cells: list[Cell], values: np.ndarray) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["arch", "value"])
    writer.writerows([c.to_string(), repr(float(v))] for c, v in zip(cells, values))
    return write_text(path, buffer.getvalue())


def read_cells(path: str | Path, space: CellSpace) -> list[Cell]:
    """One arch string per line; blank lines and ``#`` comments are skipped."""
    path = Path(path)
    if not path.is_file():
        raise GennasError(f"cells file {path} not found (expected one arch string per line)")
    cells = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        text = text.strip()
        if text and not text.startswith("#"):
            try:
                cells.append(space.parse(text))
            except GennasError as exc:
                raise GennasError(f"{path}, line {line}: {exc}") from None
    return cells
