"""Net2Net / network morphism for gennas networks: children that start from their parent's function.

Chen et al.'s Net2Net and Wei et al.'s network morphism make a child network whose initial
function is the trained parent's, so the child's training starts where the parent ended
instead of from random weights. Three transforms of a :class:`~gennas.nn.network.CellNetwork`:

* :func:`change_ops`: the parent network re-built for another cell of the same skeleton. Every
  unchanged edge, the stem, the reductions and the head keep their weights. A changed edge is
  function-preserving where an identity exists: ``none`` -> a convolution whose BatchNorm scale
  and shift are zero (it adds exactly 0, yet its gradient is not), ``nor_conv_1x1`` ->
  ``nor_conv_3x3`` (the 1x1 kernel as the centre tap of a zero 3x3). Other changes (an edge
  removed, a pooling or skip added, 3x3 -> 1x1) cannot preserve a sum of edges; those edges start
  fresh (3x3 -> 1x1 keeps the centre tap) and :attr:`Morph.exact` says so.
* :func:`widen`: Net2WiderNet, every stage's channels to a new width by replicating random
  channels and splitting the consumers' weights among the copies (exact, BatchNorm included).
* :func:`deepen`: Net2DeeperNet, an identity cell inserted into a stage: a skip from input to
  output plus a conv path whose last BatchNorm is zero, so it adds 0 until it learns something.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gennas.errors import GennasError
from gennas.nn.cell import CellModule
from gennas.nn.network import CellNetwork, NetworkConfig
from gennas.space.cell import Cell, edge_list

CONVS = ("nor_conv_1x1", "nor_conv_3x3")


@dataclass
class Morph:
    """A child network made from a parent, and whether it computes exactly the parent's function.

    Attributes:
        network: the child, in the parent's mode (train or eval) and on its device.
        exact: True when every changed edge had a function-preserving form.
        fresh: the changed edges that could not preserve the function (``"src_dst"`` keys).
    """

    network: CellNetwork
    exact: bool
    fresh: list[str]


def change_ops(parent: CellNetwork, child: Cell) -> Morph:
    """The parent's trained network re-built for ``child`` (same skeleton), preserving what can be preserved.

    Args:
        parent: a trained :class:`CellNetwork`.
        child: a cell with as many nodes as the parent's.

    Returns:
        The child network and which of its changed edges start fresh.
    """
    if child.n_nodes != parent.cell.n_nodes:
        raise GennasError(f"a Net2Net op change keeps the cell's nodes: parent has {parent.cell.n_nodes}, child "
                          f"{child.n_nodes}")
    device = next(parent.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the fresh edges' weights do not depend on the caller's RNG state
        network = CellNetwork(child, parent.config).to(device)
    network.train(parent.training)
    changed = [(f"{s}_{d}", old, new) for (s, d), old, new in zip(edge_list(child.n_nodes), parent.cell.ops, child.ops)
               if old != new]
    keys = {key for key, _, _ in changed}
    own = parent.state_dict()
    state = network.state_dict()
    for name in state:
        if ".edge_ops." not in name or name.split(".edge_ops.")[1].split(".")[0] not in keys:
            state[name] = own[name].clone()  # unchanged edges, stem, reductions and head
    network.load_state_dict(state)
    fresh = []
    for key, old, new in changed:
        if not _morph_edge(parent, network, key, old, new):
            fresh.append(key)
    return Morph(network, not fresh, fresh)


def _morph_edge(parent: CellNetwork, child: CellNetwork, key: str, old: str, new: str) -> bool:
    """Initialise edge ``key`` of every child cell from the parent's; True when the edge's function is kept."""
    pairs = [(p, c) for p, c in zip(parent.layers, child.layers) if isinstance(c, CellModule)]
    exact = new == "none" and old == "none"
    for theirs, mine in pairs:
        if new not in CONVS:
            break  # no weights to set: an edge removed or a parameter-free op added
        conv, bn = mine.edge_ops[key][1], mine.edge_ops[key][2]
        with torch.no_grad():
            if old == "none":  # zero BatchNorm: the new edge adds exactly 0 to its node
                bn.weight.zero_()
                bn.bias.zero_()
                exact = True
            elif old in CONVS:
                source = theirs.edge_ops[key]
                kernel = source[1].weight
                conv.weight.zero_()
                if old == new:
                    conv.weight.copy_(kernel)
                elif new == "nor_conv_3x3":  # 1x1 -> the centre tap of a 3x3 (padding 1 keeps the map)
                    conv.weight[:, :, 1:2, 1:2] = kernel
                else:  # 3x3 -> its centre tap: the nearest 1x1, not the same function
                    conv.weight.copy_(kernel[:, :, 1:2, 1:2])
                bn.load_state_dict(source[2].state_dict())
                exact = new == "nor_conv_3x3" or old == new
    return exact


# ----------------------------------------------------------------- widen
def widen(parent: CellNetwork, channels: int, seed: int = 0) -> CellNetwork:
    """Net2WiderNet: the parent with ``channels`` in its first stage (2x, 4x in the others), same function.

    Each new channel copies a random old one of its stage; every layer reading a copied
    channel divides that channel's weights by its number of copies, so sums are unchanged.

    Args:
        parent: the network to widen.
        channels: the new first-stage width, at least the parent's.
        seed: which old channels the new ones copy.
    """
    old = parent.config
    if channels < old.channels:
        raise GennasError(f"widen grows a network: {channels} channels is fewer than the parent's {old.channels}")
    rng = np.random.default_rng(seed)
    config = NetworkConfig(**{**old.to_dict(), "channels": channels})
    maps = {}
    for w_old, w_new in zip(old.stage_channels, config.stage_channels):
        copies = np.concatenate([np.arange(w_old), rng.integers(0, w_old, w_new - w_old)])
        maps[w_old] = torch.as_tensor(copies)
    child = CellNetwork(parent.cell, config).to(next(parent.parameters()).device)
    child.train(parent.training)
    mine = dict(child.named_modules())
    for name, module in parent.named_modules():
        with torch.no_grad():
            if isinstance(module, nn.Conv2d):
                g_out = maps[module.out_channels]
                weight = module.weight[g_out]
                if name != "stem.0":  # the stem reads the image, whose channels do not change
                    weight = _split_inputs(weight, maps[module.in_channels])
                mine[name].weight.copy_(weight)
            elif isinstance(module, nn.BatchNorm2d):
                g = maps[module.num_features]
                for buffer in ("weight", "bias", "running_mean", "running_var"):
                    getattr(mine[name], buffer).copy_(getattr(module, buffer)[g])
                mine[name].num_batches_tracked.copy_(module.num_batches_tracked)
            elif isinstance(module, nn.Linear):
                mine[name].weight.copy_(_split_inputs(module.weight, maps[module.in_features]))
                mine[name].bias.copy_(module.bias)
    return child


def _split_inputs(weight: torch.Tensor, copies: torch.Tensor) -> torch.Tensor:
    """Columns for the widened input: each copy of an old channel gets that channel's weight / its copies."""
    counts = torch.bincount(copies, minlength=weight.shape[1]).to(weight.dtype)
    return weight[:, copies] / counts[copies].view(1, -1, *([1] * (weight.dim() - 2)))


# ----------------------------------------------------------------- deepen
def identity_cell(n_nodes: int) -> Cell:
    """A trainable cell that starts as the identity: skip input -> output, conv 0 -> 1 -> output (zero BN last)."""
    if n_nodes < 3:
        raise GennasError("an identity cell with a trainable path needs at least 3 nodes")
    ops = []
    for src, dst in edge_list(n_nodes):
        if (src, dst) == (0, n_nodes - 1):
            ops.append("skip_connect")
        elif (src, dst) in ((0, 1), (1, n_nodes - 1)):
            ops.append("nor_conv_3x3")
        else:
            ops.append("none")
    return Cell(tuple(ops))


def deepen(parent: CellNetwork, stage: int = 0) -> CellNetwork:
    """Net2DeeperNet: the parent with one identity cell appended to ``stage`` (0, 1 or 2), same function.

    The inserted cell's conv path ends in a zero BatchNorm, so it adds 0 to the skip until
    training moves it; the rest of the network keeps the parent's weights.
    """
    if stage not in (0, 1, 2):
        raise GennasError(f"a network has stages 0, 1 and 2, got {stage}")
    n = parent.config.cells_per_stage
    at = (stage + 1) * n + stage  # after the stage's last cell (each earlier stage adds one reduction)
    cell = identity_cell(parent.cell.n_nodes)
    inserted = CellModule(cell, parent.config.stage_channels[stage]).to(next(parent.parameters()).device)
    with torch.no_grad():
        last = inserted.edge_ops[f"1_{cell.n_nodes - 1}"][2]
        last.weight.zero_()
        last.bias.zero_()
    inserted.train(parent.training)
    child = CellNetwork(parent.cell, parent.config).to(next(parent.parameters()).device)
    child.load_state_dict(parent.state_dict())
    layers = list(child.layers)
    child.layers = nn.Sequential(*layers[:at], inserted, *layers[at:])
    child.train(parent.training)
    return child
