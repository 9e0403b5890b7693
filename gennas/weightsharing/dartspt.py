"""DARTS-PT (Wang et al., 2021): the op of each edge chosen by perturbation of a trained DARTS supernet.

Large α does not mean a strong op (the paper's diagnosis of DARTS's skip collapse), so the
cell is not read from α: edge by edge, in random order, each op o (other than ``none``)
is removed from the edge of the trained supernet and the validation accuracy measured;
the op whose removal costs the most accuracy is kept,

    o*_e = argmax_o [ acc(supernet) − acc(supernet with o removed from e) ],

the edge is then fixed to o* (one-hot), and the supernet is fine-tuned (weights only, α
frozen) before the next edges are decided. Here the search's last ``pt_fraction`` of the
epochs is that phase: the epochs before it are plain first-order DARTS, and the edges are
decided in equal shares at the end of each epoch from the last DARTS epoch on, so every
edge is decided by the search's end (one epoch: all at its end, without fine-tuning).
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

from gennas.space.cell import Cell
from gennas.space.space import CellSpace
from gennas.train.trainer import evaluate_accuracy
from gennas.weightsharing.derive import derive_cell
from gennas.weightsharing.mixed import FixedWeights
from gennas.weightsharing.oneshot import SelectingSuperNetwork


def selection_start(epochs: int, fraction: float) -> int:
    """The first epoch of the fine-tuning phase: epochs − round(fraction·(epochs − 1)) (≥ 1)."""
    return epochs - min(epochs - 1, max(0, round(fraction * (epochs - 1))))


def edges_to_decide(epoch: int, epochs: int, start: int, undecided: int) -> int:
    """How many edges the end of ``epoch`` decides: an equal share of the rest over the decision points left."""
    if epoch < start - 1:
        return 0
    return math.ceil(undecided / (epochs - epoch))


def fixed_weights(alpha: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """softmax(α), with every decided edge (``selected`` ≥ 0) one-hot on its op; shapes (E, |ops|), (E,)."""
    weights = torch.softmax(alpha, dim=-1)
    decided = selected >= 0
    one_hot = torch.zeros_like(weights).scatter_(-1, selected.clamp(min=0).unsqueeze(-1), 1.0)
    return torch.where(decided.unsqueeze(-1), one_hot, weights)


def _accuracy(model: SelectingSuperNetwork, weights: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor]) -> float:
    was_training = model.training
    try:
        return evaluate_accuracy(FixedWeights(model, weights, None), TensorDataset(*val), val[0].device)
    finally:
        model.train(was_training)


def decide_edge(model: SelectingSuperNetwork, edge: int, val: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    """Fix ``edge`` to the op whose removal lowers validation accuracy most; the accuracy after each removal.

    Returns:
        op name -> validation accuracy (%) of the supernet with that op removed from the edge.
    """
    base = fixed_weights(model.alpha.detach(), model.selected)
    drops = {}
    for k, name in enumerate(model.space.ops):
        if name == "none":
            continue
        weights = base.clone()
        weights[edge, k] = 0.0
        drops[name] = _accuracy(model, weights, val)
    alpha = model.alpha.detach()[edge].tolist()
    # The lowest accuracy without it; among ties (accuracy moves in steps of 1/|val|) the larger α, not the op order.
    chosen = min(drops, key=lambda name: (drops[name], -alpha[model.space.ops.index(name)]))
    model.selected[edge] = model.space.ops.index(chosen)
    return drops


def derive(model: SelectingSuperNetwork, space: CellSpace) -> Cell:
    """Decided edges as decided; any other (a search cut short) by DARTS's argmax convention."""
    cell = derive_cell(model.alpha.detach().float().cpu(), space)
    ops = [space.ops[int(k)] if k >= 0 else op for k, op in zip(model.selected.tolist(), cell.ops)]
    return space.validate(Cell(tuple(ops)))
