"""Experiment tracking through wandb, offline unless the user configures otherwise.

Tracking is opt-in per run (``--wandb``): tests and quick jobs never pay wandb's start-up,
and nothing leaves the machine unless the user has set ``WANDB_MODE=online`` themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class RunLogger:
    """A thin handle on one wandb run; a disabled logger does nothing, by design."""

    def __init__(self, enabled: bool, *, project: str = "gennas", name: str | None = None,
                 config: dict[str, Any] | None = None, directory: str | Path | None = None) -> None:
        self.run = None
        if not enabled:
            return
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=name, config=config or {},
                              dir=str(directory) if directory else None)

    @property
    def enabled(self) -> bool:
        return self.run is not None

    def log(self, metrics: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))})

    def table(self, key: str, rows: list[dict[str, Any]]) -> None:
        if self.run is not None and rows:
            import wandb

            columns = list(rows[0])
            self.run.log({key: wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])})

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
