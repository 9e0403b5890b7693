"""Every black-box searcher on the DARTS space (issue 20): valid genotypes, exact budgets, and a real search."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gennas.bench.oracle import Oracle
from gennas.cli import main
from gennas.nn.darts_network import DartsNetworkConfig
from gennas.objectives import parse_objectives
from gennas.search import METHODS, SearchContext, make_searcher, run_search
from gennas.space import get_space

FAST = {"pool": 12, "n_init": 4, "fit_steps": 60, "guidance": 10, "candidates": 100}
#: "ours" needs a generator trained for the space (tests/test_darts_generator.py covers it).
BLACK_BOX = [m for m in METHODS if m != "ours"]
SKELETON = DartsNetworkConfig(channels=4, layers=5, in_channels=1, image_size=8)


class ScoreOracle(Oracle):
    """A deterministic, cheap objective of a genotype: separable convs on the normal cell score, pools do not.

    Real costs (closed form) come from the base class; only the accuracy is a formula, so a
    search over ~10^18 genotypes runs in milliseconds and its answers can be checked.
    """

    def __init__(self) -> None:
        super().__init__(get_space("darts"), SKELETON)
        self.measured: list[str] = []

    def _measure(self, genotype) -> dict[str, float]:
        self.measured.append(genotype.to_string())
        normal = [op for op, _ in genotype.normal]
        score = sum(op.startswith("sep_conv") for op in normal) * 10 - sum("pool" in op for op in normal) * 5
        score += sum(index >= 2 for _, index in genotype.normal)  # deeper wiring helps a little
        return {"accuracy": float(score)}


def _run(method: str, budget: int, seed: int = 0):
    several = getattr(METHODS[method], "arity", "one") == "several"
    oracle = ScoreOracle()
    context = SearchContext(oracle.space, parse_objectives("accuracy:max,flops:min" if several else "accuracy:max"),
                            seed=seed, costs=oracle.cost, network=oracle.network, dataset="digits",
                            options=dict(FAST))
    return run_search(make_searcher(method, context), oracle, budget, method=method, seed=seed), oracle


@pytest.mark.parametrize("method", BLACK_BOX)
def test_every_searcher_proposes_valid_genotypes_within_the_budget(method):
    budget = 14
    run, oracle = _run(method, budget)
    space = oracle.space
    archs = [row["arch"] for row in run.history]
    assert len(archs) == budget == len(set(archs)) == oracle.queries
    assert oracle.measured == archs
    for arch in archs:
        space.parse(arch)  # every proposal is a valid genotype (two distinct inputs per node, known ops)
    again, _ = _run(method, budget)
    assert again.history == run.history  # deterministic under its seed


def test_evolution_climbs_the_objective():
    run, _ = _run("rea", 60, seed=1)
    first = max(r["accuracy"] for r in run.history[:10])
    assert max(r["accuracy"] for r in run.history) > first


def test_search_command_trains_darts_genotypes_on_digits(tmp_path, capsys):
    """The end-to-end form: real training (1 epoch) of 2 genotypes on digits, the DARTS skeleton scaled down."""
    code = main(["search", "--space", "darts", "--dataset", "digits", "--method", "rea", "--budget", "2",
                 "--epochs", "1", "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["skeleton"].startswith("DARTS C=8, 5 layers")
    history = payload["runs"][0]["history"]
    assert len(history) == 2
    space = get_space("darts")
    for row in history:
        genotype = space.parse(row["arch"])
        assert 0 <= row["accuracy"] <= 100 and "pgd_accuracy" in row
        config = DartsNetworkConfig(channels=8, layers=5, in_channels=1, image_size=8)
        assert row["flops"] == pytest.approx(space.costs(genotype, config)["flops"])
    assert np.isfinite([r["accuracy"] for r in history]).all()
