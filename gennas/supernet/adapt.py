"""Teach the transfer prior the user's dataset: probe cells trained on it, then what each round measures.

The NB201 prior knows CIFAR and ImageNet16-120; on a new dataset its ranking transfers
only in part and it knows nothing of robustness. So ``gennas run`` first trains a few
*probe* cells on the user's data, chosen to inform the predictor: spread over both the
prior's own ranking and the cost range (a Latin hypercube over the two ranks), not at
random only. Accuracy is then adapted few-shot (the prior's dataset mixture, rescaled),
and robustness gets a head fitted on this dataset's own PGD measurements.

Later rounds add what they measured: cells trained standalone exactly, and every other
measured subnet through its supernet reading mapped onto the standalone scale by the
calibration fitted on the subnets measured both ways (the supernet's bias, as the
standalone trainings reveal it; :mod:`gennas.supernet.calibration`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import kendalltau, qmc, rankdata

from gennas.metrics.task import task_name
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.space.space import nb201_space
from gennas.supernet.calibration import Calibration, calibrate
from gennas.supernet.family import arch_flops
from gennas.supernet.table import figure

#: The metrics a run adapts, as (predictor metric, standalone column, supernet column).
ADAPTED = (("accuracy", "standalone_val_accuracy", "val_accuracy"),
           ("pgd_accuracy", "standalone_val_pgd_accuracy", "val_pgd_accuracy"))


def probe_candidates() -> list[Cell]:
    """Every NB201 function once (connected cells, one per canonical form), cheapest configuration first."""
    unique: dict[str, Cell] = {}
    for cell in nb201_space().enumerate():
        if cell.is_connected():
            unique.setdefault(cell.canonical, cell)
    return sorted(unique.values(), key=lambda c: c.ops)


def choose_probes(predictor, task: str, network: NetworkConfig, count: int, seed: int,
                  candidates: Sequence[Cell] | None = None) -> list[Cell]:
    """``count`` cells spread over the prior's ranking of ``task`` and over FLOPs (over FLOPs alone without a prior).

    Args:
        predictor: the prior (zero-shot for ``task``); None for a space without one.
        task: e.g. ``accuracy@digits``.
        network: the run's skeleton (FLOPs are counted on it).
        count: probes wanted.
        seed: seeds the Latin hypercube, so a run's probes are repeatable.
        candidates: the cells to choose from (default: every NB201 function once).

    Returns:
        Distinct cells, in the order they should be trained.
    """
    if count <= 0:
        return []
    cells = list(candidates) if candidates is not None else probe_candidates()
    count = min(count, len(cells))
    flops = np.array([arch_flops(c, network) for c in cells])
    columns = [flops] if predictor is None else [predictor.predict(cells, [task])[task].mean, flops]
    ranks = np.stack([rankdata(c) / len(cells) for c in columns], axis=1)
    targets = qmc.LatinHypercube(d=len(columns), seed=seed).random(count)
    chosen: list[int] = []
    for target in targets:
        distance = np.abs(ranks - target).sum(axis=1)
        distance[chosen] = np.inf
        chosen.append(int(np.argmin(distance)))
    return [cells[i] for i in chosen]


def training_data(rows: Sequence[dict], column: str, supernet_column: str,
                  parse=Cell.from_string) -> tuple[list[Cell], np.ndarray, Calibration]:
    """Cells and values that teach one metric: standalone figures where measured, calibrated readings elsewhere.

    Args:
        rows: measured rows; standalone ones carry ``column``, subnets of a supernet carry
            ``supernet_column`` (both where a subnet was verified).
        column: the standalone figure, e.g. ``standalone_val_accuracy``.
        supernet_column: the supernet's reading of it, e.g. ``val_accuracy``.
        parse: the run's space's parse of an arch string (default: an NB201 cell).

    Returns:
        (cells, values, calibration), one value per distinct function.
    """
    both = [(figure(r, supernet_column), figure(r, column)) for r in rows]
    pairs = [(s, t) for s, t in both if s is not None and t is not None]
    line = calibrate([s for s, _ in pairs], [t for _, t in pairs])
    values: dict[str, tuple[Cell, float]] = {}
    for row, (reading, exact) in zip(rows, both):
        cell = parse(row["arch"])
        if exact is not None:
            values[cell.canonical] = (cell, exact)
        elif reading is not None:
            values.setdefault(cell.canonical, (cell, line(reading)))
    cells = [c for c, _ in values.values()]
    return cells, np.array([v for _, v in values.values()], dtype=float), line


#: Fewest measured cells for which cross-validation chooses how accuracy transfers.
MIN_CELLS_TO_CHOOSE = 6
CV_FOLDS = 4
#: Optimisation steps of a head fitted on a run's few measured cells (the encoder stays frozen).
HEAD_STEPS = 200


def adapt_predictor(prior, dataset: str, rows: Sequence[dict], metrics: Sequence[str]):
    """A copy of ``prior`` taught ``metrics`` on ``dataset`` from ``rows`` (see :func:`training_data`).

    Accuracy can transfer two ways: as a mix of the known datasets' embeddings through the
    prior's accuracy head (right when the new dataset ranks cells as CIFAR does), or through
    a head of its own on the frozen encoder (right when it does not). With enough cells a
    4-fold cross-validated Kendall τ on the measured cells chooses; robustness always gets a
    head of its own (no known dataset has it).

    Returns:
        (predictor, notes): the adapted predictor, and one sentence per metric saying what taught it.
    """
    predictor = prior.copy()
    notes = []
    for metric, column, supernet_column in ADAPTED:
        if metric not in metrics:
            continue
        task = task_name(metric, dataset)
        cells, values, line = training_data(rows, column, supernet_column)
        if len(cells) < 2:
            continue
        own_head, how = transfer_choice(prior, task, cells, values) if metric == "accuracy" else (True, "")
        predictor = predictor.fit_task(task, cells, values, own_head=own_head, steps=HEAD_STEPS if own_head else None)
        exact = sum(figure(r, column) is not None for r in rows)
        notes.append(f"{metric} is guided by the prior adapted to {dataset} on {len(cells)} cells "
                     f"({exact} trained standalone" + (f", the rest supernet readings calibrated on {line.pairs} "
                                                       "subnets measured both ways" if len(cells) > exact else "")
                     + ")" + how)
    return predictor, notes


def transfer_choice(prior, task: str, cells: list[Cell], values: np.ndarray) -> tuple[bool, str]:
    """Whether accuracy on this dataset gets a head of its own, by cross-validated τ, and a note why."""
    if len(cells) < MIN_CELLS_TO_CHOOSE:
        return False, ": a mix of the known datasets (too few cells to choose by cross-validation)"
    taus = {own: _cross_validated_tau(prior, task, cells, values, own) for own in (False, True)}
    own = bool(taus[True] > taus[False])
    return own, (f": {'a head of its own' if own else 'a mix of the known datasets'} (cross-validated τ "
                 f"{taus[own]:.2f} against {taus[not own]:.2f} for {'the mix' if own else 'a head of its own'})")


def _cross_validated_tau(prior, task: str, cells: list[Cell], values: np.ndarray, own_head: bool) -> float:
    order = np.random.default_rng(0).permutation(len(cells))  # folds independent of the probes' order
    folds = np.array_split(order, min(CV_FOLDS, len(cells)))
    predicted = np.zeros(len(cells))
    for k, held in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != k])
        fitted = prior.copy().fit_task(task, [cells[i] for i in train], values[train], own_head=own_head,
                                       steps=HEAD_STEPS if own_head else None)
        predicted[held] = fitted.predict([cells[i] for i in held], [task])[task].mean
    tau = kendalltau(predicted, values).statistic
    return float(tau) if np.isfinite(tau) else -1.0


def held_out_tau(predictor, task: str, rows: Sequence[dict], column: str) -> tuple[float, int]:
    """Kendall τ of ``predictor``'s ``task`` against the standalone ``column`` of ``rows`` (NaN below 3 cells)."""
    measured = [r for r in rows if figure(r, column) is not None]
    if len(measured) < 3 or predictor is None or task not in predictor.tasks:
        return float("nan"), len(measured)
    predicted = predictor.predict([predictor.space.parse(r["arch"]) for r in measured], [task])[task].mean
    return float(kendalltau(predicted, [r[column] for r in measured]).statistic), len(measured)


#: The predictor a space without a transfer prior trains on a run's own measurements (small: a run
#: measures a few dozen cells at most, and it is refitted each round).
OWN_PREDICTOR = {"ensemble": 3, "steps": 200}


def fit_own_predictor(space, dataset: str, rows: Sequence[dict], metrics: Sequence[str]):
    """A predictor of ``metrics`` on ``dataset`` trained from ``rows`` alone: for a space with no accuracy
    table, hence no transfer prior (darts). Same training data as :func:`adapt_predictor`.

    Returns:
        (predictor or None when fewer than two cells teach any metric, notes: one sentence per metric).
    """
    from predictors.gnn_predictor import GNNConfig, GNNPredictor

    taught: dict[str, tuple[list, np.ndarray]] = {}
    notes = []
    for metric, column, supernet_column in ADAPTED:
        if metric not in metrics:
            continue
        cells, values, _ = training_data(rows, column, supernet_column, space.parse)
        exact = sum(figure(r, column) is not None for r in rows)
        if len(cells) < 2:
            notes.append(f"{metric} is not guided: space {space.name} has no transfer prior and the run measured "
                         f"{len(cells)} cell(s) of it (--probe-cells 2 or more trains its predictor)")
            continue
        taught[task_name(metric, dataset)] = (cells, values)
        notes.append(f"{metric} is guided by a predictor trained from this run's own {len(cells)} measured cells "
                     f"({exact} trained standalone); space {space.name} has no accuracy table, so no transfer prior")
    if not taught:
        return None, notes
    archs = list({c.to_string(): c for cells, _ in taught.values() for c in cells}.values())
    index = {a.to_string(): i for i, a in enumerate(archs)}
    targets = {}
    for task, (cells, values) in taught.items():
        column = np.full(len(archs), np.nan)
        column[[index[c.to_string()] for c in cells]] = values
        targets[task] = column
    predictor = GNNPredictor(space, list(taught), GNNConfig(**OWN_PREDICTOR))
    return predictor.fit(archs, targets), notes
