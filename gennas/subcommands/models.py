"""`gennas generate`, `gennas generator train` and `gennas predictor pretrain|fit|predict`: our own models."""

from __future__ import annotations

import argparse
from pathlib import Path

from gennas import validate as v
from gennas.errors import GennasError
from gennas.subcommands.common import add_json, add_network, add_seed, emit
from gennas.subcommands.latency import add_latency_option


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
    emit({"out": str(out), "target": oracle.dataset, "tasks": predictor.tasks, "config": config.to_dict()}, args.json)


def _cmd_predictor_fit(args: argparse.Namespace) -> None:
    from gennas.metrics.task import metric_of
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
                                channels=args.channels, cells_per_stage=args.layers or args.cells_per_stage,
                                data_root=args.data_root, progress=False)
        cells = sample_distinct(space, args.n_cells, np.random.default_rng(args.seed))
        metric = metric_of(args.metric)
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
    emit(report, args.json)


def _cmd_predictor_predict(args: argparse.Namespace) -> None:
    from predictors.checkpoint import load_predictor
    from predictors.commands import predict_cells
    from predictors.measurements import read_cells

    space = load_predictor(args.checkpoint).space
    rows = predict_cells(args.checkpoint, read_cells(args.cells, space))
    emit(rows, args.json, human=lambda rows: "\n".join(
        r["arch"] + "  " + "  ".join(f"{t}={v['mean']:.4g}±{v['std']:.2g}" for t, v in r["metrics"].items())
        for r in rows))


def _cmd_generator_train(args: argparse.Namespace) -> None:
    from diffusion.commands import train_generator

    emit(train_generator(args.space, args.out, args.steps, args.cells, args.seed, progress=not args.json), args.json)


def _cmd_generate(args: argparse.Namespace) -> None:
    from diffusion.commands import run_generate
    from gennas.metrics.lut import latency_table_scope

    with latency_table_scope(args.latency_table, args.space):
        result = run_generate(args.space, args.objectives, args.n, args.dataset, args.constraint, args.guidance,
                              args.seed, args.predictor, args.generator)
    emit(result["cells"], args.json, human=lambda rows: "\n".join(
        ("* " if r["pareto"] else "  ") + r["arch"] + "  " + "  ".join(
            f"{k}={v:.4g}" for k, v in r.items() if k not in ("arch", "pareto") and not k.endswith("_std"))
        for r in rows) + f"\n{len(rows)} cells ({sum(r['pareto'] for r in rows)} on the Pareto front, marked *); "
        f"{result['satisfied_before_filter']:.0%} of {result['sampled']} sampled met the constraints; "
        f"costs on the skeleton {result['skeleton']}"
        + (f"\nnote: {result['note']}" if "note" in result else ""))


def add_generate(sub: argparse._SubParsersAction) -> None:
    """`gennas generate`: cells near the Pareto front by guided graph diffusion."""
    p = sub.add_parser("generate", help="generate cells near the Pareto front with guided graph diffusion")
    p.add_argument("--space", default="nb201", help="nb201, darts or dagN (default %(default)s)")
    p.add_argument("--objectives", default="accuracy:max,flops:min", help="METRIC:max|min,... (default %(default)s)")
    p.add_argument("--n", type=v.cells_int, default=100, help="distinct cells to return (default %(default)s)")
    p.add_argument("--dataset", default=None, help="nb201 target whose transfer prior guides accuracy "
                                                   "(cifar10, cifar100, ImageNet16-120; its own table is never used)")
    p.add_argument("--constraint", action="append", default=[], help="hard limit, e.g. 'flops<=100' (repeatable)")
    p.add_argument("--guidance", type=v.nonneg_float, default=60.0, help="guidance scale; 0 samples unguided (default %(default)s)")
    add_seed(p)
    p.add_argument("--predictor", default=None, help="predictor checkpoint (default for nb201: the transfer prior)")
    p.add_argument("--generator", default=None, help="generator checkpoint (default: diffusion/weights/<space>.pt)")
    add_latency_option(p)
    add_json(p, "print a JSON list: arch, objective values, pareto")
    p.set_defaults(func=_cmd_generate)


def add_generator(sub: argparse._SubParsersAction) -> None:
    """`gennas generator train`."""
    generator = sub.add_parser("generator", help="train the graph diffusion generator").add_subparsers(
        dest="generator_command", required=True, metavar="ACTION")
    p = generator.add_parser("train", help="train on every cell of a listable space, or on sampled cells")
    p.add_argument("--space", default="nb201")
    p.add_argument("--out", type=v.output_file, default=None, help="checkpoint (default: diffusion/weights/<space>.pt)")
    p.add_argument("--steps", type=v.steps_int, default=None, help="optimisation steps (default 3000)")
    p.add_argument("--cells", type=v.int_in(2, 1_000_000), default=20000,
                   help="sampled training cells for spaces too large to list")
    add_seed(p)
    add_json(p, None)
    p.set_defaults(func=_cmd_generator_train)


def add_predictor(sub: argparse._SubParsersAction) -> None:
    """`gennas predictor pretrain|fit|predict`."""
    predictor = sub.add_parser("predictor", help="train and use performance predictors").add_subparsers(
        dest="predictor_command", required=True, metavar="ACTION")
    p = predictor.add_parser("pretrain", help="pretrain the NB201 transfer prior for a target dataset "
                                              "(on the other datasets' tables and the free cost metrics)")
    p.add_argument("--dataset", required=True, help="target: cifar10, cifar100 or ImageNet16-120 (its table is not used)")
    p.add_argument("--out", type=v.output_file, default=None,
                   help="checkpoint path (default: predictors/weights/nb201_prior_<target>.pt)")
    p.add_argument("--steps", type=v.steps_int, default=None, help="optimisation steps (default 2000)")
    p.add_argument("--ensemble", type=v.int_in(1, 100), default=None, help="ensemble members (default 5)")
    add_seed(p)
    add_json(p, None)
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
    add_seed(p)
    p.add_argument("--cv", type=v.nonneg_int, default=0, help="also report K-fold cross-validated Kendall tau")
    g = p.add_argument_group("measuring with the training oracle (--from-oracle)")
    g.add_argument("--from-oracle", action="store_true", help="train --n-cells sampled cells and measure the metric")
    g.add_argument("--dataset", default="digits")
    g.add_argument("--data-root", default=None)
    g.add_argument("--n-cells", type=v.int_in(2, v.MAX_CELLS), default=30)
    g.add_argument("--epochs", type=v.epochs_int, default=8)
    add_network(g, title=None)  # None: the space's training skeleton (NB201 C=16, N=2; DARTS C=8, 5 layers)
    g.add_argument("--layers", type=v.positive_int, default=None, help="darts: cells in the network")
    add_json(p, None)
    p.set_defaults(func=_cmd_predictor_fit)

    p = predictor.add_parser("predict", help="predict every metric of a checkpoint for a list of cells")
    p.add_argument("checkpoint")
    p.add_argument("--cells", required=True, help="text file, one arch string per line")
    add_json(p, None)
    p.set_defaults(func=_cmd_predictor_predict)
