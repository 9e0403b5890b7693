"""The ``gennas`` command line.

Contract forms (kept stable; extend, never rename):
  gennas cost nb201 "<arch>" --json
  gennas query nb201 "<arch>" --dataset cifar10 --json
  gennas train "<arch>" --dataset digits --epochs E --json
  gennas search --space nb201 --dataset cifar10 --method M --budget B --seeds S --seed K
                --prior {none,transfer} --objectives accuracy:max[,flops:min] --out DIR --json
  gennas compare --methods ours,rea,random (same options)
  gennas run --dataset digits --objectives accuracy:max,flops:min,... --out RUN_DIR [--json]
  gennas prune RUN_DIR --max-flops 30 --max-memory-mb 2 --min-robustness 0.5 --maximize accuracy --json
  gennas compare --dataset digits --methods ours,darts,gdas,rea,random --budget-minutes M --seeds S --json
Every command prints JSON with ``--json`` and a short human summary otherwise. A
:class:`GennasError` is printed as one ``error:`` line (exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Sequence

from gennas.config_file import expand_config, write_resolved
from gennas.errors import GennasError


# ------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``gennas`` parser: every subcommand of :mod:`gennas.subcommands`."""
    from gennas.subcommands import register
    from gennas.threads import THREADS_HELP

    parser = _Parser(prog="gennas", description="Generate, train and compare neural architectures.",
                     epilog=THREADS_HELP)
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser by name."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error form of every other gennas error (``error: ...``, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {self.prog}: {message}\n")


def interrupted_message(args: argparse.Namespace) -> str:
    """What an interrupted command has saved and how to go on: true for each command.

    Args:
        args: the parsed command line of the interrupted command.

    Returns:
        One line for stderr.
    """
    command = args.command
    out = getattr(args, "out", None)
    if command == "run":
        return (f"interrupted; finished stages are kept in {out} (generated cells, the supernet checkpoint of the "
                "last finished epoch, every measured subnet): rerun the same command to resume")
    if command in ("search", "compare"):
        if getattr(args, "budget_minutes", None) is not None:
            return (f"interrupted; finished (method, seed) rows are kept in {out}: rerun the same command to resume"
                    if out else "interrupted; nothing was saved (no --out): pass --out DIR to keep finished rows")
        return (f"interrupted; every measured cell is kept in the journals under {out}: rerun the same command to "
                "resume" if out else "interrupted; nothing was saved (no --out): pass --out DIR to make runs resumable")
    if command == "prune":
        return "interrupted; the export may be incomplete: rerun the same command to export again"
    if command == "train":
        return "interrupted; nothing was saved (results are cached only when training finishes): rerun to train again"
    if command in ("generator", "predictor"):
        return "interrupted; no checkpoint was written (it is saved when training ends): rerun the command"
    return "interrupted; nothing was saved: rerun the command"


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(130)  # a second Ctrl-C: no cleanup, no traceback; every file is written atomically


def _first_interrupt(signum: int, frame: Any) -> None:
    from gennas import interrupt

    interrupt.mark()  # re-raised by the search loop if a library swallows this KeyboardInterrupt
    signal.signal(signal.SIGINT, _exit_now)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from gennas import interrupt
    from gennas.threads import configure_threads

    interrupt.clear()
    parser = build_parser()
    try:
        argv = expand_config(sys.argv[1:] if argv is None else argv, _subcommands(parser))
        args = parser.parse_args(argv)
    except GennasError as exc:  # a --config file that cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals can only be set there
    previous = signal.signal(signal.SIGINT, _first_interrupt) if in_main_thread else None
    interrupted = False
    try:
        configure_threads()
        args.func(args)
        write_resolved(args)
    except GennasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        interrupted = True
        print(interrupted_message(args), file=sys.stderr)
        return 130
    finally:
        if previous is not None and not interrupted:  # after a Ctrl-C the process is ending: keep exiting at once
            signal.signal(signal.SIGINT, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
