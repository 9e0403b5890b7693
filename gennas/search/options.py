"""The ``--option KEY=VALUE`` settings a search method understands, with their types.

Searchers read their options with ``int(...)``/``float(...)`` when they are built, where an
unknown key would be ignored and a mistyped value end in a traceback. Checking the
options against the method's table first (:func:`gennas.search.methods.check_options`)
gives one error that lists what the method accepts. Values are checked, never converted:
the options as given are part of a journal's identity, so a resumed run must see exactly
what the first run saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gennas.errors import GennasError


@dataclass(frozen=True)
class Option:
    """One searcher option: its kind (``int``, ``float``, ``choice``, ``path``) and its limits."""

    kind: str
    low: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None when it is."""
        if self.kind == "choice":
            return None if str(value) in self.choices else f"must be one of {', '.join(self.choices)}"
        if self.kind == "path":
            return None if str(value) else "must be a file path"
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or (self.kind == "int" and not isinstance(number, int)) or not math.isfinite(number):
            return f"must be {'a whole number' if self.kind == 'int' else 'a finite number'}"
        if self.low is not None and number < self.low:
            return f"must be at least {self.low:g}"
        return None

    def describe(self, name: str) -> str:
        limit = f" >= {self.low:g}" if self.low is not None else ""
        what = "|".join(self.choices) if self.kind == "choice" else f"{self.kind}{limit}"
        return f"{name} ({what})"


def whole(low: int = 1) -> Option:
    """An integer option of at least ``low``."""
    return Option("int", low)


def real(low: float = 0.0) -> Option:
    """A finite float option of at least ``low``."""
    return Option("float", low)


def choice(*choices: str) -> Option:
    """One of ``choices``, as text."""
    return Option("choice", choices=choices)


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs for searcher options (numbers parsed, the rest kept as text).

    Args:
        pairs: the ``--option`` values as given.

    Returns:
        The options by key; ints, then floats, then text.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GennasError(f"--option {pair!r}: write KEY=VALUE, e.g. --option population_size=20")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def check_option_tables(options: dict[str, Any], tables: dict[str, dict[str, Option]]) -> None:
    """Raise a :class:`GennasError` unless every option is known to one of the methods and well typed.

    Args:
        options: parsed ``--option`` pairs (numbers already parsed, the rest text).
        tables: the option table of every method that will run, by method name.

    Raises:
        GennasError: naming the bad option and listing the valid options of the methods.
    """
    methods = list(tables)
    for name, value in options.items():
        owners = [m for m, table in tables.items() if name in table]
        if not owners:
            valid = "; ".join(f"{m}: {', '.join(t[k].describe(k) for k in t) or '(none)'}" for m, t in tables.items())
            raise GennasError(f"--option {name}={value}: unknown option for {', '.join(methods)}; valid options are "
                              f"{valid}")
        for method in owners:
            problem = tables[method][name].problem(value)
            if problem:
                raise GennasError(f"--option {name}={value}: {name} {problem} (method {method}; its options: "
                                  f"{', '.join(o.describe(k) for k, o in tables[method].items())})")
