"""Latency lookup tables: a network's latency on *this* hardware as a sum of measured blocks.

`gennas latency-table` times each block of the skeleton once (see
:mod:`gennas.metrics.lut_measure`); a cell's latency is then read off the table for free, so
``latency`` becomes a cost metric like FLOPs: exact *for the table* (the sum of its
entries), linear in the per-edge ops (so guidance differentiates it exactly), and no
network is built. The blocks, each at the channels and resolution the network gives it:

* ``stem``, the two ``reduction`` blocks (stage 1 -> 2, 2 -> 3) and the ``head`` (BN, ReLU,
  global pooling, classifier): fixed, once per network;
* ``cell`` at each stage: a cell slot's own bookkeeping (an all-``none`` cell), once per slot;
* ``edge`` per op and stage: the op plus the addition into its node, once per edge carrying it.

The file is CSV with ``#`` header lines naming the format, space, device, skeleton and
machine; a table answers only the space and skeleton it was measured for.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from gennas.errors import GennasError
from gennas.io import write_text
from gennas.metrics.registry import TABLE_LATENCY, alias_to
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell

FORMAT_LINE = "# gennas latency table, format 1"
COLUMNS = ("block", "op", "stage", "channels_in", "channels_out", "side_in", "side_out", "median_ms", "spread_ms")
HEADER_KEYS = ("space", "ops", "device", "network", "machine", "method")


@dataclass(frozen=True)
class Block:
    """One measured block: what it is, where it sits, and the shapes it was timed at."""

    kind: str  # stem, cell, edge, reduction, head
    op: str  # the edge op; "" for the other blocks
    stage: int  # 1-3 (a reduction: the stage it leaves; stem 0)
    channels_in: int
    channels_out: int
    side_in: int
    side_out: int

    @property
    def key(self) -> tuple[str, str, int]:
        return self.kind, self.op, self.stage


def skeleton_blocks(ops: tuple[str, ...], config: NetworkConfig) -> list[Block]:
    """Every block a network of ``config`` over edge ops ``ops`` is made of (``none`` costs nothing)."""
    (c1, c2, c3), (s1, s2, s3) = config.stage_channels, config.stage_sizes
    stages = ((1, c1, s1), (2, c2, s2), (3, c3, s3))
    blocks = [Block("stem", "", 0, config.in_channels, c1, s1, s1)]
    for stage, c, s in stages:
        blocks.append(Block("cell", "", stage, c, c, s, s))
        blocks += [Block("edge", op, stage, c, c, s, s) for op in ops if op != "none"]
    blocks += [Block("reduction", "", 1, c1, c2, s1, s2), Block("reduction", "", 2, c2, c3, s2, s3)]
    blocks.append(Block("head", "", 3, c3, config.num_classes, s3, 1))
    return blocks


def skeleton_flags(config: NetworkConfig) -> str:
    """The `gennas latency-table` flags that time exactly the skeleton ``config``."""
    return " ".join(f"--{name.replace('_', '-')} {value}" for name, value in config.to_dict().items())


@dataclass
class LatencyTable:
    """Measured milliseconds per block, for one space, skeleton and device.

    Attributes:
        space: the space name (``nb201``, ``dagN``) the table answers.
        ops: that space's edge ops.
        device: where it was measured (``cpu``, ``cuda``, ``cuda:1``).
        network: the skeleton the blocks were timed in.
        entries: ``Block.key`` -> (median ms, spread ms = interquartile range).
        machine, method: free text recorded with the measurement (hardware, threads; how it was read).
    """

    space: str
    ops: tuple[str, ...]
    device: str
    network: NetworkConfig
    entries: dict[tuple[str, str, int], tuple[float, float]]
    machine: str = ""
    method: str = ""
    path: Path | None = field(default=None, compare=False)

    def _ms(self, kind: str, op: str = "", stage: int = 0) -> float:
        return self.entries[(kind, op, stage)][0]

    def linear_form(self, config: NetworkConfig, ops: tuple[str, ...]) -> tuple[float, list[float]]:
        """Latency (ms) as ``base + sum over edges of cost[op]``.

        Args:
            config: the skeleton being costed; it must be the one the table was measured in.
            ops: the ops to cost (a space's op list, or a cell's edge ops).

        Returns:
            ``(base, costs)``: base = stem + reductions + head + N x the cell slots;
            ``costs[k]`` = N x the sum over stages of ``ops[k]``'s edge entry (0 for ``none``).
        """
        self.check_network(config)
        unknown = sorted(set(ops) - set(self.ops))
        if unknown:
            raise GennasError(f"latency table{self._where()} has no entry for op(s) {unknown}; it covers {list(self.ops)}")
        n = config.cells_per_stage
        base = self._ms("stem") + self._ms("reduction", "", 1) + self._ms("reduction", "", 2) + self._ms("head", "", 3)
        base += n * sum(self._ms("cell", "", stage) for stage in (1, 2, 3))
        costs = [0.0 if op == "none" else n * sum(self._ms("edge", op, stage) for stage in (1, 2, 3)) for op in ops]
        return base, costs

    def cell_latency(self, cell: Cell, config: NetworkConfig) -> float:
        """The table's latency (ms) of ``build_network(cell, config)``: the sum of its blocks' entries."""
        base, costs = self.linear_form(config, cell.ops)
        return base + sum(costs)

    def check_network(self, config: NetworkConfig) -> None:
        if config != self.network:
            raise GennasError(
                f"latency table{self._where()} was measured on the skeleton {self.network.describe()}, but this "
                f"command costs cells on {config.describe()}; measure a table for it with gennas latency-table "
                f"--space {self.space} --device {self.device} {skeleton_flags(config)} --out FILE")

    def check_space(self, space_name: str) -> None:
        if space_name != self.space:
            raise GennasError(f"latency table{self._where()} was measured for space {self.space!r}, not "
                              f"{space_name!r}; measure one with gennas latency-table --space {space_name}")

    @property
    def digest(self) -> str:
        """A short digest of what the table answers (space, skeleton, entries): a search's journal records it."""
        content = json.dumps([self.space, self.network.to_dict(), sorted(self.entries.items())])
        return hashlib.sha256(content.encode()).hexdigest()[:16]

    def _where(self) -> str:
        return f" {self.path}" if self.path else ""


def save_table(table: LatencyTable, path: str | Path) -> Path:
    """Write ``table`` as CSV atomically (a temp file renamed over ``path``)."""
    network = json.dumps(table.network.to_dict(), sort_keys=True)
    header = {"space": table.space, "ops": ",".join(table.ops), "device": table.device, "network": network,
              "machine": table.machine, "method": table.method}
    buffer = io.StringIO()
    buffer.write(FORMAT_LINE + "\n" + "".join(f"# {k}: {header[k]}\n" for k in HEADER_KEYS))
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for block in skeleton_blocks(table.ops, table.network):
        median, spread = table.entries[block.key]
        writer.writerow([block.kind, block.op, block.stage, block.channels_in, block.channels_out, block.side_in,
                         block.side_out, repr(median), repr(spread)])  # repr: read back exactly
    return write_text(path, buffer.getvalue())


def load_table(path: str | Path) -> LatencyTable:
    """Read a table written by :func:`save_table`; anything else is refused with one clear message."""
    path = Path(path)
    remedy = f"measure one with `gennas latency-table --space SPACE --device cpu --out {path}`"
    if not path.is_file():
        raise GennasError(f"latency table {path} does not exist; {remedy}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GennasError(f"latency table {path} cannot be read as text ({exc}); {remedy}") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != FORMAT_LINE:
        raise GennasError(f"{path} is not a gennas latency table (its first line must be {FORMAT_LINE!r}); {remedy}")
    header = _read_header(lines, path)
    rows = [line for line in lines if not line.startswith("#")]
    try:
        network = NetworkConfig(**json.loads(header["network"]))
    except (ValueError, TypeError, GennasError) as exc:
        raise GennasError(f"latency table {path}: its network line is not a skeleton ({exc}); {remedy}") from None
    ops = tuple(op for op in header["ops"].split(",") if op)
    table = LatencyTable(header["space"], ops, header["device"], network, _read_entries(rows, path), header["machine"],
                         header["method"], path)
    missing = [b.key for b in skeleton_blocks(ops, network) if b.key not in table.entries]
    if missing:
        raise GennasError(f"latency table {path} lacks {len(missing)} block(s) its skeleton needs, e.g. {missing[0]}; "
                          f"{remedy}")
    return table


def _read_header(lines: list[str], path: Path) -> dict[str, str]:
    header = {}
    for line in lines[1:]:
        if line.startswith("# ") and ": " in line:
            key, _, value = line[2:].partition(": ")
            header[key.strip()] = value.strip()
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing:
        raise GennasError(f"latency table {path} lacks its header line(s) {', '.join(missing)} "
                          "(written by gennas latency-table); measure it again")
    return header


def _read_entries(rows: list[str], path: Path) -> dict[tuple[str, str, int], tuple[float, float]]:
    """Block key -> (median, spread) from the CSV rows; every value a finite number >= 0, no block twice."""
    reader = csv.reader(rows)
    columns = tuple(next(reader, ()))
    if columns != COLUMNS:
        raise GennasError(f"latency table {path}: columns are {list(columns)}, expected {list(COLUMNS)}")
    entries: dict[tuple[str, str, int], tuple[float, float]] = {}
    for number, row in enumerate(reader, start=2):
        if len(row) != len(COLUMNS):
            raise GennasError(f"latency table {path}: data row {number} has {len(row)} fields, expected {len(COLUMNS)}")
        try:
            stage, median, spread = int(row[2]), float(row[7]), float(row[8])
        except ValueError:
            raise GennasError(f"latency table {path}: data row {number} holds a non-number ({row})") from None
        if not (math.isfinite(median) and math.isfinite(spread) and median >= 0 and spread >= 0):
            raise GennasError(f"latency table {path}: data row {number} needs finite times >= 0, got {median}, {spread}")
        key = (row[0], row[1], stage)
        if key in entries:
            raise GennasError(f"latency table {path}: block {key} appears twice")
        entries[key] = (median, spread)
    return entries


# ------------------------------------------------------------ the table in use
_IN_USE: list[LatencyTable] = []


def table_in_use() -> LatencyTable | None:
    """The table a command was given with ``--latency-table`` (None: latency is only measured)."""
    return _IN_USE[-1] if _IN_USE else None


def latency_table_scope(path: str | Path | None, space_name: str) -> contextlib.AbstractContextManager:
    """What ``--latency-table PATH`` does for a command on ``space_name``: the checked table in use (no-op for None)."""
    if path is None:
        return contextlib.nullcontext()
    from gennas.space.space import get_space

    table = load_table(path)
    table.check_space(get_space(space_name).name)
    return latency_table_in_use(table)


@contextlib.contextmanager
def latency_table_in_use(table: LatencyTable) -> Iterator[LatencyTable]:
    """Make ``table`` answer ``lut_latency_ms`` (and the ``latency`` alias) for the duration of the block."""
    _IN_USE.append(table)
    try:
        with alias_to("latency", TABLE_LATENCY):
            yield table
    finally:
        _IN_USE.pop()
