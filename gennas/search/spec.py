"""What every search command's runs share, whichever form limits them (a query budget or the clock)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunSpec:
    """The space, the data, the seeds, the training recipe of measured cells and the methods' options.

    :class:`~gennas.search.runner.SearchSpec` adds a query budget, a goal and a prior;
    :class:`~gennas.search.wallclock.WallClockSpec` adds minutes of search and the skeleton.
    """

    space: str = "nb201"
    dataset: str = "cifar10"
    seeds: int = 1
    seed: int = 0
    epochs: int = 4  # training epochs per measured cell (datasets without a table)
    options: dict[str, Any] = field(default_factory=dict)  # black-box searcher options (--option)

    def seed_range(self) -> range:
        """Seeds ``seed .. seed + seeds - 1``: one run per method each."""
        return range(self.seed, self.seed + self.seeds)

    def fields(self, keys: tuple[str, ...]) -> dict[str, Any]:
        """These fields by name, in the order given (the order a settings record is written in)."""
        values = asdict(self)
        return {k: values[k] for k in keys}
