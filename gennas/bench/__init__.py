"""Oracles: the tabular NB201 oracle and the training oracle, with query accounting."""

from gennas.bench.nb201 import DATASETS, load_table, nb201_cell, nb201_index
from gennas.bench.oracle import Oracle
from gennas.bench.tabular import TabularOracle, TransferPrior, nb201_network

__all__ = ["DATASETS", "Oracle", "TabularOracle", "TransferPrior", "load_table", "nb201_cell", "nb201_index", "nb201_network"]
