"""Benchmark: DARTS (1st/2nd order) and GDAS on digits, and the wall-clock comparison (issue 7).

Parts:
  search   DARTS-1st, DARTS-2nd and GDAS on digits over the NB201 space (and dag6): the
           op-weight trajectory per epoch, the derived cell, that cell retrained standalone
           (accuracy, PGD, FLOPs, memory on the test split) and, for NB201 cells, the cell's
           table accuracies on CIFAR-10/100 and ImageNet16-120 (a transfer view: the search
           never saw those tables). Collapse to parameter-free ops is reported, not hidden.
  compare  `gennas compare --budget-minutes M`: ours, darts, gdas, rea, random under the same
           wall-clock search budget, every found cell retrained with one recipe.

Results merge into experiments/results/weightsharing_<dataset>.json and .md (each part keeps
its own provenance); searches checkpoint per epoch under --work and resume when rerun.

    python experiments/bench_weightsharing.py --part search [--spaces nb201,dag6] [--device auto]
    python experiments/bench_weightsharing.py --part compare [--minutes 1.5] [--seeds 2]
    python experiments/bench_weightsharing.py --part all --quick --device cuda   # ~4 minutes on a GPU
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gennas.bench.training import TrainingOracle
from gennas.data import load_dataset
from gennas.io import write_json, write_text
from gennas.provenance import provenance, provenance_markdown
from gennas.search.wallclock import WallClockSpec, markdown_report, nb201_transfer, run_wallclock
from gennas.space import get_space
from gennas.train import TrainConfig
from gennas.weightsharing import WeightSharingConfig, search_cell
from gennas.markdown import code_cell

#: (label, WeightSharingConfig fields, epochs, quick epochs)
RUNS = [
    ("darts-1st", {"method": "darts", "order": 1}, 50, 8),
    ("darts-2nd", {"method": "darts", "order": 2}, 30, 4),
    ("gdas", {"method": "gdas", "order": 1}, 100, 15),
]
COMPARE_METHODS = "ours,darts,gdas,rea,random"
PARAMETER_FREE = ("skip_connect", "avg_pool_3x3")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_search_part(args: argparse.Namespace, splits, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Search every (space, method); entries of spaces not rerun now are kept from ``previous``."""
    entries = dict(previous["entries"]) if previous else {}
    for space_name in args.spaces.split(","):
        space = get_space(space_name)
        oracle = TrainingOracle(splits, space=space, train=TrainConfig(epochs=args.retrain_epochs, seed=0,
                                                                       device=args.device),
                                channels=args.channels, cells_per_stage=args.cells_per_stage, progress=False)
        for label, fields, epochs, quick in RUNS:
            config = WeightSharingConfig(**fields, epochs=quick if args.quick else epochs, channels=args.channels,
                                         cells_per_stage=args.cells_per_stage, seed=args.seed, device=args.device)
            log(f"[search] {space.name} {label}: {config.epochs} epochs")
            result = search_cell(splits, space, config, checkpoint_path=Path(args.work) / f"{space.name}_{label}.pt",
                                 progress=True)
            measured = oracle.query(result.cell)
            entries[f"{space.name}/{label}"] = {
                "space": space.name, **result.to_dict(), "retrained": measured, **nb201_transfer(result.cell),
                "provenance": provenance(),
            }
    return {"provenance": provenance(), "retrain_epochs": args.retrain_epochs, "entries": entries}


def _trajectory_lines(entry: dict[str, Any]) -> list[str]:
    traj = entry["trajectory"]
    picks = sorted({0, len(traj) // 4, len(traj) // 2, 3 * len(traj) // 4, len(traj) - 1})
    ops = list(traj[0]["op_mass"])
    lines = ["| epoch | " + " | ".join(ops) + " | supernet val % | derived cell |", "|" + "---|" * (len(ops) + 3)]
    for i in picks:
        r = traj[i]
        lines.append(f"| {r['epoch']} | " + " | ".join(f"{r['op_mass'][op]:.3f}" for op in ops)
                     + f" | {r['supernet_val_accuracy']:.1f} | {code_cell(r['arch'])} |")
    return lines


def search_markdown(part: dict[str, Any]) -> str:
    lines = ["## DARTS / GDAS searches on digits\n", provenance_markdown(part["provenance"]),
             "(the provenance of the latest search; each entry of the JSON carries its own)\n",
             f"Derived cell retrained standalone for {part['retrain_epochs']} epochs (C and N as the supernet); "
             "accuracy/PGD on the digits test split; NB201 columns: the derived cell's table accuracy "
             "(transfer view, reporting only).\n",
             "Parameter-free edges: how many edges of the derived cell carry skip_connect or avg_pool_3x3 (the "
             "collapse DARTS is known for on NB201, where its published CIFAR-10 result is 54.30%).\n",
             "| space | method | epochs | search s | derived cell | parameter-free edges | accuracy | PGD | FLOPs (M) | "
             "memory (B) | C10 table | C100 table | IN16 table |", "|" + "---|" * 13]
    for e in part["entries"].values():
        m = e["retrained"]
        table = [f"{e[k]:.2f}" if k in e else "" for k in ("nb201_cifar10", "nb201_cifar100", "nb201_ImageNet16-120")]
        free = sum(op in PARAMETER_FREE for op in get_space(e["space"]).parse(e["arch"]).ops)
        lines.append(f"| {e['space']} | {e['method']} | {e['epochs']} | {e['seconds']:.0f} | {code_cell(e['arch'])} | "
                     f"{free}/{get_space(e['space']).num_edges} | "
                     f"{m['accuracy']:.2f} | {m['pgd_accuracy']:.2f} | {m['flops']:.3f} | {m['memory_bytes']:.0f} | "
                     + " | ".join(table) + " |")
    lines.append("\nMean softmax weight of each op over the edges (the drift DARTS is known for shows here):\n")
    for key, e in part["entries"].items():
        lines += [f"### {key}\n", *_trajectory_lines(e), ""]
    return "\n".join(lines) + "\n"


def markdown(results: dict[str, Any]) -> str:
    out = [f"# Weight-sharing baselines on {results['dataset']} (issue 7)\n"]
    if "search" in results:
        out.append(search_markdown(results["search"]))
    if "compare" in results:
        out.append(markdown_report(results["compare"], level=2))
    return "\n".join(out)


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # benchmarks time processes side by side: one core each
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("search", "compare", "all"), default="all")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--spaces", default="nb201,dag6")
    parser.add_argument("--device", default="auto", help="auto (CUDA with AMP if present), cpu, cuda")
    parser.add_argument("--quick", action="store_true", help="few epochs, 0.5-minute budget, 1 seed (a GPU smoke run)")
    parser.add_argument("--minutes", type=float, default=1.5, help="compare: search minutes per method and seed")
    parser.add_argument("--seeds", type=int, default=2, help="compare: seeds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain-epochs", type=int, default=4, help="standalone recipe (the compare's --epochs)")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells-per-stage", type=int, default=2)
    parser.add_argument("--work", default="runs/bench_weightsharing", help="checkpoints and compare rows (resume)")
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--render-only", action="store_true", help="rewrite the Markdown from the JSON; run nothing")
    args = parser.parse_args()
    path = Path(args.out) / f"weightsharing_{args.dataset}.json"
    results = json.loads(path.read_text()) if path.exists() else {"dataset": args.dataset}
    if not args.render_only:
        splits = load_dataset(args.dataset)
        if args.part in ("search", "all"):
            results["search"] = run_search_part(args, splits, results.get("search"))
            write_json(path, results)
        if args.part in ("compare", "all"):
            spec = WallClockSpec(dataset=args.dataset, space="nb201", minutes=0.5 if args.quick else args.minutes,
                                 seeds=1 if args.quick else args.seeds, seed=args.seed, epochs=args.retrain_epochs,
                                 device=args.device, channels=args.channels, cells_per_stage=args.cells_per_stage)
            methods = COMPARE_METHODS.split(",")
            results["compare"] = run_wallclock(spec, methods, Path(args.work) / "compare", progress=True)
            write_json(path, results)
    write_text(path.with_suffix(".md"), markdown(results))
    log(f"wrote {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
