"""Atomic, hashed, versioned files: a crash mid-write never leaves a half-written file where a good one was,
and a damaged or foreign file is refused with one message instead of being half-read."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gennas.errors import GennasError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a result file should read like any other
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temp files of ``path`` left by writers that were killed (their pid is gone).

    A killed process cannot clean up after itself; the next writer of the same file does.
    Temps of live processes are kept: another process may be writing right now.
    """
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def read_cached_columns(path: Path, names: tuple[str, ...], length: int) -> dict[str, Any] | None:
    """The named arrays of a cache ``.npz`` when the file holds all of them at ``length``; None otherwise.

    A cache that is missing, unreadable or of another space's size is not an error: its
    owner rebuilds it (the columns are derived data, never the only copy of anything).
    """
    import numpy as np

    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            values = {name: data[name] for name in names}
    except (OSError, ValueError, KeyError):
        return None
    return values if all(len(v) == length for v in values.values()) else None


def write_cached_columns(path: Path, values: dict[str, Any]) -> Path:
    """Write a cache ``.npz`` of named arrays atomically (a crash leaves the old file or none)."""
    import numpy as np

    return atomic_write(path, lambda tmp: np.savez(tmp.open("wb"), **values))


def write_json(path: str | Path, payload: Any) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n"))


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


# ------------------------------------------------------------------ integrity
#: Key under which a saved record carries the sha256 of the rest of its content.
DIGEST_KEY = "sha256"


def _advice(path: Path, rebuild: str) -> str:
    return f"delete or move {path}, then {rebuild}"


def _feed(digest: "hashlib._Hash", obj: Any) -> None:
    """Hash ``obj`` by value: tensors by dtype, shape and raw bytes; containers recursively."""
    import torch

    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}:".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        digest.update(b"{")
        for key in sorted(obj, key=repr):
            digest.update(repr(key).encode() + b":")
            _feed(digest, obj[key])
        digest.update(b"}")
    elif isinstance(obj, (list, tuple)):
        digest.update(b"[")
        for item in obj:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())


def content_digest(payload: Any) -> str:
    """sha256 of a checkpoint payload's values (what ``torch.load`` returns, not the file's bytes)."""
    digest = hashlib.sha256()
    _feed(digest, payload)
    return digest.hexdigest()


def save_checked(path: str | Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` ``payload`` atomically with the sha256 of its content under :data:`DIGEST_KEY`."""
    import torch

    record = {**payload, DIGEST_KEY: content_digest(payload)}
    return atomic_write(path, lambda tmp: torch.save(record, tmp))


def load_checked(path: str | Path, what: str, rebuild: str = "rerun the command that wrote it") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checked` and verify its content hash.

    Files written before checkpoints carried a hash (the committed weights) load unchecked.

    Args:
        path: the checkpoint.
        what: what the file is, for messages ("predictor checkpoint", "supernet").
        rebuild: how to make the file again once the damaged one is out of the way.

    Returns:
        The payload without its digest.

    Raises:
        GennasError: naming the file when it cannot be read, is not a dict, or fails its hash.
    """
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a damaged file
        raise GennasError(f"{what} {path} is unreadable or corrupt ({type(exc).__name__}: {exc}); "
                          f"{_advice(path, rebuild)}") from None
    if not isinstance(payload, dict):
        raise GennasError(f"{what} {path} is unreadable or corrupt (not a gennas checkpoint); {_advice(path, rebuild)}")
    return _verified(payload, path, what, rebuild)


def _verified(payload: dict[str, Any], path: Path, what: str, rebuild: str,
              digest: Callable[[Any], str] = content_digest) -> dict[str, Any]:
    recorded = payload.pop(DIGEST_KEY, None)
    if recorded is not None and recorded != digest(payload):
        raise GennasError(f"{what} {path} is corrupt: its content no longer matches the sha256 recorded when it "
                          f"was written; {_advice(path, rebuild)}")
    return payload


def _json_digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_json_checked(path: str | Path, payload: dict[str, Any]) -> Path:
    """:func:`write_json` with the sha256 of the record under :data:`DIGEST_KEY` (journals, run state)."""
    return write_json(path, {**payload, DIGEST_KEY: _json_digest(payload)})


def read_json_checked(path: str | Path, what: str, rebuild: str = "rerun the command that wrote it") -> dict[str, Any]:
    """Read a JSON object written by :func:`write_json_checked`, verifying its hash when it has one.

    Raises:
        GennasError: naming the file when it is not UTF-8 JSON, not an object, or fails its hash.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GennasError(f"cannot read {what} {path}: it is unreadable or corrupt ({type(exc).__name__}: {exc}); "
                          f"{_advice(path, rebuild)}") from None
    if not isinstance(payload, dict):
        raise GennasError(f"{what} {path} is corrupt (a JSON {type(payload).__name__}, not an object); "
                          f"{_advice(path, rebuild)}")
    return _verified(payload, path, what, rebuild, _json_digest)


# ------------------------------------------------------------------ versioned files
class WrongFormat(GennasError):
    """A readable, intact file that another format or version of gennas wrote."""


@dataclass(frozen=True)
class FileFormat:
    """One versioned file kind: its tag, how it is stored, and what to tell a user who holds another.

    Every checkpoint and journal of gennas is written through one of these, so each is
    atomic, carries its content hash, and is refused with one clear message when it was
    written by other code: the readers differ only in the words of that message.

    Attributes:
        tag: the value of the payload's ``format`` key.
        what: what the file is, for messages ("search journal", "supernet").
        version: the payload's ``version`` key, for formats that keep it apart from the tag.
        json: JSON (journals, result rows) instead of ``torch.save`` (weights).
    """

    tag: str
    what: str
    version: int | None = None
    json: bool = False

    def save(self, path: str | Path, payload: dict[str, Any]) -> Path:
        """Write ``payload`` under this format's tag, atomically and with its content hash.

        Args:
            path: the file; its folder is created when missing.
            payload: the content; ``format`` (and ``version``) keys are set first.

        Returns:
            The path written.
        """
        stamp: dict[str, Any] = {"format": self.tag, **({"version": self.version} if self.version is not None else {})}
        record = {**stamp, **payload}
        return write_json_checked(path, record) if self.json else save_checked(path, record)

    def load(self, path: str | Path, rebuild: str, wrong: str | Callable[[dict[str, Any]], str]) -> dict[str, Any]:
        """Read a file of this format, verifying its hash and its tag.

        Args:
            path: the file.
            rebuild: how to make the file again once a damaged one is out of the way.
            wrong: the whole message for a readable file of another format or version (or a function of
                its payload that writes it).

        Returns:
            The payload without its digest.

        Raises:
            GennasError: when the file is unreadable or fails its hash; :class:`WrongFormat` when it has
                another tag or version.
        """
        read = read_json_checked if self.json else load_checked
        payload = read(path, self.what, rebuild)
        if payload.get("format") != self.tag or (self.version is not None and payload.get("version") != self.version):
            raise WrongFormat(wrong if isinstance(wrong, str) else wrong(payload))
        return payload


def config_differences(saved: dict[str, Any], now: dict[str, Any], ignored: frozenset[str] | set[str] = frozenset()
                       ) -> list[str]:
    """``key: checkpoint X, now Y`` for every setting a resumed run would change.

    Args:
        saved: the settings recorded in the file.
        now: the settings of the run that wants to resume it.
        ignored: keys that may differ (the device a run continues on).

    Returns:
        One line per differing key, in ``now``'s order; empty when the file may be resumed.
    """
    return [f"{key}: checkpoint {saved.get(key)!r}, now {value!r}" for key, value in now.items()
            if key not in ignored and saved.get(key) != value]
