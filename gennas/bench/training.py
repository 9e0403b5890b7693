"""`TrainingOracle`: measure a cell by really training its network on a dataset.

Each distinct cell costs one query. A result is cached on disk under a key made of the
cell, the dataset, the network skeleton, the training and attack configs, the seed and
the device type, so repeating an experiment (or resuming a search) never retrains, and
changing any setting never returns a stale answer. Training checkpoints per epoch, so an
interrupted query resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from gennas.bench.oracle import Oracle
from gennas.data import DatasetSplits, load_dataset
from gennas.errors import GennasError
from gennas.io import read_json_checked, write_json_checked
from gennas.metrics.latency import measure_latency
from gennas.settings import cache_dir
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace
from gennas.space.space import nb201_space
from gennas.train import (
    RobustnessConfig,
    TrainConfig,
    evaluate_accuracy,
    evaluate_robustness,
    resolve_device,
    train_model,
    with_normalization,
)

CACHE_VERSION = 2  # 2: robustness is also measured on the validation split
#: Test figures a searcher sees under their name, read on the validation split instead.
SEARCHER_SEES_VAL = ("accuracy", "fgsm_accuracy", "pgd_accuracy", "noise_accuracy")


class TrainingOracle(Oracle):
    """Accuracy and FGSM/PGD/noise robustness on the test and the validation split, and latency, of a trained cell.

    Searchers select on validation figures (``val_accuracy``, ``val_pgd_accuracy``, ...)
    and reports give test figures: the test split must not steer a search.
    """

    def __init__(
        self,
        dataset: str | DatasetSplits = "digits",
        *,
        space: "ArchSpace | None" = None,
        train: TrainConfig | None = None,
        robustness: RobustnessConfig | None = None,
        channels: int | None = None,
        cells_per_stage: int | None = None,
        data_root: str | None = None,
        download: bool = False,
        max_train: int | None = None,
        network=None,
        budget: int | None = None,
        cache: str | Path | None = None,
        use_cache: bool = True,
        progress: bool = True,
    ) -> None:
        self.splits = dataset if isinstance(dataset, DatasetSplits) else load_dataset(
            dataset, data_root, download=download, max_train=max_train
        )
        space = space or nb201_space()
        # None: the space's training skeleton (NB201: C=16, N=2; DARTS: C=8, 5 layers); depth is N or layers.
        # ``network`` (a skeleton config for this data) replaces it altogether.
        super().__init__(space, network or space.network_for_data(self.splits, channels, cells_per_stage), budget)
        self.train_config = train or TrainConfig()
        self.robustness = robustness or RobustnessConfig()
        self.device = resolve_device(self.train_config.device)
        self.cache_root = Path(cache) if cache else cache_dir() / "training"
        self.use_cache = use_cache
        self.progress = progress

    def for_searcher(self, result: dict[str, float]) -> dict[str, float]:
        """Searchers select on validation figures: under ``accuracy``, ``pgd_accuracy``, ... they see ``val_*``.

        The test figures are left out altogether, so no searcher can read them by another name.
        """
        seen = {k: v for k, v in result.items() if k not in SEARCHER_SEES_VAL and not k.startswith("val_")}
        return {**seen, **{k: result[f"val_{k}"] for k in SEARCHER_SEES_VAL}}

    def cache_key(self, cell: Cell) -> str:
        train = {k: v for k, v in self.train_config.to_dict().items() if k != "device"}
        payload = {
            "v": CACHE_VERSION, "arch": cell.to_string(), "dataset": self.splits.name,
            "train_size": len(self.splits.train), "network": self.network.to_dict(), "train": train,
            "robustness": asdict(self.robustness), "device": self.device.type,
        }
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    def _measure(self, cell: Cell) -> dict[str, float]:
        key = self.cache_key(cell)
        result_path = self.cache_root / f"{key}.json"
        if self.use_cache and result_path.exists():
            try:
                return read_json_checked(result_path, "cached result")["metrics"]
            except (GennasError, KeyError):
                pass  # unreadable or failing its hash: measure again and overwrite it
        start = time.perf_counter()
        torch.manual_seed(self.train_config.seed)  # the initial weights depend on the seed alone
        net = self.space.build(cell, self.network)
        model = with_normalization(net, self.splits)
        checkpoint = self.cache_root / f"{key}.ckpt"
        trained = train_model(model, self.splits, self.train_config, checkpoint_path=checkpoint, progress=self.progress)
        model = trained.model
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise GennasError(f"training {cell} diverged (non-finite weights); lower --lr or raise --epochs warm-up")
        robust = evaluate_robustness(model, self.splits.test, self.robustness, self.device)
        robust.pop("clean_accuracy", None)  # same figure as "accuracy" below
        val = evaluate_robustness(model, self.splits.val, self.robustness, self.device)
        robust.update({f"val_{k}": val[k] for k in SEARCHER_SEES_VAL if k != "accuracy"})
        shape = (self.network.in_channels, self.network.image_size, self.network.image_size)
        metrics = {
            "accuracy": evaluate_accuracy(model, self.splits.test, self.device),
            "val_accuracy": trained.history[-1]["val_accuracy"],
            **robust,
            "latency_ms": measure_latency(model, shape, self.device),
            "seconds": time.perf_counter() - start,
            "epochs": self.train_config.epochs,
        }
        write_json_checked(result_path, {"arch": cell.to_string(), "dataset": self.splits.name, "metrics": metrics})
        checkpoint.unlink(missing_ok=True)
        return metrics
