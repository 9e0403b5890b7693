"""The `Cell`: an immutable cell DAG in the NAS-Bench-201 family.

A cell has ``n`` nodes. Node 0 is the cell input, node ``n-1`` its output, and every pair
``j < i`` is joined by one edge that carries an operation (``none`` means "no edge").
The edges are stored in NAS-Bench-201 order: all edges into node 1, then into node 2, ...,
each group ordered by source node. This one representation serves the 4-node NB201 space
and the larger spaces of the same family, so every tool (builder, metrics, encodings,
generator) works on both.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from gennas.errors import GennasError

#: Every operation the network builder knows how to build.
KNOWN_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

#: The two special node types of the op-on-node encoding, placed before the ops.
NODE_TYPES_SPECIAL: tuple[str, str] = ("input", "output")


def num_edges(n_nodes: int) -> int:
    """Edges of a complete DAG on ``n_nodes`` nodes (one per pair j < i)."""
    return n_nodes * (n_nodes - 1) // 2


def edge_list(n_nodes: int) -> list[tuple[int, int]]:
    """Edges as ``(src, dst)`` in NAS-Bench-201 order (grouped by destination)."""
    return [(j, i) for i in range(1, n_nodes) for j in range(i)]


def _nodes_for_edges(count: int) -> int:
    n = int(round((1 + math.sqrt(1 + 8 * count)) / 2))
    if n < 2 or num_edges(n) != count:
        raise GennasError(
            f"a cell needs one op per edge of a complete DAG (1, 3, 6, 10, 15, ... ops), got {count}"
        )
    return n


@dataclass(frozen=True)
class Cell:
    """An immutable cell: one op per edge, in NAS-Bench-201 edge order.

    Build one with :meth:`from_string` (``|nor_conv_3x3~0|+|none~0|skip_connect~1|+...``)
    or directly from a tuple of op names. Equality and hashing are on the exact ops;
    use :attr:`canonical` to identify cells that compute the same function.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.ops, str) or not isinstance(self.ops, Sequence):
            raise GennasError("Cell(ops=...) takes a sequence of op names; use Cell.from_string for arch strings")
        object.__setattr__(self, "ops", tuple(self.ops))
        n = _nodes_for_edges(len(self.ops))
        for (src, dst), op in zip(edge_list(n), self.ops):
            if op not in KNOWN_OPS:
                raise GennasError(
                    f"unknown op {op!r} on edge {src}->{dst}; known ops: {', '.join(KNOWN_OPS)}"
                )

    # ----------------------------------------------------------------- structure
    @property
    def n_nodes(self) -> int:
        return _nodes_for_edges(len(self.ops))

    @property
    def edges(self) -> list[tuple[int, int]]:
        return edge_list(self.n_nodes)

    def incoming(self, node: int) -> list[tuple[int, str]]:
        """``(src, op)`` pairs of the edges into ``node`` (including ``none`` edges)."""
        start = num_edges(node)
        return [(j, self.ops[start + j]) for j in range(node)]

    @property
    def adjacency(self) -> np.ndarray:
        """Node-level 0/1 matrix, ``A[src, dst] = 1`` where the edge op is not ``none``."""
        n = self.n_nodes
        a = np.zeros((n, n), dtype=np.int64)
        for (src, dst), op in zip(self.edges, self.ops):
            a[src, dst] = int(op != "none")
        return a

    def is_connected(self) -> bool:
        """Whether data can flow from the input to the output through non-``none`` edges."""
        reach = {0}
        for (src, dst), op in zip(self.edges, self.ops):
            if op != "none" and src in reach:
                reach.add(dst)
        return self.n_nodes - 1 in reach

    # ------------------------------------------------------------ string forms
    @classmethod
    def from_string(cls, arch: str) -> "Cell":
        """Parse NAS-Bench-201 notation, e.g. ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+...``."""
        if not isinstance(arch, str) or not arch.strip():
            raise GennasError("empty arch string; expected NAS-Bench-201 notation like '|nor_conv_3x3~0|+|...|'")
        text = arch.strip()
        groups = text.split("+")
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 3:
                raise GennasError(
                    f"malformed arch string {arch!r}: group {node} ({group!r}) must look like '|op~0|op~1|'"
                )
            by_source: dict[int, str] = {}
            for token in group[1:-1].split("|"):
                op, sep, src_text = token.partition("~")
                if not sep or not src_text.isdigit():
                    raise GennasError(
                        f"malformed arch string {arch!r}: edge {token!r} must be 'op~source' (e.g. 'nor_conv_3x3~0')"
                    )
                src = int(src_text)
                if src >= node or src in by_source:
                    raise GennasError(
                        f"malformed arch string {arch!r}: node {node} needs exactly one edge from each of "
                        f"nodes 0..{node - 1}, got source {src} in {group!r}"
                    )
                by_source[src] = op
            if sorted(by_source) != list(range(node)):
                raise GennasError(
                    f"malformed arch string {arch!r}: node {node} needs one edge from each of nodes 0..{node - 1}"
                )
            ops.extend(by_source[j] for j in range(node))
        return cls(tuple(ops))

    def to_string(self) -> str:
        """NAS-Bench-201 notation (the inverse of :meth:`from_string`)."""
        groups = []
        for node in range(1, self.n_nodes):
            groups.append("|" + "|".join(f"{op}~{src}" for src, op in self.incoming(node)) + "|")
        return "+".join(groups)

    def __str__(self) -> str:
        return self.to_string()

    # ---------------------------------------------------------- canonical form
    @cached_property
    def canonical(self) -> str:
        """A string shared by exactly the cells that compute the same function.

        This follows the NAS-Bench-201 convention (the table's ``UniqueString``): ``none``
        edges and edges leaving an all-zero node contribute a zero term ``#``,
        ``skip_connect`` forwards its input's expression, any other op wraps it as
        ``(expr)@op``, and each node is the sorted sum of its incoming terms. Sorting makes
        the form independent of the order in which summed inputs are listed, which is what
        makes differently-wired but isomorphic cells collide.
        """
        nodes = ["0"]
        for node in range(1, self.n_nodes):
            terms = []
            for src, op in self.incoming(node):
                expr = nodes[src]
                if op == "none" or expr == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(expr)
                else:
                    terms.append(f"({expr})@{op}")
            nodes.append("+".join(sorted(terms)))
        return nodes[-1]

    @cached_property
    def canonical_hash(self) -> str:
        """A short stable digest of :attr:`canonical`, for file names and cache keys."""
        return hashlib.sha1(self.canonical.encode()).hexdigest()[:16]

    # --------------------------------------------------------------- encodings
    def op_indices(self, ops: Sequence[str] = KNOWN_OPS) -> np.ndarray:
        """Per-edge index into ``ops`` (the space's vocabulary)."""
        try:
            return np.array([ops.index(op) for op in self.ops], dtype=np.int64)
        except ValueError as exc:
            raise GennasError(f"cell {self} uses an op outside the vocabulary {tuple(ops)}") from exc

    @staticmethod
    def line_graph(n_nodes: int) -> np.ndarray:
        """Adjacency of the op-on-node view: node 0 = input, 1..E = edges, E+1 = output.

        Edge-node ``(j->i)`` feeds every edge-node leaving ``i``; edges from node 0 are fed by
        the input; edges into node ``n-1`` feed the output. The matrix is the same for every
        cell of a space: the ops alone say which data paths exist.
        """
        edges = edge_list(n_nodes)
        size = len(edges) + 2
        a = np.zeros((size, size), dtype=np.int64)
        for k, (src, dst) in enumerate(edges, start=1):
            if src == 0:
                a[0, k] = 1
            if dst == n_nodes - 1:
                a[k, size - 1] = 1
            for m, (src2, _) in enumerate(edges, start=1):
                if src2 == dst:
                    a[k, m] = 1
        return a
