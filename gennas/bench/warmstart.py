"""The trained weights a Net2Net warm start inherits: one file per trained network, named by its lineage.

A warm-started child's weights depend on its parent's, which depend on the parent's parent,
... so a network's name is a hash of its cell's cache key and its parent's name (and the
warm-start epochs). Equal names mean equal training, which is what lets a resumed search find
the weights of parents trained before the interruption, and a cached result be reused only for
the same lineage.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
