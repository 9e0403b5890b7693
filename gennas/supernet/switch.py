"""What every supernet shares: running a block of code with one subnet switched on."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


class SubnetSwitch:
    """Mixin for supernets with ``active`` and ``activate(arch)``: the NB201-family and the DARTS one."""

    active: Any

    def activate(self, arch: Any) -> Any:  # pragma: no cover - every supernet defines it
        raise NotImplementedError

    @contextmanager
    def subnet(self, arch: Any) -> Iterator[Any]:
        """Run the block with ``arch`` active, then restore the previous subnet."""
        previous = self.active
        self.activate(arch)
        try:
            yield self
        finally:
            self.activate(previous)
