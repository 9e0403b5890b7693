"""Closed-form FLOPs, parameters and peak memory of a DARTS genotype's network.

The convention is gennas' (``gennas.metrics.flops``, the NAS-Bench-201 API's): conv and
linear multiply-accumulates (depthwise convs at ``k*k`` per output element and channel),
pooling windows at ``k*k`` per output element, nothing for BN, ReLU, additions,
concatenation, identity and the global pooling. Params are those of the network used at
test time (the auxiliary head excluded, as DARTS counts them), so DARTS_V2 at C=36 and
20 layers has the published 3,349,342. Peak memory is batch-1 inference: live activations
replayed on the refcounted tape of ``gennas.metrics.memory`` in the exact allocation order
of ``DartsNetwork.forward``, plus parameters and buffers.

Tests check all three against a real network (forward hooks, the tracked forward pass),
so the closed forms cannot drift from the modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from gennas.metrics.memory import FLOAT_BYTES, _Tape
from gennas.nn.darts_network import DartsNetworkConfig, STEM_MULTIPLIER, cell_plan, last_reads, multipliers
from gennas.space.genotype import Genotype

if TYPE_CHECKING:
    from gennas.metrics.soft_costs import SoftCost
    from gennas.space.darts import DartsSpace


@dataclass
class _Tally:
    """Running totals of the closed form: MACs and reads, parameters, and BN layers (for the buffers)."""

    flops: int = 0
    params: int = 0
    bn_channels: list[int] = field(default_factory=list)

    def conv(self, c_in: int, c_out: int, k: int, side: int, groups: int = 1) -> None:
        self.flops += k * k * c_in // groups * c_out * side * side
        self.params += k * k * c_in // groups * c_out

    def bn(self, c: int) -> None:
        self.params += 2 * c
        self.bn_channels.append(c)

    def state_bytes(self) -> int:
        """Parameters, BN running mean and var (float32) and each BN's int64 batch counter."""
        return FLOAT_BYTES * self.params + FLOAT_BYTES * 2 * sum(self.bn_channels) + 8 * len(self.bn_channels)


def _factorized_reduce(t: _Tally, c_in: int, c_out: int, side_out: int) -> None:
    t.conv(c_in, c_out // 2, 1, side_out)
    t.conv(c_in, c_out // 2, 1, side_out)
    t.bn(c_out)


def _op(t: _Tally, op: str, c: int, side_out: int, stride: int) -> None:
    """Cost of one edge op on ``c`` channels producing a ``side_out`` map."""
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        t.flops += 9 * c * side_out * side_out
    elif op == "skip_connect" and stride == 2:
        _factorized_reduce(t, c, c, side_out)
    elif op.startswith("sep_conv"):
        k = int(op[-1])
        for _ in range(2):
            t.conv(c, c, k, side_out, groups=c)
            t.conv(c, c, 1, side_out)
            t.bn(c)
    elif op.startswith("dil_conv"):
        t.conv(c, c, int(op[-1]), side_out, groups=c)
        t.conv(c, c, 1, side_out)
        t.bn(c)
    # skip_connect at stride 1 and none cost nothing


def _tally(genotype: Genotype, config: DartsNetworkConfig, with_ops: bool = True) -> _Tally:
    """The closed form's totals; without ops, the skeleton alone (stem, preprocessing, classifier)."""
    t = _Tally()
    side = config.image_size
    c_stem = STEM_MULTIPLIER * config.channels
    t.conv(config.in_channels, c_stem, 3, side)
    t.bn(c_stem)
    plan = cell_plan(config, multipliers(genotype))
    for c_pp, c_p, c, reduction, reduction_prev in plan:
        if reduction_prev:
            _factorized_reduce(t, c_pp, c, side)
        else:
            t.conv(c_pp, c, 1, side)
            t.bn(c)
        t.conv(c_p, c, 1, side)
        t.bn(c)
        out_side = side // 2 if reduction else side
        pairs, _ = genotype.cell(reduction)
        for op, index in pairs if with_ops else ():
            _op(t, op, c, out_side, 2 if reduction and index < 2 else 1)
        side = out_side
    c_last = multipliers(genotype)[plan[-1][3]] * plan[-1][2]
    t.flops += c_last * config.num_classes + config.num_classes
    t.params += c_last * config.num_classes + config.num_classes
    return t


def darts_flops_params(genotype: Genotype, config: DartsNetworkConfig = DartsNetworkConfig()) -> tuple[float, float]:
    """Closed-form (FLOPs M, params M) of ``DartsNetwork(genotype, config)`` at inference."""
    t = _tally(genotype, config)
    return t.flops / 1e6, t.params / 1e6


# ------------------------------------------------------------------ peak memory
def _chain(tape: _Tape, sizes: list[int]) -> int:
    """An ``nn.Sequential`` whose modules each allocate one output: each output frees its predecessor."""
    current = None
    for nbytes in sizes:
        new = tape.alloc(nbytes)
        if current is not None:
            tape.decref(current)
        current = new
    assert current is not None
    return current


def _tape_factorized_reduce(tape: _Tape, x: int, in_bytes: int, out_bytes: int) -> int:
    relu = tape.alloc(in_bytes)
    a = tape.alloc(out_bytes // 2)
    view = tape.incref(relu)  # x[:, :, 1:, 1:] shares the ReLU output's storage
    b = tape.alloc(out_bytes // 2)
    tape.decref(view)
    tape.decref(relu)
    cat = tape.alloc(out_bytes)
    tape.decref(a)
    tape.decref(b)
    out = tape.alloc(out_bytes)
    tape.decref(cat)
    return out


def _tape_op(tape: _Tape, op: str, x: int, c: int, side_in: int, side_out: int, stride: int) -> int:
    in_bytes, out_bytes = FLOAT_BYTES * c * side_in * side_in, FLOAT_BYTES * c * side_out * side_out
    if op == "skip_connect":
        return tape.incref(x) if stride == 1 else _tape_factorized_reduce(tape, x, in_bytes, out_bytes)
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        return tape.alloc(out_bytes)
    if op == "none":
        view = tape.incref(x) if stride > 1 else None
        out = tape.alloc(out_bytes)
        if view is not None:
            tape.decref(view)
        return out
    n = 8 if op.startswith("sep_conv") else 4  # ReLU, depthwise, 1x1, BN (twice for sep_conv)
    return _chain(tape, [in_bytes] + [out_bytes] * (n - 1))


def _tape_cell(tape: _Tape, genotype: Genotype, plan_row: tuple[int, int, int, bool, bool], s0: int, s1: int,
               side: int) -> int:
    c_pp, c_p, c, reduction, reduction_prev = plan_row
    node_bytes = FLOAT_BYTES * c * side * side
    if reduction_prev:
        state0 = _tape_factorized_reduce(tape, s0, FLOAT_BYTES * c_pp * 4 * side * side, node_bytes)
    else:
        state0 = _chain(tape, [FLOAT_BYTES * c_pp * side * side, node_bytes, node_bytes])
    state1 = _chain(tape, [FLOAT_BYTES * c_p * side * side, node_bytes, node_bytes])
    states: list[int | None] = [state0, state1]
    pairs, concat = genotype.cell(reduction)
    last = last_reads(pairs, concat)
    out_side = side // 2 if reduction else side
    for k in range(len(pairs) // 2):
        total = None
        for slot in (2 * k, 2 * k + 1):
            op, index = pairs[slot]
            stride = 2 if reduction and index < 2 else 1
            h = _tape_op(tape, op, states[index], c, side if index < 2 else out_side, out_side, stride)
            if total is None:
                total = tape.incref(h)
            else:
                summed = tape.alloc(FLOAT_BYTES * c * out_side * out_side)
                tape.decref(total)
                total = summed
            tape.decref(h)
        for slot in (2 * k, 2 * k + 1):
            index = pairs[slot][1]
            if last[index] == k and states[index] is not None:
                tape.decref(states[index])
                states[index] = None
        states.append(total)
    out = tape.alloc(FLOAT_BYTES * len(concat) * c * out_side * out_side)
    for buf in states:
        if buf is not None:
            tape.decref(buf)
    return out


def darts_peak_memory(genotype: Genotype, config: DartsNetworkConfig = DartsNetworkConfig()) -> int:
    """Peak bytes of ``DartsNetwork(genotype, config)`` at batch 1 (inference), without building it."""
    tape = _Tape()
    side = config.image_size
    c_stem = STEM_MULTIPLIER * config.channels
    x = tape.alloc(FLOAT_BYTES * config.in_channels * side * side)
    stem = _chain(tape, [FLOAT_BYTES * c_stem * side * side] * 2)
    s0, s1 = stem, tape.incref(stem)
    plan = cell_plan(config, multipliers(genotype))
    for row in plan:
        out = _tape_cell(tape, genotype, row, s0, s1, side)
        side = side // 2 if row[3] else side
        tape.decref(s0)
        s0, s1 = s1, out
    tape.decref(s0)
    c_last = multipliers(genotype)[plan[-1][3]] * plan[-1][2]
    pooled = tape.alloc(FLOAT_BYTES * c_last)
    tape.decref(s1)
    flat = tape.incref(pooled)
    tape.alloc(FLOAT_BYTES * config.num_classes)
    tape.decref(flat)
    tape.decref(pooled)
    tape.decref(x)
    return tape.peak + _tally(genotype, config).state_bytes()


def darts_costs(genotype: Genotype, config: DartsNetworkConfig = DartsNetworkConfig()) -> dict[str, float]:
    """``flops`` (M), ``params`` (M), ``memory_bytes`` of the genotype's network, closed form."""
    flops, params = darts_flops_params(genotype, config)
    return {"flops": flops, "params": params, "memory_bytes": darts_peak_memory(genotype, config)}


# ------------------------------------------------------------- soft (guidance) form
def _per_op(config: DartsNetworkConfig, ops: tuple[str, ...], reduction: bool, stride: int) -> np.ndarray:
    """(2, len(ops)): FLOPs and params of each op summed over every cell of one type, at ``stride``."""
    out = np.zeros((2, len(ops)))
    side = config.image_size
    for _, _, c, is_reduction, _ in cell_plan(config):
        out_side = side // 2 if is_reduction else side
        if is_reduction == reduction:
            for j, op in enumerate(ops):
                t = _Tally()
                _op(t, op, c, out_side, stride)
                out[:, j] += (t.flops, t.params)
        side = out_side
    return out


def darts_soft_costs(space: "DartsSpace", config: DartsNetworkConfig = DartsNetworkConfig()) -> dict[str, "SoftCost"]:
    """FLOPs and params (M) as exact functions of the DARTS search variables' one-hots.

    Every op costs the same wherever it sits in a cell of a given type (a strided op costs, per
    output position, what the stride-1 op costs on the halved map), except ``skip_connect``
    reading a cell input of a reduction cell, which is a factorized reduction: that term is
    the product of the op variable's skip probability and the pair variable's probability of
    putting a cell input (0 or 1) in that slot.
    """
    from gennas.metrics.soft_costs import SoftCost
    from gennas.space.darts import CELL_TYPES, input_pairs
    from predictors.encoding import num_values, uniform_prior

    v, k = len(space.choices), num_values(space)
    probe = space.decode([0] * v)
    base = _tally(probe, config, with_ops=False)
    coef = np.zeros((2, v, k))
    terms: list[tuple[int, int, np.ndarray]] = []  # (op variable, pair variable, 0/1 per pair value)
    skip = space.ops.index("skip_connect") if "skip_connect" in space.ops else None
    strided_skip = np.zeros(2)
    if skip is not None:
        strided_skip = _per_op(config, ("skip_connect",), True, 2)[:, 0] - _per_op(config, ("skip_connect",), True, 1)[:, 0]
    for c, kind in enumerate(CELL_TYPES):
        per_op = _per_op(config, space.ops, kind == "reduce", 1)
        for node in range(space.steps):
            pair_var = c * 3 * space.steps + 3 * node
            for slot in (0, 1):
                coef[:, pair_var + 1 + slot, :len(space.ops)] = per_op
                if kind == "reduce" and skip is not None:
                    reads_input = np.array([float(p[slot] < 2) for p in input_pairs(node)] +
                                           [0.0] * (k - len(input_pairs(node))))
                    terms.append((pair_var + 1 + slot, pair_var, reads_input))
    out = {}
    rng = np.random.default_rng(0)
    sample = torch.nn.functional.one_hot(torch.from_numpy(np.stack([space.encode(g) for g in space.sample(rng, 256)])),
                                         k).double()
    for m, (metric, total) in enumerate((("flops", base.flops), ("params", base.params))):
        weights = torch.from_numpy(coef[m] / 1e6)
        extra = float(strided_skip[m]) / 1e6
        base_m = total / 1e6

        def fn(x: torch.Tensor, weights=weights, extra=extra, base_m=base_m) -> torch.Tensor:
            value = base_m + (x * weights.to(x.dtype)).sum(dim=(1, 2))
            for op_var, pair_var, reads in terms:
                mask = torch.from_numpy(reads).to(x.dtype)
                value = value + extra * x[:, op_var, skip] * (x[:, pair_var] * mask).sum(-1)
            return value

        centre = float(fn(uniform_prior(space).double().unsqueeze(0))[0])
        out[metric] = SoftCost(fn, centre, max(float(fn(sample).std()), 1e-9))
    return out
