"""The subcommands of ``gennas``, one module per family; :func:`register` adds them in help order."""

from __future__ import annotations

import argparse

from gennas.subcommands.cells import add_cost, add_query, add_train
from gennas.subcommands.latency import add_latency_table
from gennas.subcommands.main_job import add_prune, add_run
from gennas.subcommands.models import add_generate, add_generator, add_predictor
from gennas.subcommands.search import add_compare, add_search

#: Every subcommand, in the order ``gennas --help`` lists them.
SUBCOMMANDS = (add_cost, add_query, add_train, add_run, add_prune, add_generate, add_search, add_compare,
               add_generator, add_predictor, add_latency_table)


def register(sub: argparse._SubParsersAction) -> None:
    """Add every subcommand's parser to ``sub``."""
    for add in SUBCOMMANDS:
        add(sub)
