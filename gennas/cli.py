"""The ``gennas`` command line.

Contract forms (kept stable; extend, never rename):
  gennas cost nb201 "<arch>" --json
  gennas query nb201 "<arch>" --dataset cifar10 --json
  gennas train "<arch>" --dataset digits --epochs E --json
  gennas search --space nb201 --dataset cifar10 --method M --budget B --seeds S --seed K
                --prior {none,transfer} --objectives accuracy:max[,flops:min] --out DIR --json
  gennas compare --methods ours,rea,random (same options)
  gennas run --dataset digits --objectives accuracy:max,flops:min,... --out RUN_DIR [--json]
  gennas prune RUN_DIR --max-flops 30 --max-memory-mb 2 --min-robustness 0.5 --maximize accuracy --json
  gennas compare --dataset digits --methods ours,darts,gdas,rea,random --budget-minutes M --seeds S --json
Every command prints JSON with ``--json`` and a short human summary otherwise. A
:class:`GennasError` is printed as one ``error:`` line (exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from gennas.errors import GennasError
from gennas import validate as v
from gennas.npz_format import NPZ_FORMAT


def _emit(payload: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    if as_json:
        print(json.dumps(payload, indent=2))
    else:
        print(human(payload) if human else _format_flat(payload))


def _format_flat(payload: dict) -> str:
    width = max(len(k) for k in payload)
    return "\n".join(f"{k:<{width}}  {_fmt(v)}" for k, v in payload.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _network_args(parser: argparse.ArgumentParser, defaults: dict[str, int] | None = None) -> None:
    d = {"channels": 16, "cells_per_stage": 5, **(defaults or {})}
    group = parser.add_argument_group("network skeleton")
    group.add_argument("--channels", type=v.positive_int, default=d["channels"], help="channels C of the first stage (default %(default)s)")
    group.add_argument("--cells-per-stage", type=v.positive_int, default=d["cells_per_stage"], help="cells N per stage (default %(default)s)")


# ------------------------------------------------------------------ commands
def _cmd_cost(args: argparse.Namespace) -> None:
    from gennas.metrics import cell_costs, measure_latency
    from gennas.nn import build_network
    from gennas.space import get_space

    if args.arch is None:  # `gennas cost ARCH`: the space defaults to nb201
        args.space, args.arch = "nb201", args.space
    space = get_space(args.space)
    cell = space.parse(args.arch)
    config = _cost_network(args)
    result: dict[str, Any] = {"arch": cell.to_string(), "space": space.name, **cell_costs(cell, config)}
    if args.latency:
        from gennas.train import resolve_device

        device = resolve_device(args.device)
        shape = (config.in_channels, config.image_size, config.image_size)
        result["latency_ms"] = measure_latency(build_network(cell, config), shape, device)
        result["device"] = str(device)
    result["network"] = config.to_dict()
    result["skeleton"] = config.describe() + (f" ({args.dataset}, as gennas run/train build it)"
                                              if args.dataset else " (NAS-Bench-201)")
    _emit(result, args.json)


def _cost_network(args: argparse.Namespace):
    """The skeleton `cost` counts on: NAS-Bench-201's by default, that of `run`/`train` with --dataset.

    Flags the user gave override either; the dataset is read only for its shape and class count.
    """
    from gennas.nn.network import NetworkConfig

    if args.dataset:
        from gennas.data import load_dataset

        base = NetworkConfig.for_data(load_dataset(args.dataset, args.data_root))
    else:
        base = NetworkConfig()
    given = {name: getattr(args, name) for name in
             ("channels", "cells_per_stage", "in_channels", "image_size", "num_classes") if getattr(args, name) is not None}
    return NetworkConfig(**{**base.to_dict(), **given})


def _cmd_query(args: argparse.Namespace) -> None:
    from gennas.bench import TabularOracle

    if args.benchmark != "nb201":
        raise GennasError(f"unknown benchmark {args.benchmark!r}; the tabular benchmark available is 'nb201'")
    oracle = TabularOracle(args.dataset)
    cell = oracle.space.parse(args.arch)
    _emit({"arch": cell.to_string(), "dataset": oracle.dataset, **oracle.query(cell)}, args.json)


def _cmd_train(args: argparse.Namespace) -> None:
    from gennas.bench.training import TrainingOracle
    from gennas.space import get_space
    from gennas.train import RobustnessConfig, TrainConfig

    space = get_space(args.space)
    cell = space.parse(args.arch)
    oracle = TrainingOracle(
        args.dataset,
        space=space,
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device),
        robustness=RobustnessConfig(eps=args.eps, pgd_steps=args.pgd_steps, noise_sigma=args.noise_sigma),
        channels=args.channels,
        cells_per_stage=args.cells_per_stage,
        data_root=args.data_root,
        download=args.download,
        progress=not args.json,
        use_cache=not args.no_cache,
    )
    _emit({"arch": cell.to_string(), "dataset": oracle.splits.name, **oracle.query(cell),
           "skeleton": oracle.network.describe()}, args.json)


def _cmd_run(args: argparse.Namespace) -> None:
    from gennas.supernet.pipeline import RunSettings, run_pipeline
    from gennas.lock import output_lock
    from gennas.supernet.train import init_distributed, rank_and_world

    init_distributed(args.device)  # a no-op unless launched by torchrun with several processes
    rank, _ = rank_and_world()
    if args.space != "nb201":
        raise GennasError(f"gennas run generates NB201 cells (the space of its transfer prior); got --space {args.space}")
    settings = RunSettings(
        dataset=args.dataset, objectives=args.objectives, n_cells=args.n_cells, candidates=args.candidates,
        guidance=args.guidance, epochs=args.epochs, seed=args.seed, channels=args.channels,
        cells_per_stage=args.cells_per_stage, max_subnets=args.max_subnets, finalists=args.finalists,
        probe_cells=args.probe_cells, rounds=args.rounds, robustness_data=args.robustness_data)
    with output_lock(args.out if rank == 0 else None):  # under torchrun every rank writes the same run
        summary = run_pipeline(settings, args.out, device=args.device, data_root=args.data_root,
                               progress=not args.json, wandb=args.wandb)
    _emit(summary, args.json, human=lambda s: s["text"])


def _cmd_prune(args: argparse.Namespace) -> None:
    from gennas.supernet.commands import prune_run

    thresholds = {name: getattr(args, name) for name in
                  ("max_flops", "max_params", "max_memory_mb", "max_latency_ms", "min_accuracy", "min_robustness")}
    goal = args.minimize or args.maximize
    result = prune_run(args.run_dir, thresholds, goal, out=args.out, finetune_epochs=args.finetune,
                       device=args.device, verify=args.verify, formats=args.format)
    _emit(result, args.json, human=lambda r: r["text"])


def _cmd_predictor_pretrain(args: argparse.Namespace) -> None:
    from gennas.bench import TabularOracle
    from predictors.checkpoint import save_predictor
    from predictors.transfer import PRETRAIN_CONFIG, pretrain_prior, prior_weights_path

    oracle = TabularOracle(args.dataset)
    config = PRETRAIN_CONFIG.from_dict({**PRETRAIN_CONFIG.to_dict(), "seed": args.seed,
                                        **({"steps": args.steps} if args.steps else {}),
                                        **({"ensemble": args.ensemble} if args.ensemble else {})})
    predictor = pretrain_prior(oracle.dataset, oracle.prior(), config, progress=not args.json)
    out = save_predictor(predictor, args.out or prior_weights_path(oracle.dataset))
    _emit({"out": str(out), "target": oracle.dataset, "tasks": predictor.tasks, "config": config.to_dict()}, args.json)


def _cmd_predictor_fit(args: argparse.Namespace) -> None:
    from gennas.space import get_space
    from predictors.commands import ensure_metric, fit_metric
    from predictors.gnn_predictor import GNNConfig
    from predictors.measurements import read_measurements, write_measurements

    space = get_space(args.space)
    ensure_metric(args.metric, args.direction, args.unit)
    if args.from_oracle:
        import numpy as np

        from gennas.bench.training import TrainingOracle
        from gennas.space.space import sample_distinct
        from gennas.train import TrainConfig

        oracle = TrainingOracle(args.dataset, space=space, train=TrainConfig(epochs=args.epochs, seed=args.seed),
                                channels=args.channels, cells_per_stage=args.cells_per_stage,
                                data_root=args.data_root, progress=False)
        cells = sample_distinct(space, args.n_cells, np.random.default_rng(args.seed))
        metric = args.metric.split("@", 1)[0]
        results = [oracle.query(c) for c in cells]
        if metric not in results[0]:
            raise GennasError(f"the training oracle does not measure {metric!r}; it measures {sorted(results[0])}")
        values = np.array([r[metric] for r in results])
        data = Path(args.data) if args.data else Path(args.out).with_suffix(".csv")
        write_measurements(data, cells, values)
    else:
        if not args.data:
            raise GennasError("give --data measurements.csv (columns arch,value) or --from-oracle to measure cells")
        cells, values = read_measurements(args.data, space)
    config = GNNConfig(ensemble=args.ensemble, steps=args.steps, seed=args.seed)
    report = fit_metric(args.metric, cells, values, space, args.out, base=args.base, config=config, cv_folds=args.cv)
    _emit(report, args.json)


def _cmd_predictor_predict(args: argparse.Namespace) -> None:
    from predictors.checkpoint import load_predictor
    from predictors.commands import predict_cells
    from predictors.measurements import read_cells

    space = load_predictor(args.checkpoint).space
    rows = predict_cells(args.checkpoint, read_cells(args.cells, space))
    _emit(rows, args.json, human=lambda rows: "\n".join(
        r["arch"] + "  " + "  ".join(f"{t}={v['mean']:.4g}±{v['std']:.2g}" for t, v in r["metrics"].items())
        for r in rows))


def _cmd_generator_train(args: argparse.Namespace) -> None:
    from diffusion.commands import train_generator

    _emit(train_generator(args.space, args.out, args.steps, args.cells, args.seed, progress=not args.json), args.json)


def _cmd_generate(args: argparse.Namespace) -> None:
    from diffusion.commands import run_generate

    result = run_generate(args.space, args.objectives, args.n, args.dataset, args.constraint, args.guidance,
                          args.seed, args.predictor, args.generator)
    _emit(result["cells"], args.json, human=lambda rows: "\n".join(
        ("* " if r["pareto"] else "  ") + r["arch"] + "  " + "  ".join(
            f"{k}={v:.4g}" for k, v in r.items() if k not in ("arch", "pareto") and not k.endswith("_std"))
        for r in rows) + f"\n{len(rows)} cells ({sum(r['pareto'] for r in rows)} on the Pareto front, marked *); "
        f"{result['satisfied_before_filter']:.0%} of {result['sampled']} sampled met the constraints; "
        f"costs on the skeleton {result['skeleton']}"
        + (f"\nnote: {result['note']}" if "note" in result else ""))

def _search_spec(args: argparse.Namespace):
    from gennas.search.commands import parse_options
    from gennas.search.runner import SearchSpec

    return SearchSpec(space=args.space, dataset=args.dataset, budget=args.budget, seeds=args.seeds, seed=args.seed,
                      prior=args.prior, objectives=args.objectives, options=parse_options(args.option),
                      epochs=args.epochs, stop_at=args.stop_at)


def _search_backend(args: argparse.Namespace):
    from gennas.search.backends import get_backend

    return get_backend(args.backend, args.ray_address)


def _search_human(payload: dict) -> str:
    from gennas.objectives import parse_objectives
    from gennas.search.report import markdown_table

    return (markdown_table(payload["summary"], parse_objectives(payload["settings"]["objectives"]))
            + f"\ncosts counted on the skeleton {payload['skeleton']}")


def _cmd_search(args: argparse.Namespace) -> None:
    from gennas.search.commands import parse_methods, run_methods, runs_json

    method = parse_methods(args.method)
    if len(method) != 1:
        raise GennasError("gennas search runs one --method; use gennas compare --methods A,B for several")
    payload = run_methods(_search_spec(args), method, args.out, backend=_search_backend(args),
                          progress=not args.json, wandb=args.wandb)
    summary = payload["summary"]
    payload["runs"] = runs_json(payload["runs"][method[0]])
    payload["summary"] = summary[method[0]]
    _emit(payload, args.json, lambda p: _search_human({**p, "summary": summary}))


def _cmd_compare(args: argparse.Namespace) -> None:
    from gennas.search.commands import parse_methods, run_methods, runs_json

    if args.budget_minutes is not None:
        _compare_wallclock(args)
        return
    methods = parse_methods(args.methods)
    payload = run_methods(_search_spec(args), methods, args.out, backend=_search_backend(args),
                          progress=not args.json, wandb=args.wandb)
    payload["runs"] = {m: runs_json(r) for m, r in payload["runs"].items()}
    _emit(payload, args.json, _search_human)


def _compare_wallclock(args: argparse.Namespace) -> None:
    """The wall-clock form: equal search time per method, found cells retrained with one recipe."""
    from gennas.search.commands import parse_options
    from gennas.search.wallclock import WallClockSpec, markdown_rows, parse_wallclock_methods, run_wallclock

    unsupported = [flag for flag, used in (("--prior transfer", args.prior != "none"),
                                           ("--objectives", args.objectives != "accuracy:max"),
                                           ("--backend ray", args.backend != "serial"), ("--wandb", args.wandb),
                                           ("--stop-at", args.stop_at is not None)) if used]
    if unsupported:
        raise GennasError(f"{', '.join(unsupported)} cannot be combined with --budget-minutes: the wall-clock "
                          "comparison selects on validation accuracy and trains cells one at a time on this machine")
    spec = WallClockSpec(dataset=args.dataset, space=args.space, minutes=args.budget_minutes, seeds=args.seeds,
                         seed=args.seed, epochs=args.epochs, device=args.device, options=parse_options(args.option))
    payload = run_wallclock(spec, parse_wallclock_methods(args.methods), args.out, progress=not args.json)
    if args.json:
        print(json.dumps(payload["rows"], indent=2))
    else:
        print(markdown_rows(payload["rows"]), end="")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default="nb201", help="nb201 or dagN (default %(default)s)")
    p.add_argument("--dataset", default="cifar10", help="NB201 table (cifar10, cifar100, ImageNet16-120) or a dataset "
                                                         "to train on (digits, ...) (default %(default)s)")
    p.add_argument("--budget", type=v.positive_int, default=100, help="distinct cells measured per run (default %(default)s)")
    p.add_argument("--seeds", type=v.int_in(1, 10_000), default=1, help="runs with seeds K..K+S-1 (default %(default)s)")
    p.add_argument("--seed", type=v.seed_int, default=0, help="first seed K (default %(default)s)")
    p.add_argument("--prior", default="none", choices=("none", "transfer"),
                   help="transfer: may use the other NB201 tables, never the target's (default %(default)s)")
    p.add_argument("--objectives", default="accuracy:max", help="METRIC:max|min,... (default %(default)s)")
    p.add_argument("--out", type=v.output_dir, default=None, help="directory for journals (resume), summary and plots")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="searcher option, e.g. population_size=20, surrogate=gnn, guidance=30 (repeatable)")
    p.add_argument("--epochs", type=v.epochs_int, default=4, help="training epochs per cell for datasets without a table")
    p.add_argument("--stop-at", default=None, metavar="METRIC:VALUE",
                   help="end a run once a measured cell reaches VALUE (at least, for a max objective; at most, for "
                        "min), e.g. accuracy:94.0; the searcher never sees it, and a journal that reaches it is "
                        "finished at any budget")
    p.add_argument("--backend", default="serial", choices=("serial", "ray"), help="where cells are measured")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start or join a local one)")
    p.add_argument("--wandb", action="store_true", help="log runs to wandb (offline unless WANDB_MODE is set)")
    p.add_argument("--json", action="store_true", help="print runs (history in query order) and summary as JSON")


# ------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from gennas.threads import THREADS_HELP

    parser = _Parser(prog="gennas", description="Generate, train and compare neural architectures.",
                     epilog=THREADS_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("cost", help="FLOPs, params and peak memory of a cell's network (free, exact)",
                       description="Exact costs of a cell's network. Without --dataset the network is the "
                                   "NAS-Bench-201 skeleton (C=16, N=5 cells per stage, 3x32x32 input, 10 classes); "
                                   "with --dataset it is the skeleton gennas run and gennas train build on that "
                                   "dataset (C=16, N=2, the dataset's input shape and classes), so the FLOPs match "
                                   "the run's subnets.csv. Flags below override either.")
    p.add_argument("space", help="search space: nb201 or dagN (e.g. dag6); may be left out for nb201")
    p.add_argument("arch", nargs="?", help="cell in NAS-Bench-201 notation, e.g. '|nor_conv_3x3~0|+|...|'")
    p.add_argument("--dataset", default=None, help="count on the skeleton run/train use for this dataset "
                                                   "(digits, npz:PATH, cifar10, ...)")
    p.add_argument("--data-root", default=None, help="folder with on-disk datasets (default $GENNAS_DATA_DIR)")
    group = p.add_argument_group("network skeleton (default: NAS-Bench-201's, or --dataset's)")
    group.add_argument("--channels", type=v.positive_int, default=None, help="channels C of the first stage")
    group.add_argument("--cells-per-stage", type=v.positive_int, default=None, help="cells N per stage")
    group.add_argument("--in-channels", type=v.positive_int, default=None, help="input channels")
    group.add_argument("--image-size", type=v.positive_int, default=None, help="input side in pixels")
    group.add_argument("--num-classes", type=v.positive_int, default=None, help="classifier outputs")
    p.add_argument("--latency", action="store_true", help="also measure latency (median batch-1 forward, ms)")
    p.add_argument("--device", default="auto", help="device for --latency: auto, cpu, cuda (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_cost)

    p = sub.add_parser("query", help="look a cell up in a tabular benchmark (NAS-Bench-201 test accuracy)")
    p.add_argument("benchmark", help="tabular benchmark: nb201")
    p.add_argument("arch", help="cell in NAS-Bench-201 notation")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or ImageNet16-120 (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_query)

    p = sub.add_parser("train", help="train a cell's network on real data; report accuracy, robustness and costs",
                       epilog=NPZ_FORMAT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", help="cell in NAS-Bench-201 notation")
    p.add_argument("--space", default="nb201", help="search space of the cell (default %(default)s)")
    p.add_argument("--dataset", default="digits",
                   help="digits (embedded), cifar10, cifar100, mnist, fashion-mnist, imagefolder:PATH, npz:PATH")
    p.add_argument("--data-root", default=None, help="folder with on-disk datasets (default $GENNAS_DATA_DIR)")
    p.add_argument("--download", action="store_true", help="download cifar/mnist archives if missing")
    p.add_argument("--epochs", type=v.epochs_int, default=10)
    p.add_argument("--batch-size", type=v.positive_int, default=64)
    p.add_argument("--lr", type=v.positive_float, default=0.05)
    p.add_argument("--seed", type=v.seed_int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA with AMP if present), cpu, cuda")
    p.add_argument("--eps", type=v.unit_float, default=0.1, help="L-inf attack radius in [0,1] pixel units")
    p.add_argument("--pgd-steps", type=v.positive_int, default=10)
    p.add_argument("--noise-sigma", type=v.nonneg_float, default=0.1)
    p.add_argument("--no-cache", action="store_true", help="retrain even if this (cell, config, seed) is cached")
    _network_args(p, {"channels": 16, "cells_per_stage": 2})
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("run", help="the main job: generate cells, build + train one supernet, measure every "
                                   "subnet, prune to example thresholds, export, report",
                       epilog=NPZ_FORMAT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", help="digits (embedded), cifar10, mnist, npz:PATH, ... (default %(default)s)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--space", default="nb201")
    p.add_argument("--objectives", default="accuracy:max,flops:min,memory:min,robustness:max",
                   help="what generation is guided by (default %(default)s)")
    p.add_argument("--out", type=v.output_dir, default="runs/digits", help="run directory, what gennas prune reads (default %(default)s)")
    p.add_argument("--n-cells", type=v.positive_int, default=12, help="generated cells merged into the supernet (default %(default)s)")
    p.add_argument("--candidates", type=v.cells_int, default=64, help="cells generated to choose them from (default %(default)s)")
    p.add_argument("--guidance", type=v.nonneg_float, default=60.0, help="guidance scale of generation (default %(default)s)")
    p.add_argument("--epochs", type=v.epochs_int, default=32, help="supernet training epochs (default %(default)s)")
    p.add_argument("--max-subnets", type=v.positive_int, default=40,
                   help="measure every reachable subnet up to this many, else a FLOPs-stratified subset (default %(default)s)")
    p.add_argument("--probe-cells", type=v.nonneg_int, default=8,
                   help="round 0: cells trained standalone on the dataset (spread over the prior's ranking and the "
                        "FLOPs range) to adapt the predictor's accuracy and fit its robustness; 0 = zero-shot "
                        "(default %(default)s)")
    p.add_argument("--rounds", type=v.positive_int, default=1,
                   help="generate -> supernet -> measure -> verify rounds; each later round's predictor also learns "
                        "from what the earlier ones measured (default %(default)s)")
    p.add_argument("--finalists", type=v.nonneg_int, default=3,
                   help="subnets along the measured front retrained standalone from scratch with the run's recipe, "
                        "to verify the supernet's readings; prune chooses on these figures where they exist "
                        "(default %(default)s)")
    p.add_argument("--robustness-data", type=v.existing_file, default=None,
                   help="CSV arch,value of PGD accuracies you measured on this dataset; they join the probes' "
                        "measurements that teach the predictor robustness")
    p.add_argument("--seed", type=v.seed_int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--wandb", action="store_true", help="log to wandb (offline unless WANDB_MODE is set)")
    _network_args(p, {"channels": 16, "cells_per_stage": 2})
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("prune", help="after the search: the best measured subnet under your thresholds, exported",
                       description="Pick the best subnet of RUN_DIR (written by gennas run) that meets every "
                                   "threshold given, and export it. Costs are exact; accuracy and robustness "
                                   "thresholds and the ranking use validation figures (test figures are reported).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--max-flops", type=float, help="MFLOPs (millions of multiply-adds at batch 1)")
    p.add_argument("--max-params", type=float, help="millions of parameters")
    p.add_argument("--max-memory-mb", type=float, help="MB (10^6 bytes) of peak inference memory at batch 1")
    p.add_argument("--max-latency-ms", type=float, help="ms, median batch-1 latency measured during the run")
    p.add_argument("--min-accuracy", help="percent validation accuracy (0-100; '97' or '97%%')")
    p.add_argument("--min-robustness",
                   help="fraction (0-1) of validation images still classified correctly under PGD, or the same "
                        "as a percentage with its sign ('0.45' or '45%%')")
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--maximize", default="accuracy", choices=("accuracy", "robustness"),
                      help="what to maximise among feasible subnets (default %(default)s)")
    goal.add_argument("--minimize", choices=("flops", "params", "memory", "latency"), help="or what to minimise")
    p.add_argument("--finetune", type=int, default=0, metavar="EPOCHS", help="fine-tune the exported model standalone")
    p.add_argument("--verify", action="store_true",
                   help="retrain the chosen subnet standalone (unless the run already did), export that model and "
                        "check every threshold on it: an error, and no export, when one fails")
    p.add_argument("--out", default=None, help="export directory (default RUN_DIR/export/<arch hash>)")
    p.add_argument("--format", default="torchscript", metavar="FORMATS",
                   help="model files to write, comma-separated: torchscript (model.pt), onnx (model.onnx, checked "
                        "with onnxruntime; needs pip install 'gennas[export]'), pt2 (model.pt2, torch.export) "
                        "(default %(default)s)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_prune)

    p = sub.add_parser("generate", help="generate cells near the Pareto front with guided graph diffusion")
    p.add_argument("--space", default="nb201", help="nb201 or dagN (default %(default)s)")
    p.add_argument("--objectives", default="accuracy:max,flops:min", help="METRIC:max|min,... (default %(default)s)")
    p.add_argument("--n", type=v.cells_int, default=100, help="distinct cells to return (default %(default)s)")
    p.add_argument("--dataset", default=None, help="nb201 target whose transfer prior guides accuracy "
                                                   "(cifar10, cifar100, ImageNet16-120; its own table is never used)")
    p.add_argument("--constraint", action="append", default=[], help="hard limit, e.g. 'flops<=100' (repeatable)")
    p.add_argument("--guidance", type=v.nonneg_float, default=60.0, help="guidance scale; 0 samples unguided (default %(default)s)")
    p.add_argument("--seed", type=v.seed_int, default=0)
    p.add_argument("--predictor", default=None, help="predictor checkpoint (default for nb201: the transfer prior)")
    p.add_argument("--generator", default=None, help="generator checkpoint (default: diffusion/weights/<space>.pt)")
    p.add_argument("--json", action="store_true", help="print a JSON list: arch, objective values, pareto")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("search", help="run one search method against an oracle over seeds")
    p.add_argument("--method", required=True, help="ours, random, rea, reinforce, bo, ls or nsga2")
    _search_args(p)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("compare", help="run several search methods with the same options; one side-by-side table")
    p.add_argument("--methods", default="ours,rea,random",
                   help="comma-separated methods (default %(default)s); with --budget-minutes also darts, darts2 "
                        "(second order) and gdas")
    _search_args(p)
    p.add_argument("--budget-minutes", type=v.positive_float, default=None, metavar="M",
                   help="wall-clock form: M minutes of search per method and seed on real data (--budget is then "
                        "not used), every found cell retrained standalone with --epochs and measured; --json prints "
                        "one row per method and seed")
    p.add_argument("--device", default="auto", help="--budget-minutes form: auto (CUDA with AMP if present), cpu, cuda")
    p.set_defaults(func=_cmd_compare)

    generator = sub.add_parser("generator", help="train the graph diffusion generator").add_subparsers(
        dest="generator_command", required=True, metavar="ACTION")
    p = generator.add_parser("train", help="train on every cell of a listable space, or on sampled cells")
    p.add_argument("--space", default="nb201")
    p.add_argument("--out", type=v.output_file, default=None, help="checkpoint (default: diffusion/weights/<space>.pt)")
    p.add_argument("--steps", type=v.steps_int, default=None, help="optimisation steps (default 3000)")
    p.add_argument("--cells", type=v.int_in(2, 1_000_000), default=20000,
                   help="sampled training cells for spaces too large to list")
    p.add_argument("--seed", type=v.seed_int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_generator_train)

    predictor = sub.add_parser("predictor", help="train and use performance predictors").add_subparsers(
        dest="predictor_command", required=True, metavar="ACTION")
    p = predictor.add_parser("pretrain", help="pretrain the NB201 transfer prior for a target dataset "
                                              "(on the other datasets' tables and the free cost metrics)")
    p.add_argument("--dataset", required=True, help="target: cifar10, cifar100 or ImageNet16-120 (its table is not used)")
    p.add_argument("--out", type=v.output_file, default=None,
                   help="checkpoint path (default: predictors/weights/nb201_prior_<target>.pt)")
    p.add_argument("--steps", type=v.steps_int, default=None, help="optimisation steps (default 2000)")
    p.add_argument("--ensemble", type=v.int_in(1, 100), default=None, help="ensemble members (default 5)")
    p.add_argument("--seed", type=v.seed_int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predictor_pretrain)

    p = predictor.add_parser("fit", help="fit (or add to --base) the head of one metric from measurements")
    p.add_argument("--metric", required=True, help="metric name, optionally @dataset (e.g. pgd_accuracy@digits)")
    p.add_argument("--data", default=None, help="CSV with columns arch,value (with --from-oracle: where to write it)")
    p.add_argument("--out", type=v.output_file, required=True, help="checkpoint to write")
    p.add_argument("--base", default=None, help="existing checkpoint: keep its tasks, add/retrain this metric's head")
    p.add_argument("--space", default="nb201")
    p.add_argument("--direction", choices=("max", "min"), default=None, help="for a new metric: better is max or min")
    p.add_argument("--unit", default="", help="for a new metric: its unit")
    p.add_argument("--ensemble", type=v.int_in(1, 100), default=5)
    p.add_argument("--steps", type=v.steps_int, default=500)
    p.add_argument("--seed", type=v.seed_int, default=0)
    p.add_argument("--cv", type=v.nonneg_int, default=0, help="also report K-fold cross-validated Kendall tau")
    g = p.add_argument_group("measuring with the training oracle (--from-oracle)")
    g.add_argument("--from-oracle", action="store_true", help="train --n-cells sampled cells and measure the metric")
    g.add_argument("--dataset", default="digits")
    g.add_argument("--data-root", default=None)
    g.add_argument("--n-cells", type=v.int_in(2, v.MAX_CELLS), default=30)
    g.add_argument("--epochs", type=v.epochs_int, default=8)
    g.add_argument("--channels", type=v.positive_int, default=16)
    g.add_argument("--cells-per-stage", type=v.positive_int, default=2)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predictor_fit)

    p = predictor.add_parser("predict", help="predict every metric of a checkpoint for a list of cells")
    p.add_argument("checkpoint")
    p.add_argument("--cells", required=True, help="text file, one arch string per line")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_predictor_predict)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error form of every other gennas error (``error: ...``, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {self.prog}: {message}\n")


def interrupted_message(args: argparse.Namespace) -> str:
    """What an interrupted command has saved and how to go on: true for each command.

    Args:
        args: the parsed command line of the interrupted command.

    Returns:
        One line for stderr.
    """
    command = args.command
    out = getattr(args, "out", None)
    if command == "run":
        return (f"interrupted; finished stages are kept in {out} (generated cells, the supernet checkpoint of the "
                "last finished epoch, every measured subnet): rerun the same command to resume")
    if command in ("search", "compare"):
        if getattr(args, "budget_minutes", None) is not None:
            return (f"interrupted; finished (method, seed) rows are kept in {out}: rerun the same command to resume"
                    if out else "interrupted; nothing was saved (no --out): pass --out DIR to keep finished rows")
        return (f"interrupted; every measured cell is kept in the journals under {out}: rerun the same command to "
                "resume" if out else "interrupted; nothing was saved (no --out): pass --out DIR to make runs resumable")
    if command == "prune":
        return "interrupted; the export may be incomplete: rerun the same command to export again"
    if command == "train":
        return "interrupted; nothing was saved (results are cached only when training finishes): rerun to train again"
    if command in ("generator", "predictor"):
        return "interrupted; no checkpoint was written (it is saved when training ends): rerun the command"
    return "interrupted; nothing was saved: rerun the command"


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(130)  # a second Ctrl-C: no cleanup, no traceback; every file is written atomically


def _first_interrupt(signum: int, frame: Any) -> None:
    from gennas import interrupt

    interrupt.mark()  # re-raised by the search loop if a library swallows this KeyboardInterrupt
    signal.signal(signal.SIGINT, _exit_now)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from gennas import interrupt
    from gennas.threads import configure_threads

    interrupt.clear()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals can only be set there
    previous = signal.signal(signal.SIGINT, _first_interrupt) if in_main_thread else None
    interrupted = False
    try:
        configure_threads()
        args.func(args)
    except GennasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        interrupted = True
        print(interrupted_message(args), file=sys.stderr)
        return 130
    finally:
        if previous is not None and not interrupted:  # after a Ctrl-C the process is ending: keep exiting at once
            signal.signal(signal.SIGINT, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
