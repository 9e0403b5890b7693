import pytest

from gennas.bench import TabularOracle
from gennas.bench.nb201 import load_table
from gennas.errors import BudgetExhausted, GennasError
from gennas.space import Cell

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_table_loads_with_known_optima():
    table = load_table()
    assert len(table.archs) == 15625
    assert round(table.accuracy["cifar10"].max(), 2) == 94.37
    assert round(table.accuracy["cifar100"].max(), 2) == 73.51
    assert round(table.accuracy["ImageNet16-120"].max(), 2) == 47.31


def test_oracle_counts_distinct_cells_and_enforces_budget(rng):
    oracle = TabularOracle("cifar10", budget=2)
    best = Cell.from_string(BEST_C10)
    result = oracle.query(best)
    assert result["accuracy"] == pytest.approx(94.3733, abs=1e-4)
    assert {"flops", "params", "memory_bytes"} <= set(result)
    oracle.query(best)
    assert oracle.queries == 1
    oracle.cost(Cell.from_string(BEST_C10.replace("skip_connect", "none")))  # costs are free
    assert oracle.queries == 1
    oracle.query(oracle.space.sample(rng))
    assert oracle.remaining == 0
    with pytest.raises(BudgetExhausted, match="budget of 2"):
        oracle.query(Cell.from_string(BEST_C10.replace("skip_connect", "avg_pool_3x3")))
    assert oracle.query(best)["accuracy"] == result["accuracy"]  # known cells stay free


def test_prior_exposes_only_the_other_datasets():
    oracle = TabularOracle("cifar100")
    prior = oracle.prior()
    assert set(prior.accuracy) == {"cifar10", "ImageNet16-120"}
    assert len(prior.archs) == 15625
    with pytest.raises(GennasError, match="only through counted queries"):
        oracle.prior(["cifar100"])
    assert oracle.queries == 0


def test_costs_follow_the_dataset_shape():
    c10, inet = TabularOracle("cifar10"), TabularOracle("imagenet16-120")
    cell = Cell.from_string(BEST_C10)
    assert inet.cost(cell)["flops"] < c10.cost(cell)["flops"]  # 16x16 inputs


def test_missing_or_malformed_table_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("GENNAS_NB201_DIR", str(tmp_path))
    with pytest.raises(GennasError, match="GENNAS_NB201_DIR.*"):
        TabularOracle("cifar10")
    (tmp_path / "nb201_test_accuracy.csv").write_text("a,b\n1,2\n")
    with pytest.raises(GennasError, match="missing columns"):
        TabularOracle("cifar10")
    with pytest.raises(GennasError, match="no dataset 'svhn'"):
        TabularOracle("svhn")
