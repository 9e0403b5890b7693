"""Measure subnets of a trained supernet: recalibrate BN, fine-tune briefly, then accuracy, robustness and costs.

Shared BN statistics during training belong to no subnet in particular, so each subnet
gets its own: running statistics are reset and re-estimated as a cumulative average over
``recalibration_images`` training images (Once-for-All's recipe) before anything is
measured. Shared weights are a compromise between every subnet that uses them, so with
``finetune_epochs`` each subnet is then extracted and fine-tuned on its own for a few
epochs from those weights (a small learning rate, :func:`finetune`): its clean accuracy
then reads close to a standalone training of the cell at a fraction of its cost (the
supernet benchmark measures how close). The supernet's weights are never changed, and the
fine-tune is seeded, so ``gennas prune`` rebuilds the very network that was measured.
Accuracy and PGD robustness are measured on the validation split, what every choice
rests on; the test split is read once, of the model a run exports (and of the cells it
trains standalone), so a run never spends attacks on test images of subnets it does not
deploy (``test_figures`` reads it too, for benchmarks that compare test figures). FLOPs,
params and memory are computed exactly; latency is timed on the extracted standalone network.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from gennas.data import DatasetSplits
from gennas.metrics.latency import LatencyReading, latency_outliers, read_latency
from gennas.space.cell import Cell
from gennas.supernet.family import arch_costs, parse_arch
from gennas.supernet.model import Supernet, blocks_used
from gennas.supernet.subnets import SubnetSpace
from gennas.train import RobustnessConfig, TrainConfig, evaluate_robustness, train_model
from gennas.train.trainer import dataset_tensors

#: Learning rate of a fine-tune from shared weights: a tenth of a fresh training's, since the
#: weights are already near a solution (a larger one undoes what the supernet learned).
FINETUNE_LR = 0.01


def finetune(model: nn.Sequential, splits: DatasetSplits, epochs: int, seed: int, device: str | torch.device
             ) -> nn.Sequential:
    """``model`` (``Normalize`` + network) trained ``epochs`` more epochs at :data:`FINETUNE_LR`, cosine, seeded.

    Returns the same module, trained in place and in eval mode.
    """
    config = TrainConfig(epochs=epochs, lr=FINETUNE_LR, scheduler="cosine", seed=seed, device=str(device))
    return train_model(model, splits, config, progress=False).model.eval()



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


class SubnetChoice(NamedTuple):
    """One subnet to measure: the cheapest of the configurations that compute its function.

    ``equivalent`` lists the other configurations with the same :attr:`Cell.canonical`
    (e.g. an op on an edge whose output never reaches the cell's output): measuring them
    would measure the same architecture again, at a higher or equal cost.
    """

    cell: Cell
    reason: str
    equivalent: tuple[Cell, ...] = ()


def choose_subnets(space: SubnetSpace, network, limit: int, seed: int = 0) -> list[SubnetChoice]:
    """Every reachable subnet when there are at most ``limit`` functions, else a principled subset.

    Configurations that compute the same function are one subnet (see :class:`SubnetChoice`).
    The subset: the source cells (the generator's Pareto-near picks), the largest and
    smallest subnets, then the rest spread evenly over the FLOPs range (one random subnet
    per FLOPs stratum), so thresholds at any cost find candidates.
    """
    pinned: dict[Cell, str] = {c: "source cell" for c in space.sources}
    pinned.setdefault(space.largest(), "largest")
    pinned.setdefault(space.smallest(network), "smallest")
    rng = np.random.default_rng(seed)
    if space.listable:
        pool, listed = list(space.enumerate()), True
    else:  # too many to list: sample a pool
        pool, listed = list(dict.fromkeys(space.sample(rng) for _ in range(20 * limit))), False
    classes = _function_classes([*pinned, *pool], network)
    reasons = {canonical: next((pinned[c] for c in members if c in pinned), "") for canonical, members in classes.items()}
    chosen = [canonical for canonical, reason in reasons.items() if reason]
    rest = [canonical for canonical, reason in reasons.items() if not reason]
    if listed and len(classes) <= limit:
        chosen += rest
        reasons.update({canonical: "reachable (all measured)" for canonical in rest})
    elif rest and limit > len(chosen):
        flops = np.array([arch_costs(classes[k][0], network)["flops"] for k in rest])
        order = np.argsort(flops, kind="stable")
        for stratum in np.array_split(order, min(limit - len(chosen), len(rest))):
            canonical = rest[int(rng.choice(stratum))]
            chosen.append(canonical)
            reasons[canonical] = "FLOPs stratum sample"
    return [SubnetChoice(classes[k][0], reasons[k], tuple(classes[k][1:])) for k in chosen]


def _function_classes(cells: Sequence[Cell], network) -> dict[str, list[Cell]]:
    """Cells grouped by the function they compute, each group's cheapest (FLOPs, then memory) first."""
    classes: dict[str, list[Cell]] = {}
    for cell in dict.fromkeys(cells):
        classes.setdefault(cell.canonical, []).append(cell)
    for members in classes.values():
        if len(members) > 1:
            members.sort(key=lambda c: (*(arch_costs(c, network)[k] for k in ("flops", "memory_bytes")), c.ops))
    return classes


#: The test figures of a subnet read on validation data only: not measured (a run reads test figures once,
#: on the model it exports, and on the cells it trains standalone).
NOT_READ = {name: math.nan for name in ("clean_accuracy", "pgd_accuracy", "fgsm_accuracy", "noise_accuracy")}

#: Images the timing probe recalibrates BN on: a full batch, as recalibration runs (a small batch costs
#: several times more per image).
FORWARD_TIMING_IMAGES = 256


@dataclass
class SubnetMeasurer:
    """Measures one subnet at a time on the same data, attack and device."""

    supernet: Supernet
    model: nn.Sequential  # Normalize + supernet
    splits: DatasetSplits
    robustness: RobustnessConfig
    recalibration_images: int = 1024
    finetune_epochs: int = 0  # 0: read the shared weights as they are
    finetune_seed: int = 0
    test_figures: bool = False  # also read the test split (a benchmark's fidelity check); a run chooses on val

    def network(self, cell: Cell) -> nn.Sequential:
        """The network a reading of ``cell`` is taken on: its recalibrated subnet, fine-tuned when asked.

        Returns ``Normalize`` + the active supernet (no fine-tune), or ``Normalize`` + the
        extracted standalone network fine-tuned from the shared weights (its own copy).
        """
        self.supernet.activate(cell)
        recalibrate_bn(self.model, self.splits, self.recalibration_images)
        if not self.finetune_epochs:
            return self.model
        device = next(self.model.parameters()).device
        extracted = nn.Sequential(copy.deepcopy(self.model[0]), self.supernet.extract(cell))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return finetune(extracted, self.splits, self.finetune_epochs, self.finetune_seed, device)

    def __call__(self, cell: Cell, reason: str = "", on_phase: Callable[[str], None] = lambda text: None) -> dict:
        """Every column of ``subnets.csv`` for ``cell``; ``on_phase`` is told what is being measured now."""
        device = next(self.model.parameters()).device
        on_phase("BN recalibration" + (f", fine-tune {self.finetune_epochs} epoch(s)" if self.finetune_epochs else ""))
        network = self.network(cell)
        read_on = [("val", self.splits.val)] + ([("test", self.splits.test)] if self.test_figures else [])
        read = {name: evaluate_robustness(
                    network, split, self.robustness, device,
                    on_batch=lambda done, total, name=name: on_phase(f"{name} clean/FGSM/PGD/noise {done}/{total} images"))
                for name, split in read_on}
        val, test = read["val"], read.get("test", NOT_READ)
        net = self.supernet.config
        on_phase("latency")
        latency = self.latency(cell)
        return {
            "arch": cell.to_string(), "selected_because": reason, "blocks_on": blocks_used(cell),
            **arch_costs(cell, net),
            "latency_ms": latency.median_ms, "latency_spread_ms": latency.spread_ms,
            "val_accuracy": val["clean_accuracy"], "val_pgd_accuracy": val["pgd_accuracy"],
            "accuracy": test["clean_accuracy"], "pgd_accuracy": test["pgd_accuracy"],
            "fgsm_accuracy": test["fgsm_accuracy"], "noise_accuracy": test["noise_accuracy"],
        }

    def latency(self, cell: Cell) -> LatencyReading:
        """Batch-1 latency of ``cell``'s standalone network, extracted with the supernet's weights."""
        net = self.supernet.config
        standalone = nn.Sequential(self.model[0], self.supernet.extract(cell))
        device = next(self.model.parameters()).device
        return read_latency(standalone, (net.in_channels, net.image_size, net.image_size), device)

    def time_per_image(self, cell: Cell, images: int = 64) -> tuple[float, float]:
        """Seconds per image of a BN-recalibration forward and of the attacks, for a subnet like ``cell``.

        Times both on ``images`` images; the supernet's weights and BN statistics are restored
        afterwards and the RNG is forked, so nothing measured afterwards changes.

        Returns:
            (forward, attacks): seconds per image of one training-mode forward, and of
            evaluating one image clean and under FGSM, PGD and noise.
        """
        device = next(self.model.parameters()).device
        x, y = dataset_tensors(self.splits.val)
        probe = TensorDataset(x[:images], y[:images])
        saved = {k: v.clone() for k, v in self.model.state_dict().items()}
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self.supernet.activate(cell)
            batch = min(FORWARD_TIMING_IMAGES, len(self.splits.train))  # small batches cost more per image
            recalibrate_bn(self.model, self.splits, batch)  # warm-up, not timed
            tic = time.perf_counter()
            recalibrate_bn(self.model, self.splits, batch)
            forward = (time.perf_counter() - tic) / batch
            evaluate_robustness(self.model, TensorDataset(x[:4], y[:4]), self.robustness, device)  # warm-up
            tic = time.perf_counter()
            evaluate_robustness(self.model, probe, self.robustness, device)
            attacks = (time.perf_counter() - tic) / len(probe)
        self.model.load_state_dict(saved)
        return forward, attacks


def measure_all(measurer: SubnetMeasurer, subnets: Sequence[SubnetChoice], progress: bool = True,
                done: dict[str, dict] | None = None, on_row=None) -> list[dict]:
    """Measure each subnet (skipping those already in ``done``, for resume)."""
    from tqdm.auto import tqdm

    done = dict(done or {})
    rows = []
    with tqdm(subnets, desc="measuring subnets", disable=not progress, unit="subnet") as bar:
        for cell, reason, equivalent in bar:
            key = cell.to_string()
            if key not in done:
                row = measurer(cell, reason, on_phase=lambda text: bar.set_postfix_str(text, refresh=True))
                done[key] = {**row, "equivalent": ";".join(c.to_string() for c in equivalent)}
                if on_row is not None:
                    on_row(done[key])
            rows.append(done[key])
    return rows


def remeasure_latency_outliers(measurer: SubnetMeasurer, rows: list[dict], tries: int = 2) -> list[str]:
    """Measure again the latencies that disagree with the FLOPs trend (see :func:`latency_outliers`).

    A disturbed reading is too slow, never too fast, so each outlier keeps the fastest of
    its readings. Rows are updated in place.

    Returns:
        The archs whose latency was measured again.
    """
    flagged = latency_outliers([r["latency_ms"] for r in rows], [r["flops"] for r in rows])
    for i in flagged:
        cell = parse_arch(rows[i]["arch"], measurer.supernet.config)
        for _ in range(tries):
            reading = measurer.latency(cell)
            if reading.median_ms < rows[i]["latency_ms"]:
                rows[i].update(latency_ms=reading.median_ms, latency_spread_ms=reading.spread_ms)
    return [rows[i]["arch"] for i in flagged]
