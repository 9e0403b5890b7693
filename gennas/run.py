"""The end-to-end job: sample cells, train each on real data, measure, report the front.

This is the foundation's main job (README command 1) until the generator and supernet
take over the middle of the pipeline; its run directory layout (``results.json``,
``results.csv``, ``report.md``, ``pareto.png``) is what later stages extend. Results of
trained cells are cached inside the run directory, so an interrupted run resumes where
it stopped when started again with the same arguments.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from tqdm import tqdm

from gennas.bench.training import TrainingOracle
from gennas.errors import GennasError
from gennas.io import write_json, write_text
from gennas.provenance import provenance, provenance_markdown
from gennas.space.cell import Cell
from gennas.space.space import CellSpace, get_space
from gennas.tracking import RunLogger
from gennas.train import RobustnessConfig, TrainConfig

COLUMNS = ("arch", "val_accuracy", "accuracy", "fgsm_accuracy", "pgd_accuracy", "noise_accuracy",
           "flops", "params", "memory_bytes", "latency_ms", "seconds")


def sample_distinct(space: CellSpace, n: int, rng: np.random.Generator) -> list[Cell]:
    """``n`` cells that compute different functions and whose output depends on the input."""
    cells: dict[str, Cell] = {}
    for _ in range(100 * n):
        cell = space.sample(rng)
        if cell.is_connected() and cell.canonical not in cells:
            cells[cell.canonical] = cell
            if len(cells) == n:
                return list(cells.values())
    raise GennasError(f"could not find {n} distinct connected cells in space {space.name!r}; ask for fewer")


def pareto_mask(accuracy: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """Non-dominated points for (accuracy max, FLOPs min), via pymoo's non-dominated sorting."""
    front = NonDominatedSorting().do(np.column_stack([-accuracy, flops]), only_non_dominated_front=True)
    mask = np.zeros(len(accuracy), dtype=bool)
    mask[front] = True
    return mask


def run_job(
    dataset: str = "digits",
    out_dir: str | Path = "runs/digits",
    space_name: str = "nb201",
    n_cells: int = 8,
    epochs: int = 8,
    seed: int = 0,
    device: str = "auto",
    channels: int = 16,
    cells_per_stage: int = 2,
    data_root: str | None = None,
    progress: bool = True,
    wandb: bool = False,
) -> dict:
    if n_cells < 1 or epochs < 1:
        raise GennasError("--n-cells and --epochs must be at least 1")
    out = Path(out_dir)
    space = get_space(space_name)
    oracle = TrainingOracle(
        dataset, space=space, train=TrainConfig(epochs=epochs, seed=seed, device=device),
        robustness=RobustnessConfig(seed=seed), channels=channels, cells_per_stage=cells_per_stage,
        data_root=data_root, cache=out / "cache", progress=False,
    )
    cells = sample_distinct(space, n_cells, np.random.default_rng(seed))
    logger = RunLogger(wandb, name=out.name, directory=out, config={
        "dataset": oracle.splits.name, "space": space.name, "network": oracle.network.to_dict(),
        "train": oracle.train_config.to_dict(), "n_cells": n_cells})
    rows = []
    try:
        for cell in tqdm(cells, desc=f"training {n_cells} cells on {oracle.splits.name}", disable=not progress):
            rows.append({"arch": cell.to_string(), **oracle.query(cell)})
            logger.log(rows[-1])
        logger.table("cells", rows)
    finally:
        logger.finish()

    # Select on validation accuracy; test accuracy is reported, never used to choose.
    val = np.array([r["val_accuracy"] for r in rows])
    flops = np.array([r["flops"] for r in rows])
    on_front = pareto_mask(val, flops)
    best = int(np.argmax(val))
    for row, front in zip(rows, on_front):
        row["pareto"] = bool(front)

    info = provenance()
    payload = {"provenance": info, "dataset": oracle.splits.name, "space": space.name,
               "network": oracle.network.to_dict(), "train": oracle.train_config.to_dict(),
               "cells": rows, "best": rows[best]}
    write_json(out / "results.json", payload)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, "pareto"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "results.csv", buffer.getvalue())
    _plot(out / "pareto.png", val, flops, on_front, oracle.splits.name)
    report = _report(payload, info)
    write_text(out / "report.md", report)
    b = rows[best]
    text = (f"trained {len(rows)} cells on {oracle.splits.name}; best by validation accuracy:\n  {b['arch']}\n"
            f"  test accuracy {b['accuracy']:.2f}%  PGD {b['pgd_accuracy']:.2f}%  FLOPs {b['flops']:.3f}M  "
            f"memory {b['memory_bytes'] / 1e6:.3f} MB\n"
            f"report: {out / 'report.md'}\nresults: {out / 'results.json'}")
    return {"out": str(out), "report": str(out / "report.md"), "results": str(out / "results.json"),
            "best": b, "pareto": [r["arch"] for r in rows if r["pareto"]], "text": text}


def _plot(path: Path, val: np.ndarray, flops: np.ndarray, on_front: np.ndarray, dataset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.scatter(flops[~on_front], val[~on_front], c="tab:gray", label="trained cells")
    order = np.argsort(flops[on_front])
    ax.plot(flops[on_front][order], val[on_front][order], "o-", c="tab:red", label="Pareto front")
    ax.set_xlabel("FLOPs (M)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"accuracy vs FLOPs on {dataset}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    from gennas.io import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def _report(payload: dict, info: dict) -> str:
    lines = [f"# gennas run on {payload['dataset']}", "", provenance_markdown(info),
             f"Space `{payload['space']}`, network {payload['network']}, {payload['train']['epochs']} epochs. "
             "Cells are chosen on validation accuracy; test accuracy and robustness are on the held-out test split.",
             "", "| arch | val acc % | test acc % | FGSM % | PGD % | noise % | FLOPs M | params M | memory MB | "
             "latency ms | Pareto |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(payload["cells"], key=lambda r: -r["val_accuracy"]):
        arch = r["arch"].replace("|", "\\|")  # a bare pipe would end the table cell
        lines.append(f"| `{arch}` | {r['val_accuracy']:.2f} | {r['accuracy']:.2f} | {r['fgsm_accuracy']:.2f} | "
                     f"{r['pgd_accuracy']:.2f} | {r['noise_accuracy']:.2f} | {r['flops']:.3f} | {r['params']:.4f} | "
                     f"{r['memory_bytes'] / 1e6:.3f} | {r['latency_ms']:.2f} | {'yes' if r['pareto'] else ''} |")
    lines += ["", "![accuracy vs FLOPs](pareto.png)", ""]
    return "\n".join(lines)
