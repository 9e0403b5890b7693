"""What ``gennas prune`` does, callable from scripts and tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

from gennas.data import load_dataset
from gennas.errors import GennasError
from gennas.lock import output_lock
from gennas.metrics.lut import LatencyTable, load_table
from gennas.metrics.registry import COST_METRICS
from gennas.space.cell import Cell
from gennas.supernet.family import parse_arch, run_family
from gennas.supernet.export import (DEFAULT_FORMATS, computed_metrics, deployable, export_model, parse_formats,
                                    require_formats)
from gennas.supernet.measure import finetune
from gennas.supernet.prune import estimated_view, make_thresholds, read_subnets, select, verified_view
from gennas.supernet.standalone import standalone_recipe, train_standalone
from gennas.supernet.store import load_supernet
from gennas.supernet.train import SupernetTrainConfig
from gennas.train import RobustnessConfig, resolve_device


def prune_run(run_dir: str | Path, thresholds: dict[str, float | str | None], goal: str = "accuracy",
              out: str | Path | None = None, finetune_epochs: int = 0, device: str = "auto",
              verify: bool = False, formats: str | Sequence[str] = DEFAULT_FORMATS,
              latency_table: str | Path | None = None) -> dict:
    """Select the best feasible subnet of ``run_dir``, export it, and check the thresholds on the export.

    Subnets the run retrained standalone are judged on those figures (and exported as that
    trained model); the others on the supernet's. With ``verify`` the chosen subnet is
    retrained standalone first if it was not, and every threshold must hold on that model.
    ``formats`` are the model files written (``torchscript``, ``onnx``, ``pt2``; see
    :func:`gennas.supernet.export.export_model`), checked before anything is loaded. With
    ``latency_table`` (a file of ``gennas latency-table`` measured on the run's skeleton),
    latency thresholds and ``--minimize latency`` judge the table's latency of each subnet,
    exactly as for the export; the latency measured during the run is kept as
    ``measured_latency_ms``.
    """
    formats = parse_formats(formats)
    require_formats(formats)  # a missing optional package fails now, not after the export's work
    if finetune_epochs < 0:
        raise GennasError(f"--finetune takes a number of epochs >= 0, got {finetune_epochs}")
    if verify and finetune_epochs:
        raise GennasError("--verify exports the standalone-trained model; it cannot be combined with --finetune")
    table = load_table(latency_table) if latency_table is not None else None  # a bad file fails before any work
    if table is not None:
        table.check_space(_run_space(Path(run_dir)))  # gennas run's space
    run_dir = Path(run_dir)
    with output_lock(Path(out) if out else run_dir / "export"):  # one writer per export directory
        return _prune_locked(run_dir, thresholds, goal, out, finetune_epochs, device, verify, formats, table)


def _prune_locked(run_dir: Path, thresholds: dict[str, float | str | None], goal: str, out: str | Path | None,
                  finetune_epochs: int, device: str, verify: bool, formats: tuple[str, ...],
                  table: LatencyTable | None) -> dict:
    limits = make_thresholds(thresholds)
    given = {t.flag: t.value for t in limits}  # in the flags' own units, e.g. "45%" -> 0.45
    rows = read_subnets(run_dir)
    model, meta, network = run_model(run_dir)
    table_latency = _table_latency(table, network)
    rows = [table_latency(r) for r in rows]
    # --verify deploys a standalone training, so it chooses on what standalone training is estimated to reach.
    pick = select((estimated_view if verify else verified_view)(rows), limits, goal)
    chosen_on = pick["figures"]
    splits = load_dataset(meta["dataset"], meta.get("data_root"))
    if model is not None:
        model.to(resolve_device(device))
    cell = parse_arch(pick["arch"], network)
    robustness = RobustnessConfig(**meta["robustness"])
    if verify and pick["figures"] != "standalone":
        recipe = standalone_recipe(SupernetTrainConfig.from_dict({**meta["train"], "device": device}))
        train_standalone(cell, splits, network, recipe, robustness, run_dir / "standalone")
        pick = {**pick, "figures": "standalone"}
    exported = deployable(model, pick, splits, run_dir, int(meta["recalibration_images"]), *measured_finetune(meta),
                          network=network)
    if finetune_epochs:
        exported = finetune(exported, splits, finetune_epochs, int(meta["robustness"]["seed"]), device)
    metrics = table_latency(computed_metrics(exported, splits, robustness))
    # Thresholds are checked again on the exported model: costs must hold exactly; measured
    # figures hold unless fine-tuning (or, for a subnet first verified now, training) moved them.
    broken = [t for t in limits if t.violation(metrics) > 0]
    violated = [t.describe(metrics) for t in broken]
    cost_violations = [t.describe(metrics) for t in broken if t.column in COST_METRICS]
    if cost_violations:
        raise GennasError(f"internal error: the exported model breaks cost thresholds {cost_violations}")
    if verify and violated:
        raise GennasError(f"{cell} retrained standalone misses {'; '.join(violated)} (validation figures of the "
                          "retrained model); nothing was exported. Relax those thresholds, or prune without --verify "
                          "to deploy the supernet's reading")
    target = Path(out) if out else run_dir / "export" / hashlib.sha1(cell.to_string().encode()).hexdigest()[:10]
    paths, parity = export_model(exported, target, metrics,
                                 {"dataset": splits.name, "thresholds": given, "goal": goal, "figures": pick["figures"],
                                  "finetune_epochs": finetune_epochs}, formats, images=splits.test.tensors[0])
    exports = {name: paths["model"] if name == formats[0] else paths[name] for name in formats}
    skeleton = exported[-1].config.describe()
    source = {"standalone": "standalone-verified figures (the subnet retrained from scratch with the run's recipe; "
                            "the exported model is that training)",
              "calibrated": "the supernet's readings calibrated on the run's verified subnets (an estimate of "
                            "standalone training, which --verify then ran: the exported model is that training)",
              "supernet": "the supernet's readings (not retrained standalone; --verify retrains it)"}[chosen_on]
    text = (f"{metrics['arch']}\n  val accuracy {metrics['val_accuracy']:.2f}%  test accuracy {metrics['accuracy']:.2f}%  "
            f"PGD {metrics['pgd_accuracy']:.2f}%  FLOPs {metrics['flops']:.3f}M  params {metrics['params']:.4f}M  "
            f"memory {metrics['memory_bytes'] / 1e6:.3f} MB\n  chosen on {source}\n"
            f"  costs on the run's skeleton: {skeleton}\n" + _model_lines(paths["model"], exports, parity))
    # Contract: ``model`` and ``arch`` are the exported files' paths; the cell itself is ``cell``.
    # ``exports`` lists each format's file, ``parity`` each re-loaded format's largest logit difference.
    return {**metrics, "cell": metrics["arch"], **paths, "exports": exports, "parity": parity,
            "thresholds": given, "chosen_on": chosen_on,
            "verified": pick["figures"] == "standalone", "violated_after_export": violated,
            "measured_in_run": {k: v for k, v in pick.items() if k != "figures"}, "skeleton": skeleton, "text": text}


def run_model(run_dir: Path) -> tuple:
    """(``Normalize`` + supernet or None, the run's metadata, its skeleton) of a run directory: its
    ``supernet.pt``, or the ``direct.json`` of a run without a supernet (:mod:`gennas.supernet.direct`)."""
    from gennas.supernet.direct import DIRECT_FILE, load_direct

    if not (run_dir / "supernet.pt").exists() and (run_dir / DIRECT_FILE).exists():
        network, meta = load_direct(run_dir / DIRECT_FILE)
        return None, meta, network
    model, meta = load_supernet(run_dir / "supernet.pt")
    return model, meta, model[-1].config


def _table_latency(table: LatencyTable | None, network) -> Callable[[dict], dict]:
    """What a latency table does to a row (a subnet or the export's metrics): its ``latency_ms`` read from
    the table, the measured one kept as ``measured_latency_ms``; the identity without a table."""
    if table is None:
        return lambda row: row
    table.check_network(network)
    return lambda row: {**row, "measured_latency_ms": row["latency_ms"],
                        "latency_ms": table.cell_latency(Cell.from_string(row["arch"]), network)}


def _run_space(run_dir: Path) -> str:
    """The search space of the run in ``run_dir`` (``run.json``; runs from before ``--space`` were NB201)."""
    from gennas.supernet.run_settings import saved_settings

    saved = run_dir / "run.json"
    return run_family(saved_settings(saved).get("space", "nb201") if saved.exists() else "nb201").space.name


def measured_finetune(meta: dict) -> tuple[int, int]:
    """(epochs, seed) of the fine-tune a run measured its subnets after (``supernet.pt``'s metadata; none in
    runs written before measurement fine-tuned)."""
    return int(meta.get("finetune_epochs", 0)), int(meta["robustness"]["seed"])


def _model_lines(model: str, exports: dict[str, str], parity: dict[str, float]) -> str:
    """``model: PATH`` for the default TorchScript export alone; else one line per format written."""
    if tuple(exports) == DEFAULT_FORMATS:
        return f"  model: {model}"
    return "\n".join(f"  {name}: {path}" + (f" (re-loaded: largest logit difference from PyTorch {parity[name]:.1e} on test images)"
                                            if name in parity else "") for name, path in exports.items())
