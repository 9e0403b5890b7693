"""The main job: generate Pareto-near cells, merge them into a supernet, train it once, measure
every subnet, prune to example thresholds, export, report. `gennas run` calls :func:`run_pipeline`.

Everything lands in one run directory (``RUN_DIR``), which ``gennas prune`` reads later:
``run.json`` (settings), ``generated.json`` (the generator's candidates and the chosen
cells), ``supernet.ckpt`` (training state, for resume), ``supernet.pt`` (trained weights),
``subnets.csv`` (one row per measured subnet), ``pareto.png``, ``report.md``,
``results.json`` and ``export/`` (the example pruned model). Each stage is skipped when
its output exists, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from gennas.data import DatasetSplits, load_dataset
from gennas.errors import GennasError
from gennas.io import load_checked, read_json_checked, write_json, write_json_checked, write_text
from gennas.nn.network import NetworkConfig
from gennas.objectives import Objective, minimisation_matrix, parse_objectives
from gennas.provenance import provenance
from gennas.space.cell import Cell
from gennas.space.space import nb201_space
from gennas.supernet.export import computed_metrics, export_subnet, standalone_from
from gennas.supernet.measure import COLUMNS, SubnetMeasurer, choose_subnets, measure_all
from gennas.supernet.model import Supernet
from gennas.supernet.prune import make_thresholds, select
from gennas.supernet.report import write_report
from gennas.supernet.store import load_supernet, save_supernet
from gennas.supernet.subnets import SubnetSpace
from gennas.supernet.train import SupernetTrainConfig, rank_and_world, train_supernet
from gennas.tracking import RunLogger
from gennas.train import RobustnessConfig, resolve_device, with_normalization

REPO_ROOT = Path(__file__).resolve().parents[2]
#: PGD accuracies of 40 NB201 cells trained on digits (measured by the TrainingOracle, see
#: experiments/demo_robustness_head.py): what teaches the prior a robustness head for digits.
DIGITS_ROBUSTNESS = REPO_ROOT / "experiments" / "results" / "robustness_measurements.csv"
PRIOR_FOR_NEW_DATASETS = "ImageNet16-120"  # its prior was pretrained on the CIFAR-10 and CIFAR-100 tables


@dataclass
class RunSettings:
    """Everything that decides a run's results (``run.json``); a resumed run must match it."""

    dataset: str = "digits"
    objectives: str = "accuracy:max,flops:min,memory:min,robustness:max"
    n_cells: int = 12
    candidates: int = 64
    guidance: float = 60.0
    epochs: int = 32
    seed: int = 0
    channels: int = 16
    cells_per_stage: int = 2
    max_subnets: int = 40
    recalibration_images: int = 1024
    robustness_data: str | None = None
    recipe: dict = field(default_factory=dict)  # extra SupernetTrainConfig fields

    def check(self) -> None:
        for name in ("n_cells", "candidates", "epochs", "channels", "cells_per_stage", "max_subnets"):
            if getattr(self, name) < 1:
                raise GennasError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.candidates < self.n_cells:
            raise GennasError(f"--candidates ({self.candidates}) must be at least --n-cells ({self.n_cells})")


def _network(settings: RunSettings, splits: DatasetSplits) -> NetworkConfig:
    return NetworkConfig(channels=settings.channels, cells_per_stage=settings.cells_per_stage,
                         in_channels=splits.in_channels, image_size=splits.image_size, num_classes=splits.num_classes)


def _predictor(goals: list[Objective], splits: DatasetSplits, settings: RunSettings) -> tuple[object, list[str]]:
    """The NB201 transfer prior, zero-shot on the new dataset, plus a robustness head when data exists."""
    from predictors.measurements import read_measurements
    from predictors.transfer import load_prior

    notes = [f"accuracy is guided by the NB201 transfer prior (pretrained on the CIFAR-10/100 tables) zero-shot "
             f"on {splits.name}: its ranking transfers, its scale does not"]
    predictor = load_prior(PRIOR_FOR_NEW_DATASETS).fit_task(f"accuracy@{splits.name}", [], None)
    if any(g.metric == "pgd_accuracy" for g in goals):
        data = Path(settings.robustness_data) if settings.robustness_data else (
            DIGITS_ROBUSTNESS if splits.name == "digits" else None)
        if data is None or not data.exists():
            notes.append("no PGD measurements for this dataset (--robustness-data CSV): robustness is not guided "
                         "during generation, only measured on every subnet")
        else:
            cells, values = read_measurements(data, nb201_space())
            predictor = predictor.fit_task(f"pgd_accuracy@{splits.name}", cells, values)
            notes.append(f"robustness is guided by a head fitted on {len(cells)} measured cells ({data.name})")
    return predictor, notes


def generate_cells(settings: RunSettings, splits: DatasetSplits, network: NetworkConfig) -> dict:
    """Guided generation, then the ``n_cells`` most Pareto-near distinct cells (front by front)."""
    from diffusion.commands import generator_path
    from diffusion.guidance import generate
    from diffusion.model import CellDiffusion

    goals = parse_objectives(settings.objectives)
    predictor, notes = _predictor(goals, splits, settings)
    guided = [g for g in goals if g.metric != "pgd_accuracy" or f"pgd_accuracy@{splits.name}" in predictor.tasks]
    diffusion = CellDiffusion.load(generator_path("nb201"))
    result = generate(diffusion, guided, [], settings.candidates, predictor, network, splits.name,
                      settings.guidance, settings.seed)
    rows = [r for r in result["cells"] if Cell.from_string(r["arch"]).is_connected()]
    if not rows:
        raise GennasError("the generator produced no connected cell; raise --candidates or change --seed")
    fronts = NonDominatedSorting().do(minimisation_matrix(rows, guided))
    order = [i for front in fronts for i in sorted(front, key=lambda i: rows[i]["arch"])]
    chosen = [rows[i]["arch"] for i in order[: settings.n_cells]]
    return {"objectives": [f"{g.metric}:{g.direction}" for g in goals],
            "guided_objectives": [f"{g.metric}:{g.direction}" for g in guided], "notes": notes,
            "candidates": rows, "chosen": chosen}


def _read_csv(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        return {r["arch"]: {k: (v if k in ("arch", "selected_because") else float(v)) for k, v in r.items()}
                for r in csv.DictReader(handle)}


def write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def example_thresholds(rows: list[dict]) -> dict[str, float]:
    """Thresholds a user might set: at most the median FLOPs and memory, at least the median robustness."""
    return {"max_flops": round(float(np.median([r["flops"] for r in rows])), 3),
            "max_memory_mb": round(float(np.median([r["memory_bytes"] for r in rows])) / 1e6, 4),
            "min_robustness": round(float(np.median([r["val_pgd_accuracy"] for r in rows])) / 100, 3)}


def run_pipeline(settings: RunSettings, out: str | Path, *, device: str = "auto", data_root: str | None = None,
                 progress: bool = True, wandb: bool = False) -> dict:
    settings.check()
    out = Path(out)
    rank, world = rank_and_world()  # under torchrun: rank 0 generates and measures, every rank trains
    saved = out / "run.json"
    if saved.exists():
        previous = read_json_checked(saved, "run settings", "rerun `gennas run`").get("settings")
        if previous != asdict(settings):
            raise GennasError(f"{out} holds a run with other settings ({previous}); pass another --out or delete it")
    parse_objectives(settings.objectives)  # bad input fails before anything is written
    splits = load_dataset(settings.dataset, data_root)
    network = _network(settings, splits)
    if rank == 0:
        write_json(saved, {"settings": asdict(settings), "provenance": provenance()})
    logger = RunLogger(wandb and rank == 0, name=out.name, directory=out, config=asdict(settings))
    try:
        generated_path = out / "generated.json"
        if world > 1 and rank > 0:
            torch.distributed.barrier()  # wait for rank 0's generation
        if generated_path.exists():
            generated = read_json_checked(generated_path, "generated cells", "rerun: the cells are generated again")
        else:
            generated = generate_cells(settings, splits, network)
            write_json_checked(generated_path, generated)
        if world > 1 and rank == 0:
            torch.distributed.barrier()
        cells = [Cell.from_string(a) for a in generated["chosen"]]
        space = SubnetSpace.from_cells(cells)

        torch.manual_seed(settings.seed)
        supernet = Supernet(space, network)
        model = with_normalization(supernet, splits)
        recipe = SupernetTrainConfig(**{"epochs": settings.epochs, "seed": settings.seed, "device": device,
                                        **settings.recipe})
        weights = out / "supernet.pt"
        meta = {"dataset": settings.dataset, "data_root": data_root, "robustness": asdict(RobustnessConfig(seed=settings.seed)),
                "recalibration_images": settings.recalibration_images, "train": recipe.to_dict()}
        if weights.exists():
            model, _ = load_supernet(weights)
            supernet = model[-1]
            history = load_checked(out / "supernet.ckpt", "training checkpoint", "rerun").get("history", []) \
                if (out / "supernet.ckpt").exists() else []
        else:
            history = train_supernet(supernet, model, splits, recipe, checkpoint_path=out / "supernet.ckpt",
                                     progress=progress, on_epoch_end=logger.log)
            if rank == 0:
                save_supernet(weights, model, meta)
        if world > 1:
            torch.distributed.barrier()
            if rank > 0:
                return {"rank": rank, "out": str(out), "text": f"rank {rank}: training done"}
        model.to(resolve_device(device))

        measurer = SubnetMeasurer(supernet, model, splits, RobustnessConfig(seed=settings.seed),
                                  settings.recalibration_images)
        subnets = choose_subnets(space, network, settings.max_subnets, settings.seed)
        csv_path = out / "subnets.csv"
        done = _read_csv(csv_path)
        measured = list(done.values())

        def keep(row: dict) -> None:
            measured.append(row)
            write_csv(csv_path, measured)
            logger.log({f"subnet/{k}": v for k, v in row.items() if isinstance(v, float)})

        rows = measure_all(measurer, subnets, progress=progress, done=done, on_row=keep)
        write_csv(csv_path, rows)
        logger.table("subnets", rows)

        thresholds = example_thresholds(rows)
        pick = select(rows, make_thresholds(thresholds), "accuracy")
        exported = standalone_from(model, Cell.from_string(pick["arch"]), splits, settings.recalibration_images)
        metrics = computed_metrics(exported, splits, measurer.robustness)
        paths = export_subnet(exported, out / "export", metrics,
                              {"dataset": splits.name, "thresholds": thresholds, "maximize": "accuracy"})
    finally:
        logger.finish()

    payload = {"provenance": provenance(), "settings": asdict(settings), "dataset": splits.name,
               "network": network.to_dict(), "generation": {k: v for k, v in generated.items() if k != "candidates"},
               "supernet": {"blocks": len(space.blocks), "choices": [list(c) for c in space.choices],
                            "configurations": space.configurations, "reachable_subnets": space.count(),
                            "measured_subnets": len(rows), "history": history},
               "example_prune": {"thresholds": thresholds, "maximize": "accuracy", "chosen": metrics, "files": paths}}
    write_json(out / "results.json", payload)
    write_report(out, payload, rows)
    text = (f"generated {len(generated['candidates'])} cells, merged the {len(cells)} most Pareto-near into a supernet "
            f"with {len(space.blocks)} blocks ({payload['supernet']['reachable_subnets']} reachable subnets); "
            f"trained once, measured {len(rows)} subnets on {splits.name}.\n"
            f"example prune {thresholds}: {metrics['arch']}\n"
            f"  val accuracy {metrics['val_accuracy']:.2f}%  test {metrics['accuracy']:.2f}%  PGD {metrics['pgd_accuracy']:.2f}%  "
            f"FLOPs {metrics['flops']:.3f}M  memory {metrics['memory_bytes'] / 1e6:.3f} MB\n"
            f"report: {out / 'report.md'}\nexported model: {paths['model']}\n"
            f"prune again with other thresholds: gennas prune {out} --max-flops F --min-robustness R --json")
    return {"out": str(out), "report": str(out / "report.md"), "subnets": str(csv_path), "model": paths["model"],
            "chosen": metrics, "text": text}
