"""Peak inference memory at batch size 1: live activations plus model state.

Measured: a ``TorchDispatchMode`` sees every tensor an operator creates during a real
forward pass; we follow each storage until its last Python reference dies, so the peak
is the largest set of activation bytes alive at once (the input included). Parameters
and buffers are excluded from that tally and added once. This is device-independent and
exact, unlike allocator statistics, which round sizes and cache blocks.

Analytical: :func:`analytic_peak_memory` replays the allocation order of
``CellNetwork.forward`` on a refcounted tape. It costs every cell of a space in seconds;
a test checks it equals the measurement byte for byte, so the two cannot drift apart.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from gennas.nn.cell import last_use_of_nodes
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell

FLOAT_BYTES = 4


def state_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers (BN running statistics are needed at inference too)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


class _LiveStorageTracker(TorchDispatchMode):
    def __init__(self, excluded: set[int]) -> None:
        super().__init__()
        self.excluded = excluded
        self.live: dict[int, list[int]] = {}  # data_ptr -> [nbytes, python refs]
        self.current = 0
        self.peak = 0

    def track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        ptr, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or ptr in self.excluded:
            return
        entry = self.live.get(ptr)
        if entry is None:
            entry = self.live[ptr] = [nbytes, 0]
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(tensor, self._release, ptr)

    def _release(self, ptr: int) -> None:
        entry = self.live.get(ptr)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self.track(item)
        return out


def measure_peak_memory(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Peak bytes of a real batch-1 forward: live activations (input included) + parameters and buffers."""
    device = next(model.parameters()).device
    excluded = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros((1, *input_shape), device=device)
        with torch.no_grad():
            tracker = _LiveStorageTracker(excluded)
            tracker.track(x)
            with tracker:
                y = model(x)
            del y, x
    finally:
        model.train(was_training)
    return tracker.peak + state_bytes(model)


class _Tape:
    """Refcounted allocation replay: what the interpreter does to tensors, minus the math."""

    def __init__(self) -> None:
        self.refs: dict[int, list[int]] = {}
        self.current = 0
        self.peak = 0
        self._next = 0

    def alloc(self, nbytes: int) -> int:
        self._next += 1
        self.refs[self._next] = [nbytes, 1]
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        return self._next

    def incref(self, buf: int) -> int:
        self.refs[buf][1] += 1
        return buf

    def decref(self, buf: int) -> None:
        entry = self.refs[buf]
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.refs[buf]


def _relu_conv_bn(tape: _Tape, in_bytes: int, out_bytes: int) -> int:
    relu = tape.alloc(in_bytes)
    conv = tape.alloc(out_bytes)
    tape.decref(relu)
    bn = tape.alloc(out_bytes)
    tape.decref(conv)
    return bn


def _edge(tape: _Tape, op: str, src: int, nbytes: int) -> int:
    if op == "skip_connect":
        return tape.incref(src)
    if op == "avg_pool_3x3":
        return tape.alloc(nbytes)
    return _relu_conv_bn(tape, nbytes, nbytes)


def _cell(tape: _Tape, cell: Cell, x: int, nbytes: int) -> int:
    n, last_use = cell.n_nodes, last_use_of_nodes(cell)
    nodes: list[int | None] = [tape.incref(x)] + [None] * (n - 1)
    for i in range(1, n):
        total = None
        for j, op in cell.incoming(i):
            if op != "none":
                out = _edge(tape, op, nodes[j], nbytes)
                if total is None:
                    total = tape.incref(out)
                else:
                    summed = tape.alloc(nbytes)
                    tape.decref(total)
                    total = summed
                tape.decref(out)
            if j > 0 and last_use[j] == i:
                tape.decref(nodes[j])
                nodes[j] = None
        if i < n - 1 and last_use[i] < 0:
            if total is not None:
                tape.decref(total)
            continue  # nothing reads this node: its value is never materialised
        if total is None:
            total = tape.alloc(nbytes)
        nodes[i] = tape.incref(total)
        tape.decref(total)
    result = tape.incref(nodes[-1])
    for buf in nodes:
        if buf is not None:
            tape.decref(buf)
    return result


def _reduction(tape: _Tape, x: int, c_in: int, c_out: int, side_in: int, side_out: int) -> int:
    in_bytes = FLOAT_BYTES * c_in * side_out * side_out
    out_bytes = FLOAT_BYTES * c_out * side_out * side_out
    pooled = tape.alloc(in_bytes)
    residual = tape.alloc(out_bytes)
    tape.decref(pooled)
    y = _relu_conv_bn(tape, FLOAT_BYTES * c_in * side_in * side_in, out_bytes)
    y2 = _relu_conv_bn(tape, out_bytes, out_bytes)
    tape.decref(y)
    out = tape.alloc(out_bytes)
    tape.decref(residual)
    tape.decref(y2)
    return out


def analytic_peak_memory(cell: Cell, config: NetworkConfig = NetworkConfig()) -> int:
    """Peak bytes of ``build_network(cell, config)`` at batch 1, without building it."""
    (c1, c2, c3), (s1, s2, s3) = config.stage_channels, config.stage_sizes
    tape = _Tape()
    x = tape.alloc(FLOAT_BYTES * config.in_channels * s1 * s1)
    conv = tape.alloc(FLOAT_BYTES * c1 * s1 * s1)
    h = tape.alloc(FLOAT_BYTES * c1 * s1 * s1)
    tape.decref(conv)
    stages = [(c1, s1), (c2, s2), (c3, s3)]
    for stage, (c, side) in enumerate(stages):
        if stage > 0:
            c_prev, side_prev = stages[stage - 1]
            nxt = _reduction(tape, h, c_prev, c, side_prev, side)
            tape.decref(h)
            h = nxt
        for _ in range(config.cells_per_stage):
            nxt = _cell(tape, cell, h, FLOAT_BYTES * c * side * side)
            tape.decref(h)
            h = nxt
    head_bytes = FLOAT_BYTES * c3 * s3 * s3
    bn = tape.alloc(head_bytes)
    relu = tape.alloc(head_bytes)
    tape.decref(bn)
    tape.decref(h)
    pooled = tape.alloc(FLOAT_BYTES * c3)
    tape.decref(relu)
    tape.alloc(FLOAT_BYTES * config.num_classes)
    tape.decref(pooled)
    tape.decref(x)
    return tape.peak + analytic_state_bytes(cell, config)


def analytic_state_bytes(cell: Cell, config: NetworkConfig = NetworkConfig()) -> int:
    """Parameters + buffers in bytes: params from the closed form, plus BN running stats."""
    from gennas.metrics.flops import analytic_flops_params

    _, params_m = analytic_flops_params(cell, config)
    params = round(params_m * 1e6)
    (c1, c2, c3) = config.stage_channels
    n_conv_edges = sum(op in ("nor_conv_1x1", "nor_conv_3x3") for op in cell.ops)
    bn_channels = c1 + 2 * (c2 + c3) + c3 + config.cells_per_stage * n_conv_edges * (c1 + c2 + c3)
    bn_layers = 1 + 4 + 1 + 3 * config.cells_per_stage * n_conv_edges
    # Each BN keeps running mean and var (float32) and an int64 batch counter.
    return FLOAT_BYTES * params + FLOAT_BYTES * 2 * bn_channels + 8 * bn_layers
