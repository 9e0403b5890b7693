"""The bi-level search loop shared by every weight-sharing method, with per-epoch checkpoints and α logs.

What the methods (DARTS, GDAS, SNAS, PC-DARTS, DrNAS, SDARTS, RSPS) change in it is in
:mod:`gennas.weightsharing.algorithms`.

Each step first updates α on a batch of the **validation** split (Adam, lr 3e-4, weight
decay 1e-3, β = (0.5, 0.999), as the DARTS paper), then the supernet weights on a batch
of the **train** split (SGD + momentum, cosine lr per epoch). The test split is never
touched: it is kept for reporting the retrained cell. Data order and Gumbel noise come
from one seeded generator on the device, and the checkpoint (written atomically after
every epoch) holds every piece of state the next epoch reads, so a resumed search ends
with the α of an uninterrupted one, bit for bit on CPU.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gennas.config import DictConfig
from gennas.data import DatasetSplits
from gennas.errors import GennasError
from gennas.device import autocast_dtype, resolve_device
from gennas.io import FileFormat, config_differences
from gennas.space.cell import Cell, edge_list
from gennas.space.space import CellSpace
from gennas.train.trainer import augment_batch, dataset_tensors, evaluate_accuracy
from gennas.weightsharing.algorithms import ALGORITHMS as _ALGORITHMS
from gennas.weightsharing.algorithms import Algorithm, resolve_options
from gennas.weightsharing.darts import softmax_weights, unrolled_arch_gradient
from gennas.weightsharing.derive import edge_table, op_mass
from gennas.weightsharing.mixed import FixedWeights, SuperNetwork, build_supernet

#: The algorithms of this loop by config name (the CLI methods are in gennas.search.methods).
ALGORITHMS: tuple[str, ...] = tuple(_ALGORITHMS)
CHECKPOINT_FORMAT = "gennas-weightsharing-checkpoint/1"
CHECKPOINT = FileFormat(CHECKPOINT_FORMAT, "checkpoint")
_RESUMABLE_DIFFERENCES = frozenset({"device"})


@dataclass
class WeightSharingConfig(DictConfig):
    """One weight-sharing search. Defaults follow NAS-Bench-201's DARTS/GDAS settings, scaled to small data.

    ``order`` is DARTS's 1 (first order) or 2 (unrolled); every other method is first order.
    ``max_steps`` caps the steps per epoch (quick runs and tests). ``amp`` only matters
    on CUDA (bf16 autocast where supported, else fp32). ``options`` are the method's own
    knobs (:class:`~gennas.weightsharing.algorithms.Knob`); missing ones take their
    defaults, so the config (and the checkpoint) holds every value the search used.
    """

    config_kind = "weight-sharing search"

    method: str = "darts"
    order: int = 1
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    tau_max: float = 10.0
    tau_min: float = 0.1
    channels: int = 16
    cells_per_stage: int = 2
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.method not in ALGORITHMS:
            problems.append(f"method must be one of {', '.join(ALGORITHMS)} (got {self.method!r})")
        else:
            self.options, wrong = resolve_options(self.method, dict(self.options), self.channels)
            problems += wrong
        if self.order not in (1, 2):
            problems.append(f"order must be 1 (first order) or 2 (unrolled second order), got {self.order!r}")
        if self.method != "darts" and self.order != 1:
            problems.append(f"{self.method.upper()} is first order only (order=1)")
        for name in ("epochs", "batch_size", "channels", "cells_per_stage"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be an integer >= 1 (got {value!r})")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            problems.append(f"max_steps must be None or an integer >= 1 (got {self.max_steps!r})")
        for name in ("lr", "arch_lr", "grad_clip", "tau_min"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0 (got {getattr(self, name)!r})")
        if not 0 <= self.lr_min <= self.lr:
            problems.append(f"lr_min must be in [0, lr] (got {self.lr_min!r})")
        if not self.tau_max >= self.tau_min:
            problems.append(f"tau_max must be >= tau_min (got {self.tau_max!r} < {self.tau_min!r})")
        if problems:
            raise GennasError("invalid weight-sharing config: " + "; ".join(problems))

    @property
    def label(self) -> str:
        """``darts-1st``, ``darts-2nd``, else the method (``gdas``, ``snas``, ...): the name results are reported under."""
        return f"darts-{'1st' if self.order == 1 else '2nd'}" if self.method == "darts" else self.method

    @property
    def algorithm(self) -> Algorithm:
        return _ALGORITHMS[self.method]


@dataclass
class WeightSharingResult:
    """The derived cell, α after the last epoch and the per-epoch trajectory."""

    cell: Cell
    label: str
    trajectory: list[dict[str, Any]]
    seconds: float
    stopped: str
    config: dict[str, Any] = field(default_factory=dict)
    alpha: list[list[float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.label, "arch": self.cell.to_string(), "seconds": self.seconds,
                "epochs": len(self.trajectory), "stopped": self.stopped, "alpha": self.alpha,
                "trajectory": self.trajectory, "config": self.config}


@dataclass
class _State:
    """Everything that evolves during a search and therefore goes into a checkpoint."""

    model: SuperNetwork
    w_opt: torch.optim.SGD
    a_opt: torch.optim.Adam
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    trajectory: list[dict[str, Any]]

    def payload(self, config: WeightSharingConfig, fingerprint: dict[str, Any]) -> dict[str, Any]:
        return {"config": config.to_dict(), "data": fingerprint,
                "epoch": len(self.trajectory), "trajectory": self.trajectory, "model": self.model.state_dict(),
                "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(),
                "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
                "global_rng": _global_rng_state(self.generator.device)}

    def restore(self, payload: dict[str, Any], path: Path) -> None:
        try:
            self.model.load_state_dict(payload["model"])
            self.w_opt.load_state_dict(payload["w_opt"])
            self.a_opt.load_state_dict(payload["a_opt"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.generator.set_state(payload["generator"].to(self.generator.get_state().device))
            if "global_rng" in payload:  # absent from checkpoints of searches that never drew from it
                _set_global_rng_state(payload["global_rng"], self.generator.device)
            self.trajectory = [dict(r) for r in payload["trajectory"]]
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise GennasError(f"checkpoint {path} does not fit this search ({type(exc).__name__}: {exc}); "
                              "delete it to search from scratch, or pass another checkpoint path") from exc


def _global_rng_state(device: torch.device) -> torch.Tensor:
    """torch's global generator of ``device`` (DrNAS's Dirichlet sampler draws from it; it takes no generator)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_global_rng_state(state: torch.Tensor, device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state.cpu(), device)
    else:
        torch.set_rng_state(state.cpu())


def _fingerprint(splits: DatasetSplits, space: CellSpace) -> dict[str, Any]:
    return {"name": splits.name, "train_size": len(splits.train), "val_size": len(splits.val),
            "num_classes": splits.num_classes, "space": space.name, "ops": list(space.ops)}


def _load_checkpoint(path: Path, config: WeightSharingConfig, fingerprint: dict[str, Any]) -> dict[str, Any]:
    payload = CHECKPOINT.load(path, "rerun: the search starts from scratch",
                              f"{path} is not a gennas weight-sharing checkpoint ({CHECKPOINT_FORMAT}); delete it or "
                              "pass another checkpoint path")
    diff = config_differences(payload.get("config", {}), config.to_dict(), _RESUMABLE_DIFFERENCES)
    if diff or payload.get("data") != fingerprint:
        what = "; ".join(diff) if diff else f"data {payload.get('data')} vs {fingerprint}"
        raise GennasError(f"checkpoint {path} was written by another search ({what}); delete it to start over")
    return payload


def load_supernet(path: str | Path, splits: DatasetSplits, space: CellSpace, config: WeightSharingConfig
                  ) -> SuperNetwork:
    """The supernet (weights and α) of a search's checkpoint, on the CPU, for scoring cells with shared weights."""
    path = Path(path)
    payload = _load_checkpoint(path, config, _fingerprint(splits, space))
    model = build_supernet(space, splits, config.channels, config.cells_per_stage,
                           config.algorithm.network(config.options))
    model.load_state_dict({k: v.cpu() for k, v in payload["model"].items()})
    return model


def search_cell(
    splits: DatasetSplits,
    space: CellSpace,
    config: WeightSharingConfig | None = None,
    *,
    checkpoint_path: str | Path | None = None,
    progress: bool = False,
    deadline: float | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> WeightSharingResult:
    """Run the weight-sharing method ``config.method`` on ``splits`` over ``space``; the derived cell and α trajectory.

    ``deadline`` (a :func:`time.monotonic` instant) stops before an epoch that would start
    after it; the cell is then derived from α as it stands. The first epoch always runs: a
    cell derived from untrained α would be a guess reported as a search result (under load,
    the timing pilot alone could use up a small budget). ``on_epoch_end`` gets each
    epoch's record after its checkpoint is written (raise from it to stop).
    """
    config = config or WeightSharingConfig()
    device = resolve_device(config.device)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    fingerprint = _fingerprint(splits, space)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        torch.manual_seed(config.seed)
        model = build_supernet(space, splits, config.channels, config.cells_per_stage,
                               config.algorithm.network(config.options)).to(device)
        w_opt = torch.optim.SGD(model.weight_parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
        a_opt = config.algorithm.arch_optimizer(model.arch_parameters(), config)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=config.epochs, eta_min=config.lr_min)
        generator = torch.Generator(device=device)
        generator.manual_seed(config.seed)
        state = _State(model, w_opt, a_opt, scheduler, generator, [])
        if path is not None and path.exists():
            state.restore(_load_checkpoint(path, config, fingerprint), path)
        stopped = "epochs"
        data = _DeviceData(splits, device)
        first = len(state.trajectory)
        with tqdm(total=config.epochs, initial=first, disable=not progress, desc=config.label, unit="epoch") as bar:
            for epoch in range(first, config.epochs):
                if deadline is not None and epoch > 0 and time.monotonic() >= deadline:
                    stopped = "time budget"
                    break
                record = _epoch(state, data, space, config, epoch, device, splits)
                bar.update(1)
                bar.set_postfix(val=f"{record['supernet_val_accuracy']:.1f}%", cell=record["arch"][:40])
                if path is not None:
                    CHECKPOINT.save(path, state.payload(config, fingerprint))
                if on_epoch_end is not None:
                    on_epoch_end(dict(record))
    alpha = state.model.alpha.detach().float().cpu()
    return WeightSharingResult(
        cell=config.algorithm.derive(state.model, space, config.options), label=config.label, trajectory=state.trajectory,
        seconds=sum(r["seconds"] for r in state.trajectory),
        stopped=stopped, config=config.to_dict(), alpha=[[round(v, 6) for v in row] for row in alpha.tolist()],
    )


class _DeviceData:
    """Train and validation tensors on the device; seeded index streams per epoch."""

    def __init__(self, splits: DatasetSplits, device: torch.device) -> None:
        self.x_train, self.y_train = (t.to(device) for t in dataset_tensors(splits.train))
        self.x_val, self.y_val = (t.to(device) for t in dataset_tensors(splits.val))
        if len(self.y_train) < 2 or len(self.y_val) < 2:
            raise GennasError("weight-sharing search needs at least 2 train and 2 validation images (α is fitted on the "
                              f"validation split); got {len(self.y_train)} and {len(self.y_val)}")
        self.augment = splits.augment

    def batches(self, batch_size: int, max_steps: int | None, generator: torch.Generator):
        """(train batch, val batch) pairs: one pass over train, the val split cycled alongside."""
        n, nv = len(self.y_train), len(self.y_val)
        bs = min(batch_size, n)
        steps = max(1, n // bs)  # drop the ragged tail: a batch of one breaks BatchNorm
        steps = min(steps, max_steps) if max_steps else steps
        order = torch.randperm(n, device=self.x_train.device, generator=generator)
        vbs = min(bs, nv)
        repeats = math.ceil(steps * vbs / nv)
        val_order = torch.cat([torch.randperm(nv, device=self.x_val.device, generator=generator) for _ in range(repeats)])
        for step in range(steps):
            t = order[step * bs:(step + 1) * bs]
            v = val_order[step * vbs:(step + 1) * vbs]
            yield (self.x_train[t], self.y_train[t]), (self.x_val[v], self.y_val[v])


class _Step:
    """The two alternating steps of one epoch (its schedule and lr fixed); the context an algorithm reads."""

    def __init__(self, state: _State, config: WeightSharingConfig, epoch: int, device: torch.device) -> None:
        self.state, self.config, self.model = state, config, state.model
        self.algorithm, self.options, self.generator = config.algorithm, config.options, state.generator
        self.epoch, self.config, self.arch_optimizer, self.memo = epoch, config, state.a_opt, {}
        amp = autocast_dtype(config.amp, device, fallback=None)  # no GradScaler needed for α's tiny steps
        self.autocast = (lambda: torch.autocast(device.type, dtype=amp)) if amp else contextlib.nullcontext
        self.schedule = self.algorithm.schedule(epoch, config.epochs, config)
        self.lr = state.w_opt.param_groups[0]["lr"]

    def loss(self, weights: torch.Tensor, chosen: list[int] | None, batch: tuple[torch.Tensor, torch.Tensor]
             ) -> torch.Tensor:
        """Cross-entropy of ``batch`` under the edge weights (forward in autocast, the loss in fp32)."""
        with self.autocast():
            logits = self.model(batch[0], weights, chosen)
        return F.cross_entropy(logits.float(), batch[1])

    def arch(self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]) -> float | None:
        """α step on the validation batch (unrolled for second order), plus the method's penalty; its loss.

        None for a method without α steps (RSPS).
        """
        model, config = self.model, self.config
        if not self.algorithm.steps_alpha(self):
            return None
        self.state.a_opt.zero_grad(set_to_none=True)
        if config.order == 2:
            params = model.weight_parameters()
            buffers = [self.state.w_opt.state.get(p, {}).get("momentum_buffer") for p in params]
            model.alpha.grad, arch_loss = unrolled_arch_gradient(
                model.alpha, params, lambda: _fp32_loss(model, train), lambda: _fp32_loss(model, val),
                xi=self.lr, momentum=config.momentum, weight_decay=config.weight_decay, momentum_buffers=buffers)
        else:
            total, arch_loss = self.algorithm.arch_loss(self, val)
            arch = model.arch_parameters()
            for p, g in zip(arch, torch.autograd.grad(total, arch, allow_unused=True)):
                p.grad = torch.zeros_like(p) if g is None else g
        self.state.a_opt.step()
        self.algorithm.after_arch_step(self)
        return arch_loss

    def weights(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight step on the train batch with α held fixed; (loss, logits)."""
        self.state.w_opt.zero_grad(set_to_none=True)
        weights, chosen = self.algorithm.train_weights(self, (xb, yb))
        with self.autocast():
            logits = self.model(xb, weights, chosen)
        loss = F.cross_entropy(logits.float(), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.weight_parameters(), self.config.grad_clip)
        self.state.w_opt.step()
        return loss, logits


def _epoch(state: _State, data: _DeviceData, space: CellSpace, config: WeightSharingConfig, epoch: int,
           device: torch.device, splits: DatasetSplits) -> dict[str, Any]:
    """One epoch of alternating α and weight steps; appends and returns the epoch's record."""
    tic = time.perf_counter()
    model = state.model
    model.train()
    step = _Step(state, config, epoch, device)
    sums = {"train_loss": 0.0, "arch_loss": 0.0, "arch_seen": 0, "correct": 0, "seen": 0, "steps": 0}
    for (xb, yb), val in data.batches(config.batch_size, config.max_steps, state.generator):
        if data.augment:
            xb = augment_batch(xb, state.generator)
        arch_loss = step.arch((xb, yb), val)
        loss, logits = step.weights(xb, yb)
        sums["train_loss"] += loss.item() * len(yb)
        if arch_loss is not None:
            sums["arch_loss"] += arch_loss * len(yb)
            sums["arch_seen"] += len(yb)
        sums["correct"] += int((logits.detach().argmax(1) == yb).sum())
        sums["seen"] += len(yb)
        sums["steps"] += 1
    state.scheduler.step()
    train_seconds = time.perf_counter() - tic  # what scales with the steps (plan_epochs reads it so)
    extra = config.algorithm.end_epoch(step, (data.x_val, data.y_val), space)
    if not math.isfinite(sums["train_loss"]) or not all(torch.isfinite(p).all() for p in model.arch_parameters()):
        raise GennasError(f"{config.label} diverged in epoch {epoch + 1} (non-finite loss or α); lower lr or arch_lr")
    probabilities = edge_table(config.algorithm.distribution(model), space)
    record = {
        "epoch": epoch + 1, "train_loss": sums["train_loss"] / sums["seen"],
        "train_accuracy": 100.0 * sums["correct"] / sums["seen"],
        "arch_loss": sums["arch_loss"] / sums["arch_seen"] if sums["arch_seen"] else None,
        "supernet_val_accuracy": _supernet_accuracy(model, splits, config, device), "lr": step.lr,
        **step.schedule, **extra, **_edge_scale_record(model, space),
        "arch": config.algorithm.derive(model, space, config.options).to_string(), "op_mass": op_mass(probabilities),
        "alpha_softmax": probabilities, "steps": sums["steps"], "train_seconds": train_seconds,
        "seconds": time.perf_counter() - tic,
    }
    state.trajectory.append(record)
    return record


def _edge_scale_record(model: SuperNetwork, space: CellSpace) -> dict[str, Any]:
    """PC-DARTS's edge normalisation per edge (``"src->dst"``), for the log; {} for supernets without one."""
    with torch.no_grad():
        scale = model.edge_scale()
    if scale is None:
        return {}
    return {"edge_scale": {f"{s}->{d}": round(float(v), 5) for (s, d), v in zip(edge_list(space.n_nodes), scale)}}


def _fp32_loss(model: SuperNetwork, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(model(batch[0], *softmax_weights(model.alpha)), batch[1])


def _supernet_accuracy(model: SuperNetwork, splits: DatasetSplits, config: WeightSharingConfig,
                       device: torch.device) -> float:
    """Validation accuracy of the supernet as the method reads it (the mixture for DARTS, the argmax path for GDAS...)."""
    with torch.no_grad():
        weights, chosen = config.algorithm.eval_weights(model)
    return evaluate_accuracy(FixedWeights(model, weights.detach(), chosen), splits.val, device)
