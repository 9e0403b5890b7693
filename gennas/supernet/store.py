"""The run directory's trained supernet: one file with the weights and everything needed to rebuild it."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from gennas.errors import GennasError
from gennas.io import FileFormat
from gennas.supernet.family import family_of, run_family
from gennas.supernet.model import Supernet
from gennas.train import Normalize

FORMAT = "gennas-supernet/1"
SUPERNET = FileFormat(FORMAT, "supernet")


def save_supernet(path: str | Path, model: nn.Sequential, meta: dict) -> Path:
    """``model`` is Normalize + Supernet; ``meta`` holds the dataset spec and measurement settings."""
    supernet: Supernet = model[-1]
    payload = {"family": family_of(supernet.config).name, "space": supernet.subnets.to_dict(),
               "network": supernet.config.to_dict(),
               "mean": model[0].mean.flatten().tolist(), "std": model[0].std.flatten().tolist(),
               "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta}
    return SUPERNET.save(path, payload)


def load_supernet(path: str | Path) -> tuple[nn.Sequential, dict]:
    path = Path(path)
    if not path.exists():
        raise GennasError(f"{path} does not exist: RUN_DIR must be a directory written by `gennas run`")
    rebuild = f"rerun `gennas run --out {path.parent}` with its settings (it retrains the supernet, resuming its checkpoint)"
    again = f"delete or move {path}, then {rebuild}"
    # A flipped bit is an error, never a silently wrong figure.
    payload = SUPERNET.load(path, rebuild, f"{path} is not a gennas supernet ({FORMAT}); {again}")
    try:
        family = run_family(payload.get("family", "nb201"))  # files from before --space hold NB201 supernets
        supernet = family.supernet(family.subnet_space_from_dict(payload["space"]),
                                   family.network_from_dict(payload["network"]))
        model = nn.Sequential(Normalize(payload["mean"], payload["std"]), supernet)
        model.load_state_dict(payload["state"])
        return model.eval(), payload["meta"]
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, GennasError) as exc:
        raise GennasError(f"supernet {path} is inconsistent ({type(exc).__name__}: {exc}); {again}") from None
