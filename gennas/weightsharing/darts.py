"""DARTS (Liu et al., 2019): softmax relaxation and the architecture gradient, first or second order.

First order takes ∇α L_val(w, α) at the current weights. Second order differentiates
through one virtual SGD step of the weights, w' = w − ξ·(∇w L_train(w, α) + momentum
+ weight decay), exactly as the paper's code does:

    ∇α L_val(w', α) − ξ · ∇²_{α,w} L_train(w, α) · ∇w' L_val(w', α)

and the mixed second derivative times that vector comes from central differences of
∇α L_train at w ± ε·∇w' L_val with ε = 0.01 / ‖∇w' L_val‖ — two extra backward passes
instead of a Hessian. The second-order step runs in fp32 even under AMP: ε-sized
weight perturbations are below bf16 resolution.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

#: Finite-difference radius of the paper: ε = FD_RADIUS / ‖∇w' L_val‖.
FD_RADIUS = 0.01

Loss = Callable[[], torch.Tensor]


def softmax_weights(alpha: torch.Tensor) -> tuple[torch.Tensor, None]:
    """The DARTS edge weights: a dense softmax per edge, every op computed."""
    return torch.softmax(alpha, dim=-1), None


def _flat_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum((t.detach().double() ** 2).sum() for t in tensors))


@torch.no_grad()
def _add_(params: list[nn.Parameter], direction: list[torch.Tensor], scale: float) -> None:
    for p, d in zip(params, direction):
        p.add_(d, alpha=scale)


def unrolled_arch_gradient(
    alpha: nn.Parameter,
    params: list[nn.Parameter],
    train_loss: Loss,
    val_loss: Loss,
    *,
    xi: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    momentum_buffers: list[torch.Tensor | None] | None = None,
    fd_radius: float = FD_RADIUS,
) -> tuple[torch.Tensor, float]:
    """The second-order DARTS gradient of ``val_loss`` w.r.t. ``alpha``, and L_val at the virtual weights w'.

    The weights are left exactly as found.

    ``train_loss``/``val_loss`` recompute the loss from the current parameter values
    (including α), so the virtual step and the perturbations act by editing ``params``
    in place and restoring them afterwards. ``momentum_buffers`` are the weight
    optimiser's SGD buffers (``None`` where it has none yet).
    """
    backup = [p.detach().clone() for p in params]
    buffers = momentum_buffers or [None] * len(params)
    try:
        grads = torch.autograd.grad(train_loss(), params, allow_unused=True)
        with torch.no_grad():
            for p, g, buf in zip(params, grads, buffers):
                step = (torch.zeros_like(p) if g is None else g) + weight_decay * p
                if buf is not None and momentum:
                    step = step + momentum * buf
                p.sub_(xi * step)
        loss_at_virtual = val_loss()
        out = torch.autograd.grad(loss_at_virtual, [alpha, *params], allow_unused=True)
        d_alpha = torch.zeros_like(alpha) if out[0] is None else out[0]
        d_w = [torch.zeros_like(p) if g is None else g for p, g in zip(params, out[1:])]
        with torch.no_grad():
            for p, b in zip(params, backup):
                p.copy_(b)
        norm = _flat_norm(d_w)
        if norm == 0:
            return d_alpha.detach(), float(loss_at_virtual.detach())
        eps = float(fd_radius / norm)
        _add_(params, d_w, eps)
        g_plus = torch.autograd.grad(train_loss(), alpha)[0]
        _add_(params, d_w, -2 * eps)
        g_minus = torch.autograd.grad(train_loss(), alpha)[0]
        return (d_alpha - xi * (g_plus - g_minus) / (2 * eps)).detach(), float(loss_at_virtual.detach())
    finally:
        with torch.no_grad():
            for p, b in zip(params, backup):
                p.copy_(b)
