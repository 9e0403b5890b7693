"""Train a supernet once so that every subnet is usable: several subnets share every step.

Each step trains, on the same batch (summed losses, one optimizer step), the smallest
subnet and ``random_subnets`` sampled ones: each is one of the cells the supernet was
built from (the Pareto-near cells users are most likely to deploy) with probability
``source_prob``, else uniform among all reachable subnets. Why this recipe: it is the
lower half of the sandwich rule (Yu & Huang 2019; BigNAS; Once-for-All). The smallest
subnet shares almost nothing but the skeleton and is the first to collapse when left
out; the "largest" (the most expensive op on every edge) is a union nobody deploys, and
in-place distillation from it did not pay for its cost (the comparison against
standalone training is in the supernet benchmark's results of commit 568dcac). The full sandwich stays
available (``largest``, ``distill``). BN statistics are shared during training and recalibrated per subnet
before measurement (:mod:`gennas.supernet.measure`).

Everything else is the standalone trainer's: SGD + cosine, the same data order and
augmentation, AMP on CUDA, an atomic checkpoint per epoch and exact resume. Launched
under ``torchrun`` it trains data-parallel with DistributedDataParallel (NCCL on GPUs,
gloo on CPU): every rank draws the same subnets and takes its share of each batch.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gennas.data import DatasetSplits
from gennas.errors import GennasError
from gennas.space.cell import Cell
from gennas.supernet.measure import recalibrate_bn
from gennas.supernet.model import Supernet
from gennas.supernet.subnets import SubnetSpace
from gennas.device import autocast_dtype, resolve_device
from gennas.train.trainer import (
    TrainConfig,
    TrainingRun,
    augment_batch,
    dataset_tensors,
    evaluate_accuracy,
    steps_per_epoch,
    training_run,
)


@dataclass
class SupernetTrainConfig(TrainConfig):
    """The standalone recipe plus the sandwich: how many subnets share each step and how."""

    config_kind = "supernet training"

    random_subnets: int = 3
    largest: bool = False
    smallest: bool = True
    distill: bool = True
    source_prob: float = 0.25

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.random_subnets, int) or self.random_subnets < 0:
            raise GennasError(f"random_subnets must be an integer >= 0 (got {self.random_subnets!r})")
        if not (self.largest or self.smallest or self.random_subnets):
            raise GennasError("a step must train at least one subnet: enable largest or smallest, or set random_subnets >= 1")
        if not 0 <= self.source_prob <= 1:
            raise GennasError(f"source_prob must be in [0, 1] (got {self.source_prob!r})")


class SubnetSampler:
    """The subnets of one step, a pure function of (seed, epoch, step): resume and ranks agree."""

    def __init__(self, space: SubnetSpace, network, config: SupernetTrainConfig) -> None:
        self.space, self.config = space, config
        self.largest = space.largest()
        self.smallest = space.smallest(network)

    def __call__(self, epoch: int, step: int) -> list[Cell]:
        rng = np.random.default_rng([self.config.seed, epoch, step])
        cells = ([self.largest] if self.config.largest else []) + ([self.smallest] if self.config.smallest else [])
        for _ in range(self.config.random_subnets):
            if rng.random() < self.config.source_prob:
                cells.append(self.space.sources[rng.integers(len(self.space.sources))])
            else:
                cells.append(self.space.sample(rng))
        return cells


class SandwichLoss(nn.Module):
    """One forward over the step's subnets, so DistributedDataParallel sees one forward and one backward."""

    def __init__(self, model: nn.Sequential, distill: bool, label_smoothing: float) -> None:
        """With ``distill`` every subnet after the first learns from the first's predictions (the largest's)."""
        super().__init__()
        self.model = model
        self.distill = distill
        self.label_smoothing = label_smoothing

    @property
    def supernet(self) -> Supernet:
        return self.model[-1]

    def forward(self, x: torch.Tensor, y: torch.Tensor, subnets: list[Cell],
                amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
        total, teacher, first = None, None, None
        autocast = torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        for i, cell in enumerate(subnets):
            self.supernet.activate(cell)
            with autocast:
                logits = self.model(x)
            logits = logits.float()
            if i == 0 or not self.distill:
                loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
            else:
                loss = F.kl_div(F.log_softmax(logits, 1), F.softmax(teacher, 1), reduction="batchmean")
            if i == 0:
                teacher, first = logits.detach(), logits.detach()
            total = loss if total is None else total + loss
        self.supernet.activate(subnets[0])
        return total, first


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def rank_zero_first() -> Iterator[None]:
    """Rank 0 runs the block first and the other ranks after it (they then read what it wrote).

    Outside torchrun the block simply runs.
    """
    rank, world = rank_and_world()
    if world > 1 and rank > 0:
        dist.barrier()  # wait for rank 0
    yield
    if world > 1 and rank == 0:
        dist.barrier()  # release the others


def init_distributed(device: str) -> torch.device:
    """Join the process group ``torchrun`` describes (NCCL for CUDA, gloo for CPU); one device per rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return resolve_device(device)
    target = resolve_device(device)
    if target.type == "cuda":
        target = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(target)
    dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
    return target


def train_supernet(
    supernet: Supernet,
    model: nn.Sequential,
    splits: DatasetSplits,
    config: SupernetTrainConfig,
    *,
    checkpoint_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` (``Normalize`` + ``supernet``) in place; returns the per-epoch history.

    Resumes from ``checkpoint_path`` when it exists (same config and data), writing it
    atomically after every epoch (rank 0 only under torchrun).
    """
    config.validate()
    rank, world = rank_and_world()
    device = resolve_device(config.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    model.to(device)
    x_train, y_train = (t.to(device) for t in dataset_tensors(splits.train))
    steps = steps_per_epoch(len(y_train), config.batch_size)
    amp_dtype = autocast_dtype(config.amp, device)
    sampler = SubnetSampler(supernet.subnets, supernet.config, config)
    step_loss = SandwichLoss(model, config.distill and config.largest, config.label_smoothing)
    if world > 1:
        step_loss = nn.parallel.DistributedDataParallel(
            step_loss, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    with training_run(model, splits, config, steps, device, path) as run:
        start = len(run.history)
        # The bar counts steps, not epochs: one epoch on a large dataset can take minutes.
        with tqdm(total=config.epochs * steps, initial=start * steps, disable=not progress or rank > 0,
                  desc="supernet", unit="step") as bar:
            for epoch in range(start, config.epochs):
                bar.set_description(f"supernet epoch {epoch + 1}/{config.epochs}")
                record = _epoch(run, step_loss, supernet, sampler, epoch, x_train, y_train, config, steps, splits,
                                amp_dtype, rank, world, on_step=lambda: bar.update(1))
                bar.set_postfix(loss=f"{record['train_loss']:.3f}", largest=f"{record['val_accuracy_largest']:.1f}%")
                if path is not None and rank == 0:
                    run.save(path, config, splits)
                if on_epoch_end is not None:
                    on_epoch_end(dict(record))
    model.eval()
    return run.history


def _epoch(run: TrainingRun, step_loss: nn.Module, supernet: Supernet, sampler: SubnetSampler, epoch: int,
           x: torch.Tensor, y: torch.Tensor, config: SupernetTrainConfig, steps: int, splits: DatasetSplits,
           amp_dtype: torch.dtype | None, rank: int, world: int,
           on_step: Callable[[], None] = lambda: None) -> dict[str, float]:
    tic = time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]
    run.model.train()
    order = torch.randperm(len(y), device=run.device, generator=run.generator)
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    seen = 0
    for step in range(steps):
        index = order[step * config.batch_size:(step + 1) * config.batch_size]
        xb, yb = x[index], y[index]
        if splits.augment:
            xb = augment_batch(xb, run.generator)
        if world > 1:
            xb, yb = xb[rank::world], yb[rank::world]
        loss, _ = step_loss(xb, yb, sampler(epoch, step), amp_dtype)
        run.optimizer_step(loss, config.grad_clip)
        loss_sum += loss.detach().double() * len(yb)
        seen += len(yb)
        on_step()
    if world > 1:  # DDP syncs gradients, not BN statistics: make every rank hold rank 0's
        for buffer in run.model.buffers():
            dist.broadcast(buffer, 0)
    mean_loss = loss_sum.item() / max(seen, 1)
    if not np.isfinite(mean_loss):
        raise GennasError(f"supernet training diverged in epoch {epoch + 1} (loss {mean_loss}); lower lr or disable amp")
    record = {"epoch": epoch + 1, "train_loss": mean_loss, "lr": lr}
    # Progress on two fixed subnets, each with BN recalibrated on 512 training images: the
    # shared running statistics belong to no subnet and would report near-chance accuracy.
    for name, cell in (("largest", sampler.largest), ("smallest", sampler.smallest)):
        with supernet.subnet(cell):
            recalibrate_bn(run.model, splits, images=512)
            record[f"val_accuracy_{name}"] = evaluate_accuracy(run.model, splits.val, run.device)
    record["seconds"] = time.perf_counter() - tic
    run.history.append(record)
    return record


def time_training_step(model: nn.Sequential, splits: DatasetSplits, config: SupernetTrainConfig,
                       repeats: int = 4) -> float:
    """Seconds of one training step (the sandwich's forwards and backwards, no optimizer step).

    Runs on a copy of ``model`` under a forked RNG, so the run that follows computes exactly
    what it would have without the probe. The first of ``repeats`` steps warms up and is not timed;
    the median of the others is returned (each step trains other sampled subnets).
    """
    device = resolve_device(config.device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        probe = copy.deepcopy(model).to(device).train()
        supernet: Supernet = probe[-1]
        sampler = SubnetSampler(supernet.subnets, supernet.config, config)
        step_loss = SandwichLoss(probe, config.distill and config.largest, config.label_smoothing)
        x, y = dataset_tensors(splits.train)
        xb, yb = x[:config.batch_size].to(device), y[:config.batch_size].to(device)
        amp_dtype = autocast_dtype(config.amp, device)
        times = []
        for step in range(max(repeats, 2)):
            tic = time.perf_counter()
            loss, _ = step_loss(xb, yb, sampler(0, step), amp_dtype)
            loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - tic)
    return float(np.median(times[1:]))
