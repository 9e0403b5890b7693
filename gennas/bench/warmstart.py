"""Net2Net warm starts of a training oracle: who inherits from whom, and the weights, named by lineage.

A warm-started child's weights depend on its parent's, which depend on the parent's parent,
... so a network's name is a hash of its cell's cache key and its parent's name (and the
warm-start epochs). Equal names mean equal training, which is what lets a resumed search find
the weights of parents trained before the interruption, and a cached result be reused only for
the same lineage.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Container

import torch


def lineage_id(cache_key: str, parent: str | None, warm_epochs: int | None) -> str:
    """The name of a network's weights: its own cache key, or with a parent, both hashed with the epochs."""
    if parent is None:
        return cache_key
    return hashlib.sha1(f"{cache_key}<-{parent}@{warm_epochs}".encode()).hexdigest()[:20]


class WeightStore:
    """State dicts of trained cell networks under ``root``, by lineage id."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / f"{name}.pt"

    def has(self, name: str) -> bool:
        return self.path(name).exists()

    def save(self, name: str, network: torch.nn.Module) -> None:
        """Write atomically (a half-written file must never be inherited)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path(name).with_suffix(".tmp")
        torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, tmp)
        tmp.replace(self.path(name))

    def load(self, name: str) -> dict[str, torch.Tensor]:
        return torch.load(self.path(name), map_location="cpu", weights_only=True)


class WarmStarts:
    """One oracle's warm-start state: whom each cell may inherit from, whom it did, and its weights' names.

    Args:
        root: where the trained weights are kept.
        epochs: a warm-started child's training epochs.
        cache_key: a cell string -> its from-scratch cache key (the oracle's, so names follow its settings).
    """

    def __init__(self, root: Path, epochs: int, cache_key: Callable[[str], str]) -> None:
        self.store = WeightStore(root)
        self.epochs = epochs
        self.cache_key = cache_key
        self.told: dict[str, str] = {}  # cell string -> the measured cell the searcher derived it from
        self.inherited: dict[str, str] = {}  # cell string -> the parent a measurement really inherited from

    def tell(self, parents: dict[str, str]) -> None:
        """Record the searcher's parents of cells about to be measured."""
        self.told.update(parents)

    def parent(self, key: str, measured: Container[str]) -> str | None:
        """The parent ``key`` will inherit from: told by the searcher, measured, its weights kept; or None."""
        parent = self.told.get(key)
        if parent is None or parent not in measured or not self.store.has(self.name(parent)):
            return None
        return parent

    def name(self, key: str) -> str:
        """The name of the weights (and cached result) of the cell ``key``, its ancestry included."""
        parent = self.inherited.get(key)
        return lineage_id(self.cache_key(key), self.name(parent) if parent else None, self.epochs)
