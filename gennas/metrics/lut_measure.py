"""Measuring a latency table: each block of the skeleton timed on its own, on this machine.

A block is built from the very modules the network uses (:mod:`gennas.nn`), at the
channels and resolution it has in the network, and read like a whole network's latency
(:func:`gennas.metrics.latency.read_latency`: warm-up, then the median of the least
disturbed of several rounds, its interquartile range as the spread). Timing blocks apart
misses what a whole forward shares between them (caches, the Python loop around layers),
which is why the table's agreement with end-to-end latency is measured and reported
(``experiments/bench_latency_table.py``), not assumed.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch
from torch import nn

from gennas.metrics.latency import read_latency
from gennas.metrics.lut import Block, LatencyTable, skeleton_blocks
from gennas.nn.cell import CellModule
from gennas.nn.network import CellNetwork, NetworkConfig
from gennas.nn.ops import ResidualReduction, make_op
from gennas.space.cell import Cell
from gennas.space.space import CellSpace


@dataclass(frozen=True)
class Reading:
    """How each block is timed (see :func:`gennas.metrics.latency.read_latency`)."""

    warmup: int = 10
    repeats: int = 50
    rounds: int = 5

    def describe(self) -> str:
        return (f"batch 1; {self.warmup} warm-up forwards, then {self.rounds} rounds of {self.repeats}; median of "
                "the round with the smallest median, spread = its interquartile range")


class _EdgeBlock(nn.Module):
    """An edge op plus the addition that sums it into its node, as a cell runs it."""

    def __init__(self, op: str, channels: int) -> None:
        super().__init__()
        self.op = make_op(op, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.op(x)


def block_module(block: Block, config: NetworkConfig, space: CellSpace) -> nn.Module:
    """The module that ``block`` stands for, with the network's own layers."""
    if block.kind == "edge":
        return _EdgeBlock(block.op, block.channels_in)
    if block.kind == "cell":
        return CellModule(Cell(("none",) * space.num_edges), block.channels_in)
    if block.kind == "reduction":
        return ResidualReduction(block.channels_in, block.channels_out)
    reference = CellNetwork(Cell(("none",) * space.num_edges), config)
    if block.kind == "stem":
        return reference.stem
    return nn.Sequential(reference.head, reference.pool, nn.Flatten(1), reference.classifier)


def measure_table(space: CellSpace, config: NetworkConfig, device: torch.device,
                  reading: Reading = Reading()) -> LatencyTable:
    """Time every block of ``config``'s skeleton over ``space``'s ops on ``device``.

    Args:
        space: the space whose edge ops are timed (and whose name the table records).
        config: the skeleton; each block is timed at its channels and resolution there.
        device: where to time (CUDA readings synchronise around each forward).
        reading: warm-up and rounds of each block's reading.

    Returns:
        The table, with the machine and the reading method recorded.
    """
    entries = {}
    for block in skeleton_blocks(space.ops, config):
        module = block_module(block, config, space)
        value = read_latency(module, (block.channels_in, block.side_in, block.side_in), device,
                             repeats=reading.repeats, warmup=reading.warmup, rounds=reading.rounds)
        entries[block.key] = (value.median_ms, value.spread_ms)
    return LatencyTable(space.name, space.ops, str(device), config, entries, machine_line(device), reading.describe())


def machine_line(device: torch.device) -> str:
    """The hardware and threads a reading depends on, in one line."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return (f"{platform.platform()}; {where}; {os.cpu_count()} CPUs; torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s)")
