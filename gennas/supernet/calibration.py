"""Supernet readings on the standalone scale: a map fitted on the subnets measured both ways.

A subnet read from shared weights and the same cell trained on its own differ by a bias
that is much the same across subnets (above all for PGD robustness, which shared weights
read far lower), so the subnets a run trains standalone (its finalists) reveal it. With
few pairs a constant offset is the robust estimate; a line (slope and intercept) is
fitted only when enough pairs let leave-one-out error show it predicts better. The
supernet benchmark measures both on held-out subnets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gennas.supernet.table import figure

#: Fewest pairs for which a line is considered at all (leave-one-out then chooses line or offset).
MIN_PAIRS_FOR_A_LINE = 6
#: A supernet reading and the standalone figure it estimates, per column of ``subnets.csv``.
READINGS = {"val_accuracy": "standalone_val_accuracy", "val_pgd_accuracy": "standalone_val_pgd_accuracy",
            "accuracy": "standalone_accuracy", "pgd_accuracy": "standalone_pgd_accuracy"}
#: The readings a run calibrates: those it chooses on. A run reads its subnets on validation data only
#: (test figures are taken once, of the model it exports), so test readings have nothing to calibrate.
CALIBRATED = ("val_accuracy", "val_pgd_accuracy")


@dataclass(frozen=True)
class Calibration:
    """``standalone ≈ intercept + slope × reading`` for one metric, fitted on ``pairs`` subnets."""

    slope: float
    intercept: float
    pairs: int

    def __call__(self, value: float) -> float:
        return self.intercept + self.slope * value

    def describe(self) -> str:
        if self.pairs == 0:
            return "no subnet measured both ways: readings as they are"
        if self.slope == 1.0:
            return f"offset {self.intercept:+.2f} points ({self.pairs} pair(s))"
        return f"{self.intercept:+.2f} + {self.slope:.3f} × reading ({self.pairs} pairs)"


def _offset(a: np.ndarray, b: np.ndarray) -> Calibration:
    return Calibration(1.0, float(np.mean(b - a)), len(a))


def _line(a: np.ndarray, b: np.ndarray) -> Calibration | None:
    if a.std() <= 1e-9:
        return None
    slope, intercept = np.polyfit(a, b, 1)
    return Calibration(float(slope), float(intercept), len(a)) if slope > 0 else None


def _leave_one_out_error(a: np.ndarray, b: np.ndarray, fit) -> float:
    errors = []
    for i in range(len(a)):
        keep = np.arange(len(a)) != i
        fitted = fit(a[keep], b[keep]) or _offset(a[keep], b[keep])
        errors.append(abs(fitted(a[i]) - b[i]))
    return float(np.mean(errors))


def calibrate(readings: Sequence[float], standalone: Sequence[float]) -> Calibration:
    """The map from supernet readings to standalone figures.

    Args:
        readings: the supernet's readings of the subnets measured both ways.
        standalone: the same subnets' standalone figures, in the same order.

    Returns:
        The identity without pairs; the mean offset below :data:`MIN_PAIRS_FOR_A_LINE`
        pairs; from there the line when its leave-one-out absolute error is below the
        offset's (and its slope positive), else the offset.
    """
    a, b = np.asarray(readings, dtype=float), np.asarray(standalone, dtype=float)
    if not len(a):
        return Calibration(1.0, 0.0, 0)
    line = _line(a, b) if len(a) >= MIN_PAIRS_FOR_A_LINE else None
    if line is not None and _leave_one_out_error(a, b, _line) < _leave_one_out_error(a, b, lambda x, y: _offset(x, y)):
        return line
    return _offset(a, b)


def fitted_calibrations(rows: Sequence[dict]) -> dict[str, Calibration]:
    """One :class:`Calibration` per column of :data:`CALIBRATED`, fitted on ``rows`` measured both ways."""
    out = {}
    for reading in CALIBRATED:
        exact = READINGS[reading]
        pairs = [(figure(r, reading), figure(r, exact)) for r in rows]
        pairs = [(s, t) for s, t in pairs if s is not None and t is not None]
        out[reading] = calibrate([s for s, _ in pairs], [t for _, t in pairs])
    return out
