"""Architectures as tensors for the predictor and the generator: per-variable value distributions plus a graph.

A batch is ``P`` of shape (B, V, K): one row per search variable of the space (an edge's op
on NB201 and dagN; a node's input pair or an input's op on DARTS, see ``space.choices``),
``K`` the largest number of values a variable takes. For clean architectures a row is a
one-hot, for noisy or soft ones any distribution; values past a variable's range
(``value_mask``) always have probability 0, which is how samples stay valid by construction.
The graph over the variables (input, one node per variable, output) is fixed per space
(``space.variable_graph()``); on cell spaces an edge node's probability of *not* being
``none`` gates its messages, so hard cells see only their real data paths and soft cells
get a differentiable blend of them. Where a variable's meaning depends on its position
(DARTS: "input pair 3" means different inputs at different nodes) each node also carries
a one-hot of its index (``space.graph_positional``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from gennas.space.protocol import ArchSpace, cardinalities


def num_values(space: ArchSpace) -> int:
    """``K``: the most values any search variable takes."""
    return max(cardinalities(space))


def value_mask(space: ArchSpace) -> torch.Tensor:
    """(V, K) bool, True where value k exists for variable v."""
    cards = torch.tensor(cardinalities(space))
    return torch.arange(num_values(space)).view(1, -1) < cards.view(-1, 1)


def uniform_prior(space: ArchSpace) -> torch.Tensor:
    """The uniform distribution over each variable's values: (K,) when all variables agree, else (V, K)."""
    mask = value_mask(space).float()
    prior = mask / mask.sum(dim=1, keepdim=True)
    return prior[0] if bool((mask == mask[0]).all()) else prior


def op_indices(space: ArchSpace, cells: Sequence) -> torch.Tensor:
    """(B, V) long tensor of variable values (validates every architecture against the space)."""
    if not cells:
        return torch.empty(0, len(space.choices), dtype=torch.long)
    return torch.from_numpy(np.stack([space.encode(c) for c in cells]))


def one_hot_ops(space: ArchSpace, cells: Sequence) -> torch.Tensor:
    """(B, V, K) float one-hots of the architectures' variables."""
    return torch.nn.functional.one_hot(op_indices(space, cells), num_values(space)).float()


def line_graph(space: ArchSpace) -> torch.Tensor:
    """(V+2, V+2) adjacency, ``A[i, j] = 1`` when node i feeds node j."""
    return torch.from_numpy(space.variable_graph()).float()


def none_index(space: ArchSpace) -> int | None:
    """The value that means "no edge" (gates messages), where the space's variables are ops with ``none``."""
    ops = getattr(space, "ops", ())
    return ops.index("none") if "none" in ops else None


def in_features(space: ArchSpace) -> int:
    """Node feature width: input/output flags, K values, and the node index where positions matter."""
    v = len(space.choices)
    return 2 + num_values(space) + (v + 2 if space.graph_positional else 0)


def node_inputs(ops: torch.Tensor, none_index: int | None,
                positional: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Node features (B, V+2, F) and alive weights (B, V+2) from value distributions (B, V, K)."""
    b, e, k = ops.shape
    special = torch.eye(2, 2 + k, dtype=ops.dtype, device=ops.device)  # rows: input, output
    middle = torch.cat([ops.new_zeros(b, e, 2), ops], dim=-1)
    x = torch.cat([special[0].expand(b, 1, -1), middle, special[1].expand(b, 1, -1)], dim=1)
    if positional:
        x = torch.cat([x, torch.eye(e + 2, dtype=ops.dtype, device=ops.device).expand(b, -1, -1)], dim=-1)
    alive = ops.new_ones(b, e + 2)
    if none_index is not None:
        alive = torch.cat([alive[:, :1], 1.0 - ops[..., none_index], alive[:, -1:]], dim=1)
    return x, alive
