"""From architecture parameters α to a discrete cell, and α in a form worth logging.

The NAS-Bench-201 convention: on each edge take the op with the largest α among the ops
other than ``none`` (a mixture weight on ``none`` only scales the edge, it is not a choice
the discrete cell can make meaningfully). The result is validated against the space, so a
derived cell is always one the builder, the metrics and the tables accept.
"""

from __future__ import annotations

import numpy as np
import torch

from gennas.errors import GennasError
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace
from gennas.space.space import CellSpace


def _as_array(alpha: torch.Tensor | np.ndarray, space: ArchSpace) -> np.ndarray:
    a = alpha.detach().float().cpu().numpy() if isinstance(alpha, torch.Tensor) else np.asarray(alpha, dtype=float)
    shape = (len(space.alpha_rows), len(space.alpha_ops))
    if a.shape != shape:
        raise GennasError(f"α must have shape (edges, ops) = {shape} for space {space.name!r}, got {tuple(a.shape)}")
    return a


def derive_cell(alpha: torch.Tensor | np.ndarray, space: ArchSpace):
    """The space's discrete architecture of α (``space.derive_from_alpha``), checked to belong to ``space``."""
    return space.derive_from_alpha(_as_array(alpha, space).copy())


def argmax_cell(a: np.ndarray, space: CellSpace) -> Cell:
    """Cell spaces: argmax over the non-``none`` ops of each edge."""
    if "none" in space.ops:
        a[:, space.ops.index("none")] = -np.inf
    return space.validate(Cell(tuple(space.ops[int(i)] for i in a.argmax(axis=1))))


def alpha_probabilities(alpha: torch.Tensor | np.ndarray, space: ArchSpace) -> dict[str, dict[str, float]]:
    """softmax(α) per edge, keyed ``"src->dst"`` then op name (rounded: a log, not a checkpoint)."""
    a = _as_array(alpha, space)
    p = np.exp(a - a.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return edge_table(p, space)


def edge_table(probabilities: torch.Tensor | np.ndarray, space: ArchSpace) -> dict[str, dict[str, float]]:
    """An op distribution per edge (shape (E, |ops|): softmax(α), a Dirichlet mean, ...) keyed like :func:`alpha_probabilities`."""
    p = _as_array(probabilities, space)
    return {label: {op: round(float(v), 5) for op, v in zip(space.alpha_ops, row)}
            for label, row in zip(space.alpha_rows, p)}


def op_mass(probabilities: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean softmax weight of each op over the edges: one line per epoch that shows a drift (e.g. to skip)."""
    edges = list(probabilities.values())
    return {op: round(float(np.mean([e[op] for e in edges])), 5) for op in edges[0]}
