"""Devices: which one a ``--device`` names, where a model lives, and which autocast dtype it trains in.

Kept apart from training so that predictors, the generator and metrics can place work on a
device without importing the trainer.
"""

from __future__ import annotations

import torch
from torch import nn

from gennas.errors import GennasError


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """The device ``spec`` names, checked against this machine.

    Args:
        spec: ``'auto'`` (CUDA if available, else CPU), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.

    Returns:
        The device.

    Raises:
        GennasError: for an unknown name, or CUDA asked for where there is none (or not that index).
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError as exc:
        raise GennasError(f"unknown device {spec!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise GennasError(f"device type {device.type!r} is not supported; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise GennasError(
            f"device {spec!r} was requested but CUDA is not available (this PyTorch build: "
            f"{torch.__version__}); use device='cpu' or 'auto', or install a CUDA build of PyTorch"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise GennasError(
            f"device {spec!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible; "
            f"use cuda:0..cuda:{torch.cuda.device_count() - 1}"
        )
    return device


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters (or, without any, its buffers) live; CPU for an empty module."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def autocast_dtype(enabled: bool, device: torch.device, fallback: torch.dtype | None = torch.float16) -> torch.dtype | None:
    """The autocast dtype of a training step: None (fp32) off CUDA or when AMP is off.

    Args:
        enabled: the config's ``amp`` flag.
        device: where the step runs.
        fallback: the dtype on a GPU without bf16: fp16 (with a GradScaler) for weight training, None
            for steps too small to need a scaler (DARTS's α).

    Returns:
        bf16 where the GPU supports it, else ``fallback``; None on CPU.
    """
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else fallback
