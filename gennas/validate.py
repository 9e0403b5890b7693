"""Validation of command-line values at the edge, one helper per kind of input.

Each helper is an argparse ``type=`` callable: a bad value is rejected while the command
line is parsed, before any data is loaded or any training starts, with argparse's usage
line and exit code 2. Library functions keep their own checks for callers from Python.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

#: Most cells one ``gennas generate`` call returns: NB201 has 6,466 distinct cells, and
#: sampling and ranking beyond this takes far longer than a user expects of one call.
MAX_CELLS = 10_000
#: Most optimisation steps or epochs one command accepts (the defaults are 500-3,000).
MAX_STEPS = 1_000_000
MAX_EPOCHS = 10_000
#: Seeds are handed to numpy and torch generators, which take 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1


def _number(text: str, cast: Callable[[str], float | int], kind: str) -> float | int:
    try:
        return cast(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None


def finite_float(text: str) -> float:
    """A float that is neither inf nor nan (``float()`` accepts both)."""
    value = float(_number(text, float, "a number"))
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def nonneg_float(text: str) -> float:
    """A finite float >= 0 (a guidance scale, a radius, a threshold)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0 (a learning rate, minutes)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def int_in(low: int, high: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse type for integers in ``[low, high]``; ``why`` explains the upper cap."""
    def parse(text: str) -> int:
        value = int(_number(text, int, "a whole number"))
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text!r} is more than the cap of {high:,}{why}")
        return value
    parse.__name__ = f"int_in_{low}_{high}"  # argparse names the type in its messages
    return parse


positive_int = int_in(1)
nonneg_int = int_in(0)
seed_int = int_in(0, MAX_SEED, " (seeds are 0 <= K < 2**32)")
steps_int = int_in(1, MAX_STEPS, " steps; train in several runs if you really need more")
epochs_int = int_in(1, MAX_EPOCHS, " epochs")
cells_int = int_in(1, MAX_CELLS, " cells per call; run several calls with different --seed")


def _nearest_existing(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_writable_dir(directory: Path, text: str) -> None:
    """Raise unless a file can really be created in ``directory`` (a probe, not ``os.access``:
    root passes every access check, and a read-only filesystem fails only on write)."""
    if not directory.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {directory} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".gennas-probe-"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: cannot write in {directory} ({exc.strerror}); "
                                         "choose a writable location") from None


def output_dir(text: str) -> str:
    """A directory to write into: existing and writable, or creatable under a writable parent."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is an existing file; an output directory is needed")
    _check_writable_dir(_nearest_existing(path) if not path.exists() else path, text)
    return text


def output_file(text: str) -> str:
    """A file to (over)write: not a directory, its folder writable or creatable."""
    path = Path(text)
    if path.is_dir() or text.endswith(os.sep):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file path, e.g. {text.rstrip(os.sep)}/model.pt")
    _check_writable_dir(_nearest_existing(path.parent), text)
    return text


def existing_file(text: str) -> str:
    """A file that exists and is not a directory (checked before anything runs)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return text


def unit_float(text: str) -> float:
    """A finite float in [0, 1] (an attack radius in pixel units)."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 1]")
    return value
