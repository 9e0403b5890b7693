"""The settings of ``gennas run`` (``run.json``): everything that decides a run's results."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from gennas.errors import GennasError
from gennas.io import read_json_checked


#: The default fine-tune of a measured subnet, as a share of the run's training epochs: enough to bring its
#: clean accuracy to standalone training's on the supernet benchmark, an eighth of a standalone training's cost.
FINETUNE_SHARE = 1 / 8

#: ``--supernet``: auto (a supernet, unless ``--budget-minutes`` plans direct rounds as worth more), always, or
#: never (every round trains its generated cells standalone, :mod:`gennas.supernet.direct`).
SUPERNET_MODES = ("auto", "always", "never")

#: The settings ``--budget-minutes`` may plan.
BUDGET_KNOBS = ("epochs", "probe_cells", "n_cells", "candidates", "max_subnets", "finalists")


@dataclass
class RunSettings:
    """Everything that decides a run's results (``run.json``); a resumed run must match it."""

    dataset: str = "digits"
    objectives: str = "accuracy:max,flops:min,memory:min,robustness:max"
    n_cells: int = 12
    candidates: int = 64
    guidance: float = 60.0
    epochs: int = 32
    seed: int = 0
    channels: int = 16
    cells_per_stage: int | None = 2  # NB201's depth; None on a DARTS run (its depth is ``layers``)
    max_subnets: int = 40
    finalists: int = 3  # subnets along the measured front retrained standalone to verify them
    probe_cells: int = 8  # round 0: cells trained standalone to adapt the prior to the dataset
    rounds: int = 1  # generate -> supernet -> measure rounds after round 0
    recalibration_images: int = 1024
    finetune_epochs: int | None = None  # per measured subnet, from the shared weights; None: FINETUNE_SHARE of epochs
    robustness_data: str | None = None
    latency_table: str | None = None  # a `gennas latency-table` file: `latency` becomes a free cost objective
    recipe: dict = field(default_factory=dict)  # extra SupernetTrainConfig fields
    budget_minutes: float | None = None  # wall clock for the whole run; plans the settings in ``planned``
    planned: tuple[str, ...] = ()  # settings --budget-minutes chose (not given by the user)
    supernet: str = "auto"  # one of SUPERNET_MODES
    space: str = "nb201"  # the search space (gennas.supernet.family.FAMILIES)
    layers: int | None = None  # cells of a DARTS skeleton (NB201's depth is cells_per_stage)

    @property
    def measurement_finetune(self) -> int:
        """Epochs each measured subnet is fine-tuned from the shared weights (see :data:`FINETUNE_SHARE`)."""
        if self.finetune_epochs is not None:
            return self.finetune_epochs
        return max(1, round(self.epochs * FINETUNE_SHARE))

    def check(self) -> None:
        from gennas.supernet.family import run_family

        run_family(self.space)
        if self.layers is not None and self.layers < 1:
            raise GennasError(f"--layers must be at least 1, got {self.layers}")
        for name in ("n_cells", "candidates", "epochs", "channels", "cells_per_stage", "max_subnets", "rounds"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise GennasError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name, zero in (("finalists", "verify nothing standalone"), ("probe_cells", "the prior zero-shot"),
                           ("finetune_epochs", "read the shared weights as they are")):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise GennasError(f"--{name.replace('_', '-')} must be at least 0 (0: {zero}), "
                                  f"got {getattr(self, name)}")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise GennasError(f"--budget-minutes must be a positive number of minutes, got {self.budget_minutes}")
        if self.supernet not in SUPERNET_MODES:
            raise GennasError(f"--supernet {self.supernet!r}: choose one of {', '.join(SUPERNET_MODES)} (never: train "
                              "the generated cells standalone instead of reading them off a supernet)")
        unknown = set(self.planned) - set(BUDGET_KNOBS)
        if unknown or (self.planned and self.budget_minutes is None):
            raise GennasError(f"planned settings {sorted(self.planned)} need --budget-minutes and may only be "
                              f"{', '.join(BUDGET_KNOBS)}")
        if self.candidates < self.n_cells and not {"n_cells", "candidates"} & set(self.planned):
            raise GennasError(f"--candidates ({self.candidates}) must be at least --n-cells ({self.n_cells})")
        if self.robustness_data is not None and not Path(self.robustness_data).is_file():
            raise GennasError(f"--robustness-data {self.robustness_data}: no such file (a CSV with columns "
                              "arch,value of PGD accuracies measured on this dataset)")


def check_resumable(saved: Path, settings: RunSettings) -> None:
    """A run directory may be resumed only with the settings that started it; name those that differ."""
    if not saved.exists():
        return
    previous = {"space": "nb201", **saved_settings(saved)}  # runs from before --space were NB201 runs
    current = json.loads(json.dumps(asdict(settings)))  # as run.json holds it (tuples are lists there)
    differ = [name for name in dict.fromkeys([*current, *previous]) if previous.get(name) != current.get(name)]
    if differ:
        listed = "; ".join(f"{_flag(name)} {previous.get(name)!r} there, {current.get(name)!r} now" for name in differ)
        raise GennasError(f"{saved.parent} holds a run with other settings ({listed}); pass the same settings to "
                          "resume it, or another --out, or delete the directory")


def saved_settings(saved: Path) -> dict:
    """The settings in a run directory's ``run.json``."""
    return read_json_checked(saved, "run settings", "delete or move the run directory, or pass another --out"
                             ).get("settings", {})


def adopt_planned(saved: Path, settings: RunSettings) -> RunSettings:
    """A resumed ``--budget-minutes`` run keeps the plan it started with (a new timing probe would differ).

    Returns ``settings`` with the planned values of ``run.json`` when that run had the same
    budget and planned the same settings; otherwise ``settings`` unchanged (a run that
    differs is then named by :func:`check_resumable`).
    """
    if settings.budget_minutes is None or not saved.exists():
        return settings
    previous = saved_settings(saved)
    if previous.get("budget_minutes") != settings.budget_minutes or \
            sorted(previous.get("planned", ())) != sorted(settings.planned):
        return settings
    try:
        return replace(settings, **{name: int(previous[name]) for name in settings.planned})
    except (KeyError, TypeError, ValueError):
        return settings


def _flag(setting: str) -> str:
    """The command-line flag of a setting, where it has one (``recipe`` and a few others are Python-only)."""
    return f"--{setting.replace('_', '-')}" if setting not in ("recipe", "recalibration_images", "planned") \
        else setting
