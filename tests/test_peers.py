"""Peers (Optuna, BoTorch): the optional extra, repeats answered free, the transfer warm start, goal checks.

Budget, table honesty and same-seed histories are checked for every registered method,
peers included, by tests/test_search.py.
"""

import sys

import numpy as np
import pytest

from gennas.bench.tabular import TabularOracle
from gennas.cli import main
from gennas.errors import GennasError
from gennas.objectives import parse_objectives
from gennas.search import SearchContext, make_searcher, run_search
from gennas.search.peers import prior_cells
from gennas.space import Cell, nb201_space

PEERS = {"optuna-tpe": "optuna", "optuna-gp": "optuna", "optuna-nsga2": "optuna",
         "botorch-qlogei": "botorch", "botorch-qnehvi": "botorch"}


def _context(oracle, objectives="accuracy:max", seed=0, prior=False, **options):
    return SearchContext(nb201_space(), parse_objectives(objectives), seed=seed, costs=oracle.cost,
                         network=oracle.network, dataset="cifar10", prior=oracle.prior() if prior else None,
                         options=options)


@pytest.mark.parametrize("method", list(PEERS))
def test_a_missing_extra_is_one_clear_error_naming_it(method, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, PEERS[method], None)  # what an environment without the library gives
    goal = ["--objectives", "accuracy:max,flops:min"] if method == "botorch-qnehvi" else []
    assert main(["search", "--method", method, "--budget", "3", "--dataset", "cifar10", *goal]) == 2
    err = capsys.readouterr().err
    assert "pip install 'gennas[peers]'" in err and PEERS[method] in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_optuna_repeats_are_told_from_what_was_measured_and_never_counted():
    oracle = TabularOracle("cifar10")
    searcher = make_searcher("optuna-nsga2", _context(oracle, population_size=4))
    run = run_search(searcher, oracle, 40, method="optuna-nsga2", seed=0)
    archs = [r["arch"] for r in run.history]
    assert len(archs) == len(set(archs)) == oracle.queries == 40
    trials = [t for t in searcher.study.trials if t.values is not None]
    assert len(trials) > 40  # a population of 4 breeds repeats: each was answered without a query
    measured = {r["arch"]: r["accuracy"] for r in run.history}
    for trial in trials:
        cell = Cell(tuple(trial.params[f"edge_{i}"] for i in range(nb201_space().num_edges)))
        assert trial.values == [measured[cell.to_string()]]


@pytest.mark.parametrize("method", ["optuna-tpe", "botorch-qlogei"])
def test_the_transfer_prior_opens_the_design_with_the_other_tables_best_cells(method):
    oracle = TabularOracle("cifar10")
    context = _context(oracle, prior=True, n_startup=3, n_init=3)
    expected = [c.to_string() for c in prior_cells(context, 3)]
    run = run_search(make_searcher(method, context), oracle, 3, method=method, seed=0)
    assert [r["arch"] for r in run.history] == expected
    accuracy = np.sort(oracle._table.accuracy["cifar10"])  # scoring only, after the run
    assert max(r["accuracy"] for r in run.history) >= accuracy[int(0.99 * len(accuracy))]
    assert prior_cells(_context(oracle), 3) == []  # zero prior: nothing to warm-start from


@pytest.mark.parametrize("method, goal, other", [("botorch-qlogei", "accuracy:max,flops:min", "botorch-qnehvi"),
                                                 ("botorch-qnehvi", "accuracy:max", "botorch-qlogei")])
def test_a_botorch_peer_given_the_wrong_number_of_objectives_names_the_other(method, goal, other):
    with pytest.raises(GennasError, match=f"use --method {other}"):
        make_searcher(method, _context(TabularOracle("cifar10"), goal))


def test_botorch_models_free_costs_exactly_and_only_the_measured_metric_by_a_gp():
    oracle = TabularOracle("cifar10")
    searcher = make_searcher("botorch-qnehvi", _context(oracle, "accuracy:max,flops:min", n_init=5, candidates=100))
    run = run_search(searcher, oracle, 12, method="botorch-qnehvi", seed=0)
    assert searcher.modelled == ["accuracy"] and len(run.history) == oracle.queries == 12
    cells = [Cell.from_string(r["arch"]) for r in run.history]
    flops = searcher._cost_model("flops", -1.0, cells[:8])  # maximised: FLOPs negated
    x = searcher._encode(cells[:8]).reshape(2, 4, -1)  # batched as an acquisition evaluates it
    assert flops.posterior(x).mean.reshape(-1).tolist() == [-r["flops"] for r in run.history[:8]]
    with pytest.raises(GennasError, match="outside its candidates"):
        flops.posterior(searcher._encode(cells[8:]))


class _Stop(Exception):
    pass


def test_an_interrupted_optuna_run_resumes_into_the_same_history(tmp_path):
    goal = "accuracy:max,flops:min"
    reference = run_search(make_searcher("optuna-tpe", _context(TabularOracle("cifar10"), goal, seed=2)),
                           TabularOracle("cifar10"), 25, method="optuna-tpe", seed=2)

    class Flaky(TabularOracle):
        def _measure(self, cell):
            if self.queries == 14:
                raise _Stop
            return super()._measure(cell)

    journal = tmp_path / "seed_2.json"
    with pytest.raises(_Stop):
        run_search(make_searcher("optuna-tpe", _context(TabularOracle("cifar10"), goal, seed=2)), Flaky("cifar10"),
                   25, method="optuna-tpe", seed=2, journal=journal)
    oracle = TabularOracle("cifar10")
    resumed = run_search(make_searcher("optuna-tpe", _context(oracle, goal, seed=2)), oracle, 25,
                         method="optuna-tpe", seed=2, journal=journal)
    assert resumed.history == reference.history  # the study is replayed from the journal, then goes on
