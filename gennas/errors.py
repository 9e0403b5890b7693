"""One exception type for every mistake a user can make.

The CLI catches :class:`GennasError` and prints its message without a traceback, so
each message must say what is wrong *and* how to fix it.
"""


class GennasError(Exception):
    """A user-facing error: bad input, missing data, infeasible request."""


class BudgetExhausted(GennasError):
    """An oracle was asked for more distinct cells than its query budget allows."""
