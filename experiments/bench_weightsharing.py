"""Benchmark: the weight-sharing family on digits, and the wall-clock comparison (issues 7 and 18).

Parts:
  search   DARTS-1st, DARTS-2nd and GDAS on digits over the NB201 space (and dag6): the
           op-weight trajectory per epoch, the derived cell, that cell retrained standalone
           (accuracy, PGD, FLOPs, memory on the test split) and, for NB201 cells, the cell's
           table accuracies on CIFAR-10/100 and ImageNet16-120 (a transfer view: the search
           never saw those tables). Collapse to parameter-free ops is reported, not hidden.
  compare  `gennas compare --budget-minutes M`: ours, darts, gdas, rea, random under the same
           wall-clock search budget, every found cell retrained with one recipe.
  family   every weight-sharing method (FAMILY_METHODS) on nb201 at equal wall-clock
           (--family-minutes per method and seed, --family-seeds seeds) through the same
           comparison, ProxylessNAS once more without its latency loss, each method's peak memory
           of a search step (bytes saved for backward) and, for RSPS/SETN/ENAS, the Kendall τ
           between shared-weight scores and the standalone accuracy of the ground-truth cells of
           experiments/results/main_job_truth_<dataset>.csv.

Results merge into experiments/results/weightsharing_<dataset>.json and .md (each part keeps
its own provenance); searches checkpoint per epoch under --work and resume when rerun.

    python experiments/bench_weightsharing.py --part search [--spaces nb201,dag6] [--device auto]
    python experiments/bench_weightsharing.py --part compare [--minutes 1.5] [--seeds 2]
    python experiments/bench_weightsharing.py --part family [--family-minutes 1] [--family-seeds 3]
    python experiments/bench_weightsharing.py --part all --quick --device cuda   # ~4 minutes on a GPU
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.stats import kendalltau

from gennas.bench.training import TrainingOracle
from gennas.data import DatasetSplits, load_dataset
from gennas.io import write_json, write_text
from gennas.provenance import provenance, provenance_markdown
from gennas.search.methods import PILOT_STEPS, get_method
from gennas.search.wallclock import WallClockSpec, markdown_report, markdown_rows, nb201_transfer, run_wallclock
from gennas.space import get_space
from gennas.space.cell import Cell
from gennas.space.space import CellSpace
from gennas.train import TrainConfig
from gennas.weightsharing import WeightSharingConfig, search_cell
from gennas.markdown import code_cell
from gennas.weightsharing.footprint import search_step_memory
from gennas.weightsharing.oneshot import shared_weight_accuracy
from gennas.weightsharing.search import load_supernet

#: (label, WeightSharingConfig fields, epochs, quick epochs)
RUNS = [
    ("darts-1st", {"method": "darts", "order": 1}, 50, 8),
    ("darts-2nd", {"method": "darts", "order": 2}, 30, 4),
    ("gdas", {"method": "gdas", "order": 1}, 100, 15),
]
COMPARE_METHODS = "ours,darts,gdas,rea,random"
FAMILY_METHODS = ("darts,darts2,gdas,snas,pcdarts,drnas,sdarts-rs,sdarts-adv,pdarts,dartspt,rsps,setn,enas,"
                  "proxyless")
#: The methods whose result is the best sampled cell by shared weights: their ranking is measured.
ONE_SHOT = ("rsps", "setn", "enas")
LATENCY_OFF = "proxyless (latency_weight=0)"
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


def _family_config(method: str, args: argparse.Namespace, **fields: Any) -> WeightSharingConfig:
    """The search config `compare` gives ``method`` (its registry entry's algorithm and order), defaults otherwise."""
    entry = get_method(method)
    return WeightSharingConfig(method=entry.algorithm, order=entry.order, channels=args.channels,
                               cells_per_stage=args.cells_per_stage, device=args.device, **fields)


def _truth_cells(dataset: str, space: CellSpace) -> tuple[list[Cell], dict[str, np.ndarray]]:
    """Ground-truth cells (standalone training, C16 N2, 32 epochs) of bench_main_job's truth part."""
    path = Path("experiments/results") / f"main_job_truth_{dataset}.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    cells = [space.parse(r["arch"]) for r in rows]
    return cells, {k: np.array([float(r[k]) for r in rows]) for k in ("standalone_accuracy", "standalone_val_accuracy")}


class _Reached(Exception):
    """The rerun reached the epochs of the row it reproduces."""


def _stop_at(epochs: int) -> Callable[[dict[str, Any]], None]:
    """An ``on_epoch_end`` that ends a rerun once it has run ``epochs`` epochs (the checkpoint is written first)."""

    def check(record: dict[str, Any]) -> None:
        if record["epoch"] >= epochs:
            raise _Reached

    return check


def oneshot_ranking(args: argparse.Namespace, splits: DatasetSplits, space: CellSpace, rows: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """Kendall τ between a one-shot method's shared-weight scores and standalone accuracy, per (method, seed).

    The comparison rows keep no supernet, so each RSPS/SETN/ENAS search is rerun with the config
    its row planned (same seed: the same run on CPU) up to the epochs it ran, with a checkpoint,
    and that supernet scores every ground-truth cell on the validation split as the method scores
    its candidates. ``same_cell`` says whether the rerun derived the row's cell.
    """
    cells, truth = _truth_cells(args.dataset, space)
    x_val, y_val = splits.val.tensors
    out = []
    for row in (r for r in rows if r["method"] in ONE_SHOT):
        config = _family_config(row["method"], args, epochs=row["epochs_planned"], seed=row["seed"])
        ckpt = Path(args.work) / "family_ranking" / f"{row['method']}_seed_{row['seed']}.pt"
        log(f"[family] {row['method']} supernet of seed {row['seed']} ({row['epochs']} epochs) scores "
            f"{len(cells)} truth cells")
        if not ckpt.exists():
            try:
                search_cell(splits, space, config, checkpoint_path=ckpt, on_epoch_end=_stop_at(row["epochs"]))
            except _Reached:
                pass
        model = load_supernet(ckpt, splits, space, config)
        scores = np.array(shared_weight_accuracy(model, cells, x_val, y_val))
        derived = config.algorithm.derive(model, space, config.options).to_string()
        out.append({"method": row["method"], "seed": row["seed"], "epochs": row["epochs"], "cells": len(cells),
                    "same_cell": derived == row["arch"],
                    **{f"kendall_tau_{k}": float(kendalltau(scores, v).statistic) for k, v in truth.items()},
                    "score_mean": float(scores.mean()), "score_std": float(scores.std())})
    return out


def run_family_part(args: argparse.Namespace, splits: DatasetSplits) -> dict[str, Any]:
    """Every weight-sharing method at equal wall-clock on nb201, step memory, one-shot ranking quality.

    ProxylessNAS runs twice: with its latency loss (the default weight) and without it
    (``latency_weight=0``), to see what the loss does to the derived cell's latency.
    """
    space = get_space("nb201")
    methods = args.family_methods.split(",")
    spec = WallClockSpec(dataset=args.dataset, space="nb201", minutes=args.family_minutes, seeds=args.family_seeds,
                         seed=args.seed, epochs=args.retrain_epochs, device=args.device, channels=args.channels,
                         cells_per_stage=args.cells_per_stage)
    compare = run_wallclock(spec, methods, Path(args.work) / "family", progress=True)
    latency_off = None
    if "proxyless" in methods:
        spec.options = {"latency_weight": 0.0}
        latency_off = run_wallclock(spec, ["proxyless"], Path(args.work) / "family_latency_off", progress=True)
    memory = {}
    for m in methods:
        log(f"[family] step memory of {m}")
        memory[m] = search_step_memory(splits, space, _family_config(m, args, seed=args.seed))
    return {"provenance": provenance(), "compare": compare, "latency_off": latency_off, "step_memory": memory,
            "ranking": oneshot_ranking(args, splits, space, compare["rows"])}


def _free_edges(arch: str) -> int:
    return sum(op in PARAMETER_FREE for op in get_space("nb201").parse(arch).ops)


def _mean_std(values: list[float], fmt: str = ".2f") -> str:
    a = np.array(values, dtype=float)
    return f"{a.mean():{fmt}} ± {a.std():{fmt}}" if len(a) else ""


def _summary_line(label: str, mine: list[dict[str, Any]], memory: float | None) -> tuple[str, dict[str, float]]:
    """One method's line of the table (mean ± std over its seeds) and the means the behaviour lines compare."""
    free = [_free_edges(r["arch"]) for r in mine]
    mass = [sum(r["op_mass"][op] for op in PARAMETER_FREE) for r in mine]
    skips = [r["arch"].count("skip_connect") for r in mine]
    means = {"free": float(np.mean(free)), "mass": float(np.mean(mass)), "memory": memory, "max_skip": max(skips),
             **{k: float(np.mean([r[k] for r in mine])) for k in ("accuracy", "pgd_accuracy", "latency_ms")}}
    table = [_mean_std([r[k] for r in mine if k in r]) for k in ("nb201_cifar10", "nb201_cifar100",
                                                                 "nb201_ImageNet16-120")]
    line = (f"| {label} | {len(mine)} | {_mean_std([r['epochs'] for r in mine], '.1f')} | "
            f"{_mean_std([r['search_seconds'] for r in mine], '.0f')} | "
            f"{_mean_std([r['accuracy'] for r in mine])} | {_mean_std([r['pgd_accuracy'] for r in mine])} | "
            f"{_mean_std([r['flops'] for r in mine], '.3f')} | {_mean_std([r['latency_ms'] for r in mine], '.3f')} | "
            f"{_mean_std(free, '.1f')} / 6 | {_mean_std(mass, '.3f')} | "
            f"{'' if memory is None else f'{memory:.1f}'} | " + " | ".join(table) + " |")
    return line, means


def _family_summary(part: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The one table (mean ± std over seeds per method, then ProxylessNAS without its latency loss)."""
    rows, memory = part["compare"]["rows"], part["step_memory"]
    lines = ["| method | seeds | epochs | search s | accuracy | PGD | FLOPs (M) | latency (ms) | parameter-free edges | "
             "parameter-free α mass | step memory (MB) | C10 table | C100 table | IN16 table |", "|" + "---|" * 14]
    means: dict[str, dict[str, float]] = {}
    groups = [(m, [r for r in rows if r["method"] == m], memory[m]["peak_saved_bytes"] / 2**20)
              for m in dict.fromkeys(r["method"] for r in rows)]
    if part.get("latency_off"):
        groups.append((LATENCY_OFF, part["latency_off"]["rows"], None))
    for label, mine, mb in groups:
        line, means[label] = _summary_line(label, mine, mb)
        lines.append(line)
    return lines, means


def _memory_lines(means: dict[str, dict[str, float]]) -> list[str]:
    d = means.get("darts")
    if not d:
        return []
    out = []
    if "pcdarts" in means:
        p = means["pcdarts"]
        verdict = "shows" if p["memory"] < d["memory"] else "does not show"
        out.append(f"- PC-DARTS' lower step memory than DARTS {verdict}: {p['memory']:.1f} MB vs {d['memory']:.1f} MB "
                   f"saved for backward ({p['memory'] / d['memory']:.2f}x).")
    single = [m for m in ("gdas", "rsps", "setn", "enas", "proxyless") if m in means]
    if single:
        out.append("- One path per weight step (GDAS, RSPS, SETN, ENAS, ProxylessNAS): "
                   + ", ".join(f"{m} {means[m]['memory']:.1f} MB" for m in single) + f" vs DARTS {d['memory']:.1f} MB "
                   "(SETN's α step and ProxylessNAS' two-path α step are included in their peaks).")
    return out


def _drift_lines(means: dict[str, dict[str, float]]) -> list[str]:
    d = means.get("darts")
    if not d:
        return []
    cells = "shows" if d["free"] > 3 else "does not show"
    alpha = "shows" if d["mass"] > 0.4 + 0.005 else "does not show"
    out = [f"- DARTS' drift to parameter-free ops, in its derived cells, {cells}: {d['free']:.1f}/6 parameter-free "
           f"edges (3/6 for a uniform choice among the 4 non-none ops); in α it {alpha}: parameter-free mass "
           f"{d['mass']:.3f} (0.400 uniform)."]
    for m in ("drnas", "sdarts-rs", "sdarts-adv", "dartspt", "pdarts"):
        if m in means:
            fewer = means[m]["free"] < d["free"]
            out.append(f"- Mitigation by {m}: {means[m]['free']:.1f}/6 parameter-free edges vs DARTS {d['free']:.1f}/6 "
                       f"({'fewer: shows' if fewer else 'not fewer: does not show'}); retrained accuracy "
                       f"{means[m]['accuracy']:.2f} vs {d['accuracy']:.2f}.")
    if "pdarts" in means:
        out.append(f"- P-DARTS' cap of 2 skip_connect edges holds in every derived cell: "
                   f"{'yes' if means['pdarts']['max_skip'] <= 2 else 'no'} (most skip edges in one cell: "
                   f"{means['pdarts']['max_skip']}; DARTS: {d['max_skip']}).")
    return out


def _behaviour_lines(means: dict[str, dict[str, float]], ranking: list[dict[str, Any]]) -> list[str]:
    """What the literature reports, each line decided by the measured means (no prose fixed in advance)."""
    out = _memory_lines(means) + _drift_lines(means)
    on, off = means.get("proxyless"), means.get(LATENCY_OFF)
    if on and off:
        lower = on["latency_ms"] < off["latency_ms"]
        matched = abs(on["accuracy"] - off["accuracy"]) <= 1.0
        verdict = "shows" if lower and matched else "does not show"
        out.append(f"- ProxylessNAS' latency loss lowering the derived cell's latency at matched accuracy {verdict}: "
                   f"{on['latency_ms']:.3f} ms vs {off['latency_ms']:.3f} ms without it, accuracy {on['accuracy']:.2f} "
                   f"vs {off['accuracy']:.2f}.")
    for r in ranking:
        out.append(f"- {r['method']} (seed {r['seed']}, {r['epochs']} epochs): Kendall τ between shared-weight "
                   f"validation scores and standalone test accuracy on {r['cells']} cells = "
                   f"{r['kendall_tau_standalone_accuracy']:.3f} (standalone validation accuracy: "
                   f"{r['kendall_tau_standalone_val_accuracy']:.3f}).")
    return out


def family_markdown(part: dict[str, Any]) -> str:
    s = part["compare"]["settings"]
    lines, means = _family_summary(part)
    return "\n".join([
        f"## Every weight-sharing method on {s['dataset']} (nb201), {s['minutes']:g} min of search per method and seed\n",
        provenance_markdown(part["provenance"]),
        f"Through `gennas compare --budget-minutes {s['minutes']:g}` (each method plans its epochs from a timed "
        f"{PILOT_STEPS}-step pilot); {s['seeds']} seeds; the derived cell retrained standalone ({s['epochs']} epochs, "
        f"C={s['channels']}, N={s['cells_per_stage']}), accuracy/PGD on the test split. Parameter-free edges: "
        "skip_connect or avg_pool_3x3 edges of the derived cell; parameter-free α mass: the mean final weight of those "
        "two ops over the edges as each method logs it (RSPS: its chosen cell, one-hot; ENAS: its controller's greedy "
        "policy; DARTS-PT: one-hot on decided edges). Latency: the retrained cell's batch-1 CPU forward (ms). Step "
        "memory: peak bytes autograd saves for backward over 2 search steps at batch 64 "
        "(gennas.weightsharing.footprint). NB201 columns: the derived cell's table accuracy (a transfer view; the "
        "search never saw those tables). Kendall τ: the ground-truth cells of experiments/results/"
        f"main_job_truth_{s['dataset']}.csv (standalone, 32 epochs, C16 N2). The machine is shared with other "
        "benchmarks (load above its 2 cores), so the epochs a minute buys vary between runs.\n",
        "### Mean ± std over seeds\n", *lines,
        "\n### Literature behaviours, measured here\n", *_behaviour_lines(means, part["ranking"]),
        "\n### Every run\n", markdown_rows(part["compare"]["rows"] + [{**r, "method": LATENCY_OFF}
                                                               for r in (part["latency_off"] or {}).get("rows", [])]),
    ]) + "\n"


def markdown(results: dict[str, Any]) -> str:
    out = [f"# Weight-sharing baselines on {results['dataset']} (issues 7 and 18)\n"]
    if "search" in results:
        out.append(search_markdown(results["search"]))
    if "compare" in results:
        out.append(markdown_report(results["compare"], level=2))
    if "family" in results:
        out.append(family_markdown(results["family"]))
    return "\n".join(out)


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # benchmarks time processes side by side: one core each
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("search", "compare", "family", "all"), default="all")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--spaces", default="nb201,dag6")
    parser.add_argument("--device", default="auto", help="auto (CUDA with AMP if present), cpu, cuda")
    parser.add_argument("--quick", action="store_true", help="few epochs, 0.5-minute budget, 1 seed (a GPU smoke run)")
    parser.add_argument("--minutes", type=float, default=1.5, help="compare: search minutes per method and seed")
    parser.add_argument("--seeds", type=int, default=2, help="compare: seeds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--family-minutes", type=float, default=1.0, help="family: search minutes per method and seed")
    parser.add_argument("--family-seeds", type=int, default=3, help="family: seeds")
    parser.add_argument("--family-methods", default=FAMILY_METHODS, help="family: the weight-sharing methods")
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
        if args.part in ("family", "all"):
            results["family"] = run_family_part(args, splits)
            write_json(path, results)
    write_text(path.with_suffix(".md"), markdown(results))
    log(f"wrote {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
