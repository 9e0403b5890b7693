"""Real training of NB201-family networks on the embedded digits data."""

import json

import pytest

from gennas.bench.training import TrainingOracle
from gennas.data import load_dataset
from gennas.errors import BudgetExhausted
from gennas.space import Cell, get_space
from gennas.train import RobustnessConfig, TrainConfig

CONV_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _oracle(digits, tmp_path, **kw):
    return TrainingOracle(
        digits, train=TrainConfig(epochs=kw.pop("epochs", 4), seed=0, device="cpu"),
        robustness=RobustnessConfig(eps=0.1, pgd_steps=5), channels=8, cells_per_stage=1,
        cache=tmp_path, progress=False, **kw,
    )


def test_conv_cell_learns_digits_and_pgd_hurts(digits, tmp_path):
    oracle = _oracle(digits, tmp_path)
    result = oracle.query(Cell.from_string(CONV_CELL))
    assert result["accuracy"] > 90.0
    assert result["pgd_accuracy"] < result["accuracy"]
    assert result["fgsm_accuracy"] < result["accuracy"]
    assert 0 < result["noise_accuracy"] <= 100 and result["latency_ms"] > 0
    assert result["flops"] > 0 and result["memory_bytes"] > 0
    assert "clean_accuracy" not in result
    seen = oracle.for_searcher(result)  # a searcher is told validation figures only, test ones under no name
    for metric in ("accuracy", "fgsm_accuracy", "pgd_accuracy", "noise_accuracy"):
        assert seen[metric] == result[f"val_{metric}"]
    assert not any(k.startswith("val_") for k in seen) and set(seen) <= set(result)
    assert seen["flops"] == result["flops"]


def test_results_are_cached_by_cell_config_and_seed(digits, tmp_path):
    cell = Cell.from_string(CONV_CELL)
    first = _oracle(digits, tmp_path, epochs=1).query(cell)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].endswith(".json")  # the checkpoint is gone once the result exists
    again = _oracle(digits, tmp_path, epochs=1)
    assert again.query(cell) == first  # from the cache: identical, including the wall-clock seconds
    stored = json.loads((tmp_path / files[0]).read_text())
    assert stored["arch"] == CONV_CELL
    other_seed = TrainingOracle(digits, train=TrainConfig(epochs=1, seed=1, device="cpu"), channels=8,
                                cells_per_stage=1, cache=tmp_path, progress=False)
    assert other_seed.cache_key(cell) != again.cache_key(cell)


def test_budget_counts_distinct_cells(digits, tmp_path, rng):
    oracle = _oracle(digits, tmp_path, epochs=1, budget=1, space=get_space("dag5"))
    cell = oracle.space.sample(rng)
    oracle.query(cell)
    oracle.query(cell)
    assert oracle.queries == 1
    with pytest.raises(BudgetExhausted):
        oracle.query(oracle.space.mutate(cell, rng))
