"""Search spaces of cell DAGs: sample, mutate, enumerate, encode, decode.

`CellSpace` is one class for the whole family: NAS-Bench-201 is ``CellSpace(4)`` with
its five ops and no connectivity requirement (the benchmark contains disconnected
cells), and the larger spaces are the same DAG with more intermediate nodes. Keeping
one class means one builder, one metric code path and one encoding for all of them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.space.cell import KNOWN_OPS, Cell, edge_list, num_edges

if TYPE_CHECKING:
    from gennas.space.protocol import ArchSpace

NB201_OPS: tuple[str, ...] = KNOWN_OPS
ENUMERATION_LIMIT = 2_000_000


class CellSpace:
    """All cells with ``n_nodes`` nodes whose edges take ops from ``ops``.

    ``require_connected`` rejects cells whose output is cut off from the input; the
    generator and samplers then only ever produce cells that train to something.
    """

    def __init__(
        self,
        n_nodes: int = 4,
        ops: Sequence[str] = NB201_OPS,
        require_connected: bool = False,
        name: str | None = None,
    ) -> None:
        if n_nodes < 2:
            raise GennasError(f"a cell space needs at least 2 nodes (input and output), got {n_nodes}")
        unknown = [op for op in ops if op not in KNOWN_OPS]
        if unknown or len(set(ops)) != len(ops) or not ops:
            raise GennasError(f"space ops must be distinct names from {KNOWN_OPS}, got {tuple(ops)}")
        self.n_nodes = n_nodes
        self.ops: tuple[str, ...] = tuple(ops)
        self.require_connected = require_connected
        self.name = name or f"dag{n_nodes}"

    # ------------------------------------------------------------------- facts
    @property
    def num_edges(self) -> int:
        return num_edges(self.n_nodes)

    @property
    def size(self) -> int:
        """Number of op assignments (before the connectivity requirement, if any)."""
        return len(self.ops) ** self.num_edges

    @property
    def choices(self) -> tuple[tuple[str, ...], ...]:
        """Per search variable (here: per edge) the labels of its values, as :meth:`encode` indexes them.

        Every space has this, so integer-genome searchers (NSGA-II, REINFORCE, Optuna) take any space.
        """
        return (self.ops,) * self.num_edges

    @property
    def one_hot_size(self) -> int:
        """Length of :meth:`one_hot`."""
        return self.num_edges * len(self.ops)

    #: A variable's meaning is its edge, which the line graph already says: no position features needed.
    graph_positional = False

    def variable_graph(self) -> np.ndarray:
        """The op-on-node line graph (input, one node per edge, output) the predictor and generator run on."""
        return Cell.line_graph(self.n_nodes)

    def record(self) -> dict:
        """What a checkpoint stores to rebuild this space (:func:`space_from_record`)."""
        return {"name": self.name, "n_nodes": self.n_nodes, "ops": list(self.ops),
                "require_connected": self.require_connected}

    def __repr__(self) -> str:
        return (
            f"CellSpace(name={self.name!r}, n_nodes={self.n_nodes}, ops={self.ops}, "
            f"require_connected={self.require_connected})"
        )

    # -------------------------------------------------------------- validation
    def validate(self, cell: Cell) -> Cell:
        """Return ``cell`` if it belongs to this space, else raise a clear :class:`GennasError`."""
        if cell.n_nodes != self.n_nodes:
            raise GennasError(
                f"cell {cell} has {cell.n_nodes} nodes but space {self.name!r} has {self.n_nodes}"
            )
        outside = sorted({op for op in cell.ops if op not in self.ops})
        if outside:
            raise GennasError(f"cell {cell} uses ops {outside} that space {self.name!r} does not have ({self.ops})")
        if self.require_connected and not cell.is_connected():
            raise GennasError(
                f"cell {cell} is invalid in space {self.name!r}: its output is not reachable from its input"
            )
        return cell

    def contains(self, cell: Cell) -> bool:
        try:
            self.validate(cell)
        except GennasError:
            return False
        return True

    def parse(self, arch: str) -> Cell:
        """Parse an arch string and check it belongs to this space."""
        return self.validate(Cell.from_string(arch))

    # ------------------------------------------------------------ encode/decode
    def encode(self, cell: Cell) -> np.ndarray:
        """Per-edge op indices, shape ``(E,)``."""
        return self.validate(cell).op_indices(self.ops)

    def decode(self, indices: Sequence[int] | np.ndarray) -> Cell:
        indices = np.asarray(indices)
        if indices.shape != (self.num_edges,) or indices.min(initial=0) < 0 or indices.max(initial=0) >= len(self.ops):
            raise GennasError(
                f"space {self.name!r} decodes {self.num_edges} op indices in [0, {len(self.ops)}), got {indices.tolist()}"
            )
        return self.validate(Cell(tuple(self.ops[i] for i in indices)))

    def one_hot(self, cell: Cell) -> np.ndarray:
        """Flat per-edge one-hot, shape ``(E * |ops|,)``: the classic tabular-regressor input."""
        out = np.zeros((self.num_edges, len(self.ops)), dtype=np.float32)
        out[np.arange(self.num_edges), self.encode(cell)] = 1.0
        return out.ravel()

    def ordinal(self, cell: Cell) -> int:
        """Mixed-radix position of a cell (edge 0 most significant); NB201 has its own index."""
        value = 0
        for i in self.encode(cell):
            value = value * len(self.ops) + int(i)
        return value

    def from_ordinal(self, value: int) -> Cell:
        if not 0 <= value < self.size:
            raise GennasError(f"ordinal {value} outside [0, {self.size}) for space {self.name!r}")
        digits = []
        for _ in range(self.num_edges):
            value, d = divmod(value, len(self.ops))
            digits.append(d)
        return Cell(tuple(self.ops[d] for d in reversed(digits)))

    # ---------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator, n: int | None = None) -> Cell | list[Cell]:
        """Uniform random cell(s) of the space (rejection-sampled when connectivity is required)."""
        if n is not None:
            return [self._sample_one(rng) for _ in range(n)]
        return self._sample_one(rng)

    def _sample_one(self, rng: np.random.Generator) -> Cell:
        for _ in range(10_000):
            cell = Cell(tuple(self.ops[i] for i in rng.integers(len(self.ops), size=self.num_edges)))
            if self.contains(cell):
                return cell
        raise GennasError(f"could not sample a valid cell of {self.name!r} in 10,000 tries")

    def neighbours(self, cell: Cell) -> list[Cell]:
        """All valid cells that differ from ``cell`` in exactly one edge op."""
        out = []
        for e, current in enumerate(cell.ops):
            for op in self.ops:
                if op != current:
                    candidate = Cell(cell.ops[:e] + (op,) + cell.ops[e + 1 :])
                    if self.contains(candidate):
                        out.append(candidate)
        return out

    def mutate(self, cell: Cell, rng: np.random.Generator, n_mutations: int = 1) -> Cell:
        """Change ``n_mutations`` random edge ops (each to a different op), staying valid."""
        current = self.validate(cell)
        for _ in range(n_mutations):
            options = self.neighbours(current)
            if not options:
                raise GennasError(f"cell {current} has no valid neighbour in space {self.name!r}")
            current = options[int(rng.integers(len(options)))]
        return current

    # ------------------------------------------------------------ the network
    def default_network(self):
        """The NAS-Bench-201 skeleton (C=16, N=5, 3x32x32, 10 classes)."""
        from gennas.nn.network import NetworkConfig

        return NetworkConfig()

    @property
    def training_skeleton(self) -> tuple[int, int]:
        """``(channels, depth)`` of the networks gennas trains on a dataset: C=16, N=2 cells per stage."""
        from gennas.nn.network import TRAINING_CELLS_PER_STAGE, TRAINING_CHANNELS

        return TRAINING_CHANNELS, TRAINING_CELLS_PER_STAGE

    def network_for_data(self, data, channels: int | None = None, depth: int | None = None):
        """The skeleton gennas trains on ``data``; ``depth`` is the cells per stage."""
        from gennas.nn.network import NetworkConfig

        c, n = self.training_skeleton
        return NetworkConfig.for_data(data, channels or c, depth or n)

    def build(self, cell: Cell, config=None):
        """The skeleton network of ``cell`` on ``config`` (default: :meth:`default_network`)."""
        from gennas.nn.network import build_network

        return build_network(self.validate(cell), config)

    def costs(self, cell: Cell, config=None) -> dict[str, float]:
        """Exact free costs of the cell's network (see :func:`gennas.metrics.costs.cell_costs`)."""
        from gennas.metrics.costs import cell_costs

        return cell_costs(self.validate(cell), config or self.default_network())

    # ------------------------------------------------------ weight sharing
    @property
    def alpha_rows(self) -> list[str]:
        """Rows of the architecture parameters α: one per edge, ``src->dst``."""
        return [f"{s}->{d}" for s, d in edge_list(self.n_nodes)]

    @property
    def alpha_ops(self) -> tuple[str, ...]:
        """Columns of α: the space's ops."""
        return self.ops

    def derive_from_alpha(self, alpha: np.ndarray) -> Cell:
        """The cell of α (E, |ops|): the strongest non-``none`` op per edge."""
        from gennas.weightsharing.derive import argmax_cell

        return argmax_cell(alpha, self)

    def search_network(self, network, config, mean: tuple[float, ...], std: tuple[float, ...]):
        """The weight-sharing supernet of a method (``network``: its supernet class) on ``config``."""
        return network(self, config, mean, std)

    def soft_costs(self, config=None) -> dict:
        """Free costs that are exact functions of the edge-op one-hots (see :mod:`gennas.metrics.soft_costs`)."""
        from gennas.metrics.soft_costs import linear_soft_costs

        return linear_soft_costs(self.ops, self.num_edges, config or self.default_network())

    def enumerate(self) -> Iterator[Cell]:
        """Every valid cell, in mixed-radix order; refuses spaces too large to list."""
        if self.size > ENUMERATION_LIMIT:
            raise GennasError(
                f"space {self.name!r} has {self.size:.3g} cells, too many to enumerate "
                f"(limit {ENUMERATION_LIMIT:,}); sample from it instead"
            )
        for value in range(self.size):
            cell = self.from_ordinal(value)
            if self.contains(cell):
                yield cell


def nb201_space() -> CellSpace:
    """The NAS-Bench-201 cell space: 4 nodes, 6 edges, 5 ops, 15,625 cells."""
    return CellSpace(4, NB201_OPS, require_connected=False, name="nb201")


def _darts_space() -> "ArchSpace":
    from gennas.space.darts import DartsSpace

    return DartsSpace()


_DAG_PATTERN = re.compile(r"^dag(\d+)$")


#: Spaces by name besides the dagN family: adding a space is one entry here plus its class.
SPACES: dict[str, Callable[[], "ArchSpace"]] = {"nb201": nb201_space, "darts": _darts_space}


def get_space(name: str) -> "ArchSpace":
    """Look a space up by name: ``nb201``, ``darts``, or ``dagN`` for the N-node family (e.g. ``dag6``)."""
    key = name.strip().lower()
    if key in SPACES:
        return SPACES[key]()
    match = _DAG_PATTERN.match(key)
    if match:
        n = int(match.group(1))
        if not 3 <= n <= 12:
            raise GennasError(f"space {name!r}: the dagN family supports 3 <= N <= 12 nodes")
        return CellSpace(n, NB201_OPS, require_connected=True, name=f"dag{n}")
    raise GennasError(f"unknown search space {name!r}; choose {', '.join(repr(k) for k in SPACES)} "
                      "or 'dagN' (N nodes, e.g. 'dag6')")


def space_from_record(record: dict) -> "ArchSpace":
    """The space a checkpoint's ``record()`` describes."""
    if record.get("kind") == "darts":
        from gennas.space.darts import DartsSpace

        return DartsSpace(record["steps"], tuple(record["ops"]))
    return CellSpace(record["n_nodes"], tuple(record["ops"]), record["require_connected"], record["name"])


def same_space(a: "ArchSpace", b: "ArchSpace") -> bool:
    """Whether architectures, encodings and models of ``a`` are those of ``b``."""
    return type(a) is type(b) and a.choices == b.choices


def sample_distinct(space: CellSpace, n: int, rng: np.random.Generator) -> list[Cell]:
    """``n`` cells that compute different functions and whose output depends on the input."""
    cells: dict[str, Cell] = {}
    for _ in range(100 * n):
        cell = space.sample(rng)
        if cell.is_connected() and cell.canonical not in cells:
            cells[cell.canonical] = cell
            if len(cells) == n:
                return list(cells.values())
    raise GennasError(f"could not find {n} distinct connected cells in space {space.name!r}; ask for fewer")
