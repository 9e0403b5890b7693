"""Versioned predictor checkpoints: weights plus everything needed to use them correctly.

A checkpoint carries its space, task list, metric definitions, normalisation and
config, so a predictor trained for one space or metric set can never be applied to
another by accident; a wrong or damaged file gets one clear error.
"""

from __future__ import annotations

from pathlib import Path


from gennas.errors import GennasError
from gennas.io import FileFormat
from gennas.metrics.registry import Metric, register_metric
from gennas.metrics.task import Task
from gennas.space.space import space_from_record
from predictors.gnn_predictor import GNNConfig, GNNPredictor

FORMAT = "gennas-predictor"
VERSION = 1
CHECKPOINT = FileFormat(FORMAT, "predictor checkpoint", version=VERSION)


def save_predictor(predictor: GNNPredictor, path: str | Path) -> Path:
    metrics = {}
    for task in predictor.tasks:
        m = Task.parse(task).definition()
        metrics[m.name] = {"direction": m.direction, "unit": m.unit, "source": m.source, "description": m.description}
    space = predictor.space
    payload = {
        "space": space.record(),
        "tasks": list(predictor.tasks), "metrics": metrics,
        "normalization": {t: list(v) for t, v in predictor.normalization.items()},
        "mixtures": predictor.mixtures, "config": predictor.config.to_dict(),
        "members": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in predictor.members],
    }
    return CHECKPOINT.save(path, payload)


def load_predictor(path: str | Path, device: str | None = None) -> GNNPredictor:
    path = Path(path)
    if not path.is_file():
        raise GennasError(f"predictor checkpoint {path} not found; train one with `gennas predictor fit`")
    # The committed weights predate the hash: they load unchecked.
    payload = CHECKPOINT.load(path, "retrain it with `gennas predictor fit`", lambda payload: (
        f"{path} is not a gennas predictor checkpoint" if payload.get("format") != FORMAT else
        f"predictor checkpoint {path} has version {payload.get('version')}, this gennas reads version {VERSION}; "
        "retrain it with `gennas predictor fit`"))
    try:
        for name, spec in payload["metrics"].items():
            register_metric(Metric(name, spec["direction"], spec["unit"], spec["source"], spec["description"]))
        space = space_from_record(payload["space"])
        # Checkpoints record where they were trained; they load where this machine can run them.
        config = GNNConfig.from_dict({**payload["config"], "device": device or "auto"})
        config.ensemble = len(payload["members"])
        predictor = GNNPredictor(space, payload["tasks"], config)
        for member, state in zip(predictor.members, payload["members"]):
            member.load_state_dict(state)
        predictor.normalization = {t: (float(v[0]), float(v[1])) for t, v in payload["normalization"].items()}
        predictor.mixtures = payload.get("mixtures", {})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise GennasError(f"predictor checkpoint {path} is inconsistent ({exc}); retrain it with `gennas predictor fit`") from exc
    return predictor
