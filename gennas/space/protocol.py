"""`ArchSpace`: what every component may call on a search space, whatever its architectures are.

Two kinds of space implement it: :class:`~gennas.space.space.CellSpace` (NB201 and the
dagN family, whose architecture is a :class:`~gennas.space.cell.Cell`) and
:class:`~gennas.space.darts.DartsSpace` (a :class:`~gennas.space.genotype.Genotype`).
Searchers, oracles and commands are written against this interface, so a new space is a
class with these members plus one entry in :data:`gennas.space.space.SPACES`, and no
component branches on a space's name.

An architecture object needs ``to_string()`` (its key in journals and caches, the inverse
of ``space.parse``), ``canonical`` and ``canonical_hash``.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class ArchSpace(Protocol):
    """A search space (see the module docstring)."""

    name: str
    #: Per search variable, the labels of its values; ``encode`` returns one index per variable
    #: and every in-range index vector ``decode``s to an architecture (valid or not, see ``contains``).
    choices: tuple[tuple[str, ...], ...]

    @property
    def size(self) -> int: ...

    @property
    def one_hot_size(self) -> int: ...

    def validate(self, arch: Any) -> Any: ...

    def contains(self, arch: Any) -> bool: ...

    def parse(self, text: str) -> Any: ...

    def encode(self, arch: Any) -> np.ndarray: ...

    def decode(self, indices: Sequence[int] | np.ndarray) -> Any: ...

    def one_hot(self, arch: Any) -> np.ndarray: ...

    def ordinal(self, arch: Any) -> int: ...

    def sample(self, rng: np.random.Generator, n: int | None = None) -> Any: ...

    def neighbours(self, arch: Any) -> list[Any]: ...

    def mutate(self, arch: Any, rng: np.random.Generator, n_mutations: int = 1) -> Any: ...

    def enumerate(self) -> Iterator[Any]: ...

    def default_network(self) -> Any:
        """The space's reference skeleton (what ``gennas cost`` counts on without flags)."""

    @property
    def training_skeleton(self) -> tuple[int, int]:
        """``(channels, depth)`` of the networks gennas trains on a dataset (depth: cells per stage, or layers)."""

    def network_for_data(self, data: Any, channels: int | None = None, depth: int | None = None) -> Any:
        """The skeleton gennas trains on a dataset: ``depth`` is cells per stage (NB201) or layers (DARTS)."""

    def build(self, arch: Any, config: Any = None) -> Any:
        """The architecture's network (an ``nn.Module`` returning logits)."""

    def costs(self, arch: Any, config: Any = None) -> dict[str, float]:
        """Exact, free ``flops`` (M), ``params`` (M) and ``memory_bytes`` of the network, closed form."""

    def soft_costs(self, config: Any = None) -> dict[str, Any]:
        """Costs that are exact functions of the variables' one-hots (:class:`gennas.metrics.soft_costs.SoftCost`)."""

    #: Whether graph nodes need their index as a feature (a variable's meaning depends on its position).
    graph_positional: bool

    def variable_graph(self) -> np.ndarray:
        """(V+2, V+2) adjacency over (input, each search variable, output) for the GNNs."""

    def record(self) -> dict:
        """What a checkpoint stores to rebuild the space (``gennas.space.space.space_from_record``)."""


def cardinalities(space: ArchSpace) -> list[int]:
    """How many values each search variable takes."""
    return [len(c) for c in space.choices]


def mixed_radix(space: ArchSpace) -> list[int]:
    """Place values of the variables in :meth:`ArchSpace.ordinal` (the first variable most significant)."""
    cards, out, place = cardinalities(space), [], 1
    for card in reversed(cards):
        out.append(place)
        place *= card
    return out[::-1]


def decode_valid(space: ArchSpace, indices: Sequence[int] | np.ndarray) -> Any | None:
    """The architecture of in-range ``indices``, or None where the space forbids it (a dagN cell cut off)."""
    from gennas.errors import GennasError

    try:
        return space.decode(indices)
    except GennasError:
        return None
