"""The graph network: bidirectional dense GIN over the op-on-node cell graph.

Dense message passing (torch-geometric's ``DenseGINConv``) fits cell graphs: every
cell of a space has the same node count, so a batch is one (B, N, N) tensor and soft
adjacencies (noisy cells during guided diffusion) flow through the same code as hard
ones. Messages run both with and against the data flow, because an op's effect depends
on what feeds it and on what it feeds. A sinusoidal embedding of the diffusion time is
added to every node, so one network serves clean cells (t = 0) and noisy ones.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.nn import DenseGINConv

from gennas.metrics.task import metric_of


def _mlp(dim_in: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, dim_out), nn.LayerNorm(dim_out), nn.SiLU(), nn.Linear(dim_out, dim_out))


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float().view(-1, 1) * 1000.0 * freqs.view(1, -1)  # t in [0, 1] as 0..1000 steps
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class GraphTrunk(nn.Module):
    """Message passing: node features (B, N, F), alive weights (B, N), times (B,) -> node states (B, N, H)."""

    def __init__(self, in_features: int, hidden: int = 64, layers: int = 4) -> None:
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Linear(in_features, hidden)
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.forward_convs = nn.ModuleList(DenseGINConv(_mlp(hidden, hidden), train_eps=True) for _ in range(layers))
        self.backward_convs = nn.ModuleList(DenseGINConv(_mlp(hidden, hidden), train_eps=True) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))

    def node_states(self, x: torch.Tensor, adjacency: torch.Tensor, alive: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per-node hidden states (B, N, H) after message passing (the denoiser reads these)."""
        # adjacency[i, j] = 1 when node i feeds node j; gate both ends by how alive they are.
        gated = adjacency.unsqueeze(0) * alive.unsqueeze(2) * alive.unsqueeze(1)
        incoming = gated.transpose(1, 2)  # row j collects its predecessors
        h = self.embed(x) + self.time(time_embedding(t, self.hidden)).unsqueeze(1)
        for fwd, bwd, norm in zip(self.forward_convs, self.backward_convs, self.norms):
            message = fwd(h, incoming, add_loop=False) + bwd(h, gated, add_loop=False)
            h = norm(h + torch.nn.functional.silu(message))
        return h

class CellEncoder(GraphTrunk):
    """The trunk plus a readout (output node + alive-weighted mean) to one cell embedding (B, H)."""

    def __init__(self, in_features: int, hidden: int = 64, layers: int = 4) -> None:
        super().__init__(in_features, hidden, layers)
        self.readout = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor, alive: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.node_states(x, adjacency, alive, t)
        weights = alive / alive.sum(dim=1, keepdim=True).clamp_min(1e-6)
        pooled = (h * weights.unsqueeze(-1)).sum(dim=1)
        return self.readout(torch.cat([h[:, -1], pooled], dim=-1))


class MultiHeadNet(nn.Module):
    """A shared encoder, one head per *metric*, and one learned embedding per (metric, dataset) task.

    ``accuracy@cifar10`` and ``accuracy@cifar100`` share the accuracy head and differ by their
    dataset embeddings; that is what lets a new dataset start from the known ones (the mean
    embedding) and adapt from a handful of cells by fitting one small vector.
    Tasks without a dataset (``flops``) have an embedding too, so every task is handled alike.
    """

    def __init__(self, in_features: int, tasks: list[str], hidden: int = 64, layers: int = 4, embed_dim: int = 8) -> None:
        super().__init__()
        self.hidden, self.embed_dim = hidden, embed_dim
        self.encoder = CellEncoder(in_features, hidden, layers)
        self.heads = nn.ModuleDict()
        self.embeddings = nn.ParameterDict()
        for task in tasks:
            self.add_task(task)

    def add_task(self, task: str, embedding: torch.Tensor | None = None) -> None:
        """Create what ``task`` needs and does not have yet: its metric's head, its dataset embedding."""
        metric = metric_of(task)
        if task_key(metric) not in self.heads:
            self.heads[task_key(metric)] = nn.Sequential(
                nn.Linear(self.hidden + self.embed_dim, self.hidden), nn.SiLU(), nn.Linear(self.hidden, 1)
            ).to(next(self.encoder.parameters()).device)
        init = embedding if embedding is not None else 0.1 * torch.randn(self.embed_dim)
        self.embeddings[task_key(task)] = nn.Parameter(init.detach().clone().to(next(self.encoder.parameters()).device))

    def forward(self, x, adjacency, alive, t, tasks: list[str]) -> torch.Tensor:
        return decode_tasks(self.heads, self.embeddings, self.encoder(x, adjacency, alive, t), tasks)


class TaskHeads(nn.Module):
    """A :class:`MultiHeadNet`'s heads and task embeddings alone, under the same weight names.

    A fit on a frozen encoder encodes its cells once and trains these on the encodings:
    a functional call of this module swaps in the heads' weights only, not the encoder's.
    """

    def __init__(self, net: MultiHeadNet) -> None:
        super().__init__()
        self.heads, self.embeddings = net.heads, net.embeddings

    def forward(self, z: torch.Tensor, tasks: list[str]) -> torch.Tensor:
        """Outputs (B, T) from cell encodings ``z`` (B, H)."""
        return decode_tasks(self.heads, self.embeddings, z, tasks)


def decode_tasks(heads: nn.ModuleDict, embeddings: nn.ParameterDict, z: torch.Tensor, tasks: list[str]) -> torch.Tensor:
    """Each task's output (B, T): its metric's head on the cell encoding (B, H) joined to the task's embedding."""
    outs = []
    for task in tasks:
        e = embeddings[task_key(task)]
        head = heads[task_key(metric_of(task))]
        outs.append(head(torch.cat([z, e.expand(z.shape[0], -1)], dim=-1)))
    return torch.cat(outs, dim=1)


def task_key(task: str) -> str:
    """Module keys cannot contain dots; task names may (``accuracy@cifar10.1``)."""
    return task.replace(".", "_dot_")
