"""The ``--option KEY=VALUE`` settings each search method understands, with their types.

Searchers read their options with ``int(...)``/``float(...)`` when they are built; an
unknown key used to be ignored and a mistyped value to end in a traceback. Checking the
options against this table first gives one error that lists what the method accepts.
Values are checked, never converted: the options as given are part of a journal's
identity, so a resumed run must see exactly what the first run saw.
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


def _int(low: int = 1) -> Option:
    return Option("int", low)


def _float(low: float = 0.0) -> Option:
    return Option("float", low)


#: Every method's options; keep in step with the ``options.get`` calls of its searcher.
OPTIONS: dict[str, dict[str, Option]] = {
    "ours": {"batch": _int(), "n_init": _int(0), "pool": _int(), "guidance": _float(), "kappa": _float(),
             "parents": _int(), "regenerate_every": _int(), "fit_steps": _int(), "refit_steps": _int(0),
             "acquisition": Option("choice", choices=("ehvi", "ucb", "chebyshev")), "ehvi_samples": _int(),
             "generator": Option("path"), "table_candidates": _int(0), "source_tables": _int(0)},
    "random": {},
    "rea": {"population_size": _int(2), "tournament_size": _int(1)},
    "reinforce": {"lr": Option("float", 1e-12)},
    "bo": {"n_init": _int(), "surrogate": Option("choice", choices=("mlp", "gbr", "rf", "gnn"))},
    "ls": {},
    "nsga2": {"pop_size": _int(2)},
}


def check_options(options: dict[str, Any], methods: list[str]) -> None:
    """Raise a :class:`GennasError` unless every option is known to one of ``methods`` and well typed.

    Args:
        options: parsed ``--option`` pairs (numbers already parsed, the rest text).
        methods: the methods that will run; methods without a table entry (DARTS, GDAS) take none.

    Raises:
        GennasError: naming the bad option and listing the valid options of the methods.
    """
    tables = {m: OPTIONS.get(m, {}) for m in methods}
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
    population, tournament = options.get("population_size", 10), options.get("tournament_size", 3)  # REA's defaults
    if "rea" in methods and tournament > population:
        raise GennasError(f"--option tournament_size={tournament} is larger than population_size={population}; "
                          "a tournament draws from the population")
