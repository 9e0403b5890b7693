"""Analysis: how much the *other* NB201 tables can tell about a target's best cells (issue 5 targets).

Not a search and not a benchmark of a method: it reads all three tables, which no searcher
may do, to explain two missed transfer targets and bound what would close them.
For each target dataset it reports
- the rank of the target's optimum under each source table and under their mean z-score
  (what ours uses before any measurement);
- Kendall tau of each source with the target over the target's 100 best cells (how much a
  source says about the order at the top, where the optimum hides);
- the HV ratio reached by querying the first k cells of the source-estimated Pareto front
  (non-dominated sorting of mean z-score vs exact costs), in front order, best score first
  within a front: what a transfer searcher that trusted the sources blindly would get.

    python experiments/analyse_transfer_sources.py [--out experiments/results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from scipy.stats import kendalltau

from gennas.bench.nb201 import DATASETS, load_table
from gennas.bench.tabular import nb201_network
from gennas.io import write_json, write_text
from gennas.metrics.costs import CostTable
from gennas.objectives import parse_objectives
from gennas.provenance import provenance, provenance_markdown
from gennas.search.indicators import nb201_reference
from gennas.space.cell import Cell
from gennas.space.space import nb201_space

GOALS = ["accuracy:max,flops:min", "accuracy:max,flops:min,memory_bytes:min"]
KS = [5, 10, 15, 20, 30]


def zscores(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std()


def rank_of(scores: np.ndarray, index: int) -> int:
    """1-based rank of ``index`` when ``scores`` are sorted best (highest) first."""
    return int((scores > scores[index]).sum()) + 1


def analyse(target: str, table, space) -> dict:
    sources = [d for d in DATASETS if d != target]
    z = {d: zscores(np.asarray(table.accuracy[d], dtype=float)) for d in sources}
    mean_z = np.mean([z[d] for d in sources], axis=0)
    accuracy = np.asarray(table.accuracy[target], dtype=float)
    optimum = int(accuracy.argmax())
    top = np.argsort(-accuracy)[:100]
    out = {
        "optimum_rank": {**{d: rank_of(z[d], optimum) for d in sources}, "mean z": rank_of(mean_z, optimum)},
        "kendall_tau_top100": {d: float(kendalltau(z[d][top], accuracy[top])[0]) for d in sources},
        "source_front_hv_ratio": {},
    }
    costs = CostTable.load_or_build(space, nb201_network(target))
    ordinals = np.array([space.ordinal(Cell.from_string(a)) for a in table.archs])
    for goal in GOALS:
        objectives = parse_objectives(goal)
        reference = nb201_reference(target, objectives)
        cost_columns = [costs.values[o.metric][ordinals] for o in objectives[1:]]
        estimated = np.column_stack([-mean_z] + cost_columns)
        order = [i for front in NonDominatedSorting().do(estimated, n_stop_if_ranked=max(KS))
                 for i in front[np.argsort(estimated[front, 0], kind="stable")]]
        rows = [{"accuracy": accuracy[i], **{o.metric: float(c[i]) for o, c in zip(objectives[1:], cost_columns)}}
                for i in order]
        out["source_front_hv_ratio"][goal] = {k: reference.hv_ratio(rows[:k]) for k in KS}
    return out


def markdown(results: dict) -> str:
    lines = ["# What the other NB201 tables say about a target's best cells\n",
             "Analysis only (it reads every table; no searcher does). Ranks are 1-based.\n",
             "| target | optimum rank by each source | by mean z-score | Kendall τ at the target's top 100 |",
             "|---|---|---|---|"]
    for target, r in results["targets"].items():
        ranks = ", ".join(f"{d} {v}" for d, v in r["optimum_rank"].items() if d != "mean z")
        taus = ", ".join(f"{d} {v:.2f}" for d, v in r["kendall_tau_top100"].items())
        lines.append(f"| {target} | {ranks} | {r['optimum_rank']['mean z']} | {taus} |")
    lines += ["", "HV ratio of the first k cells of the source-estimated front (mean z-score vs exact costs):", "",
              "| target | goal | " + " | ".join(f"k={k}" for k in KS) + " |", "|---|---|" + "---|" * len(KS)]
    for target, r in results["targets"].items():
        for goal, by_k in r["source_front_hv_ratio"].items():
            lines.append(f"| {target} | {goal} | " + " | ".join(f"{by_k[k]:.3f}" for k in KS) + " |")
    lines += ["", provenance_markdown(results["provenance"])]
    return "\n".join(lines)


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # benchmarks time processes side by side: one core each
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    table, space = load_table(), nb201_space()
    results = {"provenance": provenance(), "targets": {t: analyse(t, table, space) for t in DATASETS}}
    path = Path(args.out) / "transfer_sources.json"
    write_json(path, results)
    write_text(path.with_suffix(".md"), markdown(results))
    print(path.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
