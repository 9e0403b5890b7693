"""`gennas cost`, `gennas query` and `gennas train`: one cell's costs, table entry, or real training."""

from __future__ import annotations

import argparse
from typing import Any

from gennas import validate as v
from gennas.errors import GennasError
from gennas.subcommands.common import (add_device, add_json, add_network, add_seed, add_shape_flags, emit,
                                       with_skeleton_flags)
from gennas.subcommands.latency import add_latency_option
from gennas.npz_format import NPZ_FORMAT


def _cmd_cost(args: argparse.Namespace) -> None:
    from gennas.metrics import measure_latency
    from gennas.space import get_space

    if args.arch is None:  # `gennas cost ARCH`: the space defaults to nb201
        args.space, args.arch = "nb201", args.space
    from gennas.metrics.lut import latency_table_scope

    space = get_space(args.space)
    cell = space.parse(args.arch)
    config = _cost_network(args, space)
    with latency_table_scope(args.latency_table, space.name):
        result: dict[str, Any] = {"arch": cell.to_string(), "space": space.name, **space.costs(cell, config)}
    if args.latency:
        from gennas.train import resolve_device

        device = resolve_device(args.device)
        shape = (config.in_channels, config.image_size, config.image_size)
        result["latency_ms"] = measure_latency(space.build(cell, config), shape, device)
        result["device"] = str(device)
    result["network"] = config.to_dict()
    result["skeleton"] = config.describe() + (f" ({args.dataset}, as gennas run/train build it)"
                                              if args.dataset else f" ({space.name}'s reference skeleton)")
    emit(result, args.json)


def _cost_network(args: argparse.Namespace, space):
    """The skeleton `cost` counts on: the space's reference one by default, that of `run`/`train` with --dataset.

    NB201's reference is the NAS-Bench-201 skeleton, DARTS' the paper's CIFAR-10 network (C=36, 20
    layers). Flags the user gave override either; the dataset is read only for its shape and classes.
    """
    if args.dataset:
        from gennas.data import load_dataset

        base = space.network_for_data(load_dataset(args.dataset, args.data_root))
    else:
        base = space.default_network()
    return with_skeleton_flags(base, args)


def _cmd_query(args: argparse.Namespace) -> None:
    from gennas.bench import TabularOracle

    if args.benchmark != "nb201":
        raise GennasError(f"unknown benchmark {args.benchmark!r}; the tabular benchmark available is 'nb201'")
    oracle = TabularOracle(args.dataset)
    cell = oracle.space.parse(args.arch)
    emit({"arch": cell.to_string(), "dataset": oracle.dataset, **oracle.query(cell)}, args.json)


def _cmd_train(args: argparse.Namespace) -> None:
    from gennas.bench.training import TrainingOracle
    from gennas.data import load_dataset
    from gennas.space import get_space
    from gennas.train import RobustnessConfig, TrainConfig

    space = get_space(args.space)
    cell = space.parse(args.arch)
    splits = load_dataset(args.dataset, args.data_root, download=args.download)
    network = with_skeleton_flags(space.network_for_data(splits), args)  # the space's training skeleton + flags
    oracle = TrainingOracle(
        splits,
        space=space,
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device),
        robustness=RobustnessConfig(eps=args.eps, pgd_steps=args.pgd_steps, noise_sigma=args.noise_sigma),
        network=network,
        progress=not args.json,
        use_cache=not args.no_cache,
    )
    emit({"arch": cell.to_string(), "dataset": oracle.splits.name, **oracle.query(cell),
           "skeleton": oracle.network.describe()}, args.json)



#: What `gennas cost --help` says FLOPs are: the convention of gennas.metrics.flops, in one sentence.
FLOPS_COUNTED = ("FLOPs (millions, batch 1) are counted as the NAS-Bench-201 API counts them: conv and linear "
                 "multiply-accumulates (bias adds included) plus, for every average or max pooling with a fixed "
                 "window (each avg_pool_3x3 edge, each reduction's 2x2 shortcut pooling), kernel height x width per "
                 "output element; batch norm, ReLU, additions, identity/zero edges and the global average pooling "
                 "before the classifier count nothing. Params count every weight, BN affine included.")


def add_cost(sub: argparse._SubParsersAction) -> None:
    """`gennas cost SPACE ARCH`: exact costs on the NB201 skeleton or that of --dataset."""
    p = sub.add_parser("cost", help="FLOPs, params and peak memory of a cell's network (free, exact)",
                       description="Exact costs of a cell's network. Without --dataset the network is the "
                                   "NAS-Bench-201 skeleton (C=16, N=5 cells per stage, 3x32x32 input, 10 classes); "
                                   "with --dataset it is the skeleton gennas run and gennas train build on that "
                                   "dataset (C=16, N=2, the dataset's input shape and classes), so the FLOPs match "
                                   "the run's subnets.csv. For --space darts the network is DARTS' CIFAR-10 one "
                                   "(C=36, 20 layers, 3x32x32, 10 classes; C=8, 5 layers with --dataset), set with "
                                   "--channels and --layers. Flags below override either. "
                                   f"{FLOPS_COUNTED}")
    p.add_argument("space", help="search space: nb201, darts or dagN (e.g. dag6); may be left out for nb201")
    p.add_argument("arch", nargs="?", help="cell in NAS-Bench-201 notation, e.g. '|nor_conv_3x3~0|+|...|'; for darts a "
                                           "genotype: DARTS notation \"Genotype(normal=[('sep_conv_3x3', 0), ...], "
                                           "...)\", the compact form 'sep_conv_3x3~0,sep_conv_3x3~1+.../...' or a "
                                           "published name (DARTS_V1, DARTS_V2)")
    p.add_argument("--dataset", default=None, help="count on the skeleton run/train use for this dataset "
                                                   "(digits, npz:PATH, cifar10, ...)")
    p.add_argument("--data-root", default=None, help="folder with on-disk datasets (default $GENNAS_DATA_DIR)")
    group = p.add_argument_group("network skeleton (default: NAS-Bench-201's, or --dataset's)")
    add_network(group, title=None)
    group.add_argument("--layers", type=v.positive_int, default=None,
                       help="darts: cells in the network (default 20, or 5 with --dataset)")
    add_shape_flags(group)
    p.add_argument("--latency", action="store_true", help="also measure latency (median batch-1 forward, ms)")
    add_device(p, "device for --latency: auto, cpu, cuda (default %(default)s)")
    add_latency_option(p)
    add_json(p)
    p.set_defaults(func=_cmd_cost)


def add_query(sub: argparse._SubParsersAction) -> None:
    """`gennas query nb201 ARCH`: a tabular benchmark's entry."""
    p = sub.add_parser("query", help="look a cell up in a tabular benchmark (NAS-Bench-201 test accuracy)")
    p.add_argument("benchmark", help="tabular benchmark: nb201")
    p.add_argument("arch", help="cell in NAS-Bench-201 notation")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or ImageNet16-120 (default %(default)s)")
    add_json(p)
    p.set_defaults(func=_cmd_query)


def add_train(sub: argparse._SubParsersAction) -> None:
    """`gennas train ARCH`: train one cell's network on real data."""
    p = sub.add_parser("train", help="train a cell's network on real data; report accuracy, robustness and costs",
                       epilog=NPZ_FORMAT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", help="cell in NAS-Bench-201 notation, or for --space darts a DARTS genotype (notation, "
                                "compact form or DARTS_V1/DARTS_V2)")
    p.add_argument("--space", default="nb201", help="search space of the cell: nb201, darts, dagN (default %(default)s)")
    p.add_argument("--dataset", default="digits",
                   help="digits (embedded), cifar10, cifar100, mnist, fashion-mnist, imagefolder:PATH, npz:PATH")
    p.add_argument("--data-root", default=None, help="folder with on-disk datasets (default $GENNAS_DATA_DIR)")
    p.add_argument("--download", action="store_true", help="download cifar/mnist archives if missing")
    p.add_argument("--epochs", type=v.epochs_int, default=10)
    p.add_argument("--batch-size", type=v.positive_int, default=64)
    p.add_argument("--lr", type=v.positive_float, default=0.05)
    add_seed(p)
    add_device(p, "auto (CUDA with AMP if present), cpu, cuda")
    p.add_argument("--eps", type=v.unit_float, default=0.1, help="L-inf attack radius in [0,1] pixel units")
    p.add_argument("--pgd-steps", type=v.positive_int, default=10)
    p.add_argument("--noise-sigma", type=v.nonneg_float, default=0.1)
    p.add_argument("--no-cache", action="store_true", help="retrain even if this (cell, config, seed) is cached")
    group = p.add_argument_group("network skeleton (default: the space's training skeleton: NB201 C=16, N=2; "
                                 "DARTS C=8, 5 layers)")
    add_network(group, title=None)
    group.add_argument("--layers", type=v.positive_int, default=None, help="darts: cells in the network")
    add_json(p)
    p.set_defaults(func=_cmd_train)
