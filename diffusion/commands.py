"""What `gennas generator train` and `gennas generate` do, callable from scripts and tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffusion.guidance import generate
from diffusion.model import CellDiffusion, DiffusionConfig
from gennas.objectives import parse_constraint, parse_objectives
from gennas.bench.nb201 import canonical_dataset
from gennas.bench.tabular import nb201_network
from gennas.errors import GennasError
from gennas.nn.network import NetworkConfig
from gennas.space.space import ENUMERATION_LIMIT, CellSpace, get_space
from predictors.checkpoint import load_predictor
from predictors.transfer import load_prior

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def generator_path(space_name: str) -> Path:
    return WEIGHTS_DIR / f"{get_space(space_name).name}.pt"


def training_cells(space: CellSpace, n_sampled: int, seed: int) -> list:
    """Every cell when the space can be listed, else ``n_sampled`` uniform valid cells."""
    if space.size <= ENUMERATION_LIMIT:
        return list(space.enumerate())
    return space.sample(np.random.default_rng(seed), n_sampled)


def train_generator(space_name: str, out: str | Path | None = None, steps: int | None = None,
                    n_sampled: int = 20_000, seed: int = 0, progress: bool = False) -> dict:
    space = get_space(space_name)
    config = DiffusionConfig(seed=seed, **({"steps": steps} if steps else {}))
    model = CellDiffusion(space, config)
    cells = training_cells(space, n_sampled, seed)
    losses = model.fit(cells, progress=progress)
    path = model.save(out or generator_path(space.name))
    return {"out": str(path), "space": space.name, "training_cells": len(cells), "steps": config.steps,
            "loss_first_100": float(np.mean(losses[:100])), "loss_last_100": float(np.mean(losses[-100:]))}


def run_generate(space_name: str, objectives: str, n: int, dataset: str | None = None, constraints: list[str] = (),
                 guidance: float = 60.0, seed: int = 0, predictor_path: str | None = None,
                 generator: str | None = None) -> dict:
    """Parse the request, pick the generator and predictor, generate, and report."""
    if n < 1:
        raise GennasError("--n must be at least 1")
    if guidance < 0:
        raise GennasError("--guidance must be >= 0 (0 samples unguided)")
    space = get_space(space_name)
    goals = parse_objectives(objectives)
    limits = [parse_constraint(c) for c in constraints]
    diffusion = CellDiffusion.load(generator or generator_path(space.name))
    if diffusion.space.n_nodes != space.n_nodes or diffusion.space.ops != space.ops:
        raise GennasError(f"generator checkpoint is for space {diffusion.space.name!r}, not {space.name!r}")
    if space.name == "nb201":
        dataset = canonical_dataset(dataset or "cifar10")
        network = nb201_network(dataset)
        if predictor_path:
            predictor = load_predictor(predictor_path)
        else:  # the transfer prior: the other datasets' tables, never the target's
            predictor = load_prior(dataset).fit_task(f"accuracy@{dataset}", [], None)
    else:
        network = NetworkConfig()
        predictor = load_predictor(predictor_path) if predictor_path else None
    result = generate(diffusion, goals, limits, n, predictor, network, dataset, guidance, seed)
    if space.name == "nb201" and not predictor_path and any(o.metric == "accuracy" for o in goals):
        result["note"] = (f"accuracy is the zero-shot transfer prior's estimate for {dataset}: its ranking is "
                          "informative, its scale is that of the known datasets (no target cell was measured)")
    result.update({"space": space.name, "dataset": dataset, "skeleton": network.describe(),
                   "objectives": [f"{o.metric}:{o.direction}" for o in goals],
                   "constraints": [str(c) for c in limits], "guidance": guidance, "seed": seed})
    return result
