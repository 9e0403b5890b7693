"""A search run's journal: its result file, and what a resumed run replays.

The journal is rewritten at most every :data:`JOURNAL_INTERVAL_S` seconds while a run
goes (a table look-up takes microseconds; rewriting after each would dominate) and always
when it ends or is interrupted, so a run keeps every measurement it made.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gennas.errors import GennasError
from gennas.io import FileFormat

JOURNAL_FORMAT, JOURNAL_VERSION = "gennas-search-journal", 1
FORMAT = FileFormat(JOURNAL_FORMAT, "search journal", version=JOURNAL_VERSION, json=True)
#: Seconds between journal writes (and always at the end, or when the run is interrupted).
JOURNAL_INTERVAL_S = 5.0


@dataclass
class SearchRun:
    """One seed of one method: the queries in order and what the search cost."""

    method: str
    seed: int
    budget: int
    history: list[dict[str, Any]] = field(default_factory=list)  # {"arch": ..., metric: value, ...}
    searcher_seconds: float = 0.0  # time spent inside ask/tell (the method's own overhead)
    oracle_seconds: float = 0.0  # time spent measuring (table look-ups or training)
    stopped: str = "budget"
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    """The journal of one run at ``path``; with ``path=None`` nothing is read or written."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.saved_rows = 0
        self.last_save = time.monotonic()

    def exists(self) -> bool:
        return self.path is not None and self.path.exists()

    def load(self, run: SearchRun) -> list[dict[str, Any]]:
        """The journalled history of ``run``'s identity, with its costs and stop reason copied into ``run``.

        Raises:
            GennasError: when the journal is damaged, holds another run, or used more than ``run.budget``.
        """
        if not self.exists():
            return []
        path = self.path
        payload = FORMAT.load(path, "rerun: this seed's search starts over",  # old journals without a hash load unchecked
                              f"{path} is not a gennas search journal (version {JOURNAL_VERSION}); delete it or use "
                              "another --out")
        saved = payload["run"]
        mine = {"method": run.method, "seed": run.seed, **run.settings}
        theirs = {"method": saved["method"], "seed": saved["seed"], **saved.get("settings", {})}
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise GennasError(f"{path} holds a run with other settings ({', '.join(diff)}); use another --out or "
                              "delete it")
        if len(saved["history"]) > run.budget:  # fewer (a run ended early) can go on under a smaller budget
            raise GennasError(f"{path} already used {len(saved['history'])} queries of a budget of {saved['budget']}, "
                              f"more than the {run.budget} asked for now")
        run.searcher_seconds, run.oracle_seconds = saved["searcher_seconds"], saved["oracle_seconds"]
        run.stopped = saved.get("stopped", "budget")
        self.saved_rows = len(saved["history"])
        return saved["history"]

    def save(self, run: SearchRun) -> None:
        if self.path is not None:
            FORMAT.save(self.path, {"run": run.to_dict()})
            self.saved_rows, self.last_save = len(run.history), time.monotonic()

    def save_if_due(self, run: SearchRun) -> None:
        """Save unless the last save was under :data:`JOURNAL_INTERVAL_S` seconds ago."""
        if time.monotonic() - self.last_save >= JOURNAL_INTERVAL_S:
            self.save(run)

    def close(self, run: SearchRun) -> None:
        """The last write: whenever the run measured something new, ended early, or has no journal yet."""
        if self.path is not None and (len(run.history) > self.saved_rows or not self.path.exists()
                                      or run.stopped != "budget"):
            self.save(run)
