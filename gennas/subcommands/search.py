"""`gennas search` and `gennas compare` (query budget or, with --budget-minutes, wall clock)."""

from __future__ import annotations

import argparse
import json

from gennas import validate as v
from gennas.errors import GennasError
from gennas.subcommands.common import add_config, add_device, add_json, add_seed, emit
from gennas.subcommands.latency import add_latency_option


def _search_spec(args: argparse.Namespace):
    from gennas.search.options import parse_options
    from gennas.search.runner import SearchSpec

    return SearchSpec(space=args.space, dataset=args.dataset, budget=args.budget, seeds=args.seeds, seed=args.seed,
                      prior=args.prior, objectives=args.objectives, options=parse_options(args.option),
                      epochs=args.epochs, stop_at=args.stop_at, budget_epochs=args.budget_epochs)


def _search_backend(args: argparse.Namespace):
    from gennas.search.backends import get_backend

    return get_backend(args.backend, args.ray_address)


def _search_human(payload: dict) -> str:
    from gennas.objectives import parse_objectives
    from gennas.search.report import markdown_table

    return (markdown_table(payload["summary"], parse_objectives(payload["settings"]["objectives"]))
            + f"\ncosts counted on the skeleton {payload['skeleton']}")


def _cmd_search(args: argparse.Namespace) -> None:
    from gennas.metrics.lut import latency_table_scope
    from gennas.search.commands import run_methods, runs_json
    from gennas.search.methods import parse_methods

    method = parse_methods(args.method)
    if len(method) != 1:
        raise GennasError("gennas search runs one --method; use gennas compare --methods A,B for several")
    with latency_table_scope(args.latency_table, args.space):  # objectives name its latency from parsing on
        payload = run_methods(_search_spec(args), method, args.out, backend=_search_backend(args),
                              progress=not args.json, wandb=args.wandb)
        summary = payload["summary"]
        payload["runs"] = runs_json(payload["runs"][method[0]])
        payload["summary"] = summary[method[0]]
        emit(payload, args.json, lambda p: _search_human({**p, "summary": summary}))


def _cmd_compare(args: argparse.Namespace) -> None:
    from gennas.metrics.lut import latency_table_scope
    from gennas.search.commands import run_methods, runs_json
    from gennas.search.methods import parse_methods

    if args.budget_minutes is not None:
        _compare_wallclock(args)
        return
    methods = parse_methods(args.methods)
    with latency_table_scope(args.latency_table, args.space):
        payload = run_methods(_search_spec(args), methods, args.out, backend=_search_backend(args),
                              progress=not args.json, wandb=args.wandb)
        payload["runs"] = {m: runs_json(r) for m, r in payload["runs"].items()}
        emit(payload, args.json, _search_human)


def _compare_wallclock(args: argparse.Namespace) -> None:
    """The wall-clock form: equal search time per method, found cells retrained with one recipe."""
    from gennas.search.methods import parse_methods
    from gennas.search.options import parse_options
    from gennas.search.wallclock import WallClockSpec, markdown_rows, run_wallclock

    unsupported = [flag for flag, used in (("--prior transfer", args.prior != "none"),
                                           ("--objectives", args.objectives != "accuracy:max"),
                                           ("--backend ray", args.backend != "serial"), ("--wandb", args.wandb),
                                           ("--stop-at", args.stop_at is not None),
                                           ("--latency-table", args.latency_table is not None)) if used]
    if unsupported:
        raise GennasError(f"{', '.join(unsupported)} cannot be combined with --budget-minutes: the wall-clock "
                          "comparison selects on validation accuracy and trains cells one at a time on this machine")
    spec = WallClockSpec(dataset=args.dataset, space=args.space, minutes=args.budget_minutes, seeds=args.seeds,
                         seed=args.seed, epochs=args.epochs, device=args.device, options=parse_options(args.option))
    payload = run_wallclock(spec, parse_methods(args.methods, wallclock=True), args.out, progress=not args.json)
    if args.json:
        print(json.dumps(payload["rows"], indent=2))
    else:
        print(markdown_rows(payload["rows"]), end="")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default="nb201", help="nb201, darts or dagN (default %(default)s)")
    p.add_argument("--dataset", default="cifar10", help="NB201 table (cifar10, cifar100, ImageNet16-120) or a dataset "
                                                         "to train on (digits, ...) (default %(default)s)")
    p.add_argument("--budget", type=v.positive_int, default=100, help="distinct cells measured per run (default %(default)s)")
    p.add_argument("--seeds", type=v.int_in(1, 10_000), default=1, help="runs with seeds K..K+S-1 (default %(default)s)")
    add_seed(p, "first seed K (default %(default)s)")
    p.add_argument("--prior", default="none", choices=("none", "transfer"),
                   help="transfer: may use the other NB201 tables, never the target's (default %(default)s)")
    p.add_argument("--objectives", default="accuracy:max", help="METRIC:max|min,... (default %(default)s)")
    p.add_argument("--out", type=v.output_dir, default=None, help="directory for journals (resume), summary and plots")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="searcher option, e.g. population_size=20, surrogate=gnn, guidance=30 (repeatable)")
    p.add_argument("--epochs", type=v.epochs_int, default=4, help="training epochs per cell for datasets without a table")
    p.add_argument("--budget-epochs", type=v.positive_int, default=None, metavar="E",
                   help="datasets without a table: also stop each run before its training epochs pass E (the "
                        "currency that compares hyperband/bohb with full-fidelity methods)")
    p.add_argument("--stop-at", default=None, metavar="METRIC:VALUE",
                   help="end a run once a measured cell reaches VALUE (at least, for a max objective; at most, for "
                        "min), e.g. accuracy:94.0; the searcher never sees it, and a journal that reaches it is "
                        "finished at any budget")
    p.add_argument("--backend", default="serial", choices=("serial", "ray"), help="where cells are measured")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start or join a local one)")
    p.add_argument("--wandb", action="store_true", help="log runs to wandb (offline unless WANDB_MODE is set)")
    add_latency_option(p)
    add_json(p, "print runs (history in query order) and summary as JSON")


#: The --method names by kind, written out so that ``--help`` needs no import of the searchers
#: (tests/test_cli.py keeps it in step with the registry).
METHOD_HELP = ("ours; a baseline: random, rea, reinforce, bo, ls, pnas, nsga2; a peer (pip install 'gennas[peers]'): "
               "optuna-tpe, optuna-gp, optuna-nsga2, botorch-qlogei (one objective), botorch-qnehvi (several); "
               "multi-fidelity, on data without a table: hyperband, bohb")


def add_search(sub: argparse._SubParsersAction) -> None:
    """`gennas search --method M`: one method over seeds."""
    p = sub.add_parser("search", help="run one search method against an oracle over seeds")
    p.add_argument("--method", required=True, help=METHOD_HELP)
    _search_args(p)
    add_config(p)
    p.set_defaults(func=_cmd_search)


def add_compare(sub: argparse._SubParsersAction) -> None:
    """`gennas compare --methods A,B`: several methods, one side-by-side table."""
    p = sub.add_parser("compare", help="run several search methods with the same options; one side-by-side table")
    p.add_argument("--methods", default="ours,rea,random",
                   help="comma-separated methods (default %(default)s); with --budget-minutes also darts, darts2 "
                        "(second order) and gdas")
    _search_args(p)
    p.add_argument("--budget-minutes", type=v.positive_float, default=None, metavar="M",
                   help="wall-clock form: M minutes of search per method and seed on real data (--budget is then "
                        "not used), every found cell retrained standalone with --epochs and measured; --json prints "
                        "one row per method and seed")
    add_device(p, "--budget-minutes form: auto (CUDA with AMP if present), cpu, cuda")
    add_config(p)
    p.set_defaults(func=_cmd_compare)
