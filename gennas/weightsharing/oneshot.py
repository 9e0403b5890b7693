"""One-shot selection: single-path weight training, then sampled cells ranked by the shared weights.

RSPS (Li & Talwalkar, 2019), SETN (Dong & Yang, 2019) and ENAS (Pham et al., 2018) share
this: each weight step trains one path (one op per edge) of the supernet, and the result
is the best of ``candidates`` sampled cells by the shared weights' validation accuracy
(no retraining). They differ in where the paths and candidates come from: RSPS draws
both uniformly, SETN draws candidates from softmax(α) (α learned DARTS-style), ENAS from
its RNN controller (:mod:`gennas.weightsharing.enas`). Selection runs after every epoch,
so a search cut short by its deadline still returns the best cell of the weights it has;
the chosen cell is the ``selected`` buffer of :class:`SelectingSuperNetwork` (in the
checkpoint like every weight).

Shared-weight scores use batch statistics in BatchNorm (the running statistics belong to
the mixture of all sampled paths, not to the one scored); the running statistics are put
back afterwards, so scoring does not change the supernet.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from gennas.errors import GennasError
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.space.space import CellSpace
from gennas.weightsharing.mixed import SuperNetwork

#: Images per scoring forward (BatchNorm then normalises over this many).
SCORE_BATCH = 512


class SelectingSuperNetwork(SuperNetwork):
    """The supernet plus the op index per edge of the cell selected so far (−1 before the first selection)."""

    def __init__(self, space: CellSpace, config: NetworkConfig, mean: tuple[float, ...], std: tuple[float, ...]
                 ) -> None:
        super().__init__(space, config, mean, std)
        self.register_buffer("selected", torch.full((space.num_edges,), -1, dtype=torch.long))


def one_hot_path(indices: torch.Tensor, n_ops: int) -> tuple[torch.Tensor, list[int]]:
    """Edge weights of one path: shape (E,) op indices -> (E, n_ops) one-hot and the index list."""
    weights = torch.zeros(len(indices), n_ops, device=indices.device).scatter_(-1, indices.unsqueeze(-1), 1.0)
    return weights, indices.tolist()


def uniform_path(alpha: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """One op per edge drawn uniformly: the single path a weight step trains (α only gives the shape)."""
    edges, n_ops = alpha.shape
    return one_hot_path(torch.randint(n_ops, (edges,), generator=generator, device=alpha.device), n_ops)


def sample_cells(space: CellSpace, n: int, draw: Callable[[], torch.Tensor]) -> list[Cell]:
    """``n`` cells of ``space`` from ``draw`` (op indices, shape (E,)), rejecting cells the space refuses."""
    cells: list[Cell] = []
    for _ in range(10_000 * n):
        if len(cells) == n:
            return cells
        cell = Cell(tuple(space.ops[int(i)] for i in draw().tolist()))
        if space.contains(cell):
            cells.append(cell)
    raise GennasError(f"could not sample {n} valid cells of {space.name!r}")


def uniform_draw(space: CellSpace, generator: torch.Generator) -> Callable[[], torch.Tensor]:
    """Every edge's op uniformly (RSPS)."""
    return lambda: torch.randint(len(space.ops), (space.num_edges,), generator=generator, device=generator.device)


def edgewise_draw(probabilities: torch.Tensor, generator: torch.Generator) -> Callable[[], torch.Tensor]:
    """Every edge's op from its row of ``probabilities`` (shape (E, |ops|); SETN: softmax(α))."""
    return lambda: torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def path_accuracy(model: SuperNetwork, paths: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Accuracy (%) on (x, y) of each path (shape (E,) op indices) with the shared weights, BatchNorm on batch statistics.

    Shapes: x (N, C, H, W), y (N,) -> one float per path.
    """
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train()
    try:
        scores = []
        for indices in paths:
            weights, chosen = one_hot_path(indices.to(x.device), len(model.space.ops))
            correct = sum(int((model(x[i:i + SCORE_BATCH], weights, chosen).argmax(1) == y[i:i + SCORE_BATCH]).sum())
                          for i in range(0, len(y), SCORE_BATCH))
            scores.append(100.0 * correct / len(y))
        return scores
    finally:
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
        model.train(was_training)


def shared_weight_accuracy(model: SuperNetwork, cells: list[Cell], x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """:func:`path_accuracy` of cells of the model's space."""
    return path_accuracy(model, [torch.tensor(model.space.encode(c).tolist()) for c in cells], x, y)


def select_best(model: SelectingSuperNetwork, cells: list[Cell], val: tuple[torch.Tensor, torch.Tensor]
                ) -> dict[str, Any]:
    """Score ``cells`` on ``val``, store the best (the first drawn among ties) in ``model.selected``; the record."""
    scores = shared_weight_accuracy(model, cells, *val)
    best = max(range(len(cells)), key=scores.__getitem__)
    model.selected.copy_(torch.tensor(model.space.encode(cells[best]).tolist(), device=model.selected.device))
    return {"candidates": len(cells), "best_shared_accuracy": scores[best],
            "mean_shared_accuracy": sum(scores) / len(scores)}


def selected_cell(model: SelectingSuperNetwork) -> Cell:
    """The selected cell exactly (``none`` edges included: a scored cell, not the α-argmax convention)."""
    if int(model.selected.min()) < 0:
        raise GennasError("no cell has been selected yet (selection runs at the end of each epoch)")
    return model.space.validate(Cell(tuple(model.space.ops[int(i)] for i in model.selected.tolist())))


def selected_path(model: SelectingSuperNetwork) -> tuple[torch.Tensor, list[int]]:
    """Edge weights of the selected cell's path (for reading the supernet out)."""
    return one_hot_path(model.selected.clamp(min=0), len(model.space.ops))


def selected_one_hot(model: SelectingSuperNetwork) -> torch.Tensor:
    """The selected cell as an (E, |ops|) one-hot: RSPS's whole policy, logged in place of α."""
    return selected_path(model)[0]
