"""Pick the deployed model after the search: thresholds over measured subnets, best feasible, export.

Costs (FLOPs, params, memory) are exact, so a cost threshold is met exactly; accuracy and
robustness thresholds and the ranking use the *validation* figures (the test figures are
reported, never used to choose), and latency is the median measured during the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from gennas.errors import GennasError
from gennas.supernet.calibration import READINGS, fitted_calibrations
from gennas.supernet.table import figure, read_subnet_table


@dataclass(frozen=True)
class Threshold:
    """One user limit: ``column`` compared with ``value * scale`` (units as the user typed them)."""

    flag: str
    column: str
    bound: str  # "max" or "min"
    scale: float
    unit: str
    value: float

    def violation(self, row: dict) -> float:
        """Relative excess beyond the limit (0 when satisfied)."""
        limit = self.value * self.scale
        actual = float(row[self.column])
        excess = actual - limit if self.bound == "max" else limit - actual
        return max(excess, 0.0) / max(abs(limit), 1e-12)

    def describe(self, row: dict) -> str:
        actual = float(row[self.column]) / self.scale
        sign = ">" if self.bound == "max" else "<"
        return f"{self.flag.replace('_', '-')}: {actual:.4g} {sign} {self.value:g} {self.unit.split(' (')[0]}"


#: flag -> (column, bound, scale, unit). Units are what ``gennas prune --help`` states.
THRESHOLDS: dict[str, tuple[str, str, float, str]] = {
    "max_flops": ("flops", "max", 1.0, "MFLOPs (millions of multiply-adds at batch 1)"),
    "max_params": ("params", "max", 1.0, "million parameters"),
    "max_memory_mb": ("memory_bytes", "max", 1e6, "MB (10^6 bytes of peak inference memory at batch 1)"),
    "max_latency_ms": ("latency_ms", "max", 1.0, "ms (median batch-1 latency on the run's device)"),
    "min_accuracy": ("val_accuracy", "min", 1.0, "% (validation accuracy)"),
    "min_robustness": ("val_pgd_accuracy", "min", 100.0, "fraction (0-1, or a percentage such as 45%) of validation "
                                                         "images still correct under PGD"),
}

#: Thresholds on accuracy-like metrics, which also take a value with a ``%`` sign.
PERCENT_FLAGS = frozenset({"min_accuracy", "min_robustness"})

#: --maximize / --minimize names -> column and whether larger is better.
GOALS: dict[str, tuple[str, bool]] = {
    "accuracy": ("val_accuracy", True), "robustness": ("val_pgd_accuracy", True),
    "pgd_accuracy": ("val_pgd_accuracy", True), "flops": ("flops", False), "params": ("params", False),
    "memory": ("memory_bytes", False), "latency": ("latency_ms", False),
}


def make_thresholds(values: dict[str, float | str | None]) -> list[Threshold]:
    """The user's limits, checked; a value may be a number or text such as ``"45%"`` (see :func:`threshold_value`)."""
    out = []
    for flag, value in values.items():
        if value is None:
            continue
        if flag not in THRESHOLDS:
            raise GennasError(f"unknown threshold {flag!r}; known: {', '.join(THRESHOLDS)}")
        value = threshold_value(flag, value)
        if not math.isfinite(value) or value < 0:
            raise GennasError(f"--{flag.replace('_', '-')} must be a finite number >= 0, got {value}")
        if flag == "min_robustness" and value > 1:
            raise GennasError(f"--min-robustness is a fraction in [0, 1] (0.5 = half the images survive PGD), "
                              f"got {value}; divide a percentage by 100 or write it with its unit, e.g. {value:g}%")
        out.append(Threshold(flag, *THRESHOLDS[flag], value))
    return out


def threshold_value(flag: str, value: float | str) -> float:
    """A threshold in the flag's own unit: ``45%`` is 0.45 for ``min_robustness`` and 45 for ``min_accuracy``.

    Accuracy-like outputs are printed as percentages, so a limit may be typed the same way;
    a bare number keeps its meaning (a fraction for robustness, percent for accuracy).
    """
    if not isinstance(value, str):
        return float(value)
    text = value.strip()
    percent = text.endswith("%")
    try:
        number = float(text[:-1] if percent else text)
    except ValueError:
        raise GennasError(f"--{flag.replace('_', '-')} takes a number{' or a percentage' if flag in PERCENT_FLAGS else ''}"
                          f", got {value!r}") from None
    if not percent:
        return number
    if flag not in PERCENT_FLAGS:
        raise GennasError(f"--{flag.replace('_', '-')} is in {THRESHOLDS[flag][3]}, not a percentage; got {value!r}")
    return number / 100 if THRESHOLDS[flag][2] == 100.0 else number


def read_subnets(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "subnets.csv"
    if not path.exists():
        raise GennasError(f"{path} does not exist: RUN_DIR must be a directory written by `gennas run` "
                          "(it holds subnets.csv and supernet.pt)")
    rows = read_subnet_table(path)
    if not rows:
        raise GennasError(f"{path} lists no measured subnet; rerun `gennas run` to finish the measurement")
    return rows


#: A supernet reading and the standalone figure that replaces it where the subnet was trained on its own.
VERIFIED = READINGS


def is_verified(row: dict) -> bool:
    """Whether the subnet was trained standalone (its standalone figures are numbers, not NaN)."""
    return all(figure(row, c) is not None for c in VERIFIED.values())


def verified_view(rows: list[dict]) -> list[dict]:
    """Each row with its standalone figures in place of the supernet's where it has them.

    ``figures`` says which a row carries (``"standalone"`` or ``"supernet"``), so a choice
    made on the view can say what it rests on; ``supernet_*`` keep the replaced readings.
    """
    view = []
    for row in rows:
        if is_verified(row):
            view.append({**row, **{f"supernet_{k}": row[k] for k in VERIFIED},
                         **{k: row[v] for k, v in VERIFIED.items()}, "figures": "standalone"})
        else:
            view.append({**row, "figures": "supernet"})
    return view


def estimated_view(rows: list[dict]) -> list[dict]:
    """:func:`verified_view`, with every unverified reading mapped onto the standalone scale.

    What ``prune --verify`` chooses on: it deploys a standalone training of its choice, so
    an unverified subnet is judged on what such a training is estimated to reach (the
    calibration fitted on the verified subnets, :mod:`gennas.supernet.calibration`);
    ``figures`` is ``"calibrated"`` for those rows, ``supernet`` when nothing was verified.
    """
    calibrations = fitted_calibrations(rows)
    view = []
    for row in verified_view(rows):
        if row["figures"] == "supernet" and all(c.pairs for c in calibrations.values()):
            row = {**row, **{f"supernet_{k}": row[k] for k in VERIFIED},
                   **{k: min(max(calibrations[k](row[k]), 0.0), 100.0) for k in calibrations}, "figures": "calibrated"}
        view.append(row)
    return view


def select(rows: list[dict], thresholds: list[Threshold], goal: str = "accuracy") -> dict:
    """The best feasible row; an error naming the nearest subnets and what each violates when none is."""
    if goal not in GOALS:
        raise GennasError(f"cannot optimise {goal!r}; choose one of {', '.join(GOALS)}")
    column, larger = GOALS[goal]
    feasible = [r for r in rows if all(t.violation(r) == 0 for t in thresholds)]
    if not feasible:
        nearest = sorted(rows, key=lambda r: sum(t.violation(r) for t in thresholds))[:3]
        lines = [f"  {r['arch']}: " + "; ".join(t.describe(r) for t in thresholds if t.violation(r) > 0)
                 for r in nearest]
        raise GennasError(f"no measured subnet meets every threshold ({len(rows)} measured). Nearest:\n"
                          + "\n".join(lines) + "\nrelax the thresholds they violate")
    sign = 1.0 if larger else -1.0
    # Ties (e.g. the same validation accuracy) go to the smaller memory, then the fewer FLOPs.
    return max(feasible, key=lambda r: (sign * float(r[column]), -float(r["memory_bytes"]), -float(r["flops"])))
