"""The DARTS search space: a normal and a reduction cell of 4 intermediate nodes, ~1.1e18 genotypes.

Each intermediate node ``k`` (0..3) takes exactly two *distinct* inputs among the two
previous cells' outputs and the nodes before it, each through one of 7 ops (DARTS'
8 primitives minus ``none``, which a derived genotype never uses). Both cells concatenate
all four intermediate nodes. Per cell that is ``prod_k C(k+2, 2) * 7^2 = 180 * 7^8``
choices; with two cells ``1.08e18``, the size the DARTS paper reports.

The search variables make validity hold by construction: per cell and node one
categorical over the unordered *pair* of inputs (1, 3, 6, 10 values for nodes 0..3) and
one over the op of each of the pair's two inputs (the lower index first). Every integer
vector in range decodes to a valid genotype, so samplers, evolution, NSGA-II's variation,
REINFORCE's policy and the generator never produce an invalid one, and nothing is filtered.

The space has the interface of :class:`gennas.space.space.CellSpace` (``validate``,
``parse``, ``encode``/``decode``, ``choices``, ``one_hot``, ``sample``, ``mutate``,
``neighbours``, ``ordinal``) plus the network side (``default_network``,
``network_for_data``, ``build``, ``costs``), so components take it without branching on its name.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterator, Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.space.genotype import NAMED_GENOTYPES, Genotype, Pair

#: DARTS' PRIMITIVES, in its order: the ops the network (and a supernet's mixed op) can build.
DARTS_PRIMITIVES: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                     "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
#: The ops a genotype chooses from (a derived DARTS genotype never keeps ``none``).
DARTS_OPS: tuple[str, ...] = DARTS_PRIMITIVES[1:]
STEPS = 4
CELL_TYPES = ("normal", "reduce")


def input_pairs(node: int) -> list[tuple[int, int]]:
    """The unordered pairs of distinct inputs node ``node`` may take, ``(i, j)`` with ``i < j < node + 2``."""
    return list(itertools.combinations(range(node + 2), 2))


class DartsSpace:
    """Genotypes of the DARTS CIFAR space (see the module docstring)."""

    name = "darts"

    def __init__(self, steps: int = STEPS, ops: Sequence[str] = DARTS_OPS) -> None:
        unknown = [op for op in ops if op not in DARTS_OPS]
        if unknown or not ops or len(set(ops)) != len(ops):
            raise GennasError(f"DARTS space ops must be distinct names from {DARTS_OPS}, got {tuple(ops)}")
        self.steps = steps
        self.ops: tuple[str, ...] = tuple(ops)
        self._pairs = [input_pairs(k) for k in range(steps)]
        labels: list[tuple[str, ...]] = []
        for _ in CELL_TYPES:
            for k in range(steps):
                labels.append(tuple(f"{i},{j}" for i, j in self._pairs[k]))
                labels += [self.ops, self.ops]
        #: Per search variable, its values' labels (see :meth:`encode`).
        self.choices: tuple[tuple[str, ...], ...] = tuple(labels)
        self.concat: tuple[int, ...] = tuple(range(2, 2 + steps))

    # ------------------------------------------------------------------- facts
    @property
    def size(self) -> int:
        return math.prod(len(c) for c in self.choices)

    @property
    def one_hot_size(self) -> int:
        """Length of :meth:`one_hot`: per cell and node, (its inputs) x (ops)."""
        return len(CELL_TYPES) * sum(k + 2 for k in range(self.steps)) * len(self.ops)

    def __repr__(self) -> str:
        return f"DartsSpace(steps={self.steps}, ops={self.ops})"

    #: "Input pair 2" means different inputs at different nodes: graph nodes carry their index.
    graph_positional = True

    def variable_graph(self) -> np.ndarray:
        """Adjacency over (input, each search variable, output) for the predictor's and generator's GNN.

        Per cell and node: the cell input feeds the node's pair variable, which feeds its two op
        variables; the op variables (the node's value) feed every later node's pair variable of the
        same cell and the output; the normal cell's nodes also feed the reduction cell's pair
        variables (the cells alternate in the network). Which inputs a node reads is in the pair
        variable's value, so the graph is the same for every genotype.
        """
        n = len(self.choices) + 2
        a = np.zeros((n, n), dtype=np.int64)
        per_cell = 3 * self.steps
        pair = lambda c, k: 1 + c * per_cell + 3 * k  # noqa: E731 - index of a node's pair variable
        for c in range(len(CELL_TYPES)):
            for k in range(self.steps):
                a[0, pair(c, k)] = 1
                for op_var in (pair(c, k) + 1, pair(c, k) + 2):
                    a[pair(c, k), op_var] = 1
                    a[op_var, n - 1] = 1
                    for later in range(k + 1, self.steps):
                        a[op_var, pair(c, later)] = 1
                    if c == 0:
                        for k2 in range(self.steps):
                            a[op_var, pair(1, k2)] = 1
        return a

    def record(self) -> dict:
        """What a checkpoint stores to rebuild this space."""
        return {"kind": "darts", "name": self.name, "steps": self.steps, "ops": list(self.ops)}

    # -------------------------------------------------------------- validation
    def validate(self, genotype: Genotype) -> Genotype:
        """Return ``genotype`` if it belongs to this space, else raise one clear :class:`GennasError`."""
        if not isinstance(genotype, Genotype):
            raise GennasError(f"space 'darts' takes DARTS genotypes, got {type(genotype).__name__} {genotype}")
        for kind in CELL_TYPES:
            pairs, concat = genotype.cell(kind == "reduce")
            if len(pairs) != 2 * self.steps:
                raise GennasError(f"genotype {genotype}: the {kind} cell needs {2 * self.steps} (op, input) pairs, "
                                  f"two per intermediate node, got {len(pairs)}")
            for k in range(self.steps):
                (op_a, a), (op_b, b) = pairs[2 * k], pairs[2 * k + 1]
                for op, index in ((op_a, a), (op_b, b)):
                    if op not in self.ops:
                        why = " (a DARTS genotype never keeps 'none')" if op == "none" else ""
                        raise GennasError(f"genotype {genotype}: unknown op {op!r} in node {k + 2} of the {kind} "
                                          f"cell{why}; ops: {', '.join(self.ops)}")
                    if not 0 <= index < k + 2:
                        raise GennasError(f"genotype {genotype}: node {k + 2} of the {kind} cell takes input "
                                          f"{index}, but only 0..{k + 1} exist before it")
                if a == b:
                    raise GennasError(f"genotype {genotype}: node {k + 2} of the {kind} cell takes input {a} twice; "
                                      "its two inputs must be distinct")
            if concat != self.concat:
                raise GennasError(f"genotype {genotype}: the {kind} cell concatenates {list(concat)}, but the DARTS "
                                  f"space concatenates every intermediate node {list(self.concat)}")
        return genotype

    def contains(self, genotype: Genotype) -> bool:
        try:
            self.validate(genotype)
        except GennasError:
            return False
        return True

    def parse(self, arch: str) -> Genotype:
        """A genotype from the published notation, the compact form or a published name (``DARTS_V2``)."""
        named = NAMED_GENOTYPES.get(arch.strip()) if isinstance(arch, str) else None
        return self.validate(named if named is not None else Genotype.from_string(arch))

    # ------------------------------------------------------------ encode/decode
    def encode(self, genotype: Genotype) -> np.ndarray:
        """Search-variable indices of the canonical genotype, shape ``(len(choices),)``.

        Per cell type and node: the index of its input pair, then the op of the lower and of
        the higher input.
        """
        g = self.validate(genotype).canonical_genotype
        out: list[int] = []
        for kind in CELL_TYPES:
            pairs, _ = g.cell(kind == "reduce")
            for k in range(self.steps):
                (op_a, a), (op_b, b) = pairs[2 * k], pairs[2 * k + 1]
                out += [self._pairs[k].index((a, b)), self.ops.index(op_a), self.ops.index(op_b)]
        return np.array(out, dtype=np.int64)

    def decode(self, indices: Sequence[int] | np.ndarray) -> Genotype:
        """The (canonical) genotype of search-variable indices; any in-range vector is valid."""
        x = np.asarray(indices)
        cards = np.array([len(c) for c in self.choices])
        if x.shape != cards.shape or (x < 0).any() or (x >= cards).any():
            raise GennasError(f"space 'darts' decodes {len(cards)} indices, each below {cards.tolist()}, "
                              f"got {x.tolist()}")
        cells: list[tuple[Pair, ...]] = []
        per_cell = 3 * self.steps
        for c in range(len(CELL_TYPES)):
            pairs: list[Pair] = []
            for k in range(self.steps):
                pair, op_a, op_b = (int(v) for v in x[c * per_cell + 3 * k: c * per_cell + 3 * k + 3])
                a, b = self._pairs[k][pair]
                pairs += [(self.ops[op_a], a), (self.ops[op_b], b)]
            cells.append(tuple(pairs))
        return Genotype(cells[0], self.concat, cells[1], self.concat)

    def one_hot(self, genotype: Genotype) -> np.ndarray:
        """Per cell and node a (its inputs) x (ops) 0/1 matrix with two ones, flattened: ``(one_hot_size,)``.

        Unlike the search variables it does not depend on which input is listed first, so a
        regressor sees each (input, op) edge as the same feature wherever it appears.
        """
        g = self.validate(genotype)
        blocks = []
        for kind in CELL_TYPES:
            pairs, _ = g.cell(kind == "reduce")
            for k in range(self.steps):
                block = np.zeros((k + 2, len(self.ops)), dtype=np.float32)
                for op, index in pairs[2 * k: 2 * k + 2]:
                    block[index, self.ops.index(op)] = 1.0
                blocks.append(block.ravel())
        return np.concatenate(blocks)

    def ordinal(self, genotype: Genotype) -> int:
        """Mixed-radix position of the encoding (first variable most significant)."""
        value = 0
        for card, i in zip((len(c) for c in self.choices), self.encode(genotype)):
            value = value * card + int(i)
        return value

    def from_ordinal(self, value: int) -> Genotype:
        if not 0 <= value < self.size:
            raise GennasError(f"ordinal {value} outside [0, {self.size}) for space 'darts'")
        digits = []
        for card in reversed([len(c) for c in self.choices]):
            value, d = divmod(value, card)
            digits.append(d)
        return self.decode(digits[::-1])

    # ---------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator, n: int | None = None) -> Genotype | list[Genotype]:
        """Uniform random genotype(s): every variable uniform, so every genotype equally likely."""
        if n is not None:
            return [self._sample_one(rng) for _ in range(n)]
        return self._sample_one(rng)

    def _sample_one(self, rng: np.random.Generator) -> Genotype:
        return self.decode([int(rng.integers(len(c))) for c in self.choices])

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """Every genotype one edit away, canonical: one input's op changed, or one input rewired (op kept)."""
        g = self.validate(genotype).canonical_genotype
        out: dict[str, Genotype] = {}
        for kind in CELL_TYPES:
            pairs, _ = g.cell(kind == "reduce")
            for slot, (op, index) in enumerate(pairs):
                k, other = slot // 2, pairs[slot ^ 1][1]
                edits = [(o, index) for o in self.ops if o != op]
                edits += [(op, i) for i in range(k + 2) if i not in (index, other)]
                for edit in edits:
                    changed = pairs[:slot] + (edit,) + pairs[slot + 1:]
                    cells = (changed, g.reduce) if kind == "normal" else (g.normal, changed)
                    child = Genotype(cells[0], self.concat, cells[1], self.concat).canonical_genotype
                    out.setdefault(child.to_string(), child)
        return list(out.values())

    def mutate(self, genotype: Genotype, rng: np.random.Generator, n_mutations: int = 1) -> Genotype:
        """``n_mutations`` random one-edit steps (each a uniform pick among :meth:`neighbours`)."""
        current = self.validate(genotype)
        for _ in range(n_mutations):
            options = self.neighbours(current)
            current = options[int(rng.integers(len(options)))]
        return current

    def enumerate(self) -> Iterator[Genotype]:
        raise GennasError(f"space 'darts' has {self.size:.3g} genotypes, too many to enumerate; sample from it instead")

    # ------------------------------------------------------------ the network
    def default_network(self):
        """DARTS' CIFAR-10 evaluation skeleton: C=36, 20 layers, 3x32x32 input, 10 classes."""
        from gennas.nn.darts_network import DartsNetworkConfig

        return DartsNetworkConfig()

    @property
    def training_skeleton(self) -> tuple[int, int]:
        """``(channels, layers)`` of the networks gennas trains on a dataset: C=8, 5 layers."""
        from gennas.nn.darts_network import TRAINING_CHANNELS, TRAINING_LAYERS

        return TRAINING_CHANNELS, TRAINING_LAYERS

    def network_for_data(self, data, channels: int | None = None, depth: int | None = None):
        """The scaled-down skeleton gennas trains on ``data`` (see :meth:`DartsNetworkConfig.for_data`)."""
        from gennas.nn.darts_network import DartsNetworkConfig

        return DartsNetworkConfig.for_data(data, channels, depth)

    def build(self, genotype: Genotype, config=None):
        """The DARTS network of ``genotype`` on ``config`` (default: :meth:`default_network`)."""
        from gennas.nn.darts_network import DartsNetwork

        return DartsNetwork(self.validate(genotype), config or self.default_network())

    # ------------------------------------------------------ weight sharing
    @property
    def alpha_rows(self) -> list[str]:
        """Rows of α: every edge (node, input) of the normal cell, then of the reduction cell."""
        from gennas.weightsharing.darts_space import edge_labels

        return edge_labels(self.steps)

    @property
    def alpha_ops(self) -> tuple[str, ...]:
        """Columns of α: DARTS' 8 primitives, ``none`` included (as the paper's search)."""
        return DARTS_PRIMITIVES

    def derive_from_alpha(self, alpha: np.ndarray) -> Genotype:
        """DARTS' derivation: per node the two strongest inputs, each with its strongest non-``none`` op."""
        from gennas.weightsharing.darts_space import derive_genotype

        return derive_genotype(alpha, self)

    def search_network(self, network, config, mean: tuple[float, ...], std: tuple[float, ...]):
        """DARTS' search network; methods that bring their own supernet (PC-DARTS, ENAS, ...) are cell-space only."""
        from gennas.weightsharing.darts_space import DartsSearchNetwork
        from gennas.weightsharing.mixed import SuperNetwork

        if network is not SuperNetwork:
            raise GennasError("this weight-sharing method builds its own supernet, which exists for cell spaces only; "
                              "on space 'darts' use darts, darts2, gdas, snas, drnas, sdarts-rs or sdarts-adv")
        return DartsSearchNetwork(self, config, mean, std)

    def soft_costs(self, config=None) -> dict:
        """FLOPs and params as exact functions of the variables' one-hots (see :mod:`gennas.metrics.soft_costs`)."""
        from gennas.metrics.darts_costs import darts_soft_costs

        return darts_soft_costs(self, config or self.default_network())

    def costs(self, genotype: Genotype, config=None) -> dict[str, float]:
        """``flops`` (M), ``params`` (M), ``memory_bytes``: closed form, no network built."""
        from gennas.metrics.darts_costs import darts_costs

        return darts_costs(self.validate(genotype), config or self.default_network())
