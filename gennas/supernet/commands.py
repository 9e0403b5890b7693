"""What ``gennas prune`` does, callable from scripts and tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from gennas.data import load_dataset
from gennas.errors import GennasError
from gennas.lock import output_lock
from gennas.space.cell import Cell
from gennas.supernet.export import computed_metrics, export_subnet, finetune, standalone_from
from gennas.supernet.prune import make_thresholds, read_subnets, select
from gennas.supernet.store import load_supernet
from gennas.train import RobustnessConfig, resolve_device


def prune_run(run_dir: str | Path, thresholds: dict[str, float | None], goal: str = "accuracy",
              out: str | Path | None = None, finetune_epochs: int = 0, device: str = "auto") -> dict:
    """Select the best feasible subnet of ``run_dir``, export it, and check the thresholds on the export."""
    if finetune_epochs < 0:
        raise GennasError(f"--finetune takes a number of epochs >= 0, got {finetune_epochs}")
    run_dir = Path(run_dir)
    with output_lock(Path(out) if out else run_dir / "export"):  # one writer per export directory
        return _prune_locked(run_dir, thresholds, goal, out, finetune_epochs, device)


def _prune_locked(run_dir: Path, thresholds: dict[str, float | None], goal: str, out: str | Path | None,
                  finetune_epochs: int, device: str) -> dict:
    limits = make_thresholds(thresholds)
    rows = read_subnets(run_dir)
    pick = select(rows, limits, goal)
    model, meta = load_supernet(run_dir / "supernet.pt")
    splits = load_dataset(meta["dataset"], meta.get("data_root"))
    model.to(resolve_device(device))
    cell = Cell.from_string(pick["arch"])
    exported = standalone_from(model, cell, splits, int(meta["recalibration_images"]))
    robustness = RobustnessConfig(**meta["robustness"])
    if finetune_epochs:
        exported = finetune(exported, splits, finetune_epochs, int(meta["robustness"]["seed"]), device)
    metrics = computed_metrics(exported, splits, robustness)
    # Thresholds are checked again on the exported model: costs must hold exactly; measured
    # figures hold unless fine-tuning moved them, which the result says.
    broken = [t for t in limits if t.violation(metrics) > 0]
    violated = [t.describe(metrics) for t in broken]
    cost_violations = [t.describe(metrics) for t in broken if t.column in ("flops", "params", "memory_bytes")]
    if cost_violations:
        raise GennasError(f"internal error: the exported model breaks cost thresholds {cost_violations}")
    target = Path(out) if out else run_dir / "export" / hashlib.sha1(cell.to_string().encode()).hexdigest()[:10]
    paths = export_subnet(exported, target, metrics, {"dataset": splits.name, "thresholds": thresholds,
                                                      "goal": goal, "finetune_epochs": finetune_epochs})
    text = (f"{metrics['arch']}\n  val accuracy {metrics['val_accuracy']:.2f}%  test accuracy {metrics['accuracy']:.2f}%  "
            f"PGD {metrics['pgd_accuracy']:.2f}%  FLOPs {metrics['flops']:.3f}M  params {metrics['params']:.4f}M  "
            f"memory {metrics['memory_bytes'] / 1e6:.3f} MB\n  model: {paths['model']}")
    # Contract: ``model`` and ``arch`` are the exported files' paths; the cell itself is ``cell``.
    return {**metrics, "cell": metrics["arch"], **paths, "thresholds": {k: v for k, v in thresholds.items() if v is not None},
            "violated_after_export": violated, "measured_in_run": pick, "text": text}

