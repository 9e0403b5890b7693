"""`TrainingOracle`: measure a cell by really training its network on a dataset.

Each distinct cell costs one query. A result is cached on disk under a key made of the
cell, the dataset, the network skeleton, the training and attack configs, the seed and
the device type, so repeating an experiment (or resuming a search) never retrains, and
changing any setting never returns a stale answer. Training checkpoints per epoch, so an
interrupted query resumes where it stopped.

Fidelity: :meth:`TrainingOracle.query_at` measures a cell after ``e`` epochs of the full
recipe's schedule and keeps its checkpoint, so a later, higher fidelity continues the same
training run. :attr:`TrainingOracle.epochs_spent` counts every epoch charged, each once per
cell: multi-fidelity searches and full-fidelity ones compare on one currency (a full query
of a fresh cell costs the recipe's ``epochs``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch

from gennas.bench.oracle import Oracle
from gennas.data import DatasetSplits, load_dataset
from gennas.errors import GennasError
from gennas.io import read_json_checked, write_json_checked
from gennas.metrics.latency import measure_latency
from gennas.bench.warmstart import WarmStarts
from gennas.nn.net2net import change_ops
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
#: The result key naming the cell a warm-started measurement inherited its weights from.
WARM_FROM = "warm_from"
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
        budget: int | None = None,
        network=None,
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
        #: Epochs trained for this oracle's queries, each charged once (the multi-fidelity budget currency).
        self.epochs_spent = 0
        self._trained: dict[str, int] = {}  # cell string -> epochs of the recipe trained so far
        self._curves: dict[str, list[float]] = {}  # cell string -> validation accuracy after each epoch
        #: Net2Net warm starts (:meth:`warm_start`): children train this many epochs from their parent's weights.
        self.warm: WarmStarts | None = None

    def for_searcher(self, result: dict[str, float]) -> dict[str, float]:
        """Searchers select on validation figures: under ``accuracy``, ``pgd_accuracy``, ... they see ``val_*``.

        The test figures are left out altogether, so no searcher can read them by another name.
        """
        seen = {k: v for k, v in result.items()
                if k not in SEARCHER_SEES_VAL and not k.startswith("val_") and k != WARM_FROM}
        return {**seen, **{k: result[f"val_{k}"] for k in SEARCHER_SEES_VAL}}

    def cache_key(self, cell: Cell) -> str:
        train = {k: v for k, v in self.train_config.to_dict().items() if k != "device"}
        payload = {
            "v": CACHE_VERSION, "arch": cell.to_string(), "dataset": self.splits.name,
            "train_size": len(self.splits.train), "network": self.network.to_dict(), "train": train,
            "robustness": asdict(self.robustness), "device": self.device.type,
        }
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    # ------------------------------------------------------------ fidelity
    @property
    def full_epochs(self) -> int:
        """Epochs of a full-fidelity measurement (the training recipe's length)."""
        return self.train_config.epochs

    def epoch_cost(self, cell: Cell) -> int:
        """Epochs a full-fidelity query of ``cell`` would charge now (0 once measured; a warm start's epochs)."""
        key = self.space.validate(cell).to_string()
        if key in self._answers:
            return 0
        if self.warm is not None and self.warm.parent(key, self._answers) is not None:
            return self.warm.epochs
        return self.full_epochs - self._trained.get(key, 0)

    # ------------------------------------------------------------ Net2Net warm starts
    def warm_start(self, epochs: int) -> None:
        """From now on a cell whose parent was measured here trains ``epochs`` from the parent's weights.

        The parent's trained network is morphed into the child's (:func:`gennas.nn.net2net.change_ops`:
        unchanged edges keep their weights, a ``none`` edge made a conv starts as exactly 0) and
        fine-tuned; the query is charged ``epochs``, not the recipe's. A result says whose weights
        it inherited under ``warm_from``.
        """
        if not (isinstance(epochs, int) and 1 <= epochs <= self.full_epochs):
            raise GennasError(f"--option warm_epochs must be 1..{self.full_epochs} (the recipe's epochs), got "
                              f"{epochs!r}")
        self.warm = WarmStarts(self.cache_root / "net2net", epochs, lambda key: self.cache_key(self.space.parse(key)))

    def inherit(self, parents: dict[str, Cell]) -> None:
        if self.warm is not None:
            self.warm.tell({k: p.to_string() for k, p in parents.items()})

    def query_at(self, cell: Cell, epochs: int) -> dict[str, float]:
        """Validation accuracy of ``cell`` after ``epochs`` of the full recipe's schedule (a low-fidelity query).

        The epochs are those of the full-length run (same cosine schedule, same seed), so raising a
        cell's fidelity later continues its training and charges only the new epochs; at full
        fidelity this is :meth:`query`. Test figures are not measured below full fidelity.

        Args:
            cell: the cell to train.
            epochs: 1 .. ``full_epochs``.

        Returns:
            ``val_accuracy`` at that epoch, ``epochs`` and the free cost metrics.
        """
        if not (isinstance(epochs, int) and 1 <= epochs <= self.full_epochs):
            raise GennasError(f"a fidelity is 1..{self.full_epochs} epochs, got {epochs!r}")
        if epochs == self.full_epochs:
            return self.query(cell)
        key = self.space.validate(cell).to_string()
        curve = self._curves.get(key, [])
        if len(curve) < epochs:
            curve = self._train(cell, epochs)[1]
        else:  # known from an earlier, longer query or a checkpoint ahead of it: charged as asked, never twice
            self._charge(key, epochs)
        return {"val_accuracy": curve[epochs - 1], "epochs": epochs, **self.cost(cell)}

    def preload(self, answers: Sequence[tuple[Cell, dict[str, float]]]) -> None:
        """Earlier answers as measured, and their epochs (``epochs`` of each answer) as charged."""
        for cell, result in answers:
            key = self.space.validate(cell).to_string()
            if key not in self._answers:
                self._charge(key, int(result.get("epochs", self.full_epochs)))
                if WARM_FROM in result and self.warm is not None:
                    self.warm.inherited[key] = str(result[WARM_FROM])
        super().preload(answers)

    def curve(self, cell: Cell) -> list[float]:
        """Validation accuracy after each epoch trained so far on ``cell`` (empty if untrained)."""
        return list(self._curves.get(cell.to_string(), []))

    def preload_curve(self, cell: Cell, curve: list[float]) -> None:
        """Take a journalled learning curve as trained and paid for (a resumed multi-fidelity run)."""
        key = self.space.validate(cell).to_string()
        if len(curve) > self._trained.get(key, 0):
            self.epochs_spent += len(curve) - self._trained.get(key, 0)
            self._trained[key], self._curves[key] = len(curve), [float(v) for v in curve]

    def release(self, cell: Cell) -> None:
        """Drop the training checkpoint of a cell no fidelity will be raised for (a pruned trial)."""
        if self.space.validate(cell).to_string() not in self._answers:
            (self.cache_root / f"{self.cache_key(cell)}.ckpt").unlink(missing_ok=True)

    def _charge(self, key: str, epochs: int) -> None:
        """Count the epochs beyond those already trained on the cell: the budget currency of multi-fidelity."""
        if epochs > self._trained.get(key, 0):
            self.epochs_spent += epochs - self._trained.get(key, 0)
            self._trained[key] = epochs

    def _train(self, cell: Cell, upto: int) -> tuple[torch.nn.Module, list[float], float]:
        """Train ``cell`` to epoch ``upto`` of the recipe, continuing its checkpoint; (model, val curve, seconds)."""
        key = cell.to_string()
        checkpoint = self.cache_root / f"{self.cache_key(cell)}.ckpt"
        if not self.use_cache and key not in self._trained:
            checkpoint.unlink(missing_ok=True)  # uncached: every epoch charged is really trained
        start = time.perf_counter()
        torch.manual_seed(self.train_config.seed)  # the initial weights depend on the seed alone
        model = with_normalization(self.space.build(cell, self.network), self.splits)
        trained = train_model(model, self.splits, self.train_config, checkpoint_path=checkpoint,
                              progress=self.progress, stop_after=upto)
        model = trained.model
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise GennasError(f"training {cell} diverged (non-finite weights); lower --lr or raise --epochs warm-up")
        self._curves[key] = [float(r["val_accuracy"]) for r in trained.history]
        self._charge(key, upto)
        return model, self._curves[key], time.perf_counter() - start

    def _train_warm(self, cell: Cell, parent: str) -> tuple[torch.nn.Module, list[float]]:
        """Fine-tune the parent's trained network morphed into ``cell`` for the warm epochs; (model, val curve)."""
        assert self.warm is not None
        source = self.space.build(self.space.parse(parent), self.network)
        source.load_state_dict(self.warm.store.load(self.warm.name(parent)))
        model = with_normalization(change_ops(source, cell).network, self.splits)
        config = TrainConfig.from_dict({**self.train_config.to_dict(), "epochs": self.warm.epochs})
        trained = train_model(model, self.splits, config, progress=self.progress)
        self._charge(cell.to_string(), self.warm.epochs)
        return trained.model, [float(r["val_accuracy"]) for r in trained.history]

    def _measure(self, cell: Cell) -> dict[str, float]:
        key = cell.to_string()
        parent = self.warm.parent(key, self._answers) if self.warm is not None else None
        if parent is not None:
            self.warm.inherited[key] = parent
        name = self.warm.name(key) if self.warm is not None else self.cache_key(cell)
        result_path = self.cache_root / f"{name}.json"
        if self.use_cache and result_path.exists():
            try:
                metrics = read_json_checked(result_path, "cached result")["metrics"]
                if self.warm is None or self.warm.store.has(name):  # a warm search needs its weights too
                    self._charge(key, int(metrics["epochs"]))  # the search asked for it: charged as trained
                    return metrics
            except (GennasError, KeyError):
                pass  # unreadable or failing its hash: measure again and overwrite it
        start = time.perf_counter()
        if parent is not None:
            model, curve = self._train_warm(cell, parent)
        else:
            model, curve, _ = self._train(cell, self.full_epochs)
        robust = evaluate_robustness(model, self.splits.test, self.robustness, self.device)
        robust.pop("clean_accuracy", None)  # same figure as "accuracy" below
        val = evaluate_robustness(model, self.splits.val, self.robustness, self.device)
        robust.update({f"val_{k}": val[k] for k in SEARCHER_SEES_VAL if k != "accuracy"})
        shape = (self.network.in_channels, self.network.image_size, self.network.image_size)
        metrics = {
            "accuracy": evaluate_accuracy(model, self.splits.test, self.device),
            "val_accuracy": curve[-1],
            **robust,
            "latency_ms": measure_latency(model, shape, self.device),
            "seconds": time.perf_counter() - start,
            "epochs": self.warm.epochs if parent is not None else self.train_config.epochs,
            **({WARM_FROM: parent} if parent is not None else {}),
        }
        if self.warm is not None:  # a later child may inherit these weights
            self.warm.store.save(name, model[1])
        write_json_checked(result_path, {"arch": key, "dataset": self.splits.name, "metrics": metrics})
        (self.cache_root / f"{self.cache_key(cell)}.ckpt").unlink(missing_ok=True)
        return metrics
