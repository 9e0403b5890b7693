"""Train a network on in-memory :class:`~gennas.data.DatasetSplits`.

The datasets are small tensors that fit on the device, so batches are slices of a
seeded permutation taken on the device: no DataLoader workers, no host round-trips,
and the whole data order is a function of the seed. That is what makes a run
reproducible bit for bit on CPU and lets an interrupted run resume *exactly*: the
checkpoint holds every piece of state the next epoch reads (weights, optimizer,
scheduler, grad scaler, RNG states).

On CUDA the step runs under autocast (bf16 where supported, else fp16 with a
GradScaler); on CPU everything stays fp32. Models take [0, 1] images; normalisation
is the first layer (:func:`with_normalization`) so attacks can clamp in pixel space.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from gennas.config import DictConfig
from gennas.errors import GennasError
from gennas.device import autocast_dtype, model_device, resolve_device
from gennas.io import FileFormat, config_differences
from gennas.seeds import RESUME_STRIDE, derive_seed

if TYPE_CHECKING:
    from gennas.data import DatasetSplits

SCHEDULERS: tuple[str, ...] = ("cosine", "constant")
CHECKPOINT_FORMAT = "gennas-train-checkpoint/1"
CHECKPOINT = FileFormat(CHECKPOINT_FORMAT, "checkpoint")
#: Config fields that may differ between a checkpoint and the run resuming it.
_RESUMABLE_DIFFERENCES = frozenset({"device"})


# -------------------------------------------------------------------- config
@dataclass
class TrainConfig(DictConfig):
    """Hyper-parameters of one training run (SGD + Nesterov + cosine by default).

    ``amp`` only matters on CUDA. ``grad_clip`` (max global grad norm) guards the
    random architectures of a search against the occasional exploding step.
    """

    config_kind = "training"

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`GennasError` for a value training cannot use."""
        problems = []
        if not isinstance(self.epochs, int) or self.epochs < 1:
            problems.append(f"epochs must be an integer >= 1 (got {self.epochs!r})")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            problems.append(f"batch_size must be an integer >= 1 (got {self.batch_size!r})")
        if not self.lr > 0:
            problems.append(f"lr must be > 0 (got {self.lr!r})")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1) (got {self.momentum!r})")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay!r})")
        if self.scheduler not in SCHEDULERS:
            problems.append(f"scheduler must be one of {', '.join(SCHEDULERS)} (got {self.scheduler!r})")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1) (got {self.label_smoothing!r})")
        if self.grad_clip is not None and not self.grad_clip > 0:
            problems.append(f"grad_clip must be > 0 or None to disable clipping (got {self.grad_clip!r})")
        if not isinstance(self.seed, int):
            problems.append(f"seed must be an integer (got {self.seed!r})")
        if problems:
            raise GennasError("invalid training config: " + "; ".join(problems))


@dataclass
class TrainResult:
    """The trained model (on ``device``, in eval mode) and the per-epoch history.

    ``seconds`` is the wall time of all epochs in ``history``, including those run
    before a resume, so it measures the cost of training the model.
    """

    model: nn.Module
    history: list[dict[str, float]]
    seconds: float
    device: str

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy (percent) after the last epoch."""
        return self.history[-1]["val_accuracy"] if self.history else float("nan")


# ------------------------------------------------------------- normalisation
class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as a layer, so models take [0, 1] images."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if not mean or len(mean) != len(std):
            raise GennasError(f"Normalize needs one mean and one std per channel, got {len(mean)} and {len(std)}")
        if any(not s > 0 for s in std):
            raise GennasError(f"Normalize std values must be > 0, got {tuple(std)}")
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={tuple(round(v, 4) for v in self.mean.flatten().tolist())}, std={tuple(round(v, 4) for v in self.std.flatten().tolist())}"


def with_normalization(net: nn.Module, splits: DatasetSplits) -> nn.Sequential:
    """``net`` preceded by :class:`Normalize` with the train-split statistics."""
    return nn.Sequential(Normalize(splits.mean, splits.std), net)


# ---------------------------------------------------------------- data utils
def dataset_tensors(dataset: TensorDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The (images, labels) tensors behind a split of :class:`DatasetSplits`."""
    if not isinstance(dataset, TensorDataset) or len(dataset.tensors) < 2:
        raise GennasError(
            f"expected a TensorDataset of (images, labels) such as DatasetSplits.train, got {type(dataset).__name__}"
        )
    return dataset.tensors[0], dataset.tensors[1]


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip, per image, on the device.

    Done with one gather instead of a per-image loop, so it costs about as much as
    copying the batch.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    cropped = padded[batch, channel, rows, cols]
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then restore each module's own mode."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    dataset: TensorDataset,
    device: str | torch.device | None = None,
    batch_size: int = 512,
) -> float:
    """Top-1 accuracy in percent (0-100), in eval mode, without gradients.

    ``device=None`` evaluates where the model already is; otherwise the model is
    moved to ``device`` first.
    """
    x, y = dataset_tensors(dataset)
    if len(y) == 0:
        raise GennasError("cannot evaluate accuracy on an empty dataset")
    if batch_size < 1:
        raise GennasError(f"batch_size must be >= 1, got {batch_size}")
    target = model_device(model) if device is None else resolve_device(device)
    model.to(target)
    correct = torch.zeros((), dtype=torch.int64, device=target)
    with eval_mode(model):
        for start in range(0, len(y), batch_size):
            xb = x[start : start + batch_size].to(target, non_blocking=True)
            yb = y[start : start + batch_size].to(target, non_blocking=True)
            correct += (model(xb).argmax(dim=1) == yb).sum()
    return 100.0 * correct.item() / len(y)


# ------------------------------------------------------------------ training
def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch; a trailing batch of a single image is dropped.

    BatchNorm cannot normalise a batch of one in training mode, and the image is
    seen again in another epoch's permutation anyway.
    """
    return max(1, n // batch_size + (1 if n % batch_size > 1 else 0))


def _lr_factor(scheduler: str, total_steps: int) -> Callable[[int], float]:
    if scheduler == "constant":
        return lambda step: 1.0
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


@dataclass
class TrainingRun:
    """Everything that evolves during training and therefore goes into a checkpoint.

    Standalone and supernet training both step through one of these (from :func:`training_run`),
    so both checkpoint and resume the same exact way.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    device: torch.device
    history: list[dict[str, float]]

    def optimizer_step(self, loss: torch.Tensor, grad_clip: float | None) -> None:
        """Backward (scaled under fp16 AMP), optional global-norm clipping, step, schedule."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    def rng_state(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {"device_type": self.device.type, "generator": self.generator.get_state(), "cpu": torch.get_rng_state(), "cuda": cuda}

    def seed_global(self, seed: int) -> None:
        """Seed the global RNGs that layers such as dropout draw from, on our device only."""
        torch.default_generator.manual_seed(seed)
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                torch.cuda.manual_seed(seed)

    def restore_rng(self, state: Mapping[str, Any], seed: int, epoch: int) -> None:
        if state.get("device_type") == self.device.type:
            self.generator.set_state(state["generator"])
            torch.set_rng_state(state["cpu"])
            if state.get("cuda") is not None:
                torch.cuda.set_rng_state(state["cuda"], self.device)
        else:
            # Another device type's generator state cannot be transplanted; continue
            # from a fresh stream that is still a pure function of (seed, epoch).
            self.generator.manual_seed(derive_seed(seed, epoch, stride=RESUME_STRIDE))
            self.seed_global(derive_seed(seed, epoch, stride=RESUME_STRIDE))

    def save(self, path: Path, config: TrainConfig, splits: DatasetSplits) -> None:
        """Write the whole state atomically, with a content hash checked on resume."""
        CHECKPOINT.save(path, {
            "config": config.to_dict(), "data": _data_fingerprint(splits), "epoch": len(self.history),
            "history": self.history, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": self.rng_state(),
        })


@contextlib.contextmanager
def training_run(model: nn.Module, splits: DatasetSplits, config: TrainConfig, steps: int, device: torch.device,
                 path: Path | None) -> Iterator[TrainingRun]:
    """The state of one training run (SGD + schedule + scaler + data generator), seeded, resumed
    from ``path`` when it exists, with the caller's global RNG state forked away for the block.

    Shared by standalone and supernet training, so both resume the same exact way.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=config.nesterov and config.momentum > 0, weight_decay=config.weight_decay)
    run = TrainingRun(
        model=model,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config.scheduler, config.epochs * steps)),
        scaler=torch.amp.GradScaler(device.type, enabled=autocast_dtype(config.amp, device) == torch.float16),
        generator=torch.Generator(device=device),
        device=device,
        history=[],
    )
    cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices, device_type="cuda"):
        run.seed_global(config.seed)
        run.generator.manual_seed(config.seed)
        if path is not None and path.exists():
            _resume(run, path, config, splits)
        yield run


def train_model(
    model: nn.Module,
    splits: DatasetSplits,
    config: TrainConfig | None = None,
    *,
    checkpoint_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``splits.train``, scoring ``splits.val`` after every epoch.

    With ``checkpoint_path`` the full training state is written atomically after
    every epoch, and an existing checkpoint with the same config (``device`` may
    differ) is resumed, so an interrupted run ends with exactly the weights of an
    uninterrupted one. ``epochs`` is part of the config because the cosine schedule
    depends on it; with ``scheduler='constant'`` a finished run may be extended by
    resuming with more epochs. ``on_epoch_end`` receives each epoch's history record
    after the checkpoint is written (use it for logging or to stop early by raising).
    ``stop_after`` ends training after that epoch of the ``config.epochs``-long schedule: a
    low-fidelity measurement whose checkpoint a later call continues, so the first ``e``
    epochs of a cell are paid for once however often its fidelity is raised.
    The global RNG state of the caller is left untouched.
    """
    config = config or TrainConfig()
    config.validate()
    device = resolve_device(config.device)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    model.to(device)
    x_train, y_train = (t.to(device) for t in dataset_tensors(splits.train))
    steps = steps_per_epoch(len(y_train), config.batch_size)
    amp_dtype = autocast_dtype(config.amp, device)
    with training_run(model, splits, config, steps, device, path) as run:
        start = len(run.history)
        with tqdm(total=config.epochs, initial=start, disable=not progress, desc="train", unit="epoch") as bar:
            for epoch in range(start, config.epochs if stop_after is None else min(stop_after, config.epochs)):
                record = _epoch(run, epoch, x_train, y_train, config, steps, splits, amp_dtype)
                bar.update(1)
                bar.set_postfix(loss=f"{record['train_loss']:.3f}", val=f"{record['val_accuracy']:.1f}%")
                if path is not None:
                    run.save(path, config, splits)
                if on_epoch_end is not None:
                    on_epoch_end(dict(record))
    model.eval()
    return TrainResult(
        model=model,
        history=run.history,
        seconds=sum(record["seconds"] for record in run.history),
        device=str(device),
    )


def _epoch(
    run: TrainingRun,
    epoch: int,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    steps: int,
    splits: DatasetSplits,
    amp_dtype: torch.dtype | None,
) -> dict[str, float]:
    """Train one epoch, score the validation split, append and return the record."""
    tic = time.perf_counter()
    lr = run.optimizer.param_groups[0]["lr"]
    loss, accuracy = _train_epoch(run, x, y, config, steps, splits.augment, amp_dtype)
    if not math.isfinite(loss):
        raise GennasError(
            f"training diverged: the train loss is {loss} in epoch {epoch + 1}; "
            "lower lr, enable grad_clip, or disable amp"
        )
    record = {
        "epoch": epoch + 1,
        "train_loss": loss,
        "train_accuracy": accuracy,
        "val_accuracy": evaluate_accuracy(run.model, splits.val, run.device),
        "lr": lr,
        "seconds": time.perf_counter() - tic,
    }
    run.history.append(record)
    return record


def _train_epoch(
    run: TrainingRun,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    steps: int,
    augment: bool,
    amp_dtype: torch.dtype | None,
) -> tuple[float, float]:
    """One pass over a seeded permutation; returns (mean loss, accuracy %)."""
    run.model.train()
    order = torch.randperm(len(y), device=run.device, generator=run.generator)
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    correct = torch.zeros((), dtype=torch.int64, device=run.device)
    seen = 0
    for step in range(steps):
        index = order[step * config.batch_size : (step + 1) * config.batch_size]
        xb, yb = x[index], y[index]
        if augment:
            xb = augment_batch(xb, run.generator)
        autocast = torch.autocast(run.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with autocast:
            logits = run.model(xb)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
        run.optimizer_step(loss, config.grad_clip)
        loss_sum += loss.detach().double() * len(yb)
        correct += (logits.detach().argmax(dim=1) == yb).sum()
        seen += len(yb)
    return loss_sum.item() / seen, 100.0 * correct.item() / seen


# ---------------------------------------------------------------- checkpoints
def _data_fingerprint(splits: DatasetSplits) -> dict[str, Any]:
    return {"name": splits.name, "train_size": len(splits.train), "num_classes": splits.num_classes}


def _config_differences(saved: Mapping[str, Any], config: TrainConfig) -> list[str]:
    current = config.to_dict()
    ignored = set(_RESUMABLE_DIFFERENCES)
    if current["scheduler"] == saved.get("scheduler") == "constant" and current["epochs"] >= saved.get("epochs", 0):
        ignored.add("epochs")  # a constant schedule does not depend on the run length
    return config_differences(dict(saved), current, ignored)


def _resume(run: TrainingRun, path: Path, config: TrainConfig, splits: DatasetSplits) -> None:
    payload = CHECKPOINT.load(path, "rerun: training starts from scratch",
                              f"{path} is not a gennas training checkpoint ({CHECKPOINT_FORMAT}); "
                              "delete it or pass another checkpoint_path")
    differences = _config_differences(payload.get("config", {}), config)
    if differences:
        raise GennasError(
            f"checkpoint {path} was written with a different training config ({'; '.join(differences)}); "
            "delete the file to start over, or pass another checkpoint_path"
        )
    if payload.get("data") != _data_fingerprint(splits):
        raise GennasError(
            f"checkpoint {path} was written for different data ({payload.get('data')} vs "
            f"{_data_fingerprint(splits)}); delete the file to start over, or pass another checkpoint_path"
        )
    try:
        run.model.load_state_dict(payload["model"])
        run.optimizer.load_state_dict(payload["optimizer"])
        run.scheduler.load_state_dict(payload["scheduler"])
        if run.scaler.is_enabled() and payload["scaler"]:
            run.scaler.load_state_dict(payload["scaler"])
        run.restore_rng(payload["rng"], config.seed, int(payload["epoch"]))
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise GennasError(
            f"checkpoint {path} does not fit this model ({type(exc).__name__}: {exc}); it was probably written "
            "for another architecture: delete it to train from scratch, or pass another checkpoint_path"
        ) from exc
    run.history = [dict(record) for record in payload["history"]]
