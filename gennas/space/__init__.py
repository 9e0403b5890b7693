"""Search spaces: the `Cell` type and the `CellSpace` family (NB201 and larger DAGs), the DARTS `Genotype` and
`DartsSpace`, all behind the `ArchSpace` protocol."""

from gennas.space.cell import KNOWN_OPS, Cell, edge_list, num_edges
from gennas.space.genotype import Genotype
from gennas.space.protocol import ArchSpace
from gennas.space.space import NB201_OPS, CellSpace, get_space, nb201_space

__all__ = ["KNOWN_OPS", "NB201_OPS", "ArchSpace", "Cell", "CellSpace", "Genotype", "edge_list", "get_space",
           "nb201_space", "num_edges"]
