"""A Ctrl-C that a library swallowed still stops the command.

scikit-learn's MLP catches ``KeyboardInterrupt``, warns and returns a half-fitted model,
so a Ctrl-C during a BO surrogate fit would otherwise continue the search on that model:
a run that no uninterrupted run would make, journalled as if it were. The CLI's SIGINT handler
records the interrupt here, and the search loop re-raises it after each ask and tell,
before anything that depends on the swallowed fit is measured or journalled.
"""

from __future__ import annotations

_pending = False


def mark() -> None:
    """Record that a Ctrl-C arrived (called from the SIGINT handler)."""
    global _pending
    _pending = True


def clear() -> None:
    """Forget an earlier interrupt (a new command starts)."""
    global _pending
    _pending = False


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C arrived, even one that was caught and ignored since."""
    if _pending:
        raise KeyboardInterrupt
