"""`gennas latency-table`: time each block of the skeleton on this machine, for `--latency-table`."""

from __future__ import annotations

import argparse

from gennas import validate as v
from gennas.subcommands.common import add_json, add_network, add_shape_flags, emit, with_skeleton_flags


def _table_network(args: argparse.Namespace):
    """The skeleton to time: NAS-Bench-201's for ``--dataset`` (default CIFAR-10), then the flags' overrides."""
    from gennas.bench.tabular import nb201_network

    return with_skeleton_flags(nb201_network(args.dataset), args)


def _cmd_latency_table(args: argparse.Namespace) -> None:
    from gennas.device import resolve_device
    from gennas.metrics.lut import save_table
    from gennas.metrics.lut_measure import Reading, measure_table
    from gennas.space import get_space

    space = get_space(args.space)
    device = resolve_device(args.device)
    network = _table_network(args)
    table = measure_table(space, network, device, Reading(args.warmup, args.repeats, args.rounds))
    path = save_table(table, args.out)
    base, costs = table.linear_form(network, space.ops)
    emit({"out": str(path), "space": space.name, "device": str(device), "skeleton": network.describe(),
          "blocks": len(table.entries), "fixed_ms": base, "per_edge_ms": dict(zip(space.ops, costs)),
          "machine": table.machine}, args.json)


def add_latency_option(parser: argparse.ArgumentParser) -> None:
    """``--latency-table FILE``: ``latency`` becomes a free cost read from a table of `gennas latency-table`."""
    parser.add_argument("--latency-table", metavar="FILE", default=None,
                        help="a table written by gennas latency-table: makes `latency` (lut_latency_ms) a free cost "
                             "metric, the sum of the table's measured blocks, usable in objectives and constraints")


def add_latency_table(sub: argparse._SubParsersAction) -> None:
    """`gennas latency-table --space S --device D --out lut.csv`."""
    p = sub.add_parser("latency-table", help="measure per-block latency on this machine (for --latency-table)",
                       description="Time every block of the network skeleton on this machine: the stem, the two "
                                   "reductions, the head, each stage's cell slot and every edge op at each stage's "
                                   "channels and resolution (the op plus the addition into its node). A cell's "
                                   "latency is then the sum of its blocks' entries, free: pass the file to "
                                   "generate, search, compare or cost with --latency-table. Each entry is the median "
                                   "of the least disturbed of --rounds rounds after --warmup forwards, with its "
                                   "interquartile range as the spread; the file is written atomically.")
    p.add_argument("--space", default="nb201", help="nb201 or dagN (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    p.add_argument("--out", type=v.output_file, required=True, help="CSV table to write")
    p.add_argument("--dataset", default="cifar10",
                   help="NB201 skeleton of this dataset: cifar10, cifar100, ImageNet16-120 (default %(default)s)")
    group = p.add_argument_group("network skeleton overrides (default: the dataset's NB201 skeleton)")
    add_network(group, title=None)
    add_shape_flags(group)
    p.add_argument("--warmup", type=v.nonneg_int, default=10, help="untimed forwards per block (default %(default)s)")
    p.add_argument("--repeats", type=v.positive_int, default=50, help="timed forwards per round (default %(default)s)")
    p.add_argument("--rounds", type=v.positive_int, default=5, help="rounds per block (default %(default)s)")
    add_json(p)
    p.set_defaults(func=_cmd_latency_table)
