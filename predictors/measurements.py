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
from gennas.space.protocol import ArchSpace


def read_measurements(path: str | Path, space: ArchSpace) -> tuple[list[Cell], np.ndarray]:
    """Cells and values from a CSV with columns ``arch`` and ``value`` (other columns are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise GennasError(f"measurements file {path} not found (expected a CSV with columns arch,value)")
    with io.StringIO(read_text_file(path, "measurements file"), newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("arch", "value") if c not in (reader.fieldnames or [])]
        if missing:
            raise GennasError(f"{path}: missing column(s) {missing}; the header must name 'arch' and 'value' "
                              f"(found {reader.fieldnames})")
        cells, values = [], []
        first_line: dict[str, tuple[int, float]] = {}  # arch -> (line, value) where it first appeared
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
            key = cells[-1].to_string()
            if key in first_line and first_line[key][1] != value:
                raise GennasError(f"{path}, line {line}: cell {key} was given value {first_line[key][1]!r} on line "
                                  f"{first_line[key][0]} and {value!r} here; keep one row per cell (e.g. the mean)")
            first_line.setdefault(key, (line, value))
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


def read_cells(path: str | Path, space: ArchSpace) -> list[Cell]:
    """One arch string per line; blank lines and ``#`` comments are skipped."""
    path = Path(path)
    if not path.is_file():
        raise GennasError(f"cells file {path} not found (expected one arch string per line)")
    cells = []
    for line, text in enumerate(read_text_file(path, "cells file").splitlines(), start=1):
        text = text.strip()
        if text and not text.startswith("#"):
            try:
                cells.append(space.parse(text))
            except GennasError as exc:
                raise GennasError(f"{path}, line {line}: {exc}") from None
    if not cells:
        raise GennasError(f"cells file {path} lists no cell (only blank or # lines); write one arch string per line")
    return cells


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``, or one clear error for a binary or unreadable file."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GennasError(f"{what} {path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
                          "give a text file") from None
    except OSError as exc:
        raise GennasError(f"cannot read {what} {path}: {exc.strerror}") from None
