"""What the peer searchers (Optuna, BoTorch) share: the optional extra and the transfer warm start.

Peers are the libraries a user would reach for instead of gennas, run through the same
loop and accounting as our own methods (DESIGN.md). Their libraries are an optional
extra, ``pip install 'gennas[peers]'``: importing gennas never needs them, and a peer
asked for without them stops with one message naming the extra.

A peer cannot read a transfer prior the way ours does (ours adapts a predictor trained on
the other tables); what a user of these libraries can do is warm-start: put the cells
the other datasets rank highest into the initial design (Optuna's ``enqueue_trial``,
BoTorch's initial points) instead of random ones. :func:`prior_cells` gives those cells.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
from scipy.stats import rankdata

from gennas.errors import GennasError
from gennas.search.searcher import SearchContext
from gennas.space.cell import Cell

#: The pip extra that brings every peer's library.
EXTRA = "pip install 'gennas[peers]'"


def require(module: str, method: str) -> ModuleType:
    """Import ``module`` for the peer ``method``, or fail with the extra to install.

    Args:
        module: the library's import name (``optuna``, ``botorch``).
        method: the registry name of the peer, for the message.

    Returns:
        The imported module.

    Raises:
        GennasError: when the library is not installed (one line, naming the extra).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise GennasError(f"--method {method} needs {module}, which is not installed: {EXTRA}") from None


def prior_cells(context: SearchContext, k: int) -> list[Cell]:
    """The ``k`` cells the transfer prior's tables rank best on average; none without a prior.

    The rank is the mean over the other datasets of each cell's accuracy rank, so no one
    dataset's scale dominates; ties keep the tables' order (stable sort).

    Args:
        context: the searcher's context; only ``context.prior`` (the other tables) is read.
        k: how many cells the warm start takes.

    Returns:
        Up to ``k`` distinct cells of ``context.space``, best first.
    """
    prior = context.prior
    if prior is None or k <= 0:
        return []
    ranks = np.mean([rankdata(-np.asarray(column), method="average") for column in prior.accuracy.values()], axis=0)
    out: dict[str, Cell] = {}
    for i in np.argsort(ranks, kind="stable"):
        cell = context.space.parse(prior.archs[i])
        out.setdefault(cell.to_string(), cell)
        if len(out) == k:
            break
    return list(out.values())
