"""What `gennas generator train` and `gennas generate` do, callable from scripts and tests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from diffusion.guidance import generate
from diffusion.model import CellDiffusion, DiffusionConfig
from gennas.objectives import Constraint, parse_constraint, parse_objectives
from gennas.bench.nb201 import canonical_dataset
from gennas.bench.tabular import nb201_network
from gennas.metrics.task import task_name
from gennas.errors import GennasError
from gennas.space.protocol import ArchSpace
from gennas.space.space import ENUMERATION_LIMIT, get_space, same_space
from predictors.checkpoint import load_predictor
from predictors.transfer import load_prior

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def generator_path(space_name: str) -> Path:
    return WEIGHTS_DIR / f"{get_space(space_name).name}.pt"


def training_cells(space: ArchSpace, n_sampled: int, seed: int) -> list:
    """Every cell when the space can be listed, else ``n_sampled`` uniform valid cells."""
    if space.size <= ENUMERATION_LIMIT:
        return list(space.enumerate())
    return space.sample(np.random.default_rng(seed), n_sampled)


def train_generator(space_name: str, out: str | Path | None = None, steps: int | None = None,
                    n_sampled: int = 20_000, seed: int = 0, progress: bool = False) -> dict:
    space = get_space(space_name)
    if steps is not None and steps < 1:
        raise GennasError(f"--steps must be at least 1, got {steps}")  # 0 is not "the default"
    config = DiffusionConfig(seed=seed, **({"steps": steps} if steps is not None else {}))
    model = CellDiffusion(space, config)
    cells = training_cells(space, n_sampled, seed)
    losses = model.fit(cells, progress=progress)
    path = model.save(out or generator_path(space.name))
    return {"out": str(path), "space": space.name, "training_cells": len(cells), "steps": config.steps,
            "loss_first_100": float(np.mean(losses[:100])), "loss_last_100": float(np.mean(losses[-100:]))}


def exact_range(metric: str, space: ArchSpace, network) -> tuple[float, float] | None:
    """The smallest and largest value ``metric`` takes over every op assignment of ``space``.

    Exact for FLOPs, params and a latency table's latency on cell spaces (each is a base plus a
    per-edge cost of the op); None for metrics without such a form, and where the space does not
    know its bounds (DARTS). Over the valid cells the range can only be narrower, so a bound
    outside it can never be met.
    """
    soft = space.soft_costs(network).get(metric)
    return None if soft is None else soft.bounds


def check_feasible(limits: list[Constraint], space: ArchSpace, network) -> None:
    """Fail at once, with the closest achievable value, when no cell of the space can meet a limit.

    Without this an impossible limit (``flops<=0``) ran every sampling round before
    returning nothing.
    """
    for limit in limits:
        bounds = exact_range(limit.metric, space, network)
        if bounds is None:
            continue
        low, high = bounds
        if limit.op == "<=" and low > limit.bound:
            raise GennasError(f"constraint {limit} cannot be met: the smallest {limit.metric} of any {space.name} cell "
                              f"is {low:.6g}; use a bound of at least that")
        if limit.op == ">=" and high < limit.bound:
            raise GennasError(f"constraint {limit} cannot be met: the largest {limit.metric} of any {space.name} cell "
                              f"is {high:.6g}; use a bound of at most that")


def run_generate(space_name: str, objectives: str, n: int, dataset: str | None = None, constraints: list[str] = (),
                 guidance: float = 60.0, seed: int = 0, predictor_path: str | None = None,
                 generator: str | None = None) -> dict:
    """Parse the request, pick the generator and predictor, generate, and report."""
    if n < 1:
        raise GennasError("--n must be at least 1")
    if not math.isfinite(guidance) or guidance < 0:
        raise GennasError(f"--guidance must be a finite number >= 0 (0 samples unguided), got {guidance}")
    space = get_space(space_name)
    goals = parse_objectives(objectives)
    limits = [parse_constraint(c) for c in constraints]
    diffusion = CellDiffusion.load(generator or generator_path(space.name))
    network_for_costs = (nb201_network(canonical_dataset(dataset or "cifar10")) if space.name == "nb201"
                         else space.default_network())
    check_feasible(limits, space, network_for_costs)
    if not same_space(diffusion.space, space):
        raise GennasError(f"generator checkpoint is for space {diffusion.space.name!r}, not {space.name!r}")
    if space.name == "nb201":
        dataset = canonical_dataset(dataset or "cifar10")
        network = nb201_network(dataset)
        if predictor_path:
            predictor = load_predictor(predictor_path)
        else:  # the transfer prior: the other datasets' tables, never the target's
            predictor = load_prior(dataset).fit_task(task_name("accuracy", dataset), [], None)
    else:
        network = space.default_network()
        predictor = load_predictor(predictor_path) if predictor_path else None
    result = generate(diffusion, goals, limits, n, predictor, network, dataset, guidance, seed)
    if limits and not result["cells"]:
        closest = ", ".join(f"{c}: closest {c.metric} sampled {v:.4g}" for c, v in result["closest"].items())
        raise GennasError(f"none of the {result['sampled']} sampled cells met the constraints ({closest}); "
                          "loosen the constraint or raise --guidance")
    result["closest"] = {str(c): v for c, v in result["closest"].items()}
    if space.name == "nb201" and not predictor_path and any(o.metric == "accuracy" for o in goals):
        result["note"] = (f"accuracy is the zero-shot transfer prior's estimate for {dataset}: its ranking is "
                          "informative, its scale is that of the known datasets (no target cell was measured)")
    result.update({"space": space.name, "dataset": dataset, "skeleton": network.describe(),
                   "objectives": [f"{o.metric}:{o.direction}" for o in goals],
                   "constraints": [str(c) for c in limits], "guidance": guidance, "seed": seed})
    return result
