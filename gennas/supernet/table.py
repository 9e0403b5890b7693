"""``subnets.csv``: one row per measured subnet, written by ``gennas run`` and read by ``gennas prune``.

One reader and one writer, so every value comes back with the type it was written
with (text, integer or float) and a damaged file is an error naming the file, the line
and the column, never a traceback or a silently wrong figure.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from gennas.errors import GennasError
from gennas.io import write_text
from gennas.supernet.standalone import STANDALONE_COLUMNS

#: Columns in file order; accuracies are percentages, FLOPs and params in millions.
COLUMNS = ("arch", "selected_because", "equivalent", "blocks_on", "flops", "params", "memory_bytes", "latency_ms",
           "latency_spread_ms", "lut_latency_ms", "val_accuracy", "val_pgd_accuracy", "accuracy", "pgd_accuracy", "fgsm_accuracy",
           "noise_accuracy", *STANDALONE_COLUMNS)
TEXT_COLUMNS = frozenset({"arch", "selected_because", "equivalent"})
INTEGER_COLUMNS = frozenset({"blocks_on", "memory_bytes"})
#: Columns a file written before they existed may lack; they read as these values.
OPTIONAL_COLUMNS = {"equivalent": "", "latency_spread_ms": "nan", "lut_latency_ms": "nan", **{c: "nan" for c in STANDALONE_COLUMNS}}
#: Columns where "not measured" (NaN, an empty cell in the file) is a valid value.
#: A subnet's test figures are NaN unless it was read with the test split (a run reads validation only).
TEST_READINGS = ("accuracy", "pgd_accuracy", "fgsm_accuracy", "noise_accuracy")
#: ``lut_latency_ms``: the --latency-table's latency of the subnet, when the run had a table.
MAY_BE_MISSING = frozenset({"latency_spread_ms", "lut_latency_ms", *TEST_READINGS, *STANDALONE_COLUMNS})


def figure(row: dict, column: str) -> float | None:
    """``row[column]`` when it holds a measured number, else None (absent, or NaN: not measured)."""
    value = row.get(column)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def write_subnet_table(path: str | Path, rows: list[dict]) -> Path:
    """Write ``rows`` atomically (a crash never leaves half a table)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def read_subnet_table(path: str | Path) -> list[dict]:
    """The rows of ``path`` with typed values.

    Raises:
        GennasError: the file lacks a column, has a row with too few or too many fields, a
            value that is not a number where one belongs, or repeats a subnet.
    """
    path = Path(path)
    advice = f"delete or move {path} and rerun `gennas run` with the same --out to measure the subnets again"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GennasError(f"cannot read {path} ({exc}); {advice}") from exc
    reader = csv.DictReader(io.StringIO(text), restkey="\0extra")
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or []) and c not in OPTIONAL_COLUMNS]
    if missing:
        raise GennasError(f"{path} lacks the column(s) {', '.join(missing)}; {advice}")
    rows, seen = [], set()
    for raw in reader:
        line = reader.line_num
        if "\0extra" in raw or any(v is None for v in raw.values()):
            raise GennasError(f"{path}, line {line}: the row has {'more' if chr(0) + 'extra' in raw else 'fewer'} "
                              f"fields than the header (a truncated or damaged file); {advice}")
        row = {column: _typed(column, raw.get(column, OPTIONAL_COLUMNS.get(column)), path, line, advice)
               for column in COLUMNS}
        if row["arch"] in seen:
            raise GennasError(f"{path}, line {line}: subnet {row['arch']} is listed twice; {advice}")
        seen.add(row["arch"])
        rows.append(row)
    return rows


def _typed(column: str, value, path: Path, line: int, advice: str):
    if column in TEXT_COLUMNS or not isinstance(value, str):
        return value
    if column in MAY_BE_MISSING and value == "":
        return math.nan
    try:
        number = float(value)
        if column in INTEGER_COLUMNS:
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
    except ValueError:
        raise GennasError(f"{path}, line {line}: {column} is {value!r}, not a number; {advice}") from None
    if not math.isfinite(number) and not (column in MAY_BE_MISSING and math.isnan(number)):
        raise GennasError(f"{path}, line {line}: {column} is {value!r}, not a finite number; {advice}")
    return number
