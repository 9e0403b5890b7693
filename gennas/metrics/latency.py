"""Latency: batch-1 forward wall time on a device, read so that a busy machine does not decide it.

Another process on the same cores only ever makes a forward *slower*, and in bursts. So a
reading warms up first, then takes several rounds of forwards and keeps the round with
the smallest median (the one least disturbed), reporting its interquartile range as the
spread. :func:`latency_outliers` then finds readings that disagree with their peers'
FLOPs trend so the caller can measure them again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class LatencyReading:
    """Milliseconds per batch-1 forward: the median of the least disturbed round, and its spread (IQR)."""

    median_ms: float
    spread_ms: float


def read_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: torch.device | str = "cpu",
    repeats: int = 20,
    warmup: int = 3,
    rounds: int = 3,
) -> LatencyReading:
    """Time ``rounds`` rounds of ``repeats`` forwards after ``warmup`` untimed ones.

    Args:
        model: the network (switched to eval mode for the reading, then restored).
        input_shape: one input's shape without the batch dimension, e.g. ``(3, 32, 32)``.
        device: where to run it; CUDA readings synchronise around each forward.
        repeats: timed forwards per round.
        warmup: untimed forwards first (allocations, caches, lazy kernels).
        rounds: rounds of ``repeats``; the round with the smallest median is kept.

    Returns:
        The kept round's median and interquartile range, in milliseconds.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval().to(device)
    x = torch.randn((1, *input_shape), device=device)
    best: np.ndarray | None = None
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(x)
            for _ in range(max(rounds, 1)):
                times = np.array([_timed_forward(model, x, device) for _ in range(max(repeats, 1))])
                if best is None or np.median(times) < np.median(best):
                    best = times
    finally:
        model.train(was_training)
    q1, median, q3 = np.percentile(best, [25, 50, 75])
    return LatencyReading(float(median), float(q3 - q1))


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu",
                    repeats: int = 20, warmup: int = 3) -> float:
    """Median milliseconds per batch-1 forward (see :func:`read_latency`)."""
    return read_latency(model, input_shape, device, repeats, warmup).median_ms


def _timed_forward(model: nn.Module, x: torch.Tensor, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    model(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1e3


def latency_outliers(latency_ms: Sequence[float], flops: Sequence[float], tolerance: float = 3.0) -> list[int]:
    """Indices of readings far off the trend of latency on FLOPs among their peers.

    Fits :math:`\\log \\ell = a + b \\log F` robustly (Theil–Sen) and flags residuals beyond
    ``tolerance`` robust standard deviations (1.4826 × MAD, floored at 10 % so that a
    very regular table does not flag noise). Networks of one skeleton differ in latency
    mostly through their FLOPs, so a reading far off that line was most likely disturbed.

    Returns:
        Indices into the inputs; empty for fewer than 5 readings.
    """
    from sklearn.linear_model import TheilSenRegressor

    latency = np.log(np.maximum(np.asarray(latency_ms, dtype=float), 1e-6))
    log_flops = np.log(np.maximum(np.asarray(flops, dtype=float), 1e-9))
    if len(latency) < 5 or np.ptp(log_flops) == 0:
        return []
    fit = TheilSenRegressor(random_state=0).fit(log_flops[:, None], latency)
    residual = latency - fit.predict(log_flops[:, None])
    scale = max(1.4826 * float(np.median(np.abs(residual - np.median(residual)))), np.log(1.1))
    return [int(i) for i in np.flatnonzero(np.abs(residual) > tolerance * scale)]
