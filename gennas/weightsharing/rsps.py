"""RSPS (Li & Talwalkar, 2019): random search with parameter sharing.

Training: every weight step samples one op per edge uniformly (including ``none``) and
trains only that path, so the shared weights are fitted to the whole space at once, not
to a learned α. Search: cells drawn uniformly from the space are scored by the shared
weights' validation accuracy (no retraining), and the best one is the result. Scoring
runs after every epoch, so a search cut short by its deadline still returns the best
cell of the weights it has; α holds that cell as a one-hot and is never trained.

Shared-weight scores use batch statistics in BatchNorm (the running statistics belong to
the mixture of all sampled paths, not to the one scored); the running statistics are put
back afterwards, so scoring does not change the supernet.
"""

from __future__ import annotations

import torch

from gennas.errors import GennasError
from gennas.space.cell import Cell
from gennas.space.space import CellSpace
from gennas.weightsharing.mixed import SuperNetwork

#: Images per scoring forward (BatchNorm then normalises over this many).
SCORE_BATCH = 512


def one_hot_path(indices: torch.Tensor, n_ops: int) -> tuple[torch.Tensor, list[int]]:
    """Edge weights of one path: shape (E,) op indices -> (E, n_ops) one-hot and the index list."""
    weights = torch.zeros(len(indices), n_ops, device=indices.device).scatter_(-1, indices.unsqueeze(-1), 1.0)
    return weights, indices.tolist()


def uniform_path(alpha: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """One op per edge drawn uniformly: the single path a weight step trains (α only gives the shape)."""
    edges, n_ops = alpha.shape
    return one_hot_path(torch.randint(n_ops, (edges,), generator=generator, device=alpha.device), n_ops)


def sample_cells(space: CellSpace, n: int, generator: torch.Generator) -> list[Cell]:
    """``n`` cells drawn uniformly from ``space`` (rejection of the disconnected where the space asks)."""
    cells: list[Cell] = []
    for _ in range(10_000 * n):
        if len(cells) == n:
            return cells
        draw = torch.randint(len(space.ops), (space.num_edges,), generator=generator, device=generator.device)
        cell = Cell(tuple(space.ops[int(i)] for i in draw.tolist()))
        if space.contains(cell):
            cells.append(cell)
    raise GennasError(f"could not sample {n} valid cells of {space.name!r}")


@torch.no_grad()
def shared_weight_accuracy(model: SuperNetwork, cells: list[Cell], x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Accuracy (%) of each cell on (x, y) with the supernet's weights, BatchNorm on batch statistics.

    Shapes: x (N, C, H, W), y (N,) -> one float per cell.
    """
    space = model.space
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train()
    try:
        scores = []
        for cell in cells:
            indices = torch.tensor(space.encode(cell).tolist(), device=x.device)
            weights, chosen = one_hot_path(indices, len(space.ops))
            correct = sum(int((model(x[i:i + SCORE_BATCH], weights, chosen).argmax(1) == y[i:i + SCORE_BATCH]).sum())
                          for i in range(0, len(y), SCORE_BATCH))
            scores.append(100.0 * correct / len(y))
        return scores
    finally:
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
        model.train(was_training)


def set_best(model: SuperNetwork, cell: Cell) -> None:
    """α := the one-hot of ``cell`` (what :func:`derive_exact` reads back, ``none`` included)."""
    with torch.no_grad():
        model.alpha.zero_()
        model.alpha.scatter_(-1, torch.tensor(model.space.encode(cell).tolist(), device=model.alpha.device)
                             .unsqueeze(-1), 1.0)


def derive_exact(alpha: torch.Tensor, space: CellSpace) -> Cell:
    """The argmax op of each edge, ``none`` included: the scored cell itself, not the DARTS convention."""
    return space.validate(Cell(tuple(space.ops[int(i)] for i in alpha.argmax(dim=-1).tolist())))
