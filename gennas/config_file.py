"""``--config FILE``: a command's options kept in a YAML (or JSON) file; flags on the command line override it.

The file maps option names (``n_cells`` or ``n-cells``) to values. It is expanded into the
flags it stands for, placed before the flags typed, so parsing, validation and error
messages are exactly those of the flags themselves and a typed flag wins over the file
(argparse keeps the last value). A run directory's ``run.json`` is a config file too:
``gennas run --config RUN_DIR/run.json --out NEW`` reruns with the settings it resolved.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from gennas.errors import GennasError

#: The subcommands that take ``--config``.
CONFIG_COMMANDS = ("run", "search", "compare")
#: Keys of a ``run.json``'s settings that no flag sets (Python-API settings and the budget's bookkeeping).
RUN_JSON_ONLY = frozenset({"recipe", "recalibration_images", "planned"})


def expand_config(argv: Sequence[str], subparsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    """``argv`` with ``--config FILE`` replaced by the flags the file stands for.

    Args:
        argv: the command line after ``gennas`` (subcommand first).
        subparsers: each subcommand's parser, to map option names to flags.

    Returns:
        The command line to parse: the subcommand, the file's flags, then the flags typed.

    Raises:
        GennasError: a file that is missing, unreadable or not a mapping, a key that is no
            option of the command, or ``--config`` on a command that does not take it.
    """
    argv = list(argv)
    path, rest = _take_config(argv)
    if path is None:
        return argv
    command = argv[0] if argv else ""
    if command not in CONFIG_COMMANDS:
        raise GennasError(f"--config works with gennas {', '.join(CONFIG_COMMANDS)}; not with {command or 'nothing'}")
    options = _read(Path(path))
    actions = {a.dest: a for a in subparsers[command]._actions if a.option_strings}
    flags: list[str] = []
    for key, value in options.items():
        dest = str(key).replace("-", "_")
        if dest not in actions:
            raise GennasError(f"{path}: {key!r} is no option of gennas {command} (options: "
                              f"{', '.join(sorted(d for d in actions if d not in ('help', 'config')))})")
        flags += _flags(actions[dest], value, path)
    return [command, *flags, *rest[1:]]


def write_resolved(args: argparse.Namespace) -> Path | None:
    """Keep the options a finished ``run``/``search``/``compare`` resolved in ``OUT/config.json``.

    ``--config OUT/config.json`` then reruns the command as it was given (flags and file
    together). Commands without ``--out`` keep nothing.

    Returns:
        The file written, or None.
    """
    from gennas.io import write_json

    out = getattr(args, "out", None)
    if args.command not in CONFIG_COMMANDS or not out or not Path(out).is_dir():
        return None
    plain = (str, int, float, bool)
    options = {k: v for k, v in vars(args).items()
               if k not in ("func", "config", "command") and isinstance(v, plain)}  # what a flag can say again
    return write_json(Path(out) / "config.json", options)


def _take_config(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the ``--config`` value, argv without it)."""
    for i, token in enumerate(argv):
        if token == "--config":
            if i + 1 >= len(argv):
                raise GennasError("--config needs a file: --config run.yaml")
            return argv[i + 1], argv[:i] + argv[i + 2:]
        if token.startswith("--config="):
            return token.split("=", 1)[1], argv[:i] + argv[i + 1:]
    return None, argv


def _read(path: Path) -> dict[str, Any]:
    """The file's options; a ``run.json`` contributes its settings (without those no flag sets)."""
    import yaml

    if not path.is_file():
        raise GennasError(f"--config {path}: no such file (a YAML or JSON mapping of option names to values)")
    try:
        data = yaml.safe_load(path.read_text())  # JSON is YAML too
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GennasError(f"--config {path}: not YAML or JSON ({str(exc).splitlines()[0]})") from None
    if isinstance(data, dict) and isinstance(data.get("settings"), dict) and "provenance" in data:
        data = {k: v for k, v in data["settings"].items() if k not in RUN_JSON_ONLY}  # a run.json
    if not isinstance(data, dict):
        raise GennasError(f"--config {path}: expected a mapping of option names to values, got "
                          f"{type(data).__name__}")
    return data


def _flags(action: argparse.Action, value: Any, path: str) -> list[str]:
    """The command-line tokens that set ``action`` to ``value``."""
    flag = next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise GennasError(f"{path}: {action.dest} is a switch: true or false, got {value!r}")
        return [flag] if value == isinstance(action, argparse._StoreTrueAction) else []
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return [flag, str(value)]
