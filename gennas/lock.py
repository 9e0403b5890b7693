"""One writer per output directory: an advisory ``flock`` on ``DIR/.gennas.lock``.

Without it two commands writing the same directory would both succeed, the last writer
winning, so one of them would report files that no longer exist. The lock is taken before any work
starts and released when the command ends (the kernel releases it if the process dies,
so a killed command never leaves a stale lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path
from typing import Iterator

from gennas.errors import GennasError

LOCK_NAME = ".gennas.lock"


@contextlib.contextmanager
def output_lock(directory: str | Path | None) -> Iterator[None]:
    """Hold the write lock of ``directory`` (created if needed) for the ``with`` block; None locks nothing.

    Raises:
        GennasError: when another process (or another open of this directory) holds it.
    """
    if directory is None:
        yield
        return
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another gennas command"
            raise GennasError(f"{directory} is being written by {holder}; wait for it to finish, "
                              "or pass another output directory") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {' '.join(sys.argv[:1] + sys.argv[1:4])}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the flock
