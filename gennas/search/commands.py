"""`gennas search` / `gennas compare`: run methods over seeds, then write one report.

Files under ``OUT``: ``<method>/seed_<k>.json`` (each run's journal and result),
``summary.json``, ``summary.md`` (the side-by-side table) and the plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gennas.io import write_json, write_text
from gennas.lock import output_lock
from gennas.provenance import provenance
from gennas.search.indicators import Reference, nb201_reference
from gennas.search.journal import SearchRun
from gennas.search.methods import check_options
from gennas.search.report import markdown_table, plot, summarise
from gennas.search.runner import SearchSpec, run_method


def reference_for(spec: SearchSpec) -> Reference | None:
    """The scoring truth when the benchmark has one (NB201); built after the runs, never shown to them."""
    return nb201_reference(spec.dataset, spec.goal) if spec.tabular else None


def run_methods(spec: SearchSpec, methods: list[str], out: str | Path | None, *, backend=None,
                progress: bool = False, wandb: bool = False) -> dict[str, Any]:
    """Every seed of every method under one query budget, then one summary (and, with ``out``, its files).

    Args:
        spec: the options shared by every run.
        methods: black-box method names (see :func:`~gennas.search.methods.parse_methods`).
        out: journals, ``summary.json``/``.md`` and plots; None writes nothing.
        backend, progress, wandb: where cells are measured, progress bars, wandb logging.

    Returns:
        ``{"settings", "skeleton", "summary": {method: ...}, "runs": {method: [SearchRun, ...]}}``.
    """
    check_options(spec.options, methods)
    with output_lock(out):  # one writer per --out: journals, summary and plots
        return _run_methods(spec, methods, out, backend=backend, progress=progress, wandb=wandb)


def _run_methods(spec: SearchSpec, methods: list[str], out: str | Path | None, *, backend,
                 progress: bool, wandb: bool) -> dict[str, Any]:
    runs: dict[str, list[SearchRun]] = {m: run_method(spec, m, out, backend=backend, progress=progress, wandb=wandb)
                                        for m in methods}
    reference = reference_for(spec)
    summaries = {m: summarise(r, spec.goal, reference) for m, r in runs.items()}
    settings = {**spec.settings(), "budget": spec.budget, "seeds": spec.seeds, "seed": spec.seed,
                **({"stop_at": spec.stop_at} if spec.stop_at else {})}
    skeleton = spec.make_oracle().network.describe()  # what the runs' FLOPs/params/memory are counted on
    payload = {"settings": settings, "skeleton": skeleton, "summary": summaries, "runs": runs}
    if out:
        out = Path(out)
        record = {"provenance": provenance(), "settings": payload["settings"], "skeleton": skeleton,
                  "summary": summaries}
        write_json(out / "summary.json", record)
        title = f"# Search on {spec.space} / {payload['settings']['dataset']}: {spec.objectives}, prior {spec.prior}\n\n"
        lines = [title, f"Budget {spec.budget} queries, seeds {spec.seed}..{spec.seed + spec.seeds - 1}. "
                 "Mean ± std over seeds; ms/query is the method's own time (ask + tell), measuring excluded. "
                 f"Costs are counted on the skeleton {skeleton}.\n\n",
                 markdown_table(summaries, spec.goal)]
        write_text(out / "summary.md", "".join(lines))
        plot(runs, spec.goal, out, reference)
    return payload


def runs_json(runs: list[SearchRun]) -> list[dict[str, Any]]:
    """What ``--json`` prints of each run: its history in query order, why it stopped, and its time."""
    return [{"seed": r.seed, "history": r.history, "stopped": r.stopped,
             "searcher_seconds": r.searcher_seconds, "oracle_seconds": r.oracle_seconds} for r in runs]
