"""Where a result came from: the command, the git commit and the machine, for every report."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path


def _git(*args: str) -> str:
    """Ask git about the checkout gennas runs from; "unknown" for an installed wheel.

    An installed package has no checkout of its own, and git run in site-packages would
    answer for whatever repository happens to enclose the environment.
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return "unknown"
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=root).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _invocation() -> list[str]:
    script = Path(sys.argv[0])
    if script.suffix == ".py":
        return ["python", str(script.relative_to(Path.cwd())) if script.is_relative_to(Path.cwd()) else str(script),
                *sys.argv[1:]]
    return [script.name, *sys.argv[1:]]  # a console script such as `gennas`


def provenance(command: list[str] | None = None) -> dict[str, object]:
    """Facts a reader needs to reproduce (or distrust) a figure."""
    import torch

    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "command": shlex.join(command if command is not None else _invocation()),
        "commit": _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty and dirty != "unknown" else ""),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
    }


def provenance_markdown(info: dict[str, object]) -> str:
    m = info["machine"]
    return (
        f"- command: `{info['command']}`\n- commit: `{info['commit']}`\n- date: {info['date']}\n"
        f"- machine: {m['platform']}, {m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), "
        f"GPU: {m['cuda'] or 'none'}\n"
    )
