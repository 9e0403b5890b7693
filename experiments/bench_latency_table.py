"""Benchmark: does a latency table rank cells as their measured end-to-end latency does? (issue 21)

Measures a table with `gennas latency-table`'s code on this machine, then times 50 distinct
cells end to end (whole network, batch 1, the same reading: warm-up, median of the least
disturbed round) and compares each with the table's sum. Target: Kendall tau >= 0.9.
Writes the table it used beside the results, so every figure can be recomputed.

    python experiments/bench_latency_table.py [--space nb201] [--device cpu] [--cells 50] [--seed 0]
        [--shared-with "what else ran on these cores"] [--out experiments/results]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from gennas.device import resolve_device
from gennas.io import write_json, write_text
from gennas.metrics.latency import read_latency
from gennas.metrics.lut import save_table
from gennas.metrics.lut_measure import Reading, measure_table
from gennas.nn.network import NetworkConfig, build_network
from gennas.provenance import provenance, provenance_markdown
from gennas.space.space import get_space, sample_distinct

TARGET_TAU = 0.9


def measure(args: argparse.Namespace) -> dict:
    """The table, then every cell end to end; the machine's load before and after."""
    space, device, config = get_space(args.space), resolve_device(args.device), NetworkConfig()
    load_before = os.getloadavg()
    table = measure_table(space, config, device, Reading(args.warmup, args.repeats, args.rounds))
    cells = sample_distinct(space, args.cells, np.random.default_rng(args.seed))
    rows = []
    shape = (config.in_channels, config.image_size, config.image_size)
    for i, cell in enumerate(cells):
        reading = read_latency(build_network(cell, config), shape, device, repeats=args.e2e_repeats,
                               warmup=args.warmup, rounds=args.rounds)
        rows.append({"arch": cell.to_string(), "measured_ms": reading.median_ms, "spread_ms": reading.spread_ms,
                     "table_ms": table.cell_latency(cell, config)})
        print(f"{i + 1}/{len(cells)} {rows[-1]['measured_ms']:.3f} ms measured, {rows[-1]['table_ms']:.3f} ms table",
              file=sys.stderr)
    return {"table": table, "rows": rows, "load_before": load_before, "load_after": os.getloadavg()}


def agreement(rows: list[dict]) -> dict:
    """Rank and scale agreement of the table's sums with the measured latencies."""
    measured = np.array([r["measured_ms"] for r in rows])
    table = np.array([r["table_ms"] for r in rows])
    ratio = measured / table
    return {"kendall_tau": float(kendalltau(table, measured).statistic),
            "spearman_rho": float(spearmanr(table, measured).statistic),
            "median_measured_over_table": float(np.median(ratio)),
            "ratio_range": [float(ratio.min()), float(ratio.max())],
            "mean_abs_pct_error": float(np.mean(np.abs(table - measured) / measured) * 100),
            "measured_range_ms": [float(measured.min()), float(measured.max())]}


def markdown(result: dict) -> str:
    a, s = result["agreement"], result["settings"]
    lines = ["# Latency table vs end-to-end latency", "", provenance_markdown(result["provenance"]),
             f"Space {s['space']}, device {s['device']}, skeleton {s['skeleton']}; {s['cells']} distinct cells "
             f"(seed {s['seed']}). Table: `{s['table_file']}` ({result['table_blocks']} blocks). Every reading: "
             f"{s['reading']} (end to end: {s['e2e_repeats']} forwards a round).", "",
             f"Shared the cores: {s['shared_with']}; 1-minute load average {s['load_before'][0]:.2f} before, "
             f"{s['load_after'][0]:.2f} after.", "",
             "| Kendall τ | target | Spearman ρ | measured / table (median) | ratio range | mean abs % error | "
             "measured range (ms) |", "|---|---|---|---|---|---|---|",
             f"| {a['kendall_tau']:.3f} | ≥ {TARGET_TAU} | {a['spearman_rho']:.3f} | "
             f"{a['median_measured_over_table']:.3f} | {a['ratio_range'][0]:.2f}–{a['ratio_range'][1]:.2f} | "
             f"{a['mean_abs_pct_error']:.1f} | {a['measured_range_ms'][0]:.2f}–{a['measured_range_ms'][1]:.2f} |", "",
             "| arch | measured ms (± IQR) | table ms |", "|---|---|---|"]
    lines += [f"| `{r['arch']}` | {r['measured_ms']:.3f} ± {r['spread_ms']:.3f} | {r['table_ms']:.3f} |"
              for r in sorted(result["rows"], key=lambda r: r["table_ms"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # one core, as the table was measured on
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cells", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50, help="timed forwards a round, per block")
    parser.add_argument("--e2e-repeats", type=int, default=30, help="timed forwards a round, per whole network")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shared-with", default="not recorded", help="what else ran on this machine's cores")
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    measured = measure(args)
    table, out = measured["table"], Path(args.out)
    table_file = out / f"latency_table_{args.space}_{table.device.split(':')[0]}.csv"
    save_table(table, table_file)
    result = {"provenance": provenance(), "table_blocks": len(table.entries),
              "settings": {"space": args.space, "device": table.device, "skeleton": table.network.describe(),
                           "cells": args.cells, "seed": args.seed, "reading": table.method,
                           "e2e_repeats": args.e2e_repeats, "table_file": str(table_file), "machine": table.machine,
                           "shared_with": args.shared_with, "load_before": measured["load_before"],
                           "load_after": measured["load_after"]},
              "agreement": agreement(measured["rows"]), "target_kendall_tau": TARGET_TAU, "rows": measured["rows"]}
    stem = f"latency_table_{args.space}_{table.device.split(':')[0]}"
    write_json(out / f"{stem}.json", result)
    write_text(out / f"{stem}.md", markdown(result))
    print(f"Kendall tau {result['agreement']['kendall_tau']:.3f}; wrote {out / stem}.json/.md", file=sys.stderr)


if __name__ == "__main__":
    main()
