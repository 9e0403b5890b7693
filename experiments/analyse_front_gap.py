"""Analysis: where a method's measured front falls short of the true one (issue 16, the HV targets).

Not a search: it reads the journals a ``bench_search.py --part multi`` run wrote and the
full target table (which no searcher may do) to say *which* true-front cells a method had
not measured by query K, and what each would have added. For each seed it reports the HV
ratio at K, the true-front cell whose addition alone would raise it most (its FLOPs,
accuracy and the HV-ratio gain), and, over the seeds, how often that cell lies in the
top accuracy band (within ``--band`` points of the table's optimum): the share of the
shortfall that is an accuracy search problem rather than a front-coverage one.

    python experiments/analyse_front_gap.py --work runs/bench_multi_ours --datasets cifar100,ImageNet16-120 \\
        [--part multi|multi_transfer] [--method ours] [--option KEY=VALUE] \\
        [--objectives accuracy:max,flops:min] [--at 50] [--out experiments/results]

``--part multi_transfer`` reads the transfer prior's journals and writes ``front_gap_<method>_transfer``;
the (accuracy, FLOPs, memory) goal writes ``front_gap_<method>_memory``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gennas.io import write_json, write_text
from gennas.objectives import minimisation_matrix, parse_objectives
from gennas.provenance import provenance, provenance_markdown
from gennas.search.indicators import Reference, nb201_reference


#: How the per-seed table shows an objective of the largest-gain cell: header, divisor, format.
COLUMNS = {"flops": ("largest gain: FLOPs (M)", 1.0, ".1f"), "accuracy": ("its accuracy (%)", 1.0, ".2f"),
           "memory_bytes": ("its peak memory (MB)", 1e6, ".2f")}


def gain_columns(goal: str) -> list[str]:
    """The goal's metrics in table order: FLOPs and accuracy first, then the rest as the goal lists them."""
    metrics = [o.metric for o in parse_objectives(goal)]
    return [m for m in ("flops", "accuracy") if m in metrics] + [m for m in metrics if m not in ("flops", "accuracy")]


def seed_gap(reference: Reference, rows: list[dict], objectives) -> dict:
    """The HV ratio of ``rows`` and, for every true-front point, the ratio it would add alone."""
    measured = minimisation_matrix(rows, objectives)
    base = reference._hv(measured)
    gains = np.array([reference._hv(np.vstack([measured, point[None]])) - base for point in reference.front])
    best = int(gains.argmax())
    point = reference.front[best]
    values = {o.metric: float(-v if o.direction == "max" else v) for o, v in zip(objectives, point)}
    return {"hv_ratio": float(base / reference._front_hv),
            "largest_gain": {**values, "hv_ratio_gain": float(gains[best] / reference._front_hv)},
            "missing_front_cells": int((gains > 1e-9).sum())}


def analyse(work: Path, part: str, dataset: str, method: str, goal: str, at: int, band: float,
            variant: str = "") -> dict:
    objectives = parse_objectives(goal)
    reference = nb201_reference(dataset, objectives)
    goal_folder = goal.replace(":", "-").replace(",", "_")
    folder = work / part / dataset / goal_folder / variant.replace("=", "-").replace(" ", "_") / method
    seeds = {}
    for path in sorted(folder.glob("seed_*.json"), key=lambda p: int(p.stem.split("_")[1])):
        history = json.loads(path.read_text())["run"]["history"]
        if len(history) >= at:
            seeds[path.stem] = seed_gap(reference, history[:at], objectives)
    in_band = [s for s in seeds.values() if s["largest_gain"]["accuracy"] >= reference.optimum - band]
    return {"part": part, "dataset": dataset, "goal": goal, "method": f"{method} ({variant})" if variant else method,
            "at": at, "optimum": reference.optimum,
            "true_front_cells": len(reference.front), "seeds": seeds,
            "mean_hv_ratio": float(np.mean([s["hv_ratio"] for s in seeds.values()])) if seeds else None,
            "largest_gain_in_top_band": len(in_band), "band_points": band,
            "mean_largest_gain": float(np.mean([s["largest_gain"]["hv_ratio_gain"] for s in seeds.values()]))
            if seeds else None}


def markdown(payload: dict) -> str:
    lines = ["# Where the measured front falls short (analysis, not a benchmark)", "",
             provenance_markdown(payload["provenance"]), "",
             "Per seed: the HV ratio at K queries, and the true-front cell that alone would raise it most. "
             "The top band is the cells within the stated points of the table's optimum.", ""]
    for entry in payload["entries"]:
        prior = " (transfer prior)" if entry.get("part") == "multi_transfer" else ""
        lines += [f"## {entry['dataset']} | {entry['goal']} | {entry['method']}{prior} at {entry['at']} queries", "",
                  f"Optimum {entry['optimum']:.2f} %, {entry['true_front_cells']} cells on the true front; mean HV "
                  f"ratio {entry['mean_hv_ratio']:.3f} over {len(entry['seeds'])} seeds. The largest single gain "
                  f"is a top-band cell (at most {entry['band_points']:g} point(s) below the optimum) in "
                  f"{entry['largest_gain_in_top_band']} of {len(entry['seeds'])} seeds; that one cell alone would "
                  f"add {entry['mean_largest_gain']:.3f} to the HV ratio on average.", ""]
        metrics = gain_columns(entry["goal"])
        columns = [COLUMNS.get(m, (f"its {m}", 1.0, ".4g")) for m in metrics]
        lines += ["| seed | HV ratio | true-front cells missing | " + "".join(f"{c[0]} | " for c in columns)
                  + "HV ratio it adds |", "|---|---|---|" + "---|" * len(columns) + "---|"]
        for seed, s in entry["seeds"].items():
            g = s["largest_gain"]
            values = "".join(f"{g[m] / divisor:{fmt}} | " for m, (_, divisor, fmt) in zip(metrics, columns))
            lines.append(f"| {seed.split('_')[1]} | {s['hv_ratio']:.3f} | {s['missing_front_cells']} | {values}"
                         f"{g['hv_ratio_gain']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="the --work folder of a bench_search.py multi run")
    parser.add_argument("--part", choices=("multi", "multi_transfer"), default="multi",
                        help="which part's journals (multi_transfer: the transfer prior's runs)")
    parser.add_argument("--datasets", default="cifar100,ImageNet16-120")
    parser.add_argument("--method", default="ours")
    parser.add_argument("--option", default="", metavar="KEY=VALUE",
                        help="the journals of the method under this one option (bench_search --option)")
    parser.add_argument("--objectives", default="accuracy:max,flops:min")
    parser.add_argument("--at", type=int, default=50, help="queries K at which the front is read")
    parser.add_argument("--band", type=float, default=1.0, help="points below the optimum counted as the top band")
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    args = parser.parse_args()
    entries = [analyse(args.work, args.part, d, args.method, args.objectives, args.at, args.band, args.option)
               for d in args.datasets.split(",")]
    payload = {"provenance": provenance(), "entries": entries}
    stem = (f"front_gap_{args.method}" + ("_transfer" if args.part == "multi_transfer" else "")
            + (f"_{args.option.replace('=', '')}" if args.option else "")
            # a goal beyond (accuracy, FLOPs) keeps its own file, e.g. front_gap_ours_memory
            + "".join(f"_{m.removesuffix('_bytes')}" for m in gain_columns(args.objectives)[2:]))
    write_json(args.out / f"{stem}.json", payload)
    write_text(args.out / f"{stem}.md", markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
