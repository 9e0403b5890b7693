"""Benchmark: the supernet with disableable blocks (issue 6).

Parts (one command; results in experiments/results/supernet_<dataset>.{json,md}):
  fidelity   the main job's pipeline on a real dataset (digits by default): generate, build,
             train once, measure subnets; then >= 6 measured subnets across the FLOPs range
             are trained standalone with the same recipe (epochs, lr, batch, seed) and
             compared: accuracy and PGD MAE and Kendall tau, supernet vs standalone, on the
             validation and test splits; the recipe A/B (default: the smallest + 3 sampled subnets per step
             vs the sandwich rule with in-place distillation) is trained and compared in the
             same run; supernet training time vs each standalone training (same process).
  thresholds several threshold sets pruned and exported: the exported model's computed
             FLOPs / params / memory against each threshold.
  coverage   NB201, the table as truth (scoring only): hypervolume ratio (accuracy, FLOPs) of
             the best front reachable inside a supernet built from <= 16 generated cells vs
             the true front, and of those cells alone; 3 datasets x seeds. Generation uses
             the transfer prior (the other datasets' tables), never the target's.

    python experiments/bench_supernet.py [--parts fidelity,thresholds,coverage] [--dataset digits]
        [--epochs 16] [--standalone 8] [--seeds 5] [--device auto] [--render-only]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from gennas.io import write_json, write_text
from gennas.markdown import code_cell
from gennas.provenance import provenance, provenance_markdown


def log(msg: str) -> None:
    print(f"[bench_supernet] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- fidelity
def _standalone(cell, splits, network, recipe, robustness) -> dict:
    from gennas.nn.network import build_network
    from gennas.train import TrainConfig, evaluate_robustness, train_model, with_normalization

    config = TrainConfig(**{k: v for k, v in recipe.to_dict().items() if k in TrainConfig.__dataclass_fields__})
    torch.manual_seed(config.seed)
    model = with_normalization(build_network(cell, network), splits)
    tic = time.perf_counter()
    trained = train_model(model, splits, config, progress=False).model
    seconds = time.perf_counter() - tic
    device = next(trained.parameters()).device
    val = evaluate_robustness(trained, splits.val, robustness, device)
    test = evaluate_robustness(trained, splits.test, robustness, device)
    return {"seconds": seconds, "val_accuracy": val["clean_accuracy"], "val_pgd_accuracy": val["pgd_accuracy"],
            "accuracy": test["clean_accuracy"], "pgd_accuracy": test["pgd_accuracy"]}


def _train_and_measure(space, network, splits, recipe, robustness, cells, recal) -> tuple[float, list[dict]]:
    from gennas.supernet import Supernet, train_supernet
    from gennas.supernet.measure import SubnetMeasurer
    from gennas.train import with_normalization

    torch.manual_seed(recipe.seed)
    supernet = Supernet(space, network)
    model = with_normalization(supernet, splits)
    tic = time.perf_counter()
    train_supernet(supernet, model, splits, recipe, progress=False)
    seconds = time.perf_counter() - tic
    measurer = SubnetMeasurer(supernet, model, splits, robustness, recal)
    return seconds, [measurer(c) for c in cells]


def _agreement(estimated: list[dict], truth: list[dict], key: str) -> dict:
    a = np.array([e[key] for e in estimated])
    b = np.array([t[key] for t in truth])
    return {"mae": float(np.mean(np.abs(a - b))), "kendall_tau": float(kendalltau(a, b).statistic),
            "mean_supernet": float(a.mean()), "mean_standalone": float(b.mean())}


def run_fidelity(args, work: Path) -> dict:
    from gennas.space.cell import Cell
    from gennas.supernet.pipeline import RunSettings, run_pipeline
    from gennas.supernet.store import load_supernet
    from gennas.supernet.train import SupernetTrainConfig
    from gennas.data import load_dataset
    from gennas.train import RobustnessConfig

    settings = RunSettings(dataset=args.dataset, epochs=args.epochs, seed=args.seed)
    run_dir = work / f"run_{args.dataset}_e{args.epochs}_s{args.seed}"
    resumed = (run_dir / "results.json").exists()  # an earlier run of this command: the pipeline is reused
    tic = time.perf_counter()
    summary = run_pipeline(settings, run_dir, device=args.device, progress=False)
    pipeline_seconds = time.perf_counter() - tic
    results = json.loads((run_dir / "results.json").read_text())
    from gennas.supernet.table import read_subnet_table

    rows = read_subnet_table(run_dir / "subnets.csv")
    rows.sort(key=lambda r: r["flops"])
    picks = [rows[int(i)] for i in np.unique(np.linspace(0, len(rows) - 1, args.standalone).round())]
    cells = [Cell.from_string(r["arch"]) for r in picks]
    splits = load_dataset(args.dataset)
    model, meta = load_supernet(run_dir / "supernet.pt")
    network, space = model[-1].config, model[-1].space
    robustness = RobustnessConfig(**meta["robustness"])
    default = SupernetTrainConfig(**meta["train"])
    log(f"fidelity: pipeline {pipeline_seconds:.0f}s; training {len(cells)} subnets standalone")
    standalone = []
    for cell in cells:
        standalone.append(_standalone(cell, splits, network, default, robustness))
        log(f"  {cell}: standalone val {standalone[-1]['val_accuracy']:.2f} ({standalone[-1]['seconds']:.1f}s)")
    # Supernet recipes timed side by side with the standalone trainings, in this process.
    recipes = {"default: smallest + 3 sampled / step": default,
               "full sandwich + in-place distillation": SupernetTrainConfig(**{**default.to_dict(), "largest": True,
                                                                             "smallest": True, "random_subnets": 2,
                                                                             "distill": True}),
               "2 sampled / step, 75 % sources": SupernetTrainConfig(**{**default.to_dict(), "smallest": False,
                                                                      "random_subnets": 2, "source_prob": 0.75}),
               "smallest + 2 sampled / step": SupernetTrainConfig(**{**default.to_dict(), "random_subnets": 2}),
               "smallest + 1 sampled / step": SupernetTrainConfig(**{**default.to_dict(), "random_subnets": 1})}
    keys = ("default", "sandwich", "sampled2", "lite2", "lite1")
    wanted = [name for key, name in zip(keys, recipes) if key in args.recipes.split(",")]
    compared = {}
    for name, recipe in ((n, recipes[n]) for n in wanted):
        seconds, estimated = _train_and_measure(space, network, splits, recipe, robustness, cells,
                                                int(meta["recalibration_images"]))
        compared[name] = {"train_seconds": seconds, "recipe": recipe.to_dict(),
                          **{f"{split}{key}": _agreement(estimated, standalone, f"{split}{key}")
                             for split in ("val_", "") for key in ("accuracy", "pgd_accuracy")},
                          "subnets": [{"arch": str(c), **{k: e[k] for k in ("flops", "val_accuracy", "accuracy",
                                                                            "pgd_accuracy")}}
                                      for c, e in zip(cells, estimated)]}
        log(f"  {name}: {seconds:.1f}s, test accuracy MAE {compared[name]['accuracy']['mae']:.2f}")
    times = [s["seconds"] for s in standalone]
    return {"settings": asdict(settings), "pipeline_seconds": pipeline_seconds, "pipeline_resumed": resumed,
            "supernet": {k: results["supernet"][k] for k in ("blocks", "configurations", "reachable_subnets",
                                                             "measured_subnets")},
            "standalone": [{"arch": str(c), "flops": r["flops"], "measured_because": r["selected_because"], **s}
                           for c, r, s in zip(cells, picks, standalone)],
            "standalone_seconds": {"mean": float(np.mean(times)), "max": float(np.max(times)),
                                   "sum": float(np.sum(times))},
            "recipes": compared, "run_dir": str(run_dir), "summary_text": summary["text"]}


# -------------------------------------------------------------------------- thresholds
def run_thresholds(args, work: Path) -> dict:
    from gennas.supernet.commands import prune_run
    from gennas.supernet.table import read_subnet_table

    run_dir = work / f"run_{args.dataset}_e{args.epochs}_s{args.seed}"
    rows = read_subnet_table(run_dir / "subnets.csv")
    flops = np.array([float(r["flops"]) for r in rows])
    memory = np.array([float(r["memory_bytes"]) for r in rows]) / 1e6
    params = np.array([float(r["params"]) for r in rows])
    robust = np.array([float(r["val_pgd_accuracy"]) for r in rows]) / 100
    sets = []
    for q in (0.1, 0.25, 0.5, 0.75):
        sets.append({"max_flops": float(np.quantile(flops, q)), "max_memory_mb": float(np.quantile(memory, q + 0.1))})
        sets.append({"max_params": float(np.quantile(params, q)), "min_robustness": float(np.quantile(robust, 0.5 - q / 2))})
    out = []
    for i, thresholds in enumerate(sets):
        result = prune_run(run_dir, thresholds, "accuracy", out=work / "exports" / f"set{i}", device=args.device)
        checks = {}
        for flag, value in thresholds.items():
            column, scale = {"max_flops": ("flops", 1), "max_memory_mb": ("memory_bytes", 1e6),
                             "max_params": ("params", 1), "min_robustness": ("val_pgd_accuracy", 100)}[flag]
            actual = result[column] / scale
            checks[flag] = {"threshold": value, "exported": actual,
                            "met": actual <= value if flag.startswith("max") else actual >= value}
        out.append({"thresholds": thresholds, "arch": result["arch"], "checks": checks,
                    "val_accuracy": result["val_accuracy"], "accuracy": result["accuracy"]})
        log(f"thresholds {i}: all met = {all(c['met'] for c in checks.values())}")
    return {"sets": out, "all_met": all(c["met"] for s in out for c in s["checks"].values())}


# ---------------------------------------------------------------------------- coverage
def run_coverage(args, work: Path) -> dict:
    from diffusion.commands import generator_path
    from diffusion.guidance import generate
    from diffusion.model import CellDiffusion
    from gennas.bench.tabular import nb201_network
    from gennas.objectives import minimisation_matrix, parse_objectives
    from gennas.search.indicators import nb201_reference
    from gennas.space.cell import Cell
    from gennas.metrics.costs import cell_costs
    from gennas.supernet.subnets import SubnetSpace
    from predictors.transfer import load_prior
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
    from gennas.bench.nb201 import load_table

    goals = parse_objectives("accuracy:max,flops:min")
    diffusion = CellDiffusion.load(generator_path("nb201"))
    table = load_table()
    out = {}
    for dataset in args.coverage_datasets.split(","):
        reference = nb201_reference(dataset, goals)  # scoring only
        truth = dict(zip(table.archs, table.accuracy[dataset]))
        network = nb201_network(dataset)
        predictor = load_prior(dataset).fit_task(f"accuracy@{dataset}", [], None)
        runs = []
        for seed in range(args.seeds):
            result = generate(diffusion, goals, [], args.candidates, predictor, network, dataset, 60.0, seed)
            rows = result["cells"]
            fronts = NonDominatedSorting().do(minimisation_matrix(rows, goals))
            order = [i for f in fronts for i in sorted(f, key=lambda i: rows[i]["arch"])]
            cells = [Cell.from_string(rows[i]["arch"]) for i in order[: args.max_cells]]
            space = SubnetSpace.from_cells(cells)
            reachable = list(space.enumerate())

            def scored(group):
                return [{"accuracy": float(truth[c.to_string()]), "flops": cell_costs(c, network)["flops"]}
                        for c in group]

            runs.append({"seed": seed, "cells": len(cells), "blocks": len(space.blocks),
                         "reachable": len(reachable),
                         "hv_cells": reference.hv_ratio(scored(cells)),
                         "hv_supernet": reference.hv_ratio(scored(reachable))})
            log(f"coverage {dataset} seed {seed}: cells {runs[-1]['hv_cells']:.4f} supernet "
                f"{runs[-1]['hv_supernet']:.4f} ({len(reachable)} reachable)")
        out[dataset] = {"runs": runs, **{f"{k}_mean": float(np.mean([r[k] for r in runs]))
                                          for k in ("hv_cells", "hv_supernet", "reachable", "blocks")},
                        "hv_supernet_min": float(np.min([r["hv_supernet"] for r in runs]))}
    return out


# ---------------------------------------------------------------------------- markdown


def render(results: dict, dataset: str) -> str:
    lines = [f"# Supernet benchmark ({dataset})", ""]
    if "fidelity" in results:
        part = results["fidelity"]
        f = part["results"]
        lines += ["## Supernet vs standalone training", "", provenance_markdown(part["provenance"]),
                  f"`gennas run` pipeline with {f['settings']['epochs']} epochs on {dataset}: {f['supernet']['blocks']} "
                  f"blocks, {f['supernet']['reachable_subnets']} reachable subnets, {f['supernet']['measured_subnets']} "
                  f"measured, " + ("pipeline reused from an earlier run of this command (its run directory); "
                                   if f.get("pipeline_resumed") else f"{f['pipeline_seconds']:.0f} s end to end; ")
                  + f"{len(f['standalone'])} measured subnets across "
                  "the FLOPs range were trained standalone with the same recipe (epochs, lr, batch, seed).", "",
                  "| recipe | train s | × mean standalone | × largest standalone | test acc MAE | test acc τ | "
                  "val acc MAE | test PGD MAE | test PGD τ |", "|---|---|---|---|---|---|---|---|---|"]
        s = f["standalone_seconds"]
        for name, r in f["recipes"].items():
            lines.append(f"| {name} | {r['train_seconds']:.1f} | {r['train_seconds'] / s['mean']:.2f} | "
                         f"{r['train_seconds'] / s['max']:.2f} | {r['accuracy']['mae']:.2f} | "
                         f"{r['accuracy']['kendall_tau']:.2f} | {r['val_accuracy']['mae']:.2f} | "
                         f"{r['pgd_accuracy']['mae']:.2f} | {r['pgd_accuracy']['kendall_tau']:.2f} |")
        lines += ["", f"Standalone training: mean {s['mean']:.1f} s, largest {s['max']:.1f} s, sum {s['sum']:.1f} s. "
                  "Targets: test accuracy MAE ≤ 1.5 points; supernet training ≤ 2× one standalone training.", "",
                  "| subnet | in the run because | FLOPs M | standalone test acc | standalone PGD | supernet test acc "
                  "(default recipe) | supernet PGD |", "|---|---|---|---|---|---|---|"]
        default = next(iter(f["recipes"].values()))
        for st, est in zip(f["standalone"], default["subnets"]):
            lines.append(f"| {code_cell(st['arch'])} | {st.get('measured_because', '')} | "
                         f"{st['flops']:.3f} | {st['accuracy']:.2f} | {st['pgd_accuracy']:.2f} | {est['accuracy']:.2f} | "
                         f"{est['pgd_accuracy']:.2f} |")
        lines.append("")
    if "thresholds" in results:
        part = results["thresholds"]
        lines += ["## Thresholds after search", "", provenance_markdown(part["provenance"]),
                  "| thresholds | exported subnet | computed on the export | all met |", "|---|---|---|---|"]
        for s in part["results"]["sets"]:
            checks = ", ".join(f"{k} {c['exported']:.4g} vs {c['threshold']:.4g}" for k, c in s["checks"].items())
            lines.append(f"| {', '.join(f'{k}={v:.4g}' for k, v in s['thresholds'].items())} | "
                         f"{code_cell(s['arch'])} | {checks} | "
                         f"{'yes' if all(c['met'] for c in s['checks'].values()) else 'NO'} |")
        lines.append("")
    if "coverage" in results:
        part = results["coverage"]
        lines += ["## Coverage on NAS-Bench-201 (table as truth)", "", provenance_markdown(part["provenance"]),
                  "Hypervolume ratio (accuracy, FLOPs; DESIGN.md reference point) of the true front reachable "
                  "inside a supernet built from ≤ 16 generated cells, and of those cells alone. Target ≥ 0.99.", "",
                  "| dataset | seeds | cells alone HV | supernet HV (mean) | supernet HV (min) | blocks | reachable subnets |",
                  "|---|---|---|---|---|---|---|"]
        for d, r in part["results"].items():
            lines.append(f"| {d} | {len(r['runs'])} | {r['hv_cells_mean']:.4f} | {r['hv_supernet_mean']:.4f} | "
                         f"{r['hv_supernet_min']:.4f} | {r['blocks_mean']:.1f} | {r['reachable_mean']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # benchmarks time processes side by side: one core each
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="fidelity,thresholds,coverage")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=32)
    parser.add_argument("--standalone", type=int, default=8, help="subnets trained standalone (>= 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipes", default="default,sandwich,sampled2,lite2,lite1",
                        help="supernet recipes trained side by side (default, sandwich, sampled2, lite2, lite1)")
    parser.add_argument("--seeds", type=int, default=5, help="coverage seeds")
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--max-cells", type=int, default=16)
    parser.add_argument("--coverage-datasets", default="cifar10,cifar100,ImageNet16-120")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work", default="runs/bench_supernet")
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--tag", default=None, help="suffix of the result files (default: the dataset)")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    tag = args.tag or args.dataset
    path = Path(args.out) / f"supernet_{tag}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if not args.render_only:
        work = Path(args.work)
        runners = {"fidelity": run_fidelity, "thresholds": run_thresholds, "coverage": run_coverage}
        for part in args.parts.split(","):
            results[part] = {"provenance": provenance(), "args": vars(args), "results": runners[part](args, work)}
            write_json(path, results)
    write_text(path.with_suffix(".md"), render(results, tag))
    log(f"wrote {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
