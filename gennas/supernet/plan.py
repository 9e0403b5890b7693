"""What ``gennas run`` is about to do and how long it should take, told before the long stages.

A short timing probe on this machine (one training step, and BN recalibration and the
attacks on a few images) is scaled by what the run will do: steps per epoch, epochs left,
subnets left to measure and the images each measurement evaluates. The probe works on
copies or restores what it touches, so a run with the probe computes what it would
without it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from gennas.data import DatasetSplits
from gennas.space.cell import Cell
from gennas.supernet.family import arch_costs
from gennas.supernet.measure import SubnetMeasurer
from gennas.supernet.train import SupernetTrainConfig, time_training_step
from gennas.train.trainer import steps_per_epoch

#: Images the training loop's per-epoch progress check recalibrates BN on (two subnets).
EPOCH_CHECK_IMAGES = 512


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per unit of a run's work on this machine, from one short timing probe.

    Everything a run does is a count of these units (epochs, subnets, standalone
    trainings), so the same probe serves the per-round plan and the ``--budget-minutes``
    planner.
    """

    steps_per_epoch: int
    subnets_per_step: int
    step_seconds: float  # one supernet training step (every subnet of the step, forward and backward)
    epoch_check_seconds: float  # the per-epoch progress check (BN recalibration and val of two subnets)
    subnet_seconds: float  # measuring one subnet (BN recalibration, every attack on val, latency)
    standalone_epoch_seconds: float  # one epoch of one cell trained on its own, with its val check
    standalone_eval_seconds: float  # a trained cell's attacks on val and test
    predictor_fit_seconds: float = 0.0  # one fit of the guiding predictor on a run's measurements (0: not timed)

    def training_seconds(self, epochs: int) -> float:
        return epochs * (self.steps_per_epoch * self.step_seconds + self.epoch_check_seconds)

    def standalone_seconds(self, epochs: int) -> float:
        return epochs * self.standalone_epoch_seconds + self.standalone_eval_seconds

    def measurement_seconds(self, finetune_epochs: int) -> float:
        """One subnet's measurement after a fine-tune of ``finetune_epochs`` (an epoch of standalone training each)."""
        return self.subnet_seconds + finetune_epochs * self.standalone_epoch_seconds


@dataclass(frozen=True)
class RunPlan:
    """The work left in one round and what it should take, at the probe's unit costs."""

    epochs_left: int
    subnets_left: int
    finalists_left: int
    epochs: int  # a finalist's standalone training runs the recipe's epochs
    costs: UnitCosts
    finetune_epochs: int = 0  # each measured subnet's fine-tune

    @property
    def training_seconds(self) -> float:
        return self.costs.training_seconds(self.epochs_left)

    @property
    def measurement_seconds(self) -> float:
        """The subnets left, plus the example export, which is measured once more."""
        return (self.subnets_left + 1) * self.costs.measurement_seconds(self.finetune_epochs)

    @property
    def verification_seconds(self) -> float:
        return self.finalists_left * self.costs.standalone_seconds(self.epochs)

    @property
    def total_seconds(self) -> float:
        return self.training_seconds + self.measurement_seconds + self.verification_seconds

    def describe(self) -> str:
        """Two lines for the console: the plan, then the estimate with what it rests on."""
        c = self.costs
        work = (f"plan: train the supernet {self.epochs_left} more epoch(s) x {c.steps_per_epoch} steps "
                f"({c.subnets_per_step} subnets per step), measure {self.subnets_left} subnet(s), retrain "
                f"{self.finalists_left} finalist(s) standalone and export the example pick")
        estimate = (f"estimate: about {minutes_text(self.total_seconds)} (training "
                    f"{minutes_text(self.training_seconds)}, measurement {minutes_text(self.measurement_seconds)}, "
                    f"verification {minutes_text(self.verification_seconds)}; probe on this machine: "
                    f"{c.step_seconds:.3g} s per step, {c.subnet_seconds:.3g} s per subnet)")
        return work + "\n" + estimate

    def to_dict(self) -> dict:
        return {"epochs_left": self.epochs_left, "subnets_left": self.subnets_left,
                "finalists_left": self.finalists_left, "epochs": self.epochs,
                "finetune_epochs": self.finetune_epochs, **asdict(self.costs),
                "training_seconds": self.training_seconds, "measurement_seconds": self.measurement_seconds,
                "verification_seconds": self.verification_seconds, "total_seconds": self.total_seconds}


def _typical(seconds: Sequence[float], span: Sequence[Cell], network, typical_flops: float | None) -> float:
    """A subnet's seconds at ``typical_flops``: the line through the span's (FLOPs, seconds), else their mean."""
    if typical_flops is None or len(span) < 2:
        return float(np.mean(seconds))
    flops = [arch_costs(c, network)["flops"] for c in span]
    if max(flops) - min(flops) <= 0:
        return float(np.mean(seconds))
    slope, intercept = np.polyfit(flops, seconds, 1)
    return float(max(min(seconds), intercept + slope * typical_flops))


def measure_unit_costs(model, splits: DatasetSplits, recipe: SupernetTrainConfig, measurer: SubnetMeasurer,
                       span: Sequence[Cell], typical_flops: float | None = None) -> UnitCosts:
    """Time one supernet training step and one subnet's measurement on this machine.

    Args:
        model: ``Normalize`` + supernet, on the run's device.
        splits: the run's data.
        recipe: the supernet training recipe (batch size, subnets per step).
        measurer: the run's subnet measurer (its attack and BN-recalibration settings).
        span: subnets that span the cost range (the smallest and the largest): the
            measurement of one subnet is timed on each (a few images, one latency reading).
        typical_flops: the FLOPs of the subnet a measurement is costed at: the span's
            timings are interpolated linearly in FLOPs (measurement time grows with the
            network's work); None averages the span.

    Returns:
        The unit costs; nothing the run computes afterwards changes (copies, restored
        state and forked RNGs).
    """
    steps = steps_per_epoch(len(splits.train), recipe.batch_size)
    step = time_training_step(model, splits, recipe)
    timings = [measurer.time_per_image(cell) for cell in span]
    device = next(measurer.model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # a reading draws its input
        latencies = [_seconds(lambda c=cell: measurer.latency(c)) for cell in span]
    forward, attacks, latency = (_typical(column, span, measurer.supernet.config, typical_flops)
                                 for column in (*zip(*timings), latencies))
    recalibration = min(measurer.recalibration_images, len(splits.train))
    read = len(splits.val) + (len(splits.test) if measurer.test_figures else 0)  # a subnet's attacked images
    evaluated = len(splits.val) + len(splits.test)  # a standalone training reads both
    per_step = int(recipe.largest) + int(recipe.smallest) + recipe.random_subnets
    return UnitCosts(
        steps_per_epoch=steps, subnets_per_step=per_step, step_seconds=step,
        epoch_check_seconds=2 * forward * (min(EPOCH_CHECK_IMAGES, len(splits.train)) + len(splits.val)),
        subnet_seconds=forward * recalibration + attacks * read + latency,
        standalone_epoch_seconds=steps * step / max(per_step, 1) + forward * len(splits.val),
        standalone_eval_seconds=attacks * evaluated)


def plan_run(model, splits: DatasetSplits, recipe: SupernetTrainConfig, measurer: SubnetMeasurer,
             span: Sequence[Cell], epochs_left: int, subnets_left: int, finalists_left: int = 0) -> RunPlan:
    """Probe this machine (:func:`measure_unit_costs`) and scale the probe by the round's remaining work.

    Args:
        model, splits, recipe, measurer, span: as for :func:`measure_unit_costs`.
        epochs_left: training epochs still to run (0 when the supernet is trained).
        subnets_left: subnets not yet in ``subnets.csv``.
        finalists_left: finalists still to train standalone (the recipe's epochs each, then
            the attacks on val and test).
    """
    costs = measure_unit_costs(model, splits, recipe, measurer, span)
    return RunPlan(epochs_left, subnets_left, finalists_left, recipe.epochs, costs, measurer.finetune_epochs)


def _seconds(work) -> float:
    tic = time.perf_counter()
    work()
    return time.perf_counter() - tic


def minutes_text(seconds: float) -> str:
    """Seconds as a person reads them: ``45 s`` or ``3.2 min``."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
