"""One report format for every method: summaries over seeds, a Markdown table, plots.

Single objective: best value found after k queries (mean and std over seeds), the rate
of seeds that found the optimum (when a reference knows it) and the queries they needed.
Several objectives: hypervolume ratio and IGD+ of the queried set's front after k
queries. Always: the method's own time per query (ask + tell, measuring excluded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gennas.objectives import Objective, minimisation_matrix, pareto_indices
from gennas.search.indicators import Reference
from gennas.search.loop import SearchRun, Target

CHECKPOINTS = (10, 20, 50, 100, 200)


def incumbent_curve(run: SearchRun, objective: Objective) -> np.ndarray:
    """Best value of ``objective`` after each query (the first objective's running best).

    A row without the metric (a multi-fidelity trial pruned before its test figures) keeps
    the best so far; NaN until a row has it.
    """
    values = np.array([row.get(objective.metric, np.nan) for row in run.history], dtype=np.float64)
    return np.fmax.accumulate(values) if objective.direction == "max" else np.fmin.accumulate(values)


def queries_to_optimum(run: SearchRun, objective: Objective, optimum: float) -> int | None:
    """The query that first measured the optimum (the same test as a run's ``--stop-at``)."""
    return Target(objective.metric, optimum, objective.direction).first_reached(run.history)


def pareto_rows(run: SearchRun, objectives: list[Objective], k: int | None = None) -> list[dict]:
    rows = run.history[:k] if k else run.history
    return [rows[i] for i in pareto_indices(minimisation_matrix(rows, objectives))] if rows else []


def _mean_std(values: Sequence[float]) -> list[float]:
    return [float(np.mean(values)), float(np.std(values))]


def summarise(runs: list[SearchRun], objectives: list[Objective], reference: Reference | None = None,
              checkpoints: Sequence[int] = CHECKPOINTS) -> dict[str, Any]:
    budget = max(run.budget for run in runs)
    ks = [k for k in checkpoints if k <= budget] or [budget]
    if budget not in ks:
        ks.append(budget)
    queries = [len(run.history) for run in runs]
    out: dict[str, Any] = {
        "seeds": len(runs),
        "budget": budget,
        "queries": _mean_std(queries),
        "searcher_seconds_per_query": _mean_std([r.searcher_seconds / max(len(r.history), 1) for r in runs]),
        "oracle_seconds_per_query": _mean_std([r.oracle_seconds / max(len(r.history), 1) for r in runs]),
    }
    first = objectives[0]
    curves = [incumbent_curve(run, first) for run in runs]
    at = lambda curve, k: float(curve[min(k, len(curve)) - 1])  # noqa: E731
    out["best"] = {str(k): _mean_std([at(c, k) for c in curves]) for k in ks}
    if reference is not None:
        optimum = reference.optimum
        hits = [queries_to_optimum(run, first, optimum) for run in runs]
        out["optimum"] = optimum
        out["optimum_hit_rate"] = {str(k): float(np.mean([h is not None and h <= k for h in hits])) for k in ks}
        found = [h for h in hits if h is not None]
        out["queries_to_optimum"] = {"found": len(found), "median": float(np.median(found)) if found else None,
                                     "per_seed": hits}
    if len(objectives) > 1 and reference is not None:
        out["hv_ratio"] = {str(k): _mean_std([reference.hv_ratio(pareto_rows(r, objectives, k)) for r in runs]) for k in ks}
        out["igd_plus"] = {str(k): _mean_std([reference.igd_plus(pareto_rows(r, objectives, k)) for r in runs]) for k in ks}
    return out


def pool_summaries(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The summary :func:`summarise` gives over the union of disjoint seed sets, from their summaries alone.

    A benchmark row can then grow by batches of seeds run at different times (their journals
    need not be kept). Every figure of a summary pools exactly: a mean ± population std over
    :math:`n_i` seeds each, as

    .. math::
        \\mu = \\tfrac{1}{N} \\sum_i n_i \\mu_i, \\qquad
        \\sigma^2 = \\tfrac{1}{N} \\sum_i n_i (\\sigma_i^2 + \\mu_i^2) - \\mu^2, \\qquad N = \\sum_i n_i,

    a hit rate as the seed-weighted mean, and the queries to the optimum from the seeds'
    own counts (``per_seed``), concatenated in the parts' order.

    Args:
        parts: summaries of the same goal, budget and checkpoints over disjoint seeds.

    Returns:
        One summary over all their seeds, in :func:`summarise`'s format.

    Raises:
        GennasError: when the parts differ in budget, optimum or checkpoints (not one benchmark).
    """
    from gennas.errors import GennasError

    if not parts:
        raise GennasError("nothing to pool: give at least one summary")
    first = parts[0]
    for part in parts[1:]:
        for key in ("budget", "optimum"):
            if part.get(key) != first.get(key):
                raise GennasError(f"cannot pool summaries of different {key}: {first.get(key)} and {part.get(key)}")
        if set(part) != set(first) or any(set(part[k]) != set(first[k]) for k in first if isinstance(first[k], dict)
                                          and k != "queries_to_optimum"):
            raise GennasError("cannot pool summaries with different figures or checkpoints")
    n = np.array([p["seeds"] for p in parts], dtype=np.float64)

    def pooled(values: list[list[float]]) -> list[float]:
        means, stds = np.array(values, dtype=np.float64).T
        mean = float((n * means).sum() / n.sum())
        second = float((n * (stds ** 2 + means ** 2)).sum() / n.sum())
        return [mean, float(np.sqrt(max(second - mean ** 2, 0.0)))]

    out: dict[str, Any] = {"seeds": int(n.sum()), "budget": first["budget"]}
    for key in ("queries", "searcher_seconds_per_query", "oracle_seconds_per_query"):
        out[key] = pooled([p[key] for p in parts])
    for key in ("best", "hv_ratio", "igd_plus"):
        if key in first:
            out[key] = {k: pooled([p[key][k] for p in parts]) for k in first[key]}
    if "optimum" in first:
        out["optimum"] = first["optimum"]
        out["optimum_hit_rate"] = {k: float((n * [p["optimum_hit_rate"][k] for p in parts]).sum() / n.sum())
                                   for k in first["optimum_hit_rate"]}
        hits = [h for p in parts for h in p["queries_to_optimum"]["per_seed"]]
        found = [h for h in hits if h is not None]
        out["queries_to_optimum"] = {"found": len(found), "median": float(np.median(found)) if found else None,
                                     "per_seed": hits}
    return out


def markdown_table(summaries: dict[str, dict], objectives: list[Objective]) -> str:
    """Methods side by side: one row per method, one column per checkpoint (– where a run was shorter)."""
    if not summaries:
        return ""
    ks = sorted({k for s in summaries.values() for k in s["best"]}, key=int)
    multi = len(objectives) > 1 and all("hv_ratio" in s for s in summaries.values())
    has_optimum = all("optimum_hit_rate" in s for s in summaries.values())
    metric = objectives[0].metric

    def cell(table: dict, k: str, fmt) -> str:
        return fmt(table[k]) if k in table else "–"

    if multi:
        header = ["method"] + [f"HV ratio @{k}" for k in ks] + [f"IGD+ @{k}" for k in ks]
    else:
        header = ["method"] + [f"best {metric} @{k}" for k in ks]
        if has_optimum:
            header += [f"optimum hit @{k}" for k in ks] + ["median queries to optimum"]
    header += ["seeds", "ms/query"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, s in summaries.items():
        if multi:
            cells = [cell(s["hv_ratio"], k, lambda v: f"{v[0]:.4f} ± {v[1]:.4f}") for k in ks]
            cells += [cell(s["igd_plus"], k, lambda v: f"{v[0]:.3f}") for k in ks]
        else:
            cells = [cell(s["best"], k, lambda v: f"{v[0]:.2f} ± {v[1]:.2f}") for k in ks]
            if has_optimum:
                q = s["queries_to_optimum"]
                cells += [cell(s["optimum_hit_rate"], k, lambda v: f"{100 * v:.0f}%") for k in ks]
                cells.append(f"{q['median']:.0f} ({q['found']}/{s['seeds']} seeds)" if q["median"] is not None else "never")
        cells += [str(s["seeds"]), f"{1000 * s['searcher_seconds_per_query'][0]:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs_by_method: dict[str, list[SearchRun]], objectives: list[Objective], out: Path,
         reference: Reference | None = None) -> list[Path]:
    """Best-vs-queries curves (mean ± std over seeds) and, for several objectives, Pareto fronts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gennas.io import atomic_write

    paths = []
    first = objectives[0]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, runs in runs_by_method.items():
        length = max(len(r.history) for r in runs)
        if min(len(r.history) for r in runs) == 0:
            continue
        # A run that ended early (target reached, searcher converged) keeps its best, as in the summary.
        curves = np.stack([np.pad(c, (0, length - len(c)), mode="edge") for c in (incumbent_curve(r, first) for r in runs)])
        x = np.arange(1, length + 1)
        ax.plot(x, curves.mean(0), label=name)
        ax.fill_between(x, curves.mean(0) - curves.std(0), curves.mean(0) + curves.std(0), alpha=0.2)
    if reference is not None:
        ax.axhline(reference.optimum, color="k", linestyle=":", linewidth=1, label="optimum")
    ax.set_xscale("log")
    ax.set_xlabel("queries")
    ax.set_ylabel(f"best {first.metric}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(atomic_write(out / "best_vs_queries.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120)))
    plt.close(fig)
    if len(objectives) >= 2:
        fig, ax = plt.subplots(figsize=(6, 4))
        a, b = objectives[0], objectives[1]
        if reference is not None:
            front = reference.front
            sign = [-1 if o.direction == "max" else 1 for o in (a, b)]
            order = np.argsort(front[:, 1])
            ax.plot(sign[1] * front[order, 1], sign[0] * front[order, 0], "k:", label="true front")
        for name, runs in runs_by_method.items():
            rows = pareto_rows(runs[0], objectives)
            ax.scatter([r[b.metric] for r in rows], [r[a.metric] for r in rows], s=14, label=f"{name} (seed {runs[0].seed})")
        ax.set_xlabel(b.metric)
        ax.set_ylabel(a.metric)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(atomic_write(out / "pareto.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120)))
        plt.close(fig)
    return paths
