"""Measure subnets of a trained supernet: recalibrate BN, then accuracy, robustness and exact costs.

Shared BN statistics during training belong to no subnet in particular, so each subnet
gets its own: running statistics are reset and re-estimated as a cumulative average over
``recalibration_images`` training images (Once-for-All's recipe) before anything is
measured. Accuracy and PGD robustness are measured on the validation split (what pruning
selects on) and on the test split (what is reported); FLOPs, params and memory are
computed exactly; latency is timed on the extracted standalone network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from gennas.data import DatasetSplits
from gennas.metrics.costs import cell_costs
from gennas.metrics.latency import measure_latency
from gennas.space.cell import Cell
from gennas.supernet.model import Supernet, blocks_used
from gennas.supernet.subnets import ENUMERATION_LIMIT, SubnetSpace
from gennas.train import RobustnessConfig, evaluate_robustness
from gennas.train.trainer import dataset_tensors

#: Columns of ``subnets.csv``; accuracies are percentages, FLOPs and params in millions.
COLUMNS = ("arch", "selected_because", "blocks_on", "flops", "params", "memory_bytes", "latency_ms",
           "val_accuracy", "val_pgd_accuracy", "accuracy", "pgd_accuracy", "fgsm_accuracy", "noise_accuracy")


@torch.no_grad()
def recalibrate_bn(model: nn.Module, splits: DatasetSplits, images: int = 1024, batch_size: int = 256) -> None:
    """Re-estimate every BatchNorm's running statistics for the active subnet (cumulative average)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    device = next(model.parameters()).device
    x, _ = dataset_tensors(splits.train)
    was_training = model.training
    model.train()
    try:
        for start in range(0, min(images, len(x)), batch_size):
            model(x[start:start + batch_size].to(device))
    finally:
        model.train(was_training)
        for m, momentum in saved:
            m.momentum = momentum


def choose_subnets(space: SubnetSpace, network, limit: int, seed: int = 0) -> list[tuple[Cell, str]]:
    """Every reachable subnet when there are at most ``limit``, else a principled subset, with the reason.

    The subset: the source cells (the generator's Pareto-near picks), the largest and
    smallest subnets, then the rest spread evenly over the FLOPs range (one random subnet
    per FLOPs stratum), so thresholds at any cost find candidates.
    """
    chosen: dict[Cell, str] = {c: "source cell" for c in space.sources}
    chosen.setdefault(space.largest(), "largest")
    chosen.setdefault(space.smallest(network), "smallest")
    rng = np.random.default_rng(seed)
    if space.configurations <= ENUMERATION_LIMIT:
        pool = [c for c in space.enumerate() if c not in chosen]
        exhaustive = len(pool) + len(chosen) <= limit
    else:  # too many to list: sample a pool
        pool, exhaustive = list({space.sample(rng) for _ in range(20 * limit)} - set(chosen)), False
    if exhaustive:
        chosen.update({c: "reachable (all measured)" for c in pool})
        return list(chosen.items())
    free = max(limit - len(chosen), 0)
    if free and pool:
        flops = np.array([cell_costs(c, network)["flops"] for c in pool])
        order = np.argsort(flops, kind="stable")
        for stratum in np.array_split(order, min(free, len(pool))):
            chosen[pool[int(rng.choice(stratum))]] = "FLOPs stratum sample"
    return list(chosen.items())


@dataclass
class SubnetMeasurer:
    """Measures one subnet at a time on the same data, attack and device."""

    supernet: Supernet
    model: nn.Sequential  # Normalize + supernet
    splits: DatasetSplits
    robustness: RobustnessConfig
    recalibration_images: int = 1024

    def __call__(self, cell: Cell, reason: str = "") -> dict:
        device = next(self.model.parameters()).device
        self.supernet.activate(cell)
        recalibrate_bn(self.model, self.splits, self.recalibration_images)
        val = evaluate_robustness(self.model, self.splits.val, self.robustness, device)
        test = evaluate_robustness(self.model, self.splits.test, self.robustness, device)
        net = self.supernet.config
        shape = (net.in_channels, net.image_size, net.image_size)
        standalone = nn.Sequential(self.model[0], self.supernet.extract(cell))
        return {
            "arch": cell.to_string(), "selected_because": reason, "blocks_on": blocks_used(cell),
            **cell_costs(cell, net),
            "latency_ms": measure_latency(standalone, shape, device),
            "val_accuracy": val["clean_accuracy"], "val_pgd_accuracy": val["pgd_accuracy"],
            "accuracy": test["clean_accuracy"], "pgd_accuracy": test["pgd_accuracy"],
            "fgsm_accuracy": test["fgsm_accuracy"], "noise_accuracy": test["noise_accuracy"],
        }



def measure_all(measurer: SubnetMeasurer, subnets: Sequence[tuple[Cell, str]], progress: bool = True,
                done: dict[str, dict] | None = None, on_row=None) -> list[dict]:
    """Measure each subnet (skipping those already in ``done``, for resume)."""
    from tqdm.auto import tqdm

    done = dict(done or {})
    rows = []
    for cell, reason in tqdm(subnets, desc="measuring subnets", disable=not progress, unit="subnet"):
        key = cell.to_string()
        if key not in done:
            done[key] = measurer(cell, reason)
            if on_row is not None:
                on_row(done[key])
        rows.append(done[key])
    return rows


