"""How many torch threads a process uses: the CPU cores it may run on, not every core.

torch defaults to one thread per physical core of the machine. Several gennas processes
on a shared or container-limited machine then oversubscribe the cores, and each one
slows down many times over. The affinity mask (``os.sched_getaffinity``) says which
cores this process may use; ``OMP_NUM_THREADS``, when set, is the user's explicit choice.
"""

from __future__ import annotations

import os

THREADS_HELP = ("threads: each gennas process runs torch on as many threads as the CPU cores it may use "
                "(its affinity mask, e.g. under taskset or a container limit), or OMP_NUM_THREADS when set; "
                "running several processes at once, give each OMP_NUM_THREADS=1 or its own cores")


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def thread_count(environ: dict[str, str] | None = None) -> int:
    """``OMP_NUM_THREADS`` when it is a positive integer, else the usable cores.

    Args:
        environ: the environment to read (default ``os.environ``).

    Returns:
        The number of intra-op threads torch should use.
    """
    env = os.environ if environ is None else environ
    try:
        requested = int(env.get("OMP_NUM_THREADS", ""))
    except ValueError:
        requested = 0
    return requested if requested > 0 else usable_cores()


def configure_threads() -> int:
    """Set torch's intra-op thread count from :func:`thread_count`; returns it."""
    import torch

    n = thread_count()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def one_thread_per_worker() -> int:
    """For benchmark scripts: one torch thread in this process and in every process it starts.

    Benchmarks run several processes side by side and time them, so each takes one core
    (``OMP_NUM_THREADS=1``, inherited by child processes) unless the caller chose otherwise.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return configure_threads()
