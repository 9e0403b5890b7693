"""Benchmark: the main job on data the NB201 tables have never seen.

Parts (results in experiments/results/main_job_<dataset>.{json,md}, ground truth in
experiments/results/main_job_truth_<dataset>.csv):
  truth   >= 150 NB201 cells spread over the FLOPs range (distinct functions, connected),
          each trained standalone with the run's recipe (the supernet's epochs, optimiser,
          batch and seed; the run's attack) on the dataset: validation and test accuracy
          and PGD accuracy, FLOPs, params, memory. Resumable (one weights file per cell
          under --work); the CSV is rewritten after every cell.

  adapt   round 0's worth, on the ground truth: K probe cells chosen from the truth cells as
          the run chooses them (Latin hypercube over the prior's ranking and FLOPs), the
          predictor adapted on them, Kendall τ on the other truth cells, against the zero-shot
          prior; accuracy both ways (a mix of the known datasets, a head of its own) and as
          the run chooses by cross-validation; PGD (a head of its own). K x seeds.

  default `gennas run` with its defaults on the dataset (what `make run` does on digits), in a
          fresh directory, timed end to end: wall time, each stage's seconds beside the
          plan's estimate, the loop's held-out τ and the example pick.

Datasets: ``digits`` (embedded), ``digits-low`` (derived from digits, harder: all ten
classes with 150 training, 300 validation and 300 test images, so accuracy does not
saturate as it does on digits) and ``digits28`` (5,000 28x28 images: digits upsampled,
rotated, scaled and shifted at random; train, val and test from disjoint source digits).
Any ``--dataset`` spec gennas accepts works too.

    python experiments/bench_main_job.py --part truth --dataset digits [--cells 150] [--seed 0]
    python experiments/bench_main_job.py --part adapt --dataset digits [--probes 4,8,16] [--seeds 5]
    python experiments/bench_main_job.py --part default --dataset digits
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import numpy as np

from gennas.io import write_json, write_text
from gennas.provenance import provenance

DERIVED = ("digits-low", "digits28")
#: digits28: 28x28 images, train/val/test drawn from disjoint source digits (no augmented copy of a
#: test digit is trained on), each a randomly rotated, scaled and shifted upsampled digit.
DIGITS28_SIZES = {"train": (1300, 3750), "val": (200, 500), "test": (297, 750)}  # (source digits, images)


def log(msg: str) -> None:
    print(f"[bench_main_job] {msg}", file=sys.stderr, flush=True)


def dataset_spec(name: str, work: Path) -> str:
    """The gennas dataset spec for ``name``, writing the derived datasets' npz on first use."""
    if name not in DERIVED:
        return name
    path = work / "data" / f"{name}.npz"
    if name == "digits28" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **digits28_arrays())
    if not path.exists():
        from sklearn.datasets import load_digits

        digits = load_digits()
        order = np.random.default_rng(20261201).permutation(len(digits.target))
        x = np.clip(digits.images[order] * 255 / 16, 0, 255).astype(np.uint8)
        y = digits.target[order].astype(np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x_train=x[:150], y_train=y[:150], x_val=x[150:450], y_val=y[150:450],
                 x_test=x[450:750], y_test=y[450:750])
    return f"npz:{path}"


def digits28_arrays(seed: int = 20261201) -> dict[str, np.ndarray]:
    """About 5,000 28x28 images derived from digits: each split from its own source digits."""
    from scipy.ndimage import affine_transform, zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    arrays, start = {}, 0
    for split, (sources, count) in DIGITS28_SIZES.items():
        ids = order[start:start + sources]
        start += sources
        picks = rng.choice(ids, size=count)
        images = []
        for i in picks:
            big = zoom(digits.images[i] / 16.0, 20 / 8, order=1)  # 20x20, padded to 28x28 like MNIST
            canvas = np.pad(big, 4)
            angle, scale = rng.uniform(-0.25, 0.25), rng.uniform(0.85, 1.15)
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
            centre = np.array([13.5, 13.5])
            offset = centre - rotation @ centre + rng.uniform(-2, 2, size=2)
            images.append(affine_transform(canvas, rotation, offset=offset, order=1))
        arrays[f"x_{split}"] = np.clip(np.stack(images) * 255, 0, 255).astype(np.uint8)
        arrays[f"y_{split}"] = digits.target[picks].astype(np.int64)
    return arrays


def truth_cells(network, count: int, seed: int) -> list:
    """``count`` distinct connected NB201 cells, one per FLOPs stratum (seeded)."""
    from gennas.metrics.costs import cell_costs
    from gennas.space.space import nb201_space

    unique = {}
    for cell in nb201_space().enumerate():
        if cell.is_connected():
            unique.setdefault(cell.canonical, cell)
    cells = sorted(unique.values(), key=lambda c: c.ops)
    flops = np.array([cell_costs(c, network)["flops"] for c in cells])
    rng = np.random.default_rng(seed)
    strata = np.array_split(np.argsort(flops, kind="stable"), count)
    return [cells[int(rng.choice(s))] for s in strata]


TRUTH_COLUMNS = ("arch", "flops", "params", "memory_bytes", "standalone_val_accuracy", "standalone_val_pgd_accuracy",
                 "standalone_accuracy", "standalone_pgd_accuracy", "seconds")


def run_truth(args, work: Path) -> Path:
    from gennas.data import load_dataset
    from gennas.metrics.costs import cell_costs
    from gennas.nn.network import NetworkConfig
    from gennas.supernet.pipeline import RunSettings
    from gennas.supernet.standalone import standalone_recipe, train_standalone, weights_path
    from gennas.supernet.train import SupernetTrainConfig
    from gennas.train import RobustnessConfig

    settings = RunSettings(dataset=dataset_spec(args.dataset, work), seed=args.seed)
    splits = load_dataset(settings.dataset)
    network = NetworkConfig.for_data(splits, settings.channels, settings.cells_per_stage)
    recipe = standalone_recipe(SupernetTrainConfig(epochs=settings.epochs, seed=settings.seed, device=args.device))
    robustness = RobustnessConfig(seed=settings.seed)
    directory = work / f"truth_{args.dataset}_s{args.seed}"
    out = Path(args.out) / f"main_job_truth_{args.dataset}.csv"
    rows = []
    for i, cell in enumerate(truth_cells(network, args.cells, args.seed)):
        fresh = not weights_path(directory, cell).exists()
        tic = time.perf_counter()
        trained = train_standalone(cell, splits, network, recipe, robustness, directory)
        seconds = time.perf_counter() - tic if fresh else float("nan")
        rows.append({"arch": cell.to_string(), **cell_costs(cell, network), **trained.figures, "seconds": seconds})
        log(f"{i + 1}/{args.cells} {cell}: val {trained.figures['standalone_val_accuracy']:.2f} "
            f"PGD {trained.figures['standalone_val_pgd_accuracy']:.2f} ({seconds:.1f} s)")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(TRUTH_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
        write_text(out, buffer.getvalue())
    measured = [r["seconds"] for r in rows if np.isfinite(r["seconds"])]
    write_json(out.with_suffix(".json"), {
        "provenance": provenance(), "command": " ".join(sys.argv), "dataset": settings.dataset,
        "network": network.to_dict(), "recipe": recipe.to_dict(), "robustness": robustness.to_dict(),
        "cells": len(rows), "seconds_per_cell_trained_in_this_call": float(np.mean(measured)) if measured else None})
    return out


def read_truth(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return [{k: (v if k == "arch" else float(v)) for k, v in r.items()} for r in csv.DictReader(handle)]


def run_adapt(args, work: Path) -> dict:
    from scipy.stats import kendalltau

    from gennas.data import load_dataset
    from gennas.nn.network import NetworkConfig
    from gennas.space.cell import Cell
    from gennas.supernet.adapt import HEAD_STEPS, choose_probes, transfer_choice
    from gennas.supernet.rounds import zero_shot_prior

    truth = read_truth(Path(args.out) / f"main_job_truth_{args.dataset}.csv")
    splits = load_dataset(dataset_spec(args.dataset, work))
    network = NetworkConfig.for_data(splits)
    prior = zero_shot_prior(splits.name)
    cells = [Cell.from_string(r["arch"]) for r in truth]
    by_arch = {r["arch"]: r for r in truth}
    acc, pgd = f"accuracy@{splits.name}", f"pgd_accuracy@{splits.name}"

    def tau(predictor, task, held, column):
        predicted = predictor.predict(held, [task])[task].mean
        return float(kendalltau(predicted, [by_arch[c.to_string()][column] for c in held]).statistic)

    records = []
    for k in (int(v) for v in args.probes.split(",")):
        for seed in range(args.seeds):
            probes = choose_probes(prior, acc, network, k, seed, candidates=cells)
            chosen = {c.to_string() for c in probes}
            held = [c for c in cells if c.to_string() not in chosen]
            values = np.array([by_arch[c.to_string()]["standalone_val_accuracy"] for c in probes])
            robust = np.array([by_arch[c.to_string()]["standalone_val_pgd_accuracy"] for c in probes])
            mix = prior.copy().fit_task(acc, probes, values)
            own = prior.copy().fit_task(acc, probes, values, own_head=True, steps=HEAD_STEPS)
            own_choice, _ = transfer_choice(prior, acc, probes, values)
            head = prior.copy().fit_task(pgd, probes, robust, own_head=True, steps=HEAD_STEPS)
            record = {"probes": k, "seed": seed, "held_out": len(held),
                      "zero_shot": tau(prior, acc, held, "standalone_val_accuracy"),
                      "mix": tau(mix, acc, held, "standalone_val_accuracy"),
                      "own_head": tau(own, acc, held, "standalone_val_accuracy"),
                      "cross_validated_choice": "own_head" if own_choice else "mix",
                      "pgd_own_head": tau(head, pgd, held, "standalone_val_pgd_accuracy")}
            record["chosen"] = record[record["cross_validated_choice"]]
            records.append(record)
            log(f"adapt K={k} seed={seed}: zero-shot {record['zero_shot']:.3f} mix {record['mix']:.3f} own "
                f"{record['own_head']:.3f} chosen {record['chosen']:.3f} PGD {record['pgd_own_head']:.3f}")
    flops = [r["flops"] for r in truth]
    baselines = {f"flops_{m}": float(kendalltau(flops, [r[f"standalone_val_{m}"] for r in truth]).statistic)
                 for m in ("accuracy", "pgd_accuracy")}
    return {"provenance": provenance(), "command": " ".join(sys.argv), "dataset": args.dataset,
            "truth_cells": len(truth), "records": records, "flops_rank_tau": baselines}


def render_adapt(result: dict) -> str:
    from gennas.provenance import provenance_markdown

    lines = [f"# Round 0's worth on {result['dataset']}: Kendall τ on held-out ground truth", "",
             provenance_markdown(result["provenance"]),
             f"Ground truth: {result['truth_cells']} cells trained standalone with the run's recipe "
             f"(`main_job_truth_{result['dataset']}.csv`). K probes chosen from them as `gennas run` chooses; τ on "
             "the remaining cells (validation accuracy and validation PGD accuracy). Mean ± std over seeds.", "",
             "| K probes | seeds | zero-shot prior | mix of known datasets | head of its own | cross-validated "
             "choice (own head chosen) | PGD head |", "|---|---|---|---|---|---|---|"]
    for k in sorted({r["probes"] for r in result["records"]}):
        rs = [r for r in result["records"] if r["probes"] == k]

        def cell(key):
            values = np.array([r[key] for r in rs])
            return f"{values.mean():.3f} ± {values.std():.3f}"
        own = sum(r["cross_validated_choice"] == "own_head" for r in rs)
        lines.append(f"| {k} | {len(rs)} | {cell('zero_shot')} | {cell('mix')} | {cell('own_head')} | "
                     f"{cell('chosen')} ({own}/{len(rs)}) | {cell('pgd_own_head')} |")
    lines += ["", f"FLOPs alone as a ranking: τ {result['flops_rank_tau']['flops_accuracy']:.3f} with accuracy, "
                  f"{result['flops_rank_tau']['flops_pgd_accuracy']:.3f} with PGD accuracy.", ""]
    return "\n".join(lines)


def run_default(args, work: Path) -> dict:
    import json
    import shutil
    import subprocess

    out = work / f"default_{args.dataset}"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "gennas.cli", "run", "--dataset", dataset_spec(args.dataset, work),
               "--out", str(out), "--device", args.device, "--json"]
    tic = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - tic
    results = json.loads((out / "results.json").read_text())
    return {"provenance": provenance(), "command": " ".join(sys.argv), "run_command": " ".join(command[1:]),
            "wall_seconds": wall, "plan": results["plan"], "rounds": results["rounds"],
            "example_prune": results["example_prune"]["chosen"], "settings": results["settings"]}


def render_default(result: dict) -> str:
    from gennas.provenance import provenance_markdown

    estimated = result["plan"]["estimated"]
    actual = result["plan"]["seconds_this_call"]
    lines = [f"# `gennas run` with its defaults on {result['settings']['dataset']}", "",
             provenance_markdown(result["provenance"]), f"- runs: `gennas {result['run_command'].split('gennas.cli ', 1)[1]}`",
             "",
             f"Wall time end to end: **{result['wall_seconds']:.0f} s** (target: at most 10 minutes).", "",
             "| stage | estimated before it (s) | took (s) |", "|---|---|---|",
             f"| round 0 probes | – | {actual['probes']:.1f} |",
             f"| generation | – | {actual['round_1_generation']:.1f} |",
             f"| supernet training | {estimated['training_seconds']:.1f} | {actual['round_1_training']:.1f} |",
             f"| measurement | {estimated['measurement_seconds']:.1f} | {actual['round_1_measurement']:.1f} |",
             f"| verification | {estimated['verification_seconds']:.1f} | {actual['round_1_verification']:.1f} |", ""]
    pick = result["example_prune"]
    lines += [f"Example pick `{pick['arch']}`: val accuracy {pick['val_accuracy']:.2f} %, test {pick['accuracy']:.2f} %, "
              f"PGD {pick['pgd_accuracy']:.2f} %, FLOPs {pick['flops']:.3f} M.", ""]
    return "\n".join(lines)


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # benchmarks time processes side by side: one core each
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default="truth", choices=("truth", "adapt", "default"))
    parser.add_argument("--probes", default="4,8,16")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--cells", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work", default="runs/bench_main_job")
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    work = Path(args.work)
    if args.part == "truth":
        log(f"wrote {run_truth(args, work)}")
        return
    run, render = {"adapt": (run_adapt, render_adapt), "default": (run_default, render_default)}[args.part]
    result = run(args, work)
    path = Path(args.out) / f"main_job_{args.part}_{args.dataset}.json"
    write_json(path, result)
    write_text(path.with_suffix(".md"), render(result))
    log(f"wrote {path} and {path.with_suffix('.md')}")

if __name__ == "__main__":
    main()
