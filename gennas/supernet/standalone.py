"""Standalone training of a run's subnets with the run's recipe: what verifies the supernet's readings.

Shared weights read a subnet's accuracy and, above all, its PGD robustness differently
from the same cell trained on its own, so the figures a user deploys on are checked by
training the cell from scratch with the supernet's recipe (same epochs, optimiser, batch,
seed and attack). Each trained cell is kept in the run directory (weights and figures),
so an interrupted run resumes, ``gennas prune`` exports the verified model itself, and a
cell is never trained twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from torch import nn

from gennas.data import DatasetSplits
from gennas.errors import GennasError
from gennas.io import FileFormat
from gennas.nn.network import NetworkConfig
from gennas.objectives import Objective, minimisation_matrix
from gennas.space.cell import Cell
from gennas.supernet.family import family_of
from gennas.supernet.stages import Stage
from gennas.train import RobustnessConfig, TrainConfig, evaluate_robustness, train_model, with_normalization

FORMAT = "gennas-standalone/1"
STANDALONE = FileFormat(FORMAT, "standalone training")
#: Columns of ``subnets.csv`` filled for the subnets trained standalone (NaN elsewhere).
STANDALONE_COLUMNS = ("standalone_val_accuracy", "standalone_val_pgd_accuracy", "standalone_accuracy",
                      "standalone_pgd_accuracy")


@dataclass
class Standalone:
    """A cell trained on its own: the model (``Normalize`` + network) and its figures (the columns above)."""

    model: nn.Sequential
    figures: dict[str, float]


def standalone_recipe(recipe: TrainConfig) -> TrainConfig:
    """The plain training recipe inside a supernet recipe (its sandwich fields dropped)."""
    return TrainConfig(**{k: v for k, v in recipe.to_dict().items() if k in TrainConfig.__dataclass_fields__})


def weights_path(directory: Path, cell: Cell) -> Path:
    return Path(directory) / f"{hashlib.sha1(cell.to_string().encode()).hexdigest()[:12]}.pt"


def train_standalone(cell: Cell, splits: DatasetSplits, network: NetworkConfig, recipe: TrainConfig,
                     robustness: RobustnessConfig, directory: str | Path, progress: bool = False) -> Standalone:
    """Train ``cell`` from scratch (or load it from ``directory`` when it was trained before).

    Args:
        cell: the architecture.
        splits: the run's data; figures are read on its validation and test splits.
        network: the run's skeleton.
        recipe: the run's training recipe (:func:`standalone_recipe` of the supernet's).
        robustness: the run's attack settings.
        directory: where the trained weights and figures are kept (``RUN_DIR/standalone``).
        progress: show a progress bar per epoch.

    Returns:
        The trained model on the recipe's device, in eval mode, and its figures.
    """
    path = weights_path(directory, cell)
    return Stage("standalone", path,
                 make=lambda: _train(cell, splits, network, recipe, robustness, path, progress),
                 read=lambda: load_standalone(directory, cell, splits, network)).run()


def _train(cell: Cell, splits: DatasetSplits, network: NetworkConfig, recipe: TrainConfig,
           robustness: RobustnessConfig, path: Path, progress: bool) -> Standalone:
    """Train ``cell`` from scratch (resuming its checkpoint beside ``path``), measure it, keep it at ``path``."""
    torch.manual_seed(recipe.seed)  # the initial weights depend on the seed alone
    model = with_normalization(family_of(network).build(cell, network), splits)
    checkpoint = path.with_suffix(".ckpt")
    trained = train_model(model, splits, recipe, checkpoint_path=checkpoint, progress=progress).model.eval()
    if not all(torch.isfinite(p).all() for p in trained.parameters()):
        raise GennasError(f"standalone training of {cell} diverged (non-finite weights); lower the learning rate")
    device = next(trained.parameters()).device
    val = evaluate_robustness(trained, splits.val, robustness, device)
    test = evaluate_robustness(trained, splits.test, robustness, device)
    figures = {"standalone_val_accuracy": val["clean_accuracy"], "standalone_val_pgd_accuracy": val["pgd_accuracy"],
               "standalone_accuracy": test["clean_accuracy"], "standalone_pgd_accuracy": test["pgd_accuracy"]}
    STANDALONE.save(path, {"arch": cell.to_string(), "network": network.to_dict(), "recipe": recipe.to_dict(),
                           "figures": figures, "state": {k: v.detach().cpu() for k, v in trained.state_dict().items()}})
    checkpoint.unlink(missing_ok=True)
    return Standalone(trained, figures)


def load_standalone(directory: str | Path, cell: Cell, splits: DatasetSplits, network: NetworkConfig) -> Standalone:
    """The standalone training of ``cell`` kept in ``directory`` (an error naming the file when it is damaged)."""
    path = weights_path(directory, cell)
    wrong = f"{path} is not the standalone training of {cell} on this run's skeleton; delete or move it to train " \
            "the cell again"
    payload = STANDALONE.load(path, "rerun: the cell is trained again", wrong)
    if payload.get("arch") != cell.to_string() or payload.get("network") != network.to_dict():
        raise GennasError(wrong)
    model = with_normalization(family_of(network).build(cell, network), splits)
    model.load_state_dict(payload["state"])
    return Standalone(model.eval(), dict(payload["figures"]))


def choose_finalists(rows: list[dict], count: int, objectives: list[Objective]) -> list[str]:
    """The ``count`` subnets to verify: spread along the measured Pareto front, front by front.

    Within a front the picks are evenly spaced in FLOPs, both ends included, so the
    thresholds a user sets later find verified subnets at every cost.

    Args:
        rows: measured subnets (``subnets.csv`` rows).
        count: how many to pick.
        objectives: the front's objectives, on ``rows``' columns.

    Returns:
        Arch strings, at most ``count`` (fewer only when fewer subnets were measured).
    """
    chosen: list[str] = []
    for front in NonDominatedSorting().do(minimisation_matrix(rows, objectives)):
        by_flops = sorted(front, key=lambda i: (rows[i]["flops"], rows[i]["arch"]))
        need = count - len(chosen)
        if need <= 0:
            break
        picks = by_flops if len(by_flops) <= need else \
            [by_flops[int(round(j))] for j in np.linspace(0, len(by_flops) - 1, need)]
        chosen += [rows[i]["arch"] for i in dict.fromkeys(picks)]
    return chosen[:count]
