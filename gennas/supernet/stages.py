"""One resume rule for every stage of ``gennas run``: a stage whose output exists is read back, else made.

A run is a sequence of stages, each ending in a file of the run directory (a round's
``generated.json``, its ``supernet.pt``, one standalone training under ``standalone/``).
An interrupted run is resumed by running the same sequence again: every stage that left
its file is read back instead of computed, and the first one that did not picks up from
its own checkpoint (training resumes per epoch, measurement per subnet).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Stage(Generic[T]):
    """A named step of a run and the file that proves it done.

    Attributes:
        name: the stage's name in the run's timings (``generation``, ``training``, ...).
        output: the file the stage writes last; its existence means the stage is done.
        make: computes the stage and writes ``output``.
        read: reads a done stage back from ``output`` (and what else it wrote).
    """

    name: str
    output: Path
    make: Callable[[], T]
    read: Callable[[], T]

    @property
    def done(self) -> bool:
        return self.output.exists()

    def run(self, seconds: dict[str, float] | None = None) -> T:
        """The stage's result: read back when done, else made; its seconds land in ``seconds[name]``."""
        with timed(seconds, self.name):
            return self.read() if self.done else self.make()


@contextlib.contextmanager
def timed(seconds: dict[str, float] | None, name: str) -> Iterator[None]:
    """Add the block's wall seconds to ``seconds[name]`` (nothing when ``seconds`` is None)."""
    tic = time.perf_counter()
    try:
        yield
    finally:
        if seconds is not None:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - tic
