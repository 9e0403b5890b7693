"""What every subcommand shares: printing results, and the options declared once (``--json``, ``--seed``,
``--device``, the network skeleton)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from gennas import validate as v


def emit(payload: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print ``payload`` as JSON with ``--json``, else as the command's human summary (a flat table by default)."""
    if as_json:
        print(json.dumps(payload, indent=2))
    else:
        print(human(payload) if human else _format_flat(payload))


def _format_flat(payload: dict) -> str:
    width = max(len(k) for k in payload)
    return "\n".join(f"{k:<{width}}  {_fmt(v)}" for k, v in payload.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def add_json(parser: argparse.ArgumentParser, help: str | None = "print JSON") -> None:
    """``--json``: print the result as JSON instead of the human summary."""
    parser.add_argument("--json", action="store_true", help=help)


def add_config(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``: the command's options from a YAML or JSON file (see :mod:`gennas.config_file`)."""
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="options from a YAML or JSON file (option: value per line, e.g. 'n_cells: 8'; a run's "
                             "run.json works too); flags given on the command line override the file")


def add_seed(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--seed`` (default 0): every entry point is deterministic under its seed."""
    parser.add_argument("--seed", type=v.seed_int, default=0, help=help)


def add_device(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--device`` (default auto: CUDA with AMP when present, else CPU)."""
    parser.add_argument("--device", default="auto", help=help)


#: The skeleton flags besides --channels and --cells-per-stage, as NetworkConfig fields.
SHAPE_FLAGS = ("in_channels", "image_size", "num_classes")


def add_shape_flags(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--in-channels``, ``--image-size``, ``--num-classes`` (default None: the command's skeleton)."""
    group.add_argument("--in-channels", type=v.positive_int, default=None, help="input channels")
    group.add_argument("--image-size", type=v.positive_int, default=None, help="input side in pixels")
    group.add_argument("--num-classes", type=v.positive_int, default=None, help="classifier outputs")


def with_skeleton_flags(base, args: argparse.Namespace):
    """``base`` (a space's skeleton config) with every skeleton flag the user gave in place of its field.

    A flag the skeleton has no field for (``--layers`` on NB201, ``--cells-per-stage`` on DARTS)
    is one clear error, not silently ignored.
    """
    import dataclasses

    from gennas.errors import GennasError

    names = ("channels", "cells_per_stage", "layers", *SHAPE_FLAGS)
    given = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    fields = {f.name for f in dataclasses.fields(base)}
    foreign = [name for name in given if name not in fields]
    if foreign:
        flag = "--" + foreign[0].replace("_", "-")
        raise GennasError(f"{flag} does not apply to this space's skeleton ({base.describe()}); its flags are "
                          + ", ".join("--" + n.replace("_", "-") for n in names if n in fields))
    return dataclasses.replace(base, **given)


def add_network(parser: argparse.ArgumentParser | argparse._ArgumentGroup, defaults: dict[str, int] | None = None, *,
                title: str | None = "network skeleton") -> None:
    """``--channels`` and ``--cells-per-stage`` of the network skeleton.

    Args:
        parser: the subcommand's parser, or an argument group of it.
        defaults: ``channels`` and ``cells_per_stage`` defaults (16 and 5 unless given); with ``title=None``
            and ``defaults=None`` both default to None (the command picks the skeleton).
        title: the help group to declare them in; None declares them on ``parser`` itself.
    """
    group = parser.add_argument_group(title) if title else parser
    if defaults is None and title is None:
        group.add_argument("--channels", type=v.positive_int, default=None, help="channels C of the first stage")
        group.add_argument("--cells-per-stage", type=v.positive_int, default=None, help="cells N per stage")
        return
    d = {"channels": 16, "cells_per_stage": 5, **(defaults or {})}
    group.add_argument("--channels", type=v.positive_int, default=d["channels"],
                       help="channels C of the first stage (default %(default)s)")
    group.add_argument("--cells-per-stage", type=v.positive_int, default=d["cells_per_stage"],
                       help="cells N per stage (default %(default)s)")
