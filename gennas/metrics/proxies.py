"""Data-free zero-cost proxies: what a cell's untrained network says about its accuracy, before any query.

A search starts with no measured cells, and a predictor fitted on a few dozen of them ranks
the rest poorly. Two scores computed on a randomly initialised network, with no image and
no label of any dataset, rank NB201 cells better than a forest on one-hot ops fitted on a
hundred measured ones (experiments/results/predictor_<dataset>.md, part
zero-prior-proxies), and they cost milliseconds per cell:

* **synflow** (Tanaka et al. 2020; Abdelfattah et al. 2021, *Zero-Cost Proxies for
  Lightweight NAS*): with every weight replaced by its absolute value and an all-ones input,
  :math:`S = \\sum_\\theta |\\theta \\odot \\partial R / \\partial \\theta|` where
  :math:`R = \\mathbf{1}^\\top f(\\mathbf{1})`. It measures how much signal the network
  passes, edge by edge; kept as :math:`\\log S`.
* **naswot** (Mellor et al. 2021, *NAS without training*): for a batch of inputs, the
  binary codes :math:`c_i` of which ReLUs are active give the kernel
  :math:`K_{ij} = c_i^\\top c_j + (1 - c_i)^\\top (1 - c_j)`, and the score is
  :math:`\\log |\\det K|`: how differently the network cuts up the input space. Here the
  inputs are Gaussian noise, so the score needs no data either.

Both are computed on a small version of the skeleton (:data:`PROXY_NETWORK`): what they
rank is the cell's ops and wiring, which a narrow, shallow copy keeps at a fraction of the
cost. The
weights and the noise are seeded, so a cell's proxies are the same in every process.
:class:`ProxyTable` holds them for every cell of an enumerable space, cached like
:class:`gennas.metrics.costs.CostTable`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from gennas.errors import GennasError
from gennas.io import read_cached_columns, write_cached_columns
from gennas.metrics.flops import analytic_flops_params
from gennas.nn.network import NetworkConfig, build_network
from gennas.settings import cache_dir
from gennas.space.cell import Cell
from gennas.space.space import ENUMERATION_LIMIT, CellSpace

#: The proxies' names, in the order feature matrices hold them.
PROXIES = ("log_synflow", "naswot")

#: The skeleton the proxies run on: NB201's layout, narrower, one cell per stage, 16 px inputs.
PROXY_NETWORK = NetworkConfig(channels=8, cells_per_stage=1, in_channels=3, image_size=16, num_classes=10)

#: Noise images in the naswot batch (its kernel is batch x batch).
NASWOT_BATCH = 64

#: Bump when the proxies' definition changes, so cached tables are rebuilt.
PROXY_VERSION = 1


def _seeded_network(cell: Cell, config: NetworkConfig) -> torch.nn.Module:
    """The cell's network with weights from a fixed seed (the same for every cell), in eval mode.

    Eval mode makes batch norm use its initial running statistics (mean 0, variance 1), so it
    is close to the identity and a proxy reads the ops, not the batch's statistics.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_network(cell, config)
    return net.eval()


def synflow(cell: Cell, config: NetworkConfig = PROXY_NETWORK) -> float:
    """:math:`\\log` of the synaptic-flow score of the cell's untrained network (double precision).

    Returns:
        The log score (finite: the skeleton's stem and reductions pass signal even when the
        cell passes none).
    """
    net = _seeded_network(cell, config).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    ones = torch.ones(1, config.in_channels, config.image_size, config.image_size, dtype=torch.float64)
    net.zero_grad()
    net(ones).sum().backward()
    with torch.no_grad():
        score = sum(float((p * p.grad).abs().sum()) for p in net.parameters() if p.grad is not None)
    return float(np.log(max(score, np.finfo(np.float64).tiny)))


def naswot(cell: Cell, config: NetworkConfig = PROXY_NETWORK, batch: int = NASWOT_BATCH) -> float:
    """:math:`\\log |\\det K|` of the ReLU-activation-code kernel over a batch of noise images.

    Returns:
        The log determinant, 0 when the kernel is singular (too few active units tell the
        images apart). ``K`` has integer entries, so a non-singular one has ``det K >= 1``:
        0 is the floor of every other score, and a singular kernel ties with the worst.
    """
    net = _seeded_network(cell, config)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, config.in_channels, config.image_size, config.image_size, generator=generator)
    codes: list[torch.Tensor] = []

    def record(module, inputs, output) -> None:
        codes.append((inputs[0].detach() > 0).flatten(1).double())

    handles = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    try:
        with torch.no_grad():
            net(images)
    finally:
        for handle in handles:
            handle.remove()
    if not codes:
        return 0.0
    c = torch.cat(codes, dim=1)
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(kernel)
    return max(float(logdet), 0.0) if float(sign) > 0 else 0.0


#: Proxies evaluated (or read from a :class:`ProxyTable`) in this process, by arch string.
_KNOWN: dict[str, tuple[float, float]] = {}


def _proxies_of(arch: str) -> tuple[float, float]:
    if arch not in _KNOWN:
        cell = Cell.from_string(arch)
        _KNOWN[arch] = (synflow(cell), naswot(cell))
    return _KNOWN[arch]


def cell_proxies(cell: Cell) -> dict[str, float]:
    """The cell's proxies (:data:`PROXIES`), evaluated once per process and cell (or read from a remembered table)."""
    return dict(zip(PROXIES, _proxies_of(cell.to_string())))


def proxy_features(cells: Sequence[Cell]) -> np.ndarray:
    """(N, 4) free features of cells for a predictor: :data:`PROXIES`, then log FLOPs and log params.

    All four come from the cell alone (the costs on :data:`PROXY_NETWORK`, closed form), so a
    predictor can use them for cells never measured, from the first query on.

    Raises:
        GennasError: for architectures that are not cells (the proxies build a cell network).
    """
    if any(not isinstance(c, Cell) for c in cells):
        raise GennasError("zero-cost proxies are defined for cell spaces (nb201, dagN); "
                          "use the one-hot features on this space")
    rows = []
    for cell in cells:
        flops, params = analytic_flops_params(cell, PROXY_NETWORK)
        rows.append([*_proxies_of(cell.to_string()), np.log(flops), np.log(params)])
    return np.array(rows, dtype=np.float64).reshape(len(cells), len(PROXIES) + 2)


@dataclass
class ProxyTable:
    """:data:`PROXIES` for every cell of an enumerable space, in the space's ordinal order."""

    space: CellSpace
    values: dict[str, np.ndarray]

    def lookup(self, cell: Cell) -> dict[str, float]:
        return dict(zip(PROXIES, (float(self.values[name][self.space.ordinal(cell)]) for name in PROXIES)))

    @classmethod
    def build(cls, space: CellSpace, progress: bool = False) -> "ProxyTable":
        """Evaluate every cell of the space (each as :func:`cell_proxies` does, so both agree)."""
        if space.size > ENUMERATION_LIMIT:
            raise GennasError(f"space {space.name!r} has {space.size:.3g} cells, too many for a proxy table; "
                              "use cell_proxies")
        cells = (space.from_ordinal(i) for i in range(space.size))
        rows = [_proxies_of(c.to_string()) for c in tqdm(cells, total=space.size, desc=f"proxies of {space.name}",
                                                          disable=not progress)]
        return cls(space, {name: np.array([r[j] for r in rows]) for j, name in enumerate(PROXIES)})

    @staticmethod
    def cache_path(space: CellSpace, root: Path | None = None) -> Path:
        key = json.dumps({"n": space.n_nodes, "ops": space.ops, "net": PROXY_NETWORK.to_dict(),
                          "batch": NASWOT_BATCH, "v": PROXY_VERSION}, sort_keys=True)
        return (root or cache_dir()) / "proxies" / f"{space.name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"

    @classmethod
    def read_cached(cls, space: CellSpace, root: Path | None = None) -> "ProxyTable | None":
        """The cached table, remembered for :func:`proxy_features`; None when there is none (or it is unreadable)."""
        values = read_cached_columns(cls.cache_path(space, root), PROXIES, space.size)
        return None if values is None else cls(space, values).remember()

    @classmethod
    def load_or_build(cls, space: CellSpace, root: Path | None = None, progress: bool = False) -> "ProxyTable":
        """Read the cached table, or build and cache it (a corrupt cache file is rebuilt)."""
        cached = cls.read_cached(space, root)
        if cached is not None:
            return cached
        table = cls.build(space, progress=progress)
        write_cached_columns(cls.cache_path(space, root), table.values)
        return table

    def remember(self) -> "ProxyTable":
        """Let :func:`cell_proxies` and :func:`proxy_features` read this table instead of evaluating again."""
        columns = [self.values[name] for name in PROXIES]
        for row in range(self.space.size):
            _KNOWN.setdefault(self.space.from_ordinal(row).to_string(), tuple(float(c[row]) for c in columns))
        return self
