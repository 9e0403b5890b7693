"""Peak memory of a search step, measured as the bytes autograd keeps for the backward pass.

On CPU neither tracemalloc (it sees Python's allocator, not torch's) nor a portable
allocator counter reports torch's peak, but the activations saved for backward are what
differ between the methods (DARTS keeps every op's output, PC-DARTS 1/K of them, GDAS and
RSPS one path's) and they are exact: every tensor autograd packs is counted once per
storage while it is alive, and the peak over the steps is the figure. Parameters,
gradients and optimiser state (the same order for every method) are not included, nor
transient buffers freed within one op.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from gennas.data import DatasetSplits
from gennas.space.space import CellSpace


class SavedTensorMeter:
    """Live and peak bytes of the distinct storages autograd has saved (a ``saved_tensors_hooks`` pair)."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self._refs: dict[int, int] = {}

    def _release(self, key: int, size: int) -> None:
        self._refs[key] -= 1
        if not self._refs[key]:
            del self._refs[key]
            self.live -= size

    def pack(self, tensor: torch.Tensor) -> Any:
        storage = tensor.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if key not in self._refs:
            self._refs[key] = 0
            self.live += size
            self.peak = max(self.peak, self.live)
        self._refs[key] += 1
        holder = _Held(tensor)
        weakref.finalize(holder, self._release, key, size)
        return holder

    @staticmethod
    def unpack(holder: "_Held") -> torch.Tensor:
        return holder.tensor


class _Held:
    """A saved tensor in a box whose end (the graph letting it go) a finaliser can observe."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


def search_step_memory(splits: DatasetSplits, space: CellSpace, config: Any, steps: int = 2) -> dict[str, float]:
    """Peak saved-for-backward bytes over ``steps`` search steps (α step and weight step) of ``config``'s method.

    Args:
        splits: the data (batches of ``config.batch_size``).
        space: the cell space.
        config: a :class:`~gennas.weightsharing.search.WeightSharingConfig`; its epochs and step cap are replaced.
        steps: steps measured.

    Returns:
        ``{"peak_saved_bytes", "steps"}``.
    """
    from gennas.weightsharing.search import WeightSharingConfig, search_cell

    fields = {**config.to_dict(), "epochs": 1, "max_steps": steps}
    meter = SavedTensorMeter()
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        search_cell(splits, space, WeightSharingConfig.from_dict(fields))
    return {"peak_saved_bytes": float(meter.peak), "steps": steps}
