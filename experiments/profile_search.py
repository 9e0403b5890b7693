"""Profile one search method's own time per query (ask + tell) with cProfile (issue 16: ours ≤ 0.3 s/query).

One seed of one method runs through the one loop on the NB201 table (measuring is a table
look-up, so nearly all the time is the searcher's). The report lists the project's
functions by cumulative time (where the time goes in the code we own, the searcher's ask
and tell among them) and every function by its own time (which kernels pay), and records the load average, since other work on the machine inflates every figure.

    python experiments/profile_search.py --method ours --budget 30 [--dataset cifar10] [--seed 0]
        [--option KEY=VALUE ...] [--name STEM]

Writes experiments/results/search_profile_<method>.json and .md (``--name`` picks another
stem, so a profile of other options keeps the earlier one beside it).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
from pathlib import Path

from gennas.io import write_json, write_text
from gennas.provenance import provenance, provenance_markdown
from gennas.search import make_searcher, run_search
from gennas.search.options import parse_options
from gennas.search.runner import SearchSpec

#: Where the code we own lives; its functions are listed by cumulative time.
ROOT = str(Path(__file__).resolve().parents[1]) + "/"
OWN = tuple(ROOT + package + "/" for package in ("gennas", "predictors", "diffusion"))
ROWS = 15


def profile(spec: SearchSpec, method: str, seed: int) -> tuple[dict, pstats.Stats]:
    """Run one seed under cProfile; the run's figures and the profile."""
    oracle = spec.make_oracle()
    searcher = make_searcher(method, spec.context(oracle, seed))
    profiler = cProfile.Profile()
    load = os.getloadavg()[0]
    run = profiler.runcall(run_search, searcher, oracle, spec.budget, method=method, seed=seed)
    queries = len(run.history)
    figures = {"method": method, "options": dict(spec.options), "dataset": spec.dataset,
               "objectives": spec.objectives, "seed": seed,
               "queries": queries, "searcher_seconds": round(run.searcher_seconds, 2),
               "seconds_per_query": round(run.searcher_seconds / queries, 3), "load_at_start": round(load, 2),
               "best_accuracy": max(r["accuracy"] for r in run.history)}
    return figures, pstats.Stats(profiler)


def rows(stats: pstats.Stats, key: str, own_only: bool) -> list[dict]:
    """The top :data:`ROWS` functions by ``key`` ("cumulative" or "own"), with calls and seconds."""
    out = []
    for (path, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if own_only and not path.startswith(OWN):
            continue
        where = path.removeprefix(ROOT).split("site-packages/")[-1]
        out.append({"function": f"{where}:{line}({name})", "calls": calls, "own_s": round(own, 2),
                    "cumulative_s": round(cumulative, 2)})
    field = "cumulative_s" if key == "cumulative" else "own_s"
    return sorted(out, key=lambda r: -r[field])[:ROWS]


def markdown(payload: dict) -> str:
    f = payload["figures"]
    options = " ".join(f"{k}={v}" for k, v in f.get("options", {}).items()) or "its defaults"
    lines = [f"# Profile of `{f['method']}` ({options}): time per query\n",
             f"One seed ({f['seed']}) on {f['dataset']}, {f['objectives']}, {f['queries']} queries, under cProfile "
             f"(which adds its own overhead). The searcher's own time: **{f['seconds_per_query']} s/query** "
             f"({f['searcher_seconds']} s in all); 1-minute load average at the start {f['load_at_start']} "
             "on 2 cores (other work shared them). Best accuracy found: "
             f"{f['best_accuracy']:.2f}.\n"]
    for title, key in (("The project's functions by cumulative time", "own_code"),
                       ("Every function by its own time", "kernels")):
        lines += [f"## {title}\n", "| function | calls | own s | cumulative s |", "|---|---|---|---|"]
        lines += [f"| `{r['function']}` | {r['calls']} | {r['own_s']} | {r['cumulative_s']} |" for r in payload[key]]
        lines.append("")
    lines.append(f"- `{payload['provenance']['command']}` at commit `{payload['provenance']['commit']}`, "
                 f"{payload['provenance']['date']}")
    lines.append(provenance_markdown(payload["provenance"]).splitlines()[-1])
    return "\n".join(lines) + "\n"


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="ours")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--objectives", default="accuracy:max")
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="experiments/results")
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE, a searcher option (repeatable)")
    parser.add_argument("--name", default=None, help="file stem (default search_profile_<method>)")
    args = parser.parse_args()
    spec = SearchSpec(dataset=args.dataset, budget=args.budget, seeds=1, objectives=args.objectives,
                      options=parse_options(args.option))
    figures, stats = profile(spec, args.method, args.seed)
    payload = {"provenance": provenance(), "figures": figures, "own_code": rows(stats, "cumulative", True),
               "kernels": rows(stats, "own", False)}
    path = Path(args.out) / f"{args.name or 'search_profile_' + args.method}.json"
    write_json(path, payload)
    write_text(path.with_suffix(".md"), markdown(payload))
    print(f"wrote {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
