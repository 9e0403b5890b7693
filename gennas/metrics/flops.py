"""FLOPs and parameters in the NAS-Bench-201 API's convention.

What is counted, per image (batch size 1), in millions:

* convolution: ``k_h * k_w * C_in / groups * C_out`` multiply-accumulates per output
  position, plus ``C_out`` per position when the conv has a bias;
* linear: ``in_features * out_features`` MACs per row, plus ``out_features`` for a bias;
* average / max pooling with a fixed window (``nn.AvgPool2d``, ``nn.MaxPool2d``):
  ``k_h * k_w`` per output element, the full window even where padding is excluded.
  This is how the API's counter charges pooling, so every ``avg_pool_3x3`` edge and the
  2x2 pooling in each reduction block's shortcut count;
* nothing else: batch norm, ReLU, the additions that sum a node's inputs, the identity
  and zero ops, and the global (adaptive) average pooling before the classifier are free,
  as in the API.

Parameters count every weight (BN affine included), in millions. Two implementations
that must agree: forward hooks on a real network (the definition, and what any future
network type gets for free) and a closed form over the macro skeleton (fast enough to
cost every cell of a space in seconds).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell

#: The counting rule above, as results record it: a figure computed before it (no such
#: record) counted conv and linear layers only, pooling free.
FLOPS_CONVENTION = "nas-bench-201-api"


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Millions of FLOPs (see the module docstring) for one input of ``input_shape`` (C, H, W)."""
    total = 0.0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        positions = output.shape[0] * output.shape[2] * output.shape[3]
        total += kh * kw * module.in_channels * module.out_channels / module.groups * positions
        if module.bias is not None:
            total += module.out_channels * positions

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        nonlocal total
        rows = output.numel() // module.out_features
        total += rows * module.in_features * module.out_features
        if module.bias is not None:
            total += rows * module.out_features

    def pool_hook(module: nn.AvgPool2d | nn.MaxPool2d, inputs, output) -> None:
        nonlocal total
        kh, kw = _pair(module.kernel_size)
        total += kh * kw * output.numel()

    hooks = ((nn.Conv2d, conv_hook), (nn.Linear, linear_hook), ((nn.AvgPool2d, nn.MaxPool2d), pool_hook))
    handles = [module.register_forward_hook(hook) for module in model.modules()
               for kind, hook in hooks if isinstance(module, kind)]
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total / 1e6


def count_params(model: nn.Module) -> float:
    """Millions of parameters."""
    return sum(p.numel() for p in model.parameters()) / 1e6


def _conv(c_in: int, c_out: int, k: int, side: int) -> tuple[int, int]:
    """(MACs, params) of a bias-free conv producing a ``side`` x ``side`` map."""
    return k * k * c_in * c_out * side * side, k * k * c_in * c_out


_OP_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
#: Window of the edge ops that pool (charged ``window`` per output element, see the module docstring).
_OP_POOL_WINDOW = {"avg_pool_3x3": 9}
#: The 2x2 average pooling of each reduction's shortcut.
_SHORTCUT_POOL_WINDOW = 4


def analytic_flops_params(cell: Cell, config: NetworkConfig = NetworkConfig()) -> tuple[float, float]:
    """Closed-form (FLOPs M, params M) of ``build_network(cell, config)``.

    The skeleton's cost is fixed and each cell adds, per stage, the cost of its conv and
    pooling edges; identity and zero edges are free under the convention.
    """
    (c1, c2, c3), (s1, s2, s3) = config.stage_channels, config.stage_sizes
    flops, params = _conv(config.in_channels, c1, 3, s1)
    params += 2 * c1  # stem BN
    for c_in, c_out, side in ((c1, c2, s2), (c2, c3, s3)):  # residual reductions
        for part in (_conv(c_in, c_out, 3, side), _conv(c_out, c_out, 3, side), _conv(c_in, c_out, 1, side)):
            flops += part[0]
            params += part[1]
        flops += _SHORTCUT_POOL_WINDOW * c_in * side * side  # the shortcut's pooling keeps C_in channels
        params += 4 * c_out  # two BNs
    for c, side in ((c1, s1), (c2, s2), (c3, s3)):
        for op in cell.ops:
            k = _OP_KERNEL.get(op)
            if k is not None:
                f, p = _conv(c, c, k, side)
                flops += config.cells_per_stage * f
                params += config.cells_per_stage * (p + 2 * c)
            flops += config.cells_per_stage * _OP_POOL_WINDOW.get(op, 0) * c * side * side
    params += 2 * c3  # head BN
    flops += c3 * config.num_classes + config.num_classes
    params += c3 * config.num_classes + config.num_classes
    return flops / 1e6, params / 1e6


#: Cost metrics that are a sum of per-edge op costs (what `per_op_costs` returns).
LINEAR_COST_METRICS = ("flops", "params")


def per_op_costs(ops: tuple[str, ...], n_edges: int, config: NetworkConfig = NetworkConfig()) -> dict[str, tuple[float, list[float]]]:
    """FLOPs and params as ``base + sum over edges of cost[op]``: exact, because both are additive.

    Returned per metric as ``(base, [cost of each op in ops order])``. Being linear in the
    per-edge op one-hots, this extends to soft op distributions, which is what lets
    generation follow exact cost gradients instead of a learned approximation.
    """
    n_nodes = int(round((1 + (1 + 8 * n_edges) ** 0.5) / 2))
    empty = Cell(("none",) * n_edges)
    base = analytic_flops_params(empty, config)
    out: dict[str, tuple[float, list[float]]] = {m: (b, []) for m, b in zip(LINEAR_COST_METRICS, base)}
    for op in ops:
        single = Cell((op,) + ("none",) * (n_edges - 1)) if n_nodes > 1 else empty
        value = analytic_flops_params(single, config)
        out["flops"][1].append(value[0] - base[0])
        out["params"][1].append(value[1] - base[1])
    return out
