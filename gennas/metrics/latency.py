"""Latency: median wall time of repeated batch-1 forwards on a device."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: torch.device | str = "cpu",
    repeats: int = 20,
    warmup: int = 3,
) -> float:
    """Median milliseconds per forward; the median resists the noise of shared machines."""
    device = torch.device(device)
    was_training = model.training
    model.eval().to(device)
    x = torch.randn((1, *input_shape), device=device)
    times = []
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                model(x)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1e3)
    finally:
        model.train(was_training)
    return statistics.median(times)
