"""Adversarial and noise robustness: FGSM, PGD (L∞) and Gaussian noise.

All perturbations live in [0, 1] pixel space, which is why models take raw images
and normalise internally (:func:`gennas.train.with_normalization`): the eps-ball and
the [0, 1] box are then the real constraints on an image, not on a normalised tensor.
Attacks run the model in eval mode and fp32 (autocast off: fp16 gradients are too
coarse for small eps), and take gradients with respect to the input only, leaving
the parameters' ``.grad`` and ``requires_grad`` exactly as they were.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from gennas.config import DictConfig
from gennas.errors import GennasError
from gennas.device import model_device, resolve_device
from gennas.train.trainer import dataset_tensors, eval_mode


@dataclass
class RobustnessConfig(DictConfig):
    """Settings of :func:`evaluate_robustness`; ``eps`` is an L∞ radius in [0, 1] pixels.

    ``pgd_step_size=None`` means ``2.5 * eps / pgd_steps`` (Madry et al.), which lets
    PGD cross the whole ball and still refine near its boundary.
    """

    config_kind = "robustness"

    eps: float = 0.1
    pgd_steps: int = 10
    pgd_step_size: float | None = None
    pgd_random_start: bool = True
    noise_sigma: float = 0.1
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.eps <= 1:
            problems.append(f"eps must be in [0, 1] (pixel units), got {self.eps!r}")
        if not isinstance(self.pgd_steps, int) or self.pgd_steps < 1:
            problems.append(f"pgd_steps must be an integer >= 1, got {self.pgd_steps!r}")
        if self.pgd_step_size is not None and not self.pgd_step_size > 0:
            problems.append(f"pgd_step_size must be > 0 or None for 2.5*eps/steps, got {self.pgd_step_size!r}")
        if not self.noise_sigma >= 0:
            problems.append(f"noise_sigma must be >= 0, got {self.noise_sigma!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            problems.append(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if problems:
            raise GennasError("invalid robustness config: " + "; ".join(problems))

    @property
    def step_size(self) -> float:
        """The PGD step size actually used."""
        return self.pgd_step_size if self.pgd_step_size is not None else 2.5 * self.eps / self.pgd_steps


@contextlib.contextmanager
def _attack_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and frozen parameters for the block; both restored afterwards.

    Freezing keeps autograd from computing parameter gradients nobody asked for.
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    with eval_mode(model):
        try:
            for p, _ in flags:
                p.requires_grad_(False)
            yield
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)


def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(summed cross-entropy)/dx in fp32; summed so the scale does not shrink with N."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
        loss = F.cross_entropy(model(x).float(), y, reduction="sum")
        if not loss.requires_grad:  # the output ignores the input (an NB201 cell cut off from it): no gradient
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def _check_eps(eps: float) -> None:
    if not 0 <= eps <= 1:
        raise GennasError(f"eps must be in [0, 1] (an L-infinity radius in pixel units), got {eps!r}")


def fgsm_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method: one signed-gradient step of size ``eps``."""
    _check_eps(eps)
    with _attack_mode(model):
        grad = _input_gradient(model, x, y)
    return (x.detach() + eps * grad.sign()).clamp(0.0, 1.0)


def pgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent (L∞): signed steps, each projected onto the eps-ball ∩ [0, 1].

    ``random_start`` begins at a uniform point in the ball drawn from ``generator``
    (which must live on ``x``'s device), so a seeded generator gives a repeatable attack.
    """
    _check_eps(eps)
    if steps < 1:
        raise GennasError(f"PGD needs steps >= 1, got {steps}")
    alpha = 2.5 * eps / steps if step_size is None else step_size
    x = x.detach()
    low, high = (x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)
    x_adv = x.clone()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = (x + (2.0 * noise - 1.0) * eps).clamp(0.0, 1.0)
    with _attack_mode(model):
        for _ in range(steps):
            grad = _input_gradient(model, x_adv, y)
            x_adv = torch.minimum(torch.maximum(x_adv + alpha * grad.sign(), low), high)
    return x_adv


@torch.no_grad()
def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    with torch.autocast(x.device.type, enabled=False):
        return int((model(x).argmax(dim=1) == y).sum())


def evaluate_robustness(
    model: nn.Module,
    dataset: TensorDataset,
    config: RobustnessConfig | None = None,
    device: str | torch.device | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Accuracy (percent) on clean, FGSM, PGD and Gaussian-noise versions of ``dataset``.

    Returns ``clean_accuracy``, ``fgsm_accuracy``, ``pgd_accuracy`` and
    ``noise_accuracy``. Every image is attacked, including those already
    misclassified. One generator seeded with ``config.seed`` drives the PGD starts
    and the noise, so the result is repeatable for a fixed seed and device.
    ``on_batch(done, total)`` is told the images evaluated so far, for progress displays.
    """
    config = config or RobustnessConfig()
    x, y = dataset_tensors(dataset)
    if len(y) == 0:
        raise GennasError("cannot evaluate robustness on an empty dataset")
    target = model_device(model) if device is None else resolve_device(device)
    model.to(target)
    generator = torch.Generator(device=target)
    generator.manual_seed(config.seed)
    counts = {"clean": 0, "fgsm": 0, "pgd": 0, "noise": 0}
    with eval_mode(model):
        for start in range(0, len(y), config.batch_size):
            xb = x[start : start + config.batch_size].to(target)
            yb = y[start : start + config.batch_size].to(target)
            counts["clean"] += _correct(model, xb, yb)
            counts["fgsm"] += _correct(model, fgsm_attack(model, xb, yb, config.eps), yb)
            adversarial = pgd_attack(
                model, xb, yb, config.eps, config.pgd_steps, config.step_size, config.pgd_random_start, generator
            )
            counts["pgd"] += _correct(model, adversarial, yb)
            noise = torch.randn(xb.shape, generator=generator, device=target, dtype=xb.dtype)
            counts["noise"] += _correct(model, (xb + config.noise_sigma * noise).clamp(0.0, 1.0), yb)
            if on_batch is not None:
                on_batch(min(start + config.batch_size, len(y)), len(y))
    return {f"{name}_accuracy": 100.0 * count / len(y) for name, count in counts.items()}
