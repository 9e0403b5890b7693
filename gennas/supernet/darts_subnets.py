"""Which genotypes a DARTS supernet of generated genotypes can become, and that supernet for ``gennas run``.

:class:`DartsSubnetSpace` is the DARTS counterpart of :class:`gennas.supernet.subnets.SubnetSpace`:
the supernet holds a block per (cell type, node, input, op) that some source genotype uses;
a subnet picks, for every intermediate node, two distinct inputs that each have an enabled
block, and one enabled op on each. Every such choice is a valid genotype of the space (so
every configuration is reachable: there is no ill-formed one to leave out), and every source
genotype is one of them. :class:`DartsRunSupernet` is :class:`DartsSupernet` with its
unused blocks disabled and the subnet space kept beside it (what training samples from and
``supernet.pt`` stores).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.space.darts import CELL_TYPES, DartsSpace
from gennas.space.genotype import Genotype
from gennas.supernet.darts_model import Block, DartsSupernet, _blocks

#: DARTS ops from the most to the least expensive: the "largest" subnet prefers the first enabled.
DARTS_COST_ORDER: tuple[str, ...] = ("sep_conv_5x5", "dil_conv_5x5", "sep_conv_3x3", "dil_conv_3x3",
                                     "max_pool_3x3", "avg_pool_3x3", "skip_connect")
#: Above this many genotypes :meth:`DartsSubnetSpace.enumerate` refuses and callers sample: every genotype
#: costs a closed-form cost and a canonical form (about a millisecond), and a run measures a few dozen.
ENUMERATION_LIMIT = 2_000
#: Per node, one option: ((op, lower input), (op, higher input)).
NodeOption = tuple[tuple[str, int], tuple[str, int]]


@dataclass(frozen=True)
class DartsSubnetSpace:
    """The enabled (cell type, node, input, op) blocks of some source genotypes, and those sources."""

    space: DartsSpace
    sources: tuple[Genotype, ...]
    _options: tuple[tuple[NodeOption, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.sources:
            raise GennasError("a supernet needs at least one genotype to be built from")
        for g in self.sources:
            self.space.validate(g)
        enabled = self.enabled_blocks
        options = []
        for kind in CELL_TYPES:
            for k in range(self.space.steps):
                ops = {i: [op for op in self.space.ops if (kind, k, i, op) in enabled] for i in range(k + 2)}
                options.append(tuple(((a_op, a), (b_op, b)) for a, b in itertools.combinations(range(k + 2), 2)
                                     for a_op in ops[a] for b_op in ops[b]))
        object.__setattr__(self, "_options", tuple(options))

    @classmethod
    def from_genotypes(cls, space: DartsSpace, genotypes: Sequence[Genotype]) -> "DartsSubnetSpace":
        return cls(space, tuple(dict.fromkeys(genotypes)))

    @property
    def enabled_blocks(self) -> frozenset[Block]:
        return frozenset(b for g in self.sources for b in _blocks(g))

    @property
    def disabled(self) -> frozenset[Block]:
        every = {(kind, k, i, op) for kind in CELL_TYPES for k in range(self.space.steps) for i in range(k + 2)
                 for op in self.space.ops}
        return frozenset(every - self.enabled_blocks)

    @property
    def choices(self) -> tuple[tuple[str, ...], ...]:
        """Per edge (cell type, node, input), the ops that own a block there."""
        enabled = self.enabled_blocks
        return tuple(tuple(op for op in self.space.ops if (kind, k, i, op) in enabled)
                     for kind in CELL_TYPES for k in range(self.space.steps) for i in range(k + 2))

    @property
    def blocks(self) -> list[Block]:
        """Every switchable block as (cell type, node, input, op)."""
        return sorted(self.enabled_blocks)

    @property
    def listable(self) -> bool:
        """Whether :meth:`enumerate` lists the subnets (else callers sample)."""
        return self.configurations <= ENUMERATION_LIMIT

    @property
    def configurations(self) -> int:
        """Every choice of two inputs and their ops per node; each is a valid genotype."""
        return math.prod(len(o) for o in self._options)

    def count(self) -> int:
        """How many subnets are reachable: every configuration."""
        return self.configurations

    def _genotype(self, chosen: Sequence[NodeOption]) -> Genotype:
        steps = self.space.steps
        normal = tuple(p for option in chosen[:steps] for p in option)
        reduce = tuple(p for option in chosen[steps:] for p in option)
        return Genotype(normal, self.space.concat, reduce, self.space.concat)

    def contains(self, genotype: Genotype) -> bool:
        return self.space.contains(genotype) and set(_blocks(genotype)) <= self.enabled_blocks

    def check(self, genotype: Genotype) -> Genotype:
        """``genotype`` if this supernet can become it, else an error naming the missing blocks."""
        self.space.validate(genotype)
        missing = [b for b in _blocks(genotype) if b not in self.enabled_blocks]
        if missing:
            raise GennasError(f"genotype {genotype} is not a subnet of this supernet: no block for {missing}")
        return genotype

    def largest(self) -> Genotype:
        """Per node the option with the most expensive ops: the top of the sandwich."""
        def weight(option: NodeOption) -> tuple[int, ...]:
            return tuple(sorted(DARTS_COST_ORDER.index(op) for op, _ in option))
        return self._genotype([min(options, key=weight) for options in self._options])

    def smallest(self, network) -> Genotype:
        """The reachable subnet with the fewest FLOPs (exact when the space can be listed, else among
        the sources and 2,000 samples): the bottom of the sandwich."""
        if self.listable:
            candidates = list(self.enumerate())
        else:
            rng = np.random.default_rng(0)
            candidates = list(self.sources) + [self.sample(rng) for _ in range(2000)]
        return min(candidates, key=lambda g: (self.space.costs(g, network)["flops"], g.to_string()))

    def enumerate(self) -> Iterator[Genotype]:
        if not self.listable:
            raise GennasError(f"this supernet has {self.configurations} configurations, too many to list "
                              f"(limit {ENUMERATION_LIMIT}); sample them with DartsSubnetSpace.sample")
        for chosen in itertools.product(*self._options):
            yield self._genotype(chosen)

    def sample(self, rng: np.random.Generator) -> Genotype:
        """A uniformly random subnet (every node's option drawn independently)."""
        return self._genotype([options[rng.integers(len(options))] for options in self._options])

    def to_dict(self) -> dict:
        return {"kind": "darts", "space": self.space.record(), "sources": [g.to_string() for g in self.sources]}

    @classmethod
    def from_dict(cls, data: dict) -> "DartsSubnetSpace":
        space = DartsSpace(data["space"]["steps"], tuple(data["space"]["ops"]))
        return cls(space, tuple(space.parse(a) for a in data["sources"]))


class DartsRunSupernet(DartsSupernet):
    """The DARTS supernet of a run's generated genotypes: unused blocks never built, ``subnets`` kept."""

    def __init__(self, subnets: DartsSubnetSpace, config) -> None:
        super().__init__(subnets.space, config, disabled=subnets.disabled, initial=subnets.largest())
        self.subnets = subnets
