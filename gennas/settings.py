"""Where gennas reads and writes: each location is an environment variable with a default.

Nothing here is read at import time, so a user (or a test) can set a variable at any
point before the first use.
"""

from __future__ import annotations

import os
from pathlib import Path

NB201_DIR_VAR = "GENNAS_NB201_DIR"
CACHE_DIR_VAR = "GENNAS_CACHE_DIR"
DATA_DIR_VAR = "GENNAS_DATA_DIR"

_REPO_ROOT = Path(__file__).resolve().parent.parent


def nb201_dir() -> Path:
    """The NAS-Bench-201 table folder: ``$GENNAS_NB201_DIR``, else ``../shared/data/nb201/``.

    The default is taken relative to the project checkout (where gennas is installed in
    development mode) and, failing that, to the current directory. An installed wheel has
    no checkout (its package sits in site-packages), so there only the current directory
    counts, and the error for a missing table names a folder the user can act on.
    """
    if os.environ.get(NB201_DIR_VAR):
        return Path(os.environ[NB201_DIR_VAR]).expanduser()
    bases = [_REPO_ROOT, Path.cwd()] if _is_checkout(_REPO_ROOT) else [Path.cwd()]
    for base in bases:
        candidate = (base / ".." / "shared" / "data" / "nb201").resolve()
        if candidate.exists():
            return candidate
    return (bases[0] / ".." / "shared" / "data" / "nb201").resolve()


def _is_checkout(root: Path) -> bool:
    """Whether ``root`` is the project's source tree (editable install), not site-packages."""
    return (root / "pyproject.toml").is_file() and (root / "gennas").is_dir()


def cache_dir() -> Path:
    """Disk cache for computed tables and oracle results: ``$GENNAS_CACHE_DIR``, else ``~/.cache/gennas``."""
    return Path(os.environ.get(CACHE_DIR_VAR) or Path.home() / ".cache" / "gennas").expanduser()


def data_dir() -> Path:
    """On-disk datasets (CIFAR, MNIST, ...): ``$GENNAS_DATA_DIR``, else ``~/.cache/gennas/data``."""
    return Path(os.environ.get(DATA_DIR_VAR) or Path.home() / ".cache" / "gennas" / "data").expanduser()
