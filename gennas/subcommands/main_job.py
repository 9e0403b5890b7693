"""`gennas run` (the main job) and `gennas prune` (choose and export a subnet after it)."""

from __future__ import annotations

import argparse

from gennas import validate as v
from gennas.subcommands.common import add_config, add_device, add_json, add_seed, emit
from gennas.subcommands.latency import add_latency_option
from gennas.npz_format import NPZ_FORMAT
from gennas.supernet.run_settings import SUPERNET_MODES


def _cmd_run(args: argparse.Namespace) -> None:
    from gennas.supernet.pipeline import RunSettings, run_pipeline
    from gennas.search.backends import get_backend
    from gennas.supernet.run_settings import BUDGET_KNOBS
    from gennas.lock import output_lock
    from gennas.supernet.train import init_distributed, rank_and_world

    init_distributed(args.device)  # a no-op unless launched by torchrun with several processes
    rank, _ = rank_and_world()
    from gennas.supernet.family import run_family

    family = run_family(args.space)  # an unknown space: one clear line, before any work
    skeleton = family.skeleton(args.channels, args.cells_per_stage, args.layers)
    planned = {name: getattr(args, name) for name in BUDGET_KNOBS}  # None: not given
    settings = RunSettings(
        dataset=args.dataset, objectives=args.objectives, guidance=args.guidance,
        seed=args.seed, rounds=args.rounds, space=family.name, **skeleton,
        robustness_data=args.robustness_data, latency_table=args.latency_table,
        finetune_epochs=args.finetune_epochs, budget_minutes=args.budget_minutes, supernet=args.supernet,
        planned=tuple(n for n, value in planned.items() if value is None) if args.budget_minutes else (),
        **{n: value for n, value in planned.items() if value is not None})
    with output_lock(args.out if rank == 0 else None):  # under torchrun every rank writes the same run
        summary = run_pipeline(settings, args.out, device=args.device, data_root=args.data_root,
                               progress=not args.json, wandb=args.wandb,
                               backend=get_backend(args.backend, args.ray_address))
    emit(summary, args.json, human=lambda s: s["text"])


def _cmd_prune(args: argparse.Namespace) -> None:
    from gennas.supernet.commands import prune_run

    thresholds = {name: getattr(args, name) for name in
                  ("max_flops", "max_params", "max_memory_mb", "max_latency_ms", "min_accuracy", "min_robustness")}
    goal = args.minimize or args.maximize
    result = prune_run(args.run_dir, thresholds, goal, out=args.out, finetune_epochs=args.finetune,
                       device=args.device, verify=args.verify, formats=args.format, latency_table=args.latency_table)
    emit(result, args.json, human=lambda r: r["text"])


def add_run(sub: argparse._SubParsersAction) -> None:
    """`gennas run`: generate, train one supernet, measure, prune to examples, export, report."""
    p = sub.add_parser("run", help="the main job: generate cells, build + train one supernet, measure every "
                                   "subnet, prune to example thresholds, export, report",
                       epilog=NPZ_FORMAT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", help="digits (embedded), cifar10, mnist, npz:PATH, ... (default %(default)s)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--space", default="nb201",
                   help="search space of the generated architectures: nb201 (cells, guided by the NB201 transfer "
                        "prior) or darts (DARTS genotypes; no accuracy table exists, so the predictor is trained "
                        "from the run's own measured probes only) (default %(default)s)")
    p.add_argument("--objectives", default="accuracy:max,flops:min,memory:min,robustness:max",
                   help="what generation is guided by (default %(default)s)")
    p.add_argument("--out", type=v.output_dir, default="runs/digits", help="run directory, what gennas prune reads (default %(default)s)")
    p.add_argument("--n-cells", type=v.positive_int, default=None,
                   help="generated cells merged into the supernet (default 12; planned with --budget-minutes)")
    p.add_argument("--candidates", type=v.cells_int, default=None,
                   help="cells generated to choose them from (default 64; planned with --budget-minutes)")
    p.add_argument("--guidance", type=v.nonneg_float, default=60.0, help="guidance scale of generation (default %(default)s)")
    p.add_argument("--budget-minutes", type=v.positive_float, default=None, metavar="M",
                   help="finish within about M minutes on this machine: --epochs, --probe-cells, --n-cells, "
                        "--candidates, --max-subnets and --finalists are planned from a short timing probe unless given (an error "
                        "below the smallest run it can plan)")
    p.add_argument("--epochs", type=v.epochs_int, default=None,
                   help="supernet (and standalone) training epochs (default 32; planned with --budget-minutes)")
    p.add_argument("--max-subnets", type=v.positive_int, default=None,
                   help="measure every reachable subnet up to this many, else a FLOPs-stratified subset "
                        "(default 40; planned with --budget-minutes)")
    p.add_argument("--probe-cells", type=v.nonneg_int, default=None,
                   help="round 0: cells trained standalone on the dataset (spread over the prior's ranking and the "
                        "FLOPs range) to adapt the predictor's accuracy and fit its robustness; 0 = zero-shot "
                        "(default 8; planned with --budget-minutes)")
    p.add_argument("--finetune-epochs", type=v.nonneg_int, default=None, metavar="E",
                   help="fine-tune each measured subnet E epochs from the shared weights before reading its "
                        "accuracy and robustness (what prune exports is that network); 0 = read the shared weights "
                        "as they are (default: an eighth of --epochs, at least 1)")
    p.add_argument("--rounds", type=v.positive_int, default=1,
                   help="generate -> supernet -> measure -> verify rounds; each later round's predictor also learns "
                        "from what the earlier ones measured (default %(default)s)")
    p.add_argument("--finalists", type=v.nonneg_int, default=None,
                   help="subnets along the measured front retrained standalone from scratch with the run's recipe, "
                        "to verify the supernet's readings; prune chooses on these figures where they exist "
                        "(default 3; planned with --budget-minutes)")
    p.add_argument("--supernet", default="auto", choices=SUPERNET_MODES,
                   help="always: read the generated cells off one trained supernet; never: train the --finalists most "
                        "Pareto-near generated cells standalone instead (where a standalone training costs about as "
                        "much as a supernet reading: small data); auto: a supernet, unless --budget-minutes finds the "
                        "direct plan verifies more than the supernet is worth (default %(default)s)")
    p.add_argument("--backend", default="serial", choices=("serial", "ray"),
                   help="where the standalone trainings (probes, finalists) run: in this process, or in parallel "
                        "on Ray (pip install 'gennas[ray]'); the results are the same")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start or join a local one)")
    p.add_argument("--robustness-data", type=v.existing_file, default=None,
                   help="CSV arch,value of PGD accuracies you measured on this dataset; they join the probes' "
                        "measurements that teach the predictor robustness")
    add_latency_option(p)
    add_seed(p)
    add_device(p)
    p.add_argument("--wandb", action="store_true", help="log to wandb (offline unless WANDB_MODE is set)")
    skeleton = p.add_argument_group("network skeleton")
    skeleton.add_argument("--channels", type=v.positive_int, default=None,
                          help="channels C of the first stage (default 16; darts: 8)")
    skeleton.add_argument("--cells-per-stage", type=v.positive_int, default=None,
                          help="nb201: cells N per stage (default 2)")
    skeleton.add_argument("--layers", type=v.positive_int, default=None, help="darts: cells of the network (default 5)")
    add_json(p)
    add_config(p)
    p.set_defaults(func=_cmd_run)


def add_prune(sub: argparse._SubParsersAction) -> None:
    """`gennas prune RUN_DIR`: the best measured subnet under the thresholds, exported."""
    p = sub.add_parser("prune", help="after the search: the best measured subnet under your thresholds, exported",
                       description="Pick the best subnet of RUN_DIR (written by gennas run) that meets every "
                                   "threshold given, and export it. Costs are exact; accuracy and robustness "
                                   "thresholds and the ranking use validation figures (test figures are reported).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--max-flops", type=float, help="MFLOPs (millions of multiply-adds at batch 1)")
    p.add_argument("--max-params", type=float, help="millions of parameters")
    p.add_argument("--max-memory-mb", type=float, help="MB (10^6 bytes) of peak inference memory at batch 1")
    p.add_argument("--max-latency-ms", type=float, help="ms, median batch-1 latency measured during the run (or, with "
                                                        "--latency-table, the table's latency of each subnet)")
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
    add_latency_option(p)
    p.add_argument("--format", default="torchscript", metavar="FORMATS",
                   help="model files to write, comma-separated: torchscript (model.pt), onnx (model.onnx, checked "
                        "with onnxruntime; needs pip install 'gennas[export]'), pt2 (model.pt2, torch.export) "
                        "(default %(default)s)")
    add_device(p)
    add_json(p)
    p.set_defaults(func=_cmd_prune)
