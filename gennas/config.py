"""Dataclass configs that round-trip through plain dicts (checkpoints, cache keys, JSON)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar, Mapping, TypeVar

from gennas.errors import GennasError

T = TypeVar("T", bound="DictConfig")


class DictConfig:
    """Mixin for dataclasses: ``to_dict`` and a ``from_dict`` that names unknown keys clearly."""

    config_kind: ClassVar[str] = "config"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise GennasError(
                f"unknown {cls.config_kind} option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(known))}"
            )
        return cls(**dict(data))
