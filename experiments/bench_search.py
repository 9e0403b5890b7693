"""Benchmark: every search method through the one loop on NAS-Bench-201 (issue 5).

Parts (DESIGN.md protocol: the target table is reached only through counted queries;
scores are computed from it after each run):
  single    zero prior, accuracy only, budget 200; best accuracy and optimum hit rate at
            10/20/50/100/200 queries for every method, on each dataset.
  transfer  ours with the transfer prior (the other two tables), queries to the optimum.
  multi     (accuracy, FLOPs) and (accuracy, FLOPs, memory): HV ratio and IGD+ at 20/50/100.
  multi_transfer  (accuracy, FLOPs) with the transfer prior: HV ratio and IGD+ at 10/20.
  timing    every method's time per query (ask + tell), side by side, from one process, so the
            methods share the same machine load (recorded): zero prior, accuracy and (accuracy,
            FLOPs), 3 seeds, budget 50.
  speed     ours' old configuration (guided pool, refits from scratch) against its current
            defaults (issue 16), same seeds, interleaved over --jobs processes so both see the
            same machine load; adds the process CPU seconds per query, which shared cores
            inflate far less than wall time. Writes search_speed_ours.json and .md.
Each table also gives each method's own time per query (ask + tell) on this CPU.

Peers (issue 16; `pip install 'gennas[peers]'`) run in every part beside our methods when
named in --methods: optuna-tpe, optuna-gp, optuna-nsga2 (any goal), botorch-qlogei (one
objective) and botorch-qnehvi (several); a goal a method cannot take is skipped with a
line on stderr. In the transfer parts a peer takes the prior the way its library allows,
as a warm start: its startup design is the cells the other tables rank best (see
gennas/search/peers.py); ours instead adapts a predictor trained on those tables.

--stop-at-optimum (single objective parts) ends each run at the round whose answers
include the table's optimum: from there no query can change the best found or the hit
rate, so the figures at every budget are those of the full run, for a fraction of the
time. Only the harness, which scores the runs, knows the optimum; the searcher does not.

Runs are journalled under --work, so an interrupted benchmark resumes where it stopped,
and parts/methods/datasets can be run separately; results merge into
experiments/results/search_<part>.json and .md. Runs side by side write to their own --out
and are merged after (--merge-from); --pool grows a row by a batch of other seeds
(--first-seed) run later, its journals gone or not: the summaries pool exactly
(gennas.search.report.pool_summaries) and each batch keeps its own command and load.

    python experiments/bench_search.py --part single [--datasets cifar10,cifar100,ImageNet16-120]
        [--methods random,rea,reinforce,bo,ls,nsga2,ours] [--seeds 20] [--budget 200] [--stop-at-optimum]
    python experiments/bench_search.py --part multi --methods optuna-tpe,optuna-gp,optuna-nsga2,botorch-qnehvi
    python experiments/bench_search.py --part multi --merge-from OTHER_OUT [--pool]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from gennas.io import write_json, write_text
from gennas.metrics.flops import FLOPS_CONVENTION
from gennas.provenance import provenance, provenance_markdown
from gennas.search.commands import reference_for, run_methods
from gennas.errors import GennasError
from gennas.search.methods import check_options, is_peer, takes_goal
from gennas.search.options import parse_options
from gennas.search.peers import EXTRA
from gennas.search.journal import SearchRun
from gennas.search.report import markdown_table, pool_summaries, summarise
from gennas.search.runner import SearchSpec, run_method
from gennas.objectives import parse_objectives

PARTS = {
    "single": {"objectives": ["accuracy:max"], "prior": "none", "budget": 200},
    "transfer": {"objectives": ["accuracy:max"], "prior": "transfer", "budget": 20},
    "multi": {"objectives": ["accuracy:max,flops:min", "accuracy:max,flops:min,memory_bytes:min"], "prior": "none",
              "budget": 100},
    "multi_transfer": {"objectives": ["accuracy:max,flops:min"], "prior": "transfer", "budget": 20},
    # Time per query side by side: every method in one process under the same machine load
    # (the other parts' ms/query come from runs made at different times under different loads).
    "timing": {"objectives": ["accuracy:max", "accuracy:max,flops:min"], "prior": "none", "budget": 50, "seeds": 3},
    "speed": {"objectives": ["accuracy:max"], "prior": "none", "budget": 100, "seeds": 10},
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # benchmarks time processes side by side: one core each
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=list(PARTS), required=True)
    parser.add_argument("--datasets", default="cifar10,cifar100,ImageNet16-120")
    parser.add_argument("--methods", default="random,rea,reinforce,bo,ls,nsga2,ours")
    parser.add_argument("--seeds", type=int, default=None, help="default: 20 (3 for timing)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds FIRST .. FIRST+SEEDS-1: processes that split the seeds share --work, then a run "
                             "over all of them reuses their journals and writes the summary")
    parser.add_argument("--budget", type=int, default=None, help="default: 200 single, 20 transfer, 100 multi, 20 multi_transfer")
    parser.add_argument("--objectives", default=None, help="only this goal of the part (e.g. accuracy:max,flops:min)")
    parser.add_argument("--work", default="runs/bench_search", help="journals (resume) and plots")
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--stop-at-optimum", action="store_true",
                        help="single objective: end a run once it has measured the table's optimum")
    parser.add_argument("--shared", default=None,
                        help="what else ran on the machine's cores meanwhile (kept with each entry, shown in the Markdown)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a searcher option for every method named (as gennas search takes it); the rows are "
                             "labelled 'METHOD (KEY=VALUE ...)', beside the methods' default rows")
    parser.add_argument("--render-only", action="store_true", help="rewrite the Markdown from the JSON; run nothing")
    parser.add_argument("--merge-from", default=None, metavar="DIR",
                        help="run nothing: copy the entries of DIR/search_<part>.json (another run's --out) into "
                             "--out's, replacing an entry of the same row, then rewrite the Markdown")
    parser.add_argument("--pool", action="store_true",
                        help="with --merge-from: pool a row's new seeds with the seeds it already has (they must "
                             "be other seeds of the same settings) instead of replacing it")
    parser.add_argument("--jobs", type=int, default=2, help="speed part: processes the (configuration, seed) runs share")
    parser.add_argument("--configs", type=lambda text: [int(i) for i in text.split(",")], default=None,
                        help="speed part: which of SPEED_CONFIGS to run, by index (default all)")
    args = parser.parse_args()
    if args.part == "speed":
        if args.render_only:
            path = Path(args.out) / "search_speed_ours.json"
            write_text(path.with_suffix(".md"), speed_markdown(json.loads(path.read_text())))
        else:
            speed_part(args)
        return
    part = PARTS[args.part]
    budget = args.budget or part["budget"]
    seeds = args.seeds or part.get("seeds", 20)
    path = Path(args.out) / f"search_{args.part}.json"
    results = json.loads(path.read_text()) if path.exists() else {"part": args.part, "entries": {}}
    if args.merge_from:
        incoming = Path(args.merge_from) / path.name
        try:
            merge_entries(results, json.loads(incoming.read_text()), pool=args.pool)
        except (OSError, ValueError, GennasError) as error:
            parser.error(f"cannot merge {incoming}: {error}")
        write_json(path, results)
    if args.render_only or args.merge_from:
        write_text(path.with_suffix(".md"), markdown(results))
        return
    methods = [m for m in args.methods.split(",") if m]
    try:
        options = parse_options(args.option)
        check_options(options, methods)
    except GennasError as error:
        parser.error(str(error))
    variant = " ".join(f"{k}={v}" for k, v in options.items())
    for dataset in args.datasets.split(","):
        for objectives in [args.objectives] if args.objectives else part["objectives"]:
            # One spec for every method of this goal: the optimum is read from the table once.
            spec = SearchSpec(dataset=dataset, budget=budget, seeds=seeds, seed=args.first_seed, prior=part["prior"],
                              objectives=objectives, options=options)
            if args.stop_at_optimum:
                if len(spec.goal) > 1:
                    parser.error("--stop-at-optimum needs a single objective (a front has no one optimum)")
                spec = replace(spec, stop_at=f"{spec.goal[0].metric}:{reference_for(spec).optimum!r}")
            work = Path(args.work) / args.part / dataset / objectives.replace(":", "-").replace(",", "_")
            for method in methods:
                if not takes_goal(method, len(spec.goal)):
                    log(f"{args.part} {dataset} {objectives} {method}: skipped, it takes another number of objectives")
                    continue
                label = f"{method} ({variant})" if variant else method
                log(f"{args.part} {dataset} {objectives} {label}: {seeds} seeds, budget {budget}")
                load = os.getloadavg()[0]  # other work on the machine inflates ms/query
                # A variant's journals live apart: a journal carries its run's options as its identity.
                payload = run_methods(spec, [method], work / variant.replace("=", "-").replace(" ", "_") if variant
                                      else work)
                key = f"{dataset} | {objectives} | {label}"
                results["entries"][key] = {"provenance": provenance(), "dataset": dataset, "objectives": objectives,
                                           "method": label, "prior": part["prior"], "budget": budget,
                                           **({"options": options} if options else {}),
                                           "stop_at_optimum": args.stop_at_optimum, "flops_convention": FLOPS_CONVENTION,
                                           "seed_range": [args.first_seed, args.first_seed + seeds - 1],
                                           "summary": payload["summary"][method], "load_at_start": round(load, 2),
                                           **({"shared": args.shared} if args.shared else {})}
                write_json(path, results)
    write_text(path.with_suffix(".md"), markdown(results))
    log(f"wrote {path} and {path.with_suffix('.md')}")


#: The speed part's configurations of ours (issue 16), as ``--option`` values: the defaults
#: before the change (a guided pool redrawn every 3 rounds, every refit from scratch) and now.
#: The second ran with options {} when those were the defaults (commit ffb0414); its journals
#: carry that identity, so its options stay {} here. The third is the trade-off: the cached
#: pool with fits from scratch of fewer steps.
SPEED_CONFIGS: dict[str, dict[str, object]] = {
    "ours (old: pool_source=guided, refit_steps=0)": {"pool_source": "guided", "refit_steps": 0},
    "ours (fast: pool_source=cached, refit_steps=30; the defaults of ffb0414)": {"pool_source": "cached",
                                                                                "refit_steps": 30},
    "ours (trade-off: pool_source=cached, fit_steps=150, refit_steps=0)":
        {"pool_source": "cached", "fit_steps": 150, "refit_steps": 0},
    # A short fit from fresh weights every round: the from-scratch refits that keep the search
    # exploring, at a fraction of the 400 steps.
    "ours (fresh short fit: pool_source=cached, fit_steps=40, refit_steps=0)":
        {"pool_source": "cached", "fit_steps": 40, "refit_steps": 0},
    "ours (fresh short fit: pool_source=cached, fit_steps=80, refit_steps=0)":
        {"pool_source": "cached", "fit_steps": 80, "refit_steps": 0},
}


def _speed_run(task: tuple[SearchSpec, str, int, str]) -> tuple[str, SearchRun, float]:
    """One seed of one configuration in a worker process.

    Args:
        task: the spec (its options are the configuration's), the configuration's label, the
            seed, and the folder for its journal.

    Returns:
        The label, the run, and the process CPU seconds it took, the table already loaded and
        the modules imported (kept beside the journal, so a resumed benchmark reports the
        CPU time of the run that made the journal). Measuring (a table look-up) is inside it.
    """
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()
    spec, label, seed, work = task
    cpu_file = Path(work) / "cpu_seconds.json"
    import diffusion.guidance  # noqa: F401  (imports and the table outside the clock: the searcher's time only)

    spec.make_oracle()
    start = time.process_time()
    run, = run_method(replace(spec, seed=seed, seeds=1), "ours", work)
    if not cpu_file.exists():
        write_json(cpu_file, {"cpu_seconds": time.process_time() - start})
    return label, run, json.loads(cpu_file.read_text())["cpu_seconds"]


def speed_part(args: argparse.Namespace) -> None:
    """Ours' old configuration against the new, same seeds, interleaved over ``args.jobs`` processes.

    Interleaving (old seed 0, new seed 0, old seed 1, ...) makes both configurations share
    whatever else loads the machine; the 1-minute load average is kept at the start and end.

    Args:
        args: the command line (datasets, seeds, budget, stop-at-optimum, jobs, work, out).
    """
    part = PARTS["speed"]
    budget, seeds = args.budget or part["budget"], args.seeds or part["seeds"]
    path = Path(args.out) / "search_speed_ours.json"
    results = json.loads(path.read_text()) if path.exists() else {"part": "speed", "entries": {}}
    for dataset in args.datasets.split(","):
        spec = SearchSpec(dataset=dataset, budget=budget, seeds=seeds, prior=part["prior"], objectives="accuracy:max")
        if args.stop_at_optimum:
            spec = replace(spec, stop_at=f"accuracy:{reference_for(spec).optimum!r}")
        chosen = {label: options for i, (label, options) in enumerate(SPEED_CONFIGS.items())
                  if args.configs is None or i in args.configs}
        tasks = [(replace(spec, options=options), label, seed,
                  str(Path(args.work) / "speed" / dataset / f"config_{i}" / f"seed_{seed}"))
                 for seed in range(seeds) for i, (label, options) in enumerate(SPEED_CONFIGS.items())
                 if label in chosen]
        log(f"speed {dataset}: {len(chosen)} configurations x {seeds} seeds, budget {budget}, {args.jobs} jobs")
        load_start = os.getloadavg()[0]
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            done = list(pool.map(_speed_run, tasks))
        load_end = os.getloadavg()[0]
        for label, options in chosen.items():
            runs = [run for name, run, _ in done if name == label]
            cpu = [seconds / len(run.history) for name, run, seconds in done if name == label]
            summary = summarise(runs, spec.goal, reference_for(spec))
            summary["cpu_seconds_per_query"] = [float(np.mean(cpu)), float(np.std(cpu))]
            results["entries"][f"{dataset} | {label}"] = {
                "provenance": provenance(), "dataset": dataset, "objectives": spec.objectives, "method": label,
                "options": options, "prior": part["prior"], "budget": budget, "jobs": args.jobs,
                "stop_at_optimum": args.stop_at_optimum, "summary": summary, "load_at_start": round(load_start, 2),
                "load_at_end": round(load_end, 2), **({"shared": args.shared} if args.shared else {})}
        write_json(path, results)
        write_text(path.with_suffix(".md"), speed_markdown(results))  # each dataset as soon as it is done
        log(f"wrote {path} and {path.with_suffix('.md')}")


def speed_markdown(results: dict) -> str:
    """The speed part's report: the common table, then wall and CPU seconds per query per configuration."""
    lines = ["# Ours' time per query: its default configuration against the fast options (issue 16)\n",
             "The configurations of one command share the seeds and their runs are interleaved over the same "
             "worker processes, so they saw the same machine load (a configuration run by a later command says so "
             "below). `ms/query` is wall time of ask + tell; CPU s/query "
             "is the worker process's CPU time over the run (one torch thread), which other work on the shared "
             "cores inflates far less.\n"]
    groups: dict[str, dict[str, dict]] = {}
    for entry in results["entries"].values():
        groups.setdefault(entry["dataset"], {})[entry["method"]] = entry
    for dataset, entries in groups.items():
        first = next(iter(entries.values()))
        lines.append(f"## {dataset}: accuracy:max (prior none, budget {first['budget']}, "
                     f"seeds {first['summary']['seeds']})\n")
        lines.append(markdown_table({m: e["summary"] for m, e in entries.items()}, parse_objectives("accuracy:max")))
        lines += ["| configuration | options | wall s/query | CPU s/query |", "|---|---|---|---|"]
        for method, e in entries.items():
            wall, cpu = e["summary"]["searcher_seconds_per_query"], e["summary"]["cpu_seconds_per_query"]
            options = " ".join(f"{k}={v}" for k, v in e["options"].items()) or "(defaults)"
            lines.append(f"| {method} | `{options}` | {wall[0]:.3f} ± {wall[1]:.3f} | {cpu[0]:.3f} ± {cpu[1]:.3f} |")
        lines.append("")
        runs: dict[tuple, list[str]] = {}  # one line per command (a configuration may be run later)
        for method, e in entries.items():
            p = e["provenance"]
            runs.setdefault((p["command"], p["commit"], p["date"], e["jobs"], e["load_at_start"], e["load_at_end"],
                             e.get("shared")), []).append(method)
        for (command, commit, date, jobs, start, end, shared), methods in runs.items():
            lines.append(f"- {'; '.join(methods)}: `{command}` at commit `{commit}`, {date}; {jobs} worker processes; "
                         f"1-minute load average {start} at the start, {end} at the end"
                         + (f"; the cores were shared with {shared}" if shared else ""))
        for key in ("code_note", "options_note"):  # what a run's record cannot say by itself
            lines.extend(f"- {'; '.join(ms)}: {note}" for note, ms in methods_by_note(entries, key).items())
        if first.get("stop_at_optimum"):
            lines.append("- each run ends at the round that measured the optimum (`--stop-at-optimum`); the columns "
                         "past that round are the full run's; per-query times are over the queries run")
        lines.append(provenance_markdown(first["provenance"]).splitlines()[-1] + "\n")
    return "\n".join(lines) + "\n"


#: What a row's seeds must share to be pooled into one row: the settings of the benchmark.
POOLED_SETTINGS = ("dataset", "objectives", "method", "prior", "budget", "options", "stop_at_optimum",
                   "flops_convention")
#: What each batch of a pooled row keeps of its own run.
BATCH_KEYS = ("provenance", "load_at_start", "shared", "code_note")


def seed_range(entry: dict) -> tuple[int, int]:
    """The first and last seed an entry's row ran (an entry from before ``seed_range`` was kept: its command's)."""
    if "seed_range" in entry:
        return tuple(entry["seed_range"])
    words = shlex.split(entry["provenance"]["command"])
    first = 0
    for i, word in enumerate(words):
        if word == "--first-seed" and i + 1 < len(words):
            first = int(words[i + 1])
        elif word.startswith("--first-seed="):
            first = int(word.split("=", 1)[1])
    return first, first + entry["summary"]["seeds"] - 1


def batches_of(entry: dict) -> list[dict]:
    """The runs behind a row, each with its seeds and what :data:`BATCH_KEYS` it kept; one unless pooled."""
    if "batches" in entry:
        return entry["batches"]
    return [{"seeds": list(seed_range(entry)), **{k: entry[k] for k in BATCH_KEYS if k in entry}}]


def pooled_entry(old: dict, new: dict) -> dict:
    """One row over the seeds of both entries (a row grown by a later batch of seeds).

    Raises:
        GennasError: when the entries differ in a setting of :data:`POOLED_SETTINGS` or share a seed.
    """
    for key in POOLED_SETTINGS:
        if old.get(key) != new.get(key):
            raise GennasError(f"row {new.get('method')!r} on {new.get('dataset')}: {key} differs "
                              f"({old.get(key)!r} committed, {new.get(key)!r} new); such seeds are not one row")
    batches = sorted(batches_of(old) + batches_of(new), key=lambda b: b["seeds"][0])
    seeds = [s for b in batches for s in range(b["seeds"][0], b["seeds"][1] + 1)]
    if len(seeds) != len(set(seeds)):
        ranges = ", ".join(f"{b['seeds'][0]}-{b['seeds'][1]}" for b in batches)
        raise GennasError(f"row {new['method']!r} on {new['dataset']}: seed ranges {ranges} overlap; pool only "
                          "other seeds (--first-seed)")
    # per_seed counts follow the entries' first seeds (an already pooled row's stay together).
    parts = [e["summary"] for e in sorted((old, new), key=lambda e: batches_of(e)[0]["seeds"][0])]
    merged = {k: v for k, v in new.items() if k not in BATCH_KEYS and k != "seed_range"}
    merged.update(summary=pool_summaries(parts), batches=batches, provenance=new["provenance"])
    return merged


def merge_entries(results: dict, incoming: dict, pool: bool) -> None:
    """Copy ``incoming``'s entries into ``results``: a new row, a replaced one, or (``pool``) one with more seeds."""
    if incoming.get("part") != results["part"]:
        raise GennasError(f"its part is {incoming.get('part')!r}, not {results['part']!r}")
    for key, entry in incoming["entries"].items():
        old = results["entries"].get(key)
        results["entries"][key] = pooled_entry(old, entry) if pool and old is not None else entry
        log(f"{'pooled' if pool and old is not None else 'merged'} {key}: {results['entries'][key]['summary']['seeds']} seeds")


def methods_by_note(entries: dict[str, dict], key: str) -> dict[str, list[str]]:
    """The methods whose entries carry each distinct text under ``key`` (a note the run's record cannot make)."""
    notes: dict[str, list[str]] = {}
    for method, e in entries.items():
        if e.get(key):
            notes.setdefault(e[key], []).append(method)
    return notes


def peer_notes(entries: dict[str, dict], prior: str) -> list[str]:
    """Markdown lines on the peers of a group: which library runs them and, with a prior, how they take it."""
    peers = [m for m in entries if is_peer(m)]
    if not peers:
        return []
    lines = [f"- {', '.join(peers)}: peers, the libraries' own samplers through their ask/tell ({EXTRA}); "
             "a proposal of a measured cell is answered from what was measured, never counted"]
    if prior == "transfer":
        lines.append(f"- {', '.join(peers)}: the prior enters as a warm start, the only way these libraries take it: "
                     "the startup design is the cells the other datasets' tables rank best (mean rank), then the "
                     "sampler goes on from their answers on the target")
    return lines


def peer_verdicts(entries: dict[str, dict], multi: bool) -> list[str]:
    """One line per peer of a group with ours in it: at which checkpoints its mean beats ours', with the figures.

    Mean ± std over seeds on both sides, so a lead inside the seed-to-seed spread shows as such.

    Means are compared at the precision the table prints (2 decimals of accuracy, 4 of HV ratio),
    so "beats" never rests on a digit the reader cannot see; single objective, the median
    queries to the optimum are compared too (see :func:`_race`).
    """
    peers = [m for m in entries if is_peer(m)]
    if "ours" not in entries or not peers:
        return []
    key, label, digits = ("hv_ratio", "HV ratio", 4) if multi else ("best", "best accuracy", 2)
    ours = entries["ours"]["summary"]
    lines = []
    for method in peers:
        mine = entries[method]["summary"]
        ks = sorted(set(mine[key]) & set(ours[key]), key=int)
        ahead = [f"@{k} {_mean_std(mine[key][k], digits)} vs {_mean_std(ours[key][k], digits)}" for k in ks
                 if round(mine[key][k][0], digits) > round(ours[key][k][0], digits)]
        text = (f"**{method} beats ours** on {label} at {', '.join(ahead)}" if ahead
                else f"{method} does not beat ours on {label} at any of @{', @'.join(ks)}")
        if not multi:
            text += "; median queries to the optimum " + _race(mine, ours)
        lines.append(f"- {text}")
    return lines


def _mean_std(value: list[float], digits: int) -> str:
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


def _race(mine: dict, ours: dict) -> str:
    """The peer's median queries to the optimum against ours', each with the seeds that reached it.

    A median over the seeds that found the optimum flatters a method that rarely finds it,
    so the peer is called ahead only when it is lower and found it in at least as many seeds.
    """
    def said(summary: dict) -> str:
        q = summary["queries_to_optimum"]
        median = "never" if q["median"] is None else f"{q['median']:.0f}"
        return f"{median} ({q['found']}/{summary['seeds']} seeds)"

    q, o = mine["queries_to_optimum"], ours["queries_to_optimum"]
    ahead = q["median"] is not None and q["found"] >= o["found"] and (o["median"] is None or q["median"] < o["median"])
    return f"**{said(mine)} vs {said(ours)}: the peer is ahead**" if ahead else f"{said(mine)} vs {said(ours)}"


def markdown(results: dict) -> str:
    lines = [f"# Search benchmark on NAS-Bench-201: part `{results['part']}`\n",
             "Every method runs through the same loop and oracle (one query = one distinct cell whose accuracy "
             "is looked up; FLOPs/params/memory are free). Mean ± std over seeds; `ms/query` is the method's "
             "own time (ask + tell) on the machine below, measuring excluded.\n"]
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for entry in results["entries"].values():
        groups.setdefault((entry["dataset"], entry["objectives"]), {})[entry["method"]] = entry
    for (dataset, objectives), entries in groups.items():
        first = next(iter(entries.values()))
        seeds = {e["summary"]["seeds"] for e in entries.values()}
        budgets = "/".join(str(b) for b in sorted({e["budget"] for e in entries.values()}))
        lines.append(f"## {dataset}: {objectives} (prior {first['prior']}, budget {budgets}, "
                     f"seeds {'/'.join(map(str, sorted(seeds)))})\n")
        lines.append(markdown_table({m: e["summary"] for m, e in entries.items()}, parse_objectives(objectives)))
        lines.extend(peer_verdicts(entries, len(parse_objectives(objectives)) > 1))
        lines.append("")
        # A pooled row's batches of seeds each ran their own command, under their own load.
        batches = {(m if len(batches_of(e)) == 1 else f"{m} (seeds {b['seeds'][0]}-{b['seeds'][1]})"): b
                   for m, e in entries.items() for b in batches_of(e)}
        runs = {}
        for method, b in batches.items():  # one line per distinct command (methods may be run separately)
            p = b["provenance"]
            runs.setdefault((p["command"], p["commit"], p["date"]), []).append(method)
        for (command, commit, date), methods in runs.items():
            lines.append(f"- {', '.join(methods)}: `{command}` at commit `{commit}`, {date}")
        lines.extend(peer_notes(entries, first["prior"]))
        stopped = [m for m, e in entries.items() if e.get("stop_at_optimum")]
        if stopped:
            lines.append(f"- {', '.join(stopped)}: each run ends at the round that measured the optimum "
                         "(`--stop-at-optimum`); no later query can change its best or hit, so the columns past "
                         "that round are the full run's")
        older = [m for m, e in entries.items() if "flops" in objectives and e.get("flops_convention") != FLOPS_CONVENTION]
        if older:
            lines.append(f"- {', '.join(older)}: run when FLOPs counted conv and linear layers only (pooling free), "
                         "before the NAS-Bench-201 API convention (issue 21); searched and scored against the front "
                         "of that count, so their figures do not compare with rows of the API's count")
        lines.extend(f"- {', '.join(ms)}: the cores were shared with {text}"
                     for text, ms in methods_by_note(batches, "shared").items())
        lines.extend(f"- {', '.join(ms)}: {text}" for text, ms in methods_by_note(batches, "code_note").items())
        loads = [f"{m} {b['load_at_start']}" for m, b in batches.items() if "load_at_start" in b]
        if loads:
            lines.append(f"- 1-minute load average when each method started: {', '.join(loads)}")
        newest = max(entries.values(), key=lambda e: e["provenance"]["date"])
        lines.append(provenance_markdown(newest["provenance"]).splitlines()[-1] + "\n")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
