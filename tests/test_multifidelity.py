"""Epoch fidelity on the training oracle, epoch budgets, and Hyperband / BOHB through Optuna's pruner."""

from __future__ import annotations

import pytest

from gennas.bench.training import TrainingOracle
from gennas.data import load_dataset
from gennas.errors import GennasError
from gennas.objectives import parse_objectives
from gennas.search.methods import Problem, get_method
from gennas.search.searcher import SearchContext
from gennas.search.stopping import Stopping
from gennas.space import Cell, get_space
from gennas.train import RobustnessConfig, TrainConfig

CONV_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
OTHER_CELL = "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"
#: Fields that describe time, not the trajectory (a rerun's clock differs).
TIMES = ("seconds", "latency_ms")


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", max_train=120)


def _oracle(splits, tmp_path, epochs: int = 4, **kw) -> TrainingOracle:
    return TrainingOracle(splits, space=kw.pop("space", get_space("nb201")),
                          train=TrainConfig(epochs=epochs, seed=0, device="cpu"),
                          robustness=RobustnessConfig(eps=0.1, pgd_steps=1), channels=4, cells_per_stage=1,
                          cache=tmp_path, progress=False, use_cache=False, **kw)


def _problem(oracle: TrainingOracle, seed: int = 0, objectives: str = "accuracy:max", journal=None, **options):
    context = SearchContext(space=oracle.space, objectives=parse_objectives(objectives), seed=seed, costs=oracle.cost,
                            network=oracle.network, options=options)
    return Problem(context, oracle=oracle, select="val_accuracy", journal=journal, settings={"t": 1})


def test_epochs_are_charged_once_each_and_a_raised_fidelity_continues_the_same_training(small, tmp_path):
    oracle = _oracle(small, tmp_path)
    cell, other = Cell.from_string(CONV_CELL), Cell.from_string(OTHER_CELL)
    assert oracle.epoch_cost(cell) == 4 and oracle.epochs_spent == 0
    low = oracle.query_at(cell, 2)
    assert oracle.epochs_spent == 2 and set(low) >= {"val_accuracy", "epochs", "flops"} and "accuracy" not in low
    assert oracle.query_at(cell, 1)["val_accuracy"] == oracle.curve(cell)[0] and oracle.epochs_spent == 2
    oracle.query_at(cell, 3)
    assert oracle.epochs_spent == 3 and oracle.epoch_cost(cell) == 1
    full = oracle.query(cell)  # full fidelity: the last epoch, then the test figures
    assert oracle.epochs_spent == 4 and oracle.epoch_cost(cell) == 0 and full["epochs"] == 4
    oracle.query(cell)
    oracle.query_at(other, 4)  # full fidelity through query_at is a query
    assert oracle.epochs_spent == 8 and oracle.queries == 2
    with pytest.raises(GennasError, match="a fidelity is 1..4 epochs"):
        oracle.query_at(other, 5)
    scratch = _oracle(small, tmp_path / "scratch")
    again = scratch.query(cell)  # trained in one go: the same curve and figures as trained rung by rung
    assert scratch.curve(cell) == oracle.curve(cell) and again["accuracy"] == full["accuracy"]


def test_an_epoch_budget_stops_a_full_fidelity_method_before_it_would_overrun(small, tmp_path):
    oracle = _oracle(small, tmp_path, space=get_space("dag3"))
    found = get_method("random").search(_problem(oracle), Stopping.of(100, epochs=10))
    assert found.stopped == "epoch budget"
    assert len(found.run.history) == 2 and oracle.epochs_spent == 8  # a third cell would take 12 > 10


@pytest.mark.parametrize("method", ["hyperband", "bohb"])
def test_hyperband_and_bohb_spend_exactly_the_epochs_their_rows_trained(method, small, tmp_path):
    oracle = _oracle(small, tmp_path, epochs=4, space=get_space("dag3"))
    found = get_method(method).search(_problem(oracle, n_startup=2) if method == "bohb" else _problem(oracle),
                                      Stopping.of(100, epochs=30))
    rows = found.run.history
    assert found.stopped == "epoch budget" and oracle.epochs_spent <= 30
    assert sum(r["epochs"] for r in rows) == oracle.epochs_spent  # every epoch charged once, none lost
    assert len({r["arch"] for r in rows}) == len(rows)
    assert any(r["pruned"] for r in rows) and any(not r["pruned"] for r in rows)
    for row in rows:
        assert len(row["curve"]) == row["epochs"] and ("accuracy" in row) == (not row["pruned"])
    assert found.cell is not None and not next(r for r in rows if r["arch"] == found.cell.to_string())["pruned"]


def _trajectory(rows):
    return [{k: v for k, v in r.items() if k not in TIMES} for r in rows]


@pytest.mark.parametrize("method", ["hyperband", "bohb"])
def test_a_resumed_multi_fidelity_run_is_the_uninterrupted_run(method, small, tmp_path):
    options = {"n_startup": 2} if method == "bohb" else {}
    whole = _oracle(small, tmp_path / "a", space=get_space("dag3"))
    uninterrupted = get_method(method).search(_problem(whole, **options), Stopping.of(8)).run
    journal = tmp_path / "hb.json"
    first = _oracle(small, tmp_path / "b", space=get_space("dag3"))
    get_method(method).search(_problem(first, journal=journal, **options), Stopping.of(4))
    resumed_oracle = _oracle(small, tmp_path / "b", space=get_space("dag3"))
    resumed = get_method(method).search(_problem(resumed_oracle, journal=journal, **options), Stopping.of(8)).run
    assert _trajectory(resumed.history) == _trajectory(uninterrupted.history)
    assert resumed_oracle.epochs_spent == whole.epochs_spent  # the journalled epochs count, and once
    with pytest.raises(GennasError, match="other settings"):
        get_method(method).search(_problem(_oracle(small, tmp_path / "c", space=get_space("dag3")), seed=1,
                                           journal=journal, **options), Stopping.of(8))


def test_a_journal_past_a_smaller_epoch_budget_is_refused(small, tmp_path):
    journal = tmp_path / "random.json"
    get_method("random").search(_problem(_oracle(small, tmp_path, space=get_space("dag3")), journal=journal),
                                Stopping.of(3))
    with pytest.raises(GennasError, match="already used 12 training epochs"):
        get_method("random").search(_problem(_oracle(small, tmp_path, space=get_space("dag3")), journal=journal),
                                    Stopping.of(5, epochs=8))


def test_multi_fidelity_refuses_what_it_cannot_search(small, tmp_path):
    from gennas.bench.tabular import TabularOracle

    oracle = _oracle(small, tmp_path, space=get_space("dag3"))
    with pytest.raises(GennasError, match="one objective accuracy:max"):
        get_method("hyperband").search(_problem(oracle, objectives="accuracy:max,flops:min"), Stopping.of(3))
    with pytest.raises(GennasError, match="leaves no rung"):
        get_method("bohb").search(_problem(oracle, min_epochs=4), Stopping.of(3))
    table = pytest.importorskip("gennas.bench.nb201")
    try:
        tabular = TabularOracle("cifar10")
    except GennasError:
        pytest.skip(f"no NB201 table here ({table.__name__})")
    with pytest.raises(GennasError, match="not a benchmark table"):
        get_method("hyperband").search(_problem(tabular), Stopping.of(3))
