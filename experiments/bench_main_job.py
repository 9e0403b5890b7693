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

  side    side by side in one run, at equal wall-clock: `gennas run --budget-minutes W` and
          random search, REA and NSGA-II measuring cells with the TrainingOracle (the run's
          recipe, the same objectives, validation figures only), all four started together
          (gennas keeps the recipe's epochs, so every method trains cells alike, and the
          budget plans its probes, cells, subnets and finalists)
          so they share the machine alike, W minutes each. Each method's front is chosen on
          validation figures among the cells it trained standalone (gennas: its probes and
          verified finalists), scored on their test figures: HV ratio against the ground
          truth's front for (accuracy, FLOPs) and (PGD accuracy, FLOPs). Per seed and mean.

  loop    the loop's worth, same seeds: `gennas run` with the zero-shot prior (--probe-cells 0),
          with round 0 only (the default: probes, one round) and with the loop (probes and
          --rounds 2). Per configuration: wall time, each round's held-out Kendall τ (its
          finalists' standalone figures, unseen by its predictor) beside the zero-shot
          prior's, and the HV ratio of the last round's verified finalists against the ground
          truth (test figures), for (accuracy, FLOPs) and (PGD accuracy, FLOPs).

  budget  `gennas run --budget-minutes M` on the dataset, alone on the machine, timed end to
          end: what the plan chose, its estimate beside each stage's seconds, the wall time
          against M (target: within 20 %, and at most 24 minutes for M = 20 on digits28) and
          how many finalists were verified (target: at least 3).

  signal  whether the dataset can rank architectures at all: K truth-strata cells trained
          with the run's recipe at two seeds; Kendall τ between the seeds' rankings (the
          ceiling any predictor or searcher meets), and the spread across cells beside the
          spread across seeds, for accuracy and PGD accuracy. A dataset whose seeds disagree
          (τ near 0) measures training noise, not the loop's worth. Cheap: 2K trainings.

  default `gennas run` with its defaults on the dataset (what `make run` does on digits), in a
          fresh directory, timed end to end: wall time, each stage's seconds beside the
          plan's estimate, the loop's held-out τ and the example pick.

Datasets: ``digits`` (embedded), ``digits-low`` (derived from digits, harder: all ten
classes with 150 training, 300 validation and 300 test images, so accuracy does not
saturate as it does on digits), ``digits28`` (5,000 28x28 images: digits upsampled,
rotated, scaled and shifted at random; train, val and test from disjoint source digits) and
``digits-mid`` (all ten classes with 600 training, 500 validation and 697 test images: every
digit once, more data to learn from and larger evaluation sets than digits-low). Any
``--dataset`` spec gennas accepts works too.

    python experiments/bench_main_job.py --part truth --dataset digits [--cells 150] [--seed 0]
    python experiments/bench_main_job.py --part adapt --dataset digits [--probes 4,8,16] [--seeds 5]
    python experiments/bench_main_job.py --part default --dataset digits
    python experiments/bench_main_job.py --part side --dataset digits-low --minutes 5 --seeds 3
    python experiments/bench_main_job.py --part loop --dataset digits-low --seeds 5
    python experiments/bench_main_job.py --part budget --dataset digits28 --minutes 20
"""

from __future__ import annotations

import argparse
import csv
import json
import io
import sys
import time
from pathlib import Path

import numpy as np

from gennas.io import write_json, write_text
from gennas.provenance import provenance

DERIVED = ("digits-low", "digits-mid", "digits28")
#: The derived datasets cut from one fixed permutation of digits: (train, val, test) image counts.
DIGITS_CUTS = {"digits-low": (150, 300, 300), "digits-mid": (600, 500, 697)}
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
        train, val, test = DIGITS_CUTS[name]
        cuts = {"train": slice(0, train), "val": slice(train, train + val),
                "test": slice(train + val, train + val + test)}
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f"{a}_{split}": arrays[part] for split, part in cuts.items()
                          for a, arrays in (("x", x), ("y", y))})
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


def report_head(title: str, result: dict) -> list[str]:
    """A results file's first lines: the title, the provenance (command, commit, machine), the note if any."""
    from gennas.provenance import provenance_markdown

    return [f"# {title}", "", provenance_markdown(result["provenance"]), "",
            *([f"Note: {result['note']}", ""] if result.get("note") else [])]


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
    index, shards = args.shard
    if shards > 1:  # a worker: trains its share into the shared directory; a plain call writes the CSV
        out = directory / f"shard_{index}_of_{shards}.csv"
    rows = []
    cells = truth_cells(network, args.cells, args.seed)
    for i, cell in list(enumerate(cells))[index::shards]:
        weights = weights_path(directory, cell)
        timing = weights.with_suffix(".seconds")  # how long its training took, whichever call trained it
        fresh = not weights.exists()
        tic = time.perf_counter()
        trained = train_standalone(cell, splits, network, recipe, robustness, directory)
        if fresh:
            write_text(timing, f"{time.perf_counter() - tic:.3f}\n")
        seconds = float(timing.read_text()) if timing.exists() else float("nan")
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
        "cells": len(rows), "seconds_per_cell": float(np.mean(measured)) if measured else None})
    return out


def run_signal(args, work: Path) -> dict:
    """Architecture signal against training noise: ``args.cells`` truth-strata cells at seeds 0 and 1."""
    from scipy.stats import kendalltau

    from gennas.data import load_dataset
    from gennas.nn.network import NetworkConfig
    from gennas.supernet.pipeline import RunSettings
    from gennas.supernet.standalone import standalone_recipe, train_standalone
    from gennas.supernet.train import SupernetTrainConfig
    from gennas.train import RobustnessConfig

    settings = RunSettings(dataset=dataset_spec(args.dataset, work))
    splits = load_dataset(settings.dataset)
    network = NetworkConfig.for_data(splits, settings.channels, settings.cells_per_stage)
    cells = truth_cells(network, args.cells, args.seed)
    figures: dict[int, list[dict]] = {}
    tic = time.perf_counter()
    for seed in (0, 1):
        recipe = standalone_recipe(SupernetTrainConfig(epochs=settings.epochs, seed=seed, device=args.device))
        directory = work / f"signal_{args.dataset}_s{seed}"
        figures[seed] = []
        for i, cell in enumerate(cells):
            figures[seed].append(train_standalone(cell, splits, network, recipe, RobustnessConfig(seed=seed),
                                                  directory).figures)
            log(f"signal {args.dataset} seed {seed}: {i + 1}/{len(cells)}")
    metrics = {}
    for metric in ("standalone_val_accuracy", "standalone_val_pgd_accuracy"):
        values = np.array([[f[metric] for f in figures[seed]] for seed in (0, 1)])  # (seeds, cells)
        metrics[metric] = {"seed_tau": float(kendalltau(values[0], values[1]).statistic),
                           "across_cells_std": float(values.mean(axis=0).std()),
                           "across_seeds_std": float(np.sqrt(((values[0] - values[1]) ** 2 / 2).mean())),
                           "mean": float(values.mean())}
    return {"provenance": provenance(), "command": " ".join(sys.argv), "dataset": args.dataset,
            "cells": [c.to_string() for c in cells], "images": {k: len(getattr(splits, k))
                                                               for k in ("train", "val", "test")},
            "metrics": metrics, "seconds": time.perf_counter() - tic, "figures": figures}


def render_signal(result: dict) -> str:
    lines = [*report_head(f"Can {result['dataset']} rank architectures? Seed against seed on {len(result['cells'])} cells", result),
             f"Images: {result['images']}. The cells are one per FLOPs stratum of the NB201 functions (as the truth "
             "part picks them), each trained with the run's recipe at seed 0 and at seed 1 (the seed sets the weights, "
             "the batches and the attack). Kendall τ between the two seeds' rankings is the ceiling of any ranking "
             "measured on this data; a spread across cells no larger than the spread across seeds means "
             "the figures measure training noise.", "",
             "| metric (validation) | mean | τ seed 0 vs seed 1 | std across cells | std across seeds |",
             "|---|---|---|---|---|"]
    for metric, m in result["metrics"].items():
        lines.append(f"| {metric.replace('standalone_val_', '')} | {m['mean']:.2f} | {m['seed_tau']:.3f} | "
                     f"{m['across_cells_std']:.2f} | {m['across_seeds_std']:.2f} |")
    return "\n".join(lines) + "\n"


def _run_or_explain(command: list[str], env: dict | None = None) -> None:
    """Run a `gennas` command; when it fails, stop with its own error (the last lines of its stderr)."""
    import subprocess

    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")


def read_truth(args, work: Path) -> list[dict]:
    """The dataset's ground-truth cells, their costs counted again with today's cost model.

    Costs are exact and free, so a change in what they count (e.g. FLOPs now counting
    pooling as the NB201 API does) must not leave the truth on another scale than the runs
    scored against it; the trained figures are read as committed.
    """
    from gennas.data import load_dataset
    from gennas.metrics.costs import cell_costs
    from gennas.nn.network import NetworkConfig
    from gennas.space.cell import Cell
    from gennas.supernet.run_settings import RunSettings

    path = Path(args.out) / f"main_job_truth_{args.dataset}.csv"
    settings = RunSettings()
    network = NetworkConfig.for_data(load_dataset(dataset_spec(args.dataset, work)), settings.channels,
                                     settings.cells_per_stage)
    with path.open(newline="") as handle:
        rows = [{k: (v if k == "arch" else float(v)) for k, v in r.items()} for r in csv.DictReader(handle)]
    return [{**r, **cell_costs(Cell.from_string(r["arch"]), network)} for r in rows]


def run_adapt(args, work: Path) -> dict:
    from scipy.stats import kendalltau

    from gennas.data import load_dataset
    from gennas.nn.network import NetworkConfig
    from gennas.space.cell import Cell
    from gennas.supernet.adapt import HEAD_STEPS, choose_probes, transfer_choice
    from gennas.supernet.rounds import zero_shot_prior

    truth = read_truth(args, work)
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
    lines = [*report_head(f"Round 0's worth on {result['dataset']}: Kendall τ on held-out ground truth", result),
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

    out = work / f"default_{args.dataset}"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "gennas.cli", "run", "--dataset", dataset_spec(args.dataset, work),
               "--out", str(out), "--device", args.device, "--json"]
    tic = time.perf_counter()
    _run_or_explain(command)
    wall = time.perf_counter() - tic
    results = json.loads((out / "results.json").read_text())
    return {"provenance": provenance(), "command": " ".join(sys.argv), "run_command": " ".join(command[1:]),
            "wall_seconds": wall, "plan": results["plan"], "rounds": results["rounds"],
            "example_prune": results["example_prune"]["chosen"], "settings": results["settings"]}


def render_default(result: dict) -> str:
    estimated = result["plan"]["estimated"]
    actual = result["plan"]["seconds_this_call"]
    lines = [*report_head(f"`gennas run` with its defaults on {result['settings']['dataset']}", result),
             f"- runs: `gennas {result['run_command'].split('gennas.cli ', 1)[1]}`",
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



#: The baselines of the side-by-side part, run through the search loop with the TrainingOracle.
SIDE_BASELINES = ("random", "rea", "nsga2")
#: `gennas run` variants of the side-by-side part: extra flags each adds to the budgeted run. ``gennas`` is the
#: default (``--supernet auto``: the budget's planner chooses); ``gennas (supernet)`` forces the supernet, so
#: one run shows what the choice is worth.
SIDE_GENNAS = {"gennas": [], "gennas (supernet)": ["--supernet", "always"]}
#: The fronts the side-by-side part scores: (metric on test, its validation column for choosing).
SIDE_FRONTS = {"accuracy_flops": ("accuracy", "val_accuracy"), "pgd_flops": ("pgd_accuracy", "val_pgd_accuracy")}


def run_baseline(args, work: Path) -> dict:
    """One baseline seed on the clock (a worker of the side part): every cell it queries really trained."""
    from gennas.bench.training import TrainingOracle
    from gennas.objectives import parse_objectives
    from gennas.search.loop import run_search
    from gennas.search.methods import make_searcher
    from gennas.search.searcher import SearchContext
    from gennas.supernet.pipeline import RunSettings
    from gennas.supernet.standalone import standalone_recipe
    from gennas.supernet.train import SupernetTrainConfig
    from gennas.train import RobustnessConfig

    settings = RunSettings(dataset=dataset_spec(args.dataset, work), seed=args.seed)
    recipe = standalone_recipe(SupernetTrainConfig(epochs=settings.epochs, seed=settings.seed, device=args.device))
    oracle = TrainingOracle(settings.dataset, train=recipe, robustness=RobustnessConfig(seed=settings.seed),
                            channels=settings.channels, cells_per_stage=settings.cells_per_stage,
                            cache=work / "oracle_cache", use_cache=False, progress=False)
    context = SearchContext(space=oracle.space, objectives=parse_objectives(settings.objectives), seed=args.seed,
                            costs=oracle.cost, network=oracle.network, dataset=oracle.splits.name)
    # the clock runs from the parent's launch, as a `gennas run`'s budget does from its start
    launched = args.launched if args.launched is not None else time.time()
    deadline = time.monotonic() + launched + args.minutes * 60 - time.time()
    query = oracle.query

    def stamped(cell):  # when each training ended, on the deadline's clock
        return {**query(cell), "finished_monotonic": time.monotonic()}

    oracle.query = stamped
    run = run_search(make_searcher(args.method, context), oracle, 100_000, method=args.method, seed=args.seed,
                     deadline=deadline)
    in_time = [r for r in run.history if r["finished_monotonic"] <= deadline]
    return {"method": args.method, "seed": args.seed, "minutes": args.minutes, "history": in_time,
            "finished_late": len(run.history) - len(in_time), "stopped": run.stopped}


def _as_standalone(rows: list[dict]) -> list[dict]:
    """Rows trained standalone, once per arch, in the baselines' column names (the oracle's)."""
    unique = {r["arch"]: r for r in rows if np.isfinite(r["standalone_val_accuracy"])}
    return [{"arch": a, "flops": r["flops"], "val_accuracy": r["standalone_val_accuracy"],
             "val_pgd_accuracy": r["standalone_val_pgd_accuracy"], "accuracy": r["standalone_accuracy"],
             "pgd_accuracy": r["standalone_pgd_accuracy"]} for a, r in unique.items()]


def _verified_rows(run_dir: Path) -> list[dict]:
    """The last round's subnets verified standalone."""
    from gennas.supernet.table import read_subnet_table

    return _as_standalone(read_subnet_table(run_dir / "subnets.csv"))


def _side_rows_of_gennas(run_dir: Path) -> list[dict]:
    """Every cell the run trained standalone: its probes and its verified subnets."""
    from gennas.supernet.table import read_subnet_table

    probes = run_dir / "probes.json"  # absent when the run (or its budget's plan) trained no probe
    return _as_standalone((json.loads(probes.read_text()) if probes.exists() else [])
                          + read_subnet_table(run_dir / "subnets.csv"))


def _front_score(rows: list[dict], reference, metric: str, val_column: str) -> dict:
    """The front chosen on validation figures, scored on test figures against the truth."""
    from gennas.objectives import Objective, minimisation_matrix, pareto_indices

    if not rows:
        return {"hv_ratio": 0.0, "front": []}
    chooser = [Objective(val_column, "max"), Objective("flops", "min")]
    front = [rows[i] for i in pareto_indices(minimisation_matrix(rows, chooser))]
    return {"hv_ratio": reference.hv_ratio(front), "front": [r["arch"] for r in front]}


def _measured_functions(run_dir: Path) -> set[str]:
    """Canonical forms of every cell a run measured in any round (probes, subnets, verified finalists)."""
    from gennas.space.cell import Cell
    from gennas.supernet.table import read_subnet_table

    probes = run_dir / "probes.json"
    rows = json.loads(probes.read_text()) if probes.exists() else []
    for table in [run_dir / "subnets.csv", *sorted(run_dir.glob("round_*/subnets.csv"))]:
        rows += read_subnet_table(table) if table.exists() else []
    return {Cell.from_string(r["arch"]).canonical for r in rows}


def truth_tau(run_dir: Path, truth: list[dict], dataset: str) -> dict:
    """Kendall τ of the predictor that guided a run's last round on the truth cells the run never measured.

    The finalists a run verifies sit within a point of each other, so τ on them says little; the
    truth cells span the cost range and none taught the predictor. Scored on test figures (the
    predictor learnt validation ones).

    Returns:
        {"accuracy": τ or None, "pgd_accuracy": τ or None (no such task: not guided), "cells": n}.
    """
    from gennas.space.cell import Cell
    from gennas.supernet.adapt import held_out_tau
    from predictors.checkpoint import load_predictor

    path = run_dir / "predictor.pt"
    if not path.exists():  # a run from before rounds kept their predictor
        return {"accuracy": None, "pgd_accuracy": None, "cells": 0}
    predictor = load_predictor(path, device="cpu")
    seen = _measured_functions(run_dir)
    held = [r for r in truth if Cell.from_string(r["arch"]).canonical not in seen]
    taus = {"cells": len(held)}
    for metric in ("accuracy", "pgd_accuracy"):  # NaN where the predictor lacks the task: not guided
        tau, _ = held_out_tau(predictor, f"{metric}@{dataset}", held, f"standalone_{metric}")
        taus[metric] = float(tau) if np.isfinite(tau) else None
    return taus


def truth_tau_references(truth: list[dict]) -> dict:
    """What :func:`truth_tau` reads beside: two rankings of the truth cells' test figures that need no predictor.

    ``validation``: each cell's own validation figure, what training every cell would give a
    ranking (the sets are small, so it sits well below 1). ``flops``: FLOPs alone, the floor a
    learnt ranking has to clear to be worth having.

    Returns:
        {"validation": {metric: τ}, "flops": {metric: τ}}.
    """
    from scipy.stats import kendalltau

    def tau(a, b) -> float:
        return float(kendalltau(a, b).statistic)

    metrics = ("accuracy", "pgd_accuracy")
    return {"validation": {m: tau([r[f"standalone_val_{m}"] for r in truth], [r[f"standalone_{m}"] for r in truth])
                           for m in metrics},
            "flops": {m: tau([r["flops"] for r in truth], [r[f"standalone_{m}"] for r in truth]) for m in metrics}}


#: The configurations of the loop part: extra `gennas run` flags.
LOOP_CONFIGS = {"zero-shot": ["--probe-cells", "0"], "round 0": [], "loop (2 rounds)": ["--rounds", "2"]}


def exhaustive_scores(truth: list[dict], references: dict) -> dict:
    """What an exhaustive search would score under the side part's protocol: every truth cell trained,
    its front chosen on validation figures and scored on test figures, like each method's.

    Validation and test are small, so a cell that leads on one need not lead on the other,
    and this sits below 1.0 by the selection noise alone. A method reaching it does as well
    as training every truth cell; a method's own few cells can score above it by chance.

    Returns:
        {front name: {"hv_ratio", "front"}}.
    """
    rows = _truth_rows(truth)
    return {name: _front_score(rows, references[name], metric, val) for name, (metric, val) in SIDE_FRONTS.items()}


def _truth_rows(truth: list[dict]) -> list[dict]:
    """Truth rows under the column names the fronts are chosen and scored on."""
    columns = [column for pair in SIDE_FRONTS.values() for column in pair]
    return [{**r, **{c: r[f"standalone_{c}"] for c in columns}} for r in truth]


#: Random draws of truth cells behind each "at random" reference.
RANDOM_DRAWS = 400


def at_random_scores(truth: list[dict], references: dict, cells: int, seed: int = 0) -> dict:
    """What ``cells`` truth cells drawn at random score under the side part's protocol (mean and std over
    :data:`RANDOM_DRAWS` draws): a method's HV beside it says what its choice of cells is worth apart from
    how many it trained. The truth cells are FLOPs strata, so this is a stratified random search
    with no training cost.

    Returns:
        {front name: {"mean", "std"}, "cells": cells}.
    """
    rows, rng = _truth_rows(truth), np.random.default_rng(seed)
    cells = max(1, min(cells, len(rows)))
    draws = [[rows[i] for i in rng.choice(len(rows), cells, replace=False)] for _ in range(RANDOM_DRAWS)]
    scores = {name: [_front_score(d, references[name], metric, val)["hv_ratio"] for d in draws]
              for name, (metric, val) in SIDE_FRONTS.items()}
    return {**{name: {"mean": float(np.mean(v)), "std": float(np.std(v))} for name, v in scores.items()},
            "cells": cells}


def at_random_by_method(result: dict, truth: list[dict], references: dict) -> dict:
    """:func:`at_random_scores` at each method's mean count of cells trained, rounded."""
    return {method: at_random_scores(truth, references, int(round(s["cells_trained"])))
            for method, s in result["summary"].items()}


def exhaustive_sentence(exhaustive: dict, cells: int) -> str:
    """The Markdown reading of :func:`exhaustive_scores`."""
    return (f"Exhaustive search (reference, not run): all {cells} truth cells through the same protocol (front "
            "chosen on validation, scored on test) score HV "
            f"{exhaustive['accuracy_flops']['hv_ratio']:.3f} (accuracy, FLOPs) / "
            f"{exhaustive['pgd_flops']['hv_ratio']:.3f} (PGD, FLOPs): the selection noise of the small validation "
            "and test sets alone holds them there, so that is what training every cell would deliver; a method's "
            "few cells can score above it by chance.")


def _references(truth: list[dict]) -> dict:
    from gennas.objectives import Objective, minimisation_matrix
    from gennas.search.indicators import Reference

    references = {}
    for name, (metric, _) in SIDE_FRONTS.items():
        objectives = [Objective(metric, "max"), Objective("flops", "min")]
        points = minimisation_matrix([{metric: r[f"standalone_{metric}"], "flops": r["flops"]} for r in truth],
                                     objectives)
        references[name] = Reference(objectives, points)
    return references


def run_loop(args, work: Path) -> dict:
    import os
    import shlex
    from concurrent.futures import ThreadPoolExecutor

    from gennas.data import load_dataset

    truth = read_truth(args, work)
    references = _references(truth)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    seeds = list(range(args.seed, args.seed + args.seeds))
    shared = shlex.split(args.run_flags)
    configs = {name: LOOP_CONFIGS[name] + shared for name in (args.configs.split(",") if args.configs else LOOP_CONFIGS)}
    jobs = [(config, seed) for seed in seeds for config in configs]

    def run_one(job) -> tuple[str, int, Path, float]:
        config, seed = job
        run_dir = work / f"loop_{args.dataset}" / f"{config.split()[0]}_s{seed}"
        if (run_dir / "results.json").exists():
            return config, seed, run_dir, float("nan")
        command = [sys.executable, "-m", "gennas.cli", "run", "--dataset", dataset_spec(args.dataset, work),
                   "--out", str(run_dir), "--seed", str(seed), "--device", args.device, "--json",
                   *configs[config]]
        tic = time.perf_counter()
        _run_or_explain(command, env)
        log(f"{config} seed {seed}: {time.perf_counter() - tic:.0f} s")
        return config, seed, run_dir, time.perf_counter() - tic

    with ThreadPoolExecutor(args.workers) as pool:
        done = list(pool.map(run_one, jobs))
    rows = []
    for config, seed, run_dir, wall in done:
        results = json.loads((run_dir / "results.json").read_text())
        finalists = _verified_rows(run_dir)
        rows.append({"config": config, "seed": seed, "wall_seconds": results["plan"].get("wall_seconds_this_call", wall),
                     "held_out": [r["held_out"] for r in results["rounds"]],
                     "truth_tau": truth_tau(run_dir, truth, load_dataset(results["dataset"]).name),
                     **{name: _front_score(finalists, references[name], *SIDE_FRONTS[name])["hv_ratio"]
                        for name in SIDE_FRONTS}})
    summary = {}
    for config in configs:
        mine = [r for r in rows if r["config"] == config]
        last_tau = {m: [r["held_out"][-1][m]["kendall_tau"] for r in mine] for m in ("accuracy", "pgd_accuracy")}
        on_truth = {m: [r["truth_tau"][m] for r in mine if r["truth_tau"][m] is not None]
                    for m in ("accuracy", "pgd_accuracy")}
        summary[config] = {"wall_seconds": float(np.mean([r["wall_seconds"] for r in mine])),
                           **{name: {"mean": float(np.mean([r[name] for r in mine])),
                                     "std": float(np.std([r[name] for r in mine]))} for name in SIDE_FRONTS},
                           "last_round_tau": {m: float(np.nanmean(v)) if np.isfinite(v).any() else None
                                              for m, v in last_tau.items()},
                           "truth_tau": {m: {"mean": float(np.mean(v)), "std": float(np.std(v))} if v else None
                                         for m, v in on_truth.items()}}
    return {"provenance": provenance(), "command": " ".join(sys.argv), "dataset": args.dataset, "seeds": seeds,
            "configs": configs, "summary": summary, "truth_cells": len(truth), "exhaustive": exhaustive_scores(truth, references),
            "truth_tau_references": truth_tau_references(truth),
            "runs": rows}


def render_loop(result: dict) -> str:
    lines = [*report_head(f"The loop's worth on {result['dataset']}: {' vs '.join(result['configs'])}", result),
             f"Seeds {result['seeds']}, the same for every configuration; runs two at a time, one torch thread each. "
             "HV ratio: the last round's verified finalists (standalone-trained, chosen on validation figures, "
             "scored on test figures) against the ground-truth front. τ on finalists: the last round's predictor on "
             "its own finalists (unseen by it), standalone validation figures. τ on truth: the same predictor "
             "(`RUN_DIR/predictor.pt`) on every ground-truth cell the run never measured, test figures "
             "(– : the metric was not guided).", "",
             "| configuration | flags | wall (s) | HV (accuracy, FLOPs) | HV (PGD, FLOPs) | τ accuracy on finalists | "
             "τ PGD on finalists | τ accuracy on truth | τ PGD on truth |",
             "|---|---|---|---|---|---|---|---|---|"]

    def number(value) -> str:
        return "–" if value is None else f"{value:.2f}"

    def spread(value) -> str:
        return "–" if value is None else f"{value['mean']:.3f} ± {value['std']:.3f}"

    for config, s in result["summary"].items():
        flags = " ".join(result["configs"][config]) or "(defaults)"
        lines.append(f"| {config} | `{flags}` | {s['wall_seconds']:.0f} | {s['accuracy_flops']['mean']:.3f} ± "
                     f"{s['accuracy_flops']['std']:.3f} | {s['pgd_flops']['mean']:.3f} ± {s['pgd_flops']['std']:.3f} | "
                     f"{number(s['last_round_tau']['accuracy'])} | {number(s['last_round_tau']['pgd_accuracy'])} | "
                     f"{spread(s.get('truth_tau', {}).get('accuracy'))} | {spread(s.get('truth_tau', {}).get('pgd_accuracy'))} |")
    if result.get("truth_tau_references"):
        ref = result["truth_tau_references"]
        lines += ["", "τ on truth reads beside two rankings that need no predictor, on the same test figures: each "
                  f"truth cell's own validation figure ranks them at τ {ref['validation']['accuracy']:.3f} (accuracy) / "
                  f"{ref['validation']['pgd_accuracy']:.3f} (PGD), what training every cell and reading its "
                  f"validation figure gives; FLOPs alone at {ref['flops']['accuracy']:.3f} / {ref['flops']['pgd_accuracy']:.3f}."]
    if result.get("exhaustive"):
        lines += ["", exhaustive_sentence(result["exhaustive"], result["truth_cells"])]
    return "\n".join(lines) + "\n"


def run_budget(args, work: Path) -> dict:
    import shutil

    from gennas.supernet.prune import is_verified
    from gennas.supernet.table import read_subnet_table

    out = work / f"budget_{args.dataset}_{args.minutes:g}min"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "gennas.cli", "run", "--dataset", dataset_spec(args.dataset, work), "--out",
               str(out), "--budget-minutes", f"{args.minutes:g}", "--seed", str(args.seed), "--device", args.device,
               "--json"]
    tic = time.perf_counter()
    _run_or_explain(command)
    wall = time.perf_counter() - tic
    results = json.loads((out / "results.json").read_text())
    rows = read_subnet_table(out / "subnets.csv")
    return {"provenance": provenance(), "command": " ".join(sys.argv), "run_command": " ".join(command[1:]),
            "dataset": args.dataset, "minutes": args.minutes, "wall_seconds": wall, "plan": results["plan"],
            "settings": results["settings"], "verified_finalists": sum(is_verified(r) for r in rows),
            "measured_subnets": len(rows), "example_prune": results["example_prune"]["chosen"]}


def render_budget(result: dict) -> str:
    budget, took = result["plan"]["budget"], result["plan"]["seconds_this_call"]
    minutes, wall = result["minutes"], result["wall_seconds"]
    estimate = budget["estimate"]
    chosen = ", ".join(f"`--{k.replace('_', '-')} {v}`" for k, v in budget["chosen"].items())
    lines = [*report_head(f"`gennas run --budget-minutes {minutes:g}` on {result['dataset']}", result),
             f"Wall time end to end: **{wall / 60:.1f} min** for a budget of {minutes:g} min "
             f"({100 * (wall / 60 - minutes) / minutes:+.0f} %; target within ±20 %). The plan chose {chosen}; "
             f"{result['verified_finalists']} subnet(s) verified standalone of {result['measured_subnets']} measured.",
             "", "| stage | planned (s) | took (s) |", "|---|---|---|",
             f"| loading and timing probe | – | {budget['spent_seconds']:.0f} |",
             f"| round 0 probes | {estimate['probes']:.0f} | {took['probes']:.0f} |",
             f"| generation | {estimate['generation']:.0f} | {took['round_1_generation']:.0f} |",
             f"| supernet training | {estimate['training']:.0f} | {took['round_1_training']:.0f} |",
             f"| measurement | {estimate['measurement']:.0f} | {took['round_1_measurement']:.0f} |",
             f"| verification (planned finalists, then what time was left) | {estimate['verification']:.0f} | "
             f"{took['round_1_verification']:.0f} |",
             f"| export | – | {took['export']:.0f} |", ""]
    pick = result["example_prune"]
    lines += [f"Example pick `{pick['arch']}`: val accuracy {pick['val_accuracy']:.2f} %, test {pick['accuracy']:.2f} %, "
              f"PGD {pick['pgd_accuracy']:.2f} %, FLOPs {pick['flops']:.3f} M.", ""]
    return "\n".join(lines)


def run_side(args, work: Path) -> dict:
    import os
    import subprocess

    from gennas.supernet.run_settings import RunSettings

    truth = read_truth(args, work)
    references = _references(truth)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    seeds = list(range(args.seed, args.seed + args.seeds))
    per_seed = []
    for seed in seeds:
        folder = work / f"side_{args.dataset}_{args.minutes:g}min_s{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        run_dirs = {name: folder / ("gennas" if name == "gennas" else "gennas_supernet") for name in SIDE_GENNAS}
        launches = {name: [sys.executable, "-m", "gennas.cli", "run", "--dataset", dataset_spec(args.dataset, work),
                           "--out", str(run_dirs[name]), "--budget-minutes", f"{args.minutes:g}", "--seed", str(seed),
                           "--epochs", str(RunSettings.epochs), "--device", args.device, "--json", *flags]
                    for name, flags in SIDE_GENNAS.items()}
        for method in SIDE_BASELINES:
            launches[method] = [sys.executable, __file__, "--part", "baseline", "--method", method, "--seed", str(seed),
                                "--launched", "{launched}",
                                "--dataset", args.dataset, "--minutes", f"{args.minutes:g}", "--work", str(work),
                                "--device", args.device, "--out", str(folder / f"{method}.json")]
        todo = {m: c for m, c in launches.items() if not any(p.exists() for p in (
            [run_dirs[m] / "results.json", run_dirs[m] / "refused.json"] if m in run_dirs else [folder / f"{m}.json"]))}
        log(f"seed {seed}: starting {', '.join(todo) or 'nothing (all done)'} together, {args.minutes:g} min each")
        launched = f"{time.time():.3f}"
        procs = {m: (subprocess.Popen([a.format(launched=launched) for a in c], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True), time.perf_counter()) for m, c in todo.items()}
        walls = {}
        for method, (proc, tic) in procs.items():
            _, err = proc.communicate()
            walls[method] = time.perf_counter() - tic
            if proc.returncode == 2 and method in run_dirs:  # the budget refused: a clear error, no front
                write_json(run_dirs[method] / "refused.json", {"error": err.strip().splitlines()[-1]})
            elif proc.returncode != 0:
                raise SystemExit(f"{method} seed {seed} failed:\n{err[-3000:]}")
        outcome = {"seed": seed, "methods": {}}
        for method in launches:
            if method in run_dirs and (run_dirs[method] / "refused.json").exists():
                refused = json.loads((run_dirs[method] / "refused.json").read_text())["error"]
                outcome["methods"][method] = {"cells_trained": 0, "refused": refused, "wall_seconds": walls.get(method),
                                              **{name: {"hv_ratio": 0.0, "front": []} for name in SIDE_FRONTS}}
                continue
            if method in run_dirs:
                rows = _side_rows_of_gennas(run_dirs[method])
                results = json.loads((run_dirs[method] / "results.json").read_text())
                extra = {"wall_seconds": results["plan"]["wall_seconds_this_call"],
                         "planned": results["plan"]["budget"]["chosen"],
                         "mode": results["plan"]["budget"].get("mode", "supernet")}
            else:
                saved = json.loads((folder / f"{method}.json").read_text())
                rows, extra = saved["history"], {"stopped": saved["stopped"], "finished_late": saved.get("finished_late")}
                extra["wall_seconds"] = walls.get(method)
            outcome["methods"][method] = {
                "cells_trained": len(rows), **extra,
                **{name: _front_score(rows, references[name], *SIDE_FRONTS[name]) for name in SIDE_FRONTS}}
        per_seed.append(outcome)
        log("seed {}: ".format(seed) + "; ".join(
            f"{m} {o['accuracy_flops']['hv_ratio']:.3f}/{o['pgd_flops']['hv_ratio']:.3f} ({o['cells_trained']} cells)"
            for m, o in outcome["methods"].items()))
    summary = {}
    for method in [*SIDE_GENNAS, *SIDE_BASELINES]:
        summary[method] = {name: {"mean": float(np.mean([s["methods"][method][name]["hv_ratio"] for s in per_seed])),
                                  "std": float(np.std([s["methods"][method][name]["hv_ratio"] for s in per_seed]))}
                           for name in SIDE_FRONTS}
        summary[method]["cells_trained"] = float(np.mean([s["methods"][method]["cells_trained"] for s in per_seed]))
    result = {"provenance": provenance(), "command": " ".join(sys.argv), "dataset": args.dataset,
              "minutes": args.minutes, "seeds": seeds, "truth_cells": len(truth), "summary": summary,
              "exhaustive": exhaustive_scores(truth, references), "per_seed": per_seed, "baseline_clock": "launch"}
    return {**result, "at_random": at_random_by_method(result, truth, references)}


def _clock_sentence(result: dict) -> str:
    """How the side part's baselines were timed: from the launch (``baseline_clock``), or as before it."""
    if result.get("baseline_clock") != "launch":
        return ("A baseline's clock started after its data loaded and its last cell counted when it ended past the "
                "minutes (a budgeted `gennas run` ends within them, startup included).")
    late = sum(o.get("finished_late") or 0 for seed in result["per_seed"] for o in seed["methods"].values())
    return ("The clock runs from the launch for every method: a baseline's cell counts when its training ended "
            "within those minutes (a budgeted `gennas run` ends within them)"
            + (f"; {late} baseline cell(s) ended later and do not count" if late else "") + ".")


def render_side(result: dict) -> str:
    lines = [*report_head(f"Side by side at equal wall-clock on {result['dataset']}: gennas run vs searches with real training", result),
             f"Each method {result['minutes']:g} minutes per seed, all started together (one torch thread "
             f"each); seeds {result['seeds']}. {_clock_sentence(result)} "
             f"HV ratio of the front chosen on validation figures among the cells "
             f"the method trained standalone, scored on their test figures, against the front of "
             f"{result['truth_cells']} ground-truth cells (reference point: best − 10 points, 1.05 × largest "
             "FLOPs). Target: gennas ≥ every baseline on both, and ≥ 0.97.", "",
             "| method | cells trained (mean) | HV (accuracy, FLOPs) | HV (PGD, FLOPs) | as many truth cells at random "
             "(accuracy / PGD) |", "|---|---|---|---|---|"]
    at_random = result.get("at_random", {})
    for method, s in result["summary"].items():
        chance = at_random.get(method)
        lines.append(f"| {method} | {s['cells_trained']:.1f} | {s['accuracy_flops']['mean']:.3f} ± "
                     f"{s['accuracy_flops']['std']:.3f} | {s['pgd_flops']['mean']:.3f} ± {s['pgd_flops']['std']:.3f} | "
                     + (f"{chance['accuracy_flops']['mean']:.3f} / {chance['pgd_flops']['mean']:.3f} ({chance['cells']})"
                        if chance else "–") + " |")
    exhaustive = result.get("exhaustive")
    if exhaustive:
        lines.append(f"| exhaustive search (reference, not run) | {result['truth_cells']} | "
                     f"{exhaustive['accuracy_flops']['hv_ratio']:.3f} | {exhaustive['pgd_flops']['hv_ratio']:.3f} | – |")
    lines += [""]
    if at_random:
        lines += [f"As many truth cells at random (reference, not run): the method's mean count of cells drawn "
                  f"{RANDOM_DRAWS} times from the {result['truth_cells']} ground-truth cells (FLOPs strata) through "
                  "the same protocol, mean HV: what the cells a method chose are worth beside how many it trained.",
                  ""]
    if exhaustive:
        lines += [exhaustive_sentence(exhaustive, result["truth_cells"]), ""]
    for name, label in (("accuracy_flops", "(accuracy, FLOPs)"), ("pgd_flops", "(PGD accuracy, FLOPs)")):
        ours = result["summary"]["gennas"][name]["mean"]
        best = max((m for m in result["summary"] if not m.startswith("gennas")), key=lambda m: result["summary"][m][name]["mean"])
        theirs = result["summary"][best][name]["mean"]
        lines.append(f"- {label}: gennas {ours:.3f} vs the best baseline ({best}) {theirs:.3f}: "
                     + ("target met" if ours >= theirs and ours >= 0.97 else
                        f"target missed by {max(theirs - ours, 0.97 - ours):.3f}")
                     + (f"; exhaustive search {exhaustive[name]['hv_ratio']:.3f}" if exhaustive else ""))
    refusals = [f"{m} seed {seed['seed']}: {o['refused']}" for seed in result["per_seed"]
                for m, o in seed["methods"].items() if o.get("refused")]
    if refusals:
        lines += ["", "Refused (exit 2; scored as an empty front, HV 0):", "", *(f"- {r}" for r in refusals)]
    lines += ["", "Per seed (HV accuracy / PGD; cells trained):", ""]
    for seed in result["per_seed"]:
        lines.append(f"- seed {seed['seed']}: " + "; ".join(
            f"{m} {o['accuracy_flops']['hv_ratio']:.3f} / {o['pgd_flops']['hv_ratio']:.3f} ({o['cells_trained']}"
            + (f", {o['mode']}" if o.get("mode") else "") + ")" for m, o in seed["methods"].items()))
    return "\n".join(lines) + "\n"


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # benchmarks time processes side by side: one core each
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default="truth", choices=("truth", "adapt", "default", "side", "loop", "budget", "baseline",
                                                      "signal"))
    parser.add_argument("--workers", type=int, default=2, help="loop: runs at a time")
    parser.add_argument("--configs", default="", help=f"loop: which of {', '.join(LOOP_CONFIGS)} (default all)")
    parser.add_argument("--run-flags", default="", help="loop: `gennas run` flags every configuration adds, e.g. "
                                                        "'--finalists 6' to score each run on more verified cells")
    parser.add_argument("--minutes", type=float, default=5.0, help="side: wall clock per method and seed")
    parser.add_argument("--method", default="random", help="baseline: the searcher")
    parser.add_argument("--launched", type=float, default=None,
                        help="baseline: the time.time() its clock starts from (the side part's launch; default now): "
                             "cells whose training ends after --minutes from it do not count")
    parser.add_argument("--probes", default="4,8,16")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--cells", type=int, default=150)
    parser.add_argument("--shard", type=lambda text: tuple(int(v) for v in text.split("/")), default=(0, 1),
                        metavar="I/N", help="truth: train every N-th cell from the I-th (0-based), so N processes "
                                            "share the work; a call without --shard then writes the CSV")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work", default="runs/bench_main_job")
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--render-only", action="store_true",
                        help="side, loop: rewrite the Markdown from the JSON (adding the exhaustive reference); run nothing")
    args = parser.parse_args()
    work = Path(args.work)
    if args.part == "truth":
        log(f"wrote {run_truth(args, work)}")
        return
    if args.part == "baseline":  # a worker of the side part: --out is its JSON file
        write_json(Path(args.out), run_baseline(args, work))
        return
    run, render = {"adapt": (run_adapt, render_adapt), "default": (run_default, render_default),
                   "side": (run_side, render_side), "loop": (run_loop, render_loop),
                   "budget": (run_budget, render_budget), "signal": (run_signal, render_signal)}[args.part]
    path = Path(args.out) / f"main_job_{args.part}_{args.dataset}.json"
    if args.render_only:
        if args.part not in ("side", "loop"):
            parser.error("--render-only is for --part side or loop")
        result, truth = json.loads(path.read_text()), read_truth(args, work)
        references = _references(truth)
        result.setdefault("truth_cells", len(truth))
        result.setdefault("exhaustive", exhaustive_scores(truth, references))
        if args.part == "loop":
            result.setdefault("truth_tau_references", truth_tau_references(truth))
        if args.part == "side":
            result.setdefault("at_random", at_random_by_method(result, truth, references))
            if any(o.get("finished_late") is not None for seed in result["per_seed"] for o in seed["methods"].values()):
                result.setdefault("baseline_clock", "launch")  # only the launch clock counts late cells
        write_json(path, result)
        write_text(path.with_suffix(".md"), render(result))
        log(f"rewrote {path.with_suffix('.md')}")
        return
    result = run(args, work)
    write_json(path, result)
    write_text(path.with_suffix(".md"), render(result))
    log(f"wrote {path} and {path.with_suffix('.md')}")

if __name__ == "__main__":
    main()
