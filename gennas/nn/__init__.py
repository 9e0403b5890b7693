"""Networks: NB201 ops, the cell module and the macro-skeleton builder."""

from gennas.nn.cell import CellModule
from gennas.nn.network import CellNetwork, NetworkConfig, build_network

__all__ = ["CellModule", "CellNetwork", "NetworkConfig", "build_network"]
