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
from gennas.supernet.measure import SubnetMeasurer
from gennas.supernet.train import SupernetTrainConfig, time_training_step
from gennas.train.trainer import steps_per_epoch

#: Images the training loop's per-epoch progress check recalibrates BN on (two subnets).
EPOCH_CHECK_IMAGES = 512


@dataclass(frozen=True)
class RunPlan:
    """The work left in a run and the probe's seconds per unit of it."""

    epochs_left: int
    steps_per_epoch: int
    subnets_per_step: int
    subnets_left: int
    step_seconds: float
    epoch_check_seconds: float
    subnet_seconds: float
    finalists_left: int = 0
    standalone_seconds: float = 0.0

    @property
    def training_seconds(self) -> float:
        return self.epochs_left * (self.steps_per_epoch * self.step_seconds + self.epoch_check_seconds)

    @property
    def measurement_seconds(self) -> float:
        """The subnets left, plus the example export, which is measured once more."""
        return (self.subnets_left + 1) * self.subnet_seconds

    @property
    def verification_seconds(self) -> float:
        return self.finalists_left * self.standalone_seconds

    @property
    def total_seconds(self) -> float:
        return self.training_seconds + self.measurement_seconds + self.verification_seconds

    def describe(self) -> str:
        """Two lines for the console: the plan, then the estimate with what it rests on."""
        work = (f"plan: train the supernet {self.epochs_left} more epoch(s) x {self.steps_per_epoch} steps "
                f"({self.subnets_per_step} subnets per step), measure {self.subnets_left} subnet(s), retrain "
                f"{self.finalists_left} finalist(s) standalone and export the example pick")
        estimate = (f"estimate: about {_minutes(self.total_seconds)} (training {_minutes(self.training_seconds)}, "
                    f"measurement {_minutes(self.measurement_seconds)}, verification "
                    f"{_minutes(self.verification_seconds)}; probe on this machine: "
                    f"{self.step_seconds:.3g} s per step, {self.subnet_seconds:.3g} s per subnet)")
        return work + "\n" + estimate

    def to_dict(self) -> dict:
        return {**asdict(self), "training_seconds": self.training_seconds,
                "measurement_seconds": self.measurement_seconds, "verification_seconds": self.verification_seconds,
                "total_seconds": self.total_seconds}


def plan_run(model, splits: DatasetSplits, recipe: SupernetTrainConfig, measurer: SubnetMeasurer,
             span: Sequence[Cell], epochs_left: int, subnets_left: int, finalists_left: int = 0) -> RunPlan:
    """Probe this machine and scale the probe by the run's remaining work.

    Args:
        model: ``Normalize`` + supernet, on the run's device.
        splits: the run's data.
        recipe: the supernet training recipe (batch size, subnets per step).
        measurer: the run's subnet measurer (its attack and BN-recalibration settings).
        span: subnets that span the measured cost range (the smallest and the largest): the
            measurement of one subnet is timed on each (a few images, one latency reading)
            and averaged.
        epochs_left: training epochs still to run (0 when the supernet is trained).
        subnets_left: subnets not yet in ``subnets.csv``.
        finalists_left: finalists still to train standalone (one subnet per step, the
            epochs of the supernet, then the attacks on val and test).
    """
    steps = steps_per_epoch(len(splits.train), recipe.batch_size)
    step = time_training_step(model, splits, recipe) if epochs_left else 0.0
    timings = [measurer.time_per_image(cell) for cell in span]
    forward, attacks = (float(np.mean(t)) for t in zip(*timings))
    device = next(measurer.model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # a reading draws its input
        latency = float(np.mean([_seconds(lambda c=cell: measurer.latency(c)) for cell in span]))
    recalibration = min(measurer.recalibration_images, len(splits.train))
    evaluated = len(splits.val) + len(splits.test)
    epoch_check = 2 * forward * (min(EPOCH_CHECK_IMAGES, len(splits.train)) + len(splits.val))
    per_subnet = forward * recalibration + attacks * evaluated + latency
    per_step = int(recipe.largest) + int(recipe.smallest) + recipe.random_subnets
    if finalists_left and not step:
        step = time_training_step(model, splits, recipe)
    standalone_epoch = steps * step / max(per_step, 1) + forward * len(splits.val)
    standalone = recipe.epochs * standalone_epoch + attacks * evaluated
    return RunPlan(epochs_left, steps, per_step, subnets_left, step, epoch_check, per_subnet, finalists_left, standalone)


def _seconds(work) -> float:
    tic = time.perf_counter()
    work()
    return time.perf_counter() - tic


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
