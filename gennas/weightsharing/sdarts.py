"""SDARTS (Chen & Hsieh, 2020): the weights are trained under perturbed op weights, which flattens L_val in α.

DARTS's α ends in sharp regions of the validation loss, and the discretised cell (a large
jump in α) then performs badly. SDARTS trains the weights w on

    RS:  L_train(w, A + δ),     δ ~ U[−ε, ε]^{E×|ops|}
    ADV: max_{‖δ‖∞ ≤ ε} L_train(w, A + δ)   (PGD: random start, sign steps of 2ε / steps)

where A = softmax(α) are the op weights, each perturbed row projected back to the simplex
(clamped to [0, 1], renormalised) as the paper's code does. ε ramps linearly from 0.03 to
``epsilon`` over the search. The α step is DARTS's first-order step, unperturbed.
"""

from __future__ import annotations

from typing import Callable

import torch

#: ε at the first epoch; it grows linearly to the method's ``epsilon`` (the paper's schedule).
EPSILON_START = 0.03


def smoothing_radius(epoch: int, epochs: int, epsilon: float) -> float:
    """ε_e = 0.03 + (ε − 0.03) · e / E."""
    return EPSILON_START + (epsilon - EPSILON_START) * epoch / epochs


def clip_to_simplex(weights: torch.Tensor) -> torch.Tensor:
    """Rows clamped to [0, 1] and renormalised; a row clamped to all zeros becomes one-hot at its argmax.

    Shapes: (E, |ops|) -> (E, |ops|).
    """
    clamped = weights.clamp(0.0, 1.0)
    empty = clamped.sum(dim=-1, keepdim=True) == 0
    one_hot = torch.zeros_like(weights).scatter_(-1, weights.argmax(dim=-1, keepdim=True), 1.0)
    clamped = torch.where(empty, one_hot, clamped)
    return clamped / clamped.sum(dim=-1, keepdim=True)


def _uniform(like: torch.Tensor, epsilon: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype) * 2 - 1) * epsilon


def random_smoothing(weights: torch.Tensor, epsilon: float, generator: torch.Generator) -> torch.Tensor:
    """SDARTS-RS: clip(A + δ), δ ~ U[−ε, ε]; shapes (E, |ops|) -> (E, |ops|), no gradient."""
    base = weights.detach()
    return clip_to_simplex(base + _uniform(base, epsilon, generator))


def adversarial_weights(loss_of: Callable[[torch.Tensor], torch.Tensor], weights: torch.Tensor, epsilon: float,
                        steps: int, generator: torch.Generator) -> torch.Tensor:
    """SDARTS-ADV: A + δ* with δ* ≈ argmax_{‖δ‖∞ ≤ ε} L_train(w, A + δ) by ``steps`` PGD steps.

    Args:
        loss_of: the training loss of the batch under given op weights (the model's weights are not updated).
        weights: A = softmax(α), shape (E, |ops|).
        epsilon: the radius ε of the L∞ ball.
        steps: PGD steps, each of size 2ε / steps along sign(∇_A L).
        generator: the random start δ₀ ~ U[−ε, ε].

    Returns:
        The perturbed op weights, shape (E, |ops|), rows on the simplex, detached.
    """
    base = weights.detach()
    current = clip_to_simplex(base + _uniform(base, epsilon, generator))
    size = 2 * epsilon / steps
    for _ in range(steps):
        current = current.detach().requires_grad_(True)
        grad = torch.autograd.grad(loss_of(current), current)[0]
        moved = current.detach() + size * grad.sign()
        current = clip_to_simplex(base + (moved - base).clamp(-epsilon, epsilon))
    return current.detach()
