"""`gennas compare --budget-minutes M`: every method gets the same search time on the same data.

A query budget favours weight-sharing methods (they "query" nothing) and a table lookup
costs nothing, so a fair race between black-box and weight-sharing search is run on the
clock, with real training:

* black-box methods (``ours``, ``rea``, ``random``, ...) run through the one search loop
  against a :class:`~gennas.bench.training.TrainingOracle` (no cache: every cell they
  measure is really trained) until the time is up; the found cell is the best by
  **validation** accuracy (the first one measured among ties: on small data many cells
  reach the same validation score);
* ``darts`` (first order), ``darts2`` (second order) and ``gdas`` first time a 3-step
  pilot of their supernet, then search for as many epochs as that estimate fits into
  what is left of the budget (a fixed epoch count, so the lr and τ schedules complete),
  with the deadline as a hard stop; the cell is derived from α.

Then every cell is retrained standalone with the oracle's recipe (same epochs, seed and
skeleton for all) and measured on the **test** split: accuracy, PGD, FLOPs, memory. For
black-box methods that retraining is the measurement they already paid for (same recipe,
same seed: the cached result is the same number). Finished (method, seed) rows are kept
under ``OUT/<method>/seed_<k>.json`` and reused by a rerun with the same settings.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gennas.bench.training import TrainingOracle
from gennas.data import DatasetSplits, load_dataset
from gennas.errors import GennasError
from gennas.io import FileFormat, WrongFormat, write_json, write_text
from gennas.lock import output_lock
from gennas.markdown import code_cell
from gennas.objectives import parse_objectives
from gennas.provenance import provenance, provenance_markdown
from gennas.search.methods import PILOT_STEPS, Problem, check_options, get_method
from gennas.search.searcher import SearchContext
from gennas.search.spec import RunSpec
from gennas.search.stopping import Stopping
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace
from gennas.space.space import get_space
from gennas.train import TrainConfig

#: Query cap of a black-box run on the clock: never the binding limit in practice.
QUERY_CAP = 100_000
ROW_FORMAT = "gennas-wallclock-row/1"
ROW = FileFormat(ROW_FORMAT, "comparison row", json=True)
#: Columns of the contract, in table order (more keys follow them in each row).
CONTRACT_KEYS = ("method", "arch", "accuracy", "pgd_accuracy", "flops", "memory_bytes", "search_seconds")


@dataclass
class WallClockSpec(RunSpec):
    """Options shared by every (method, seed) of a wall-clock comparison.

    ``epochs`` is the retraining recipe: epochs per standalone cell (the TrainingOracle's).
    """

    dataset: str = "digits"
    minutes: float = 2.0
    device: str = "auto"
    channels: int | None = None  # skeleton of the retrained cells and of the supernet (None: the space's)
    cells_per_stage: int | None = None  # its depth: NB201 cells per stage (2), DARTS layers (5)
    max_train: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.minutes, (int, float)) and math.isfinite(self.minutes) and self.minutes > 0):
            raise GennasError(f"--budget-minutes must be a positive number of minutes, got {self.minutes!r}")
        if self.seeds < 1 or self.epochs < 1:
            raise GennasError("--seeds and --epochs must be at least 1")
        channels, depth = get_space(self.space).training_skeleton  # a clear error for a bad --space before any work
        self.channels = self.channels or channels
        self.cells_per_stage = self.cells_per_stage or depth

    def settings(self) -> dict[str, Any]:
        """What identifies a finished row (a rerun reuses it only under the same settings)."""
        return self.fields(("dataset", "space", "minutes", "seeds", "seed", "epochs", "device", "channels",
                            "cells_per_stage", "options", "max_train"))


def _oracle(spec: WallClockSpec, splits: DatasetSplits, space: ArchSpace, use_cache: bool) -> TrainingOracle:
    return TrainingOracle(splits, space=space, train=TrainConfig(epochs=spec.epochs, seed=0, device=spec.device),
                          channels=spec.channels, cells_per_stage=spec.cells_per_stage, use_cache=use_cache,
                          progress=False)


def _problem(spec: WallClockSpec, seed: int, splits: DatasetSplits, space: ArchSpace) -> Problem:
    """One (method, seed) on the clock: an uncached training oracle for black-box methods, the data for the rest."""
    oracle = _oracle(spec, splits, space, use_cache=False)
    context = SearchContext(space=space, objectives=parse_objectives("accuracy:max"), seed=seed, costs=oracle.cost,
                            network=oracle.network, dataset=splits.name, options=dict(spec.options))
    return Problem(context, oracle=oracle, splits=splits, channels=spec.channels,
                   cells_per_stage=spec.cells_per_stage, device=spec.device, select="val_accuracy")


def nb201_transfer(cell: Cell) -> dict[str, float]:
    """Table accuracies of an NB201 cell on CIFAR-10/100 and ImageNet16-120 (reporting only; {} if no table)."""
    from gennas.bench.nb201 import DATASETS, load_table

    if not isinstance(cell, Cell) or cell.n_nodes != 4:  # a DARTS genotype has no table
        return {}
    try:
        table = load_table()
        index = table.index_of(cell)
    except GennasError:
        return {}
    return {f"nb201_{d}": float(table.accuracy[d][index]) for d in DATASETS}


def _row_path(out: Path | None, method: str, seed: int) -> Path | None:
    return out / method / f"seed_{seed}.json" if out else None


def _saved_row(path: Path | None, spec: WallClockSpec) -> dict[str, Any] | None:
    if path is None or not path.exists():
        return None
    try:
        payload = ROW.load(path, "rerun the command that wrote it", f"{path} holds a comparison run with other "
                           "settings; use another --out or delete it")
    except WrongFormat:
        raise
    except GennasError:
        return None  # unreadable or failing its hash: measure again and overwrite it
    if payload.get("settings") != spec.settings():
        raise GennasError(f"{path} holds a comparison run with other settings; use another --out or delete it")
    return payload["row"]


def run_one(method: str, seed: int, spec: WallClockSpec, splits: DatasetSplits, space: ArchSpace) -> dict[str, Any]:
    """Search ``method`` for ``spec.minutes``, retrain the found cell standalone, and measure it.

    Returns:
        The comparison row: the contract columns, the retrained cell's other figures, the NB201 transfer view
        and the method's own search details.
    """
    start = time.monotonic()
    stop = Stopping.of(QUERY_CAP, deadline=start + 60.0 * spec.minutes)
    found = get_method(method).search(_problem(spec, seed, splits, space), stop)
    if found.cell is None:
        raise GennasError(f"{method} measured no cell within {spec.minutes} minutes; raise --budget-minutes")
    search_seconds = time.monotonic() - start
    cell = found.cell
    metrics = _oracle(spec, splits, space, use_cache=True).query(cell)
    return {
        "method": method, "arch": cell.to_string(), "accuracy": metrics["accuracy"],
        "pgd_accuracy": metrics["pgd_accuracy"], "flops": metrics["flops"], "memory_bytes": metrics["memory_bytes"],
        "search_seconds": search_seconds, "seed": seed, "val_accuracy": metrics["val_accuracy"],
        "fgsm_accuracy": metrics["fgsm_accuracy"], "noise_accuracy": metrics["noise_accuracy"],
        "params": metrics["params"], "latency_ms": metrics["latency_ms"], "retrain_seconds": metrics["seconds"],
        **nb201_transfer(cell), **found.details,
    }


def run_wallclock(spec: WallClockSpec, methods: list[str], out: str | Path | None = None, *,
                  progress: bool = False, command: list[str] | None = None) -> dict[str, Any]:
    """Every method × seed on the clock, each found cell retrained with one recipe.

    Args:
        spec: the options shared by every (method, seed).
        methods: registered methods, black-box or weight-sharing.
        out: finished rows (reused by a rerun), ``compare.json`` and ``compare.md``; None writes nothing.
        progress: say which (method, seed) is searching.
        command: the command line recorded in the provenance (default: this process's).

    Returns:
        ``{"settings", "rows", "provenance"}``.
    """
    check_options(spec.options, methods)
    with output_lock(out):  # one writer per --out
        return _run_wallclock(spec, methods, out, progress=progress, command=command)


def _run_wallclock(spec: WallClockSpec, methods: list[str], out: str | Path | None, *, progress: bool,
                   command: list[str] | None) -> dict[str, Any]:
    splits = load_dataset(spec.dataset, max_train=spec.max_train)
    space = get_space(spec.space)
    out_dir = Path(out) if out else None
    rows = []
    for seed in spec.seed_range():
        for method in methods:
            path = _row_path(out_dir, method, seed)
            row = _saved_row(path, spec)
            if row is None:
                if progress:
                    print(f"[compare] {method} seed {seed}: searching for {spec.minutes:g} min", flush=True)
                row = run_one(method, seed, spec, splits, space)
                if path is not None:
                    ROW.save(path, {"settings": spec.settings(), "row": row})
            rows.append(row)
    payload = {"settings": {**spec.settings(), "methods": methods}, "rows": rows, "provenance": provenance(command)}
    if out_dir is not None:
        write_json(out_dir / "compare.json", payload)
        write_text(out_dir / "compare.md", markdown_report(payload))
    return payload


# ------------------------------------------------------------------- report
def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return "" if value is None else str(value)


def markdown_rows(rows: list[dict[str, Any]]) -> str:
    """One line per (method, seed): the contract columns, then search effort and the NB201 transfer view."""
    extra = [k for k in ("seed", "queries", "epochs", "nb201_cifar10", "nb201_cifar100", "nb201_ImageNet16-120")
             if any(k in r for r in rows)]
    columns = [*CONTRACT_KEYS, *extra]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(code_cell(row[c]) if c == "arch" else _cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def markdown_summary(rows: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds per method."""
    metrics = ("accuracy", "pgd_accuracy", "flops", "memory_bytes", "search_seconds")
    lines = ["| method | seeds | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        cells = []
        for m in metrics:
            values = np.array([r[m] for r in mine], dtype=float)
            cells.append(f"{values.mean():.4g} ± {values.std():.2g}")
        lines.append(f"| {method} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_report(payload: dict[str, Any], level: int = 1) -> str:
    """The comparison as Markdown; ``level`` is the heading depth (2 when embedded in a larger report)."""
    s, h = payload["settings"], "#" * level
    return (
        f"{h} Wall-clock comparison on {s['dataset']} ({s['space']}): {s['minutes']:g} min of search per method "
        f"and seed\n\n{provenance_markdown(payload['provenance'])}\n"
        f"Every found or derived cell retrained standalone with the same recipe ({s['epochs']} epochs, "
        f"C={s['channels']}, N={s['cells_per_stage']}, train seed 0); accuracy and PGD on the test split; "
        "FLOPs in M; memory = analytic peak activation bytes of a batch-1 forward. DARTS/GDAS epochs are "
        f"planned from a timed {PILOT_STEPS}-step pilot; search_seconds includes the pilot.\n\n"
        f"{h}# Mean ± std over seeds\n\n" + markdown_summary(payload["rows"]) +
        f"\n{h}# Every run\n\n" + markdown_rows(payload["rows"])
    )
