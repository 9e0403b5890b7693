"""Ours with ``surrogate=gnn+proxies``: candidates scored by the GNN mixed with a forest on zero-cost proxies."""

import numpy as np
import pytest

from gennas.bench.tabular import TabularOracle
from gennas.errors import GennasError
from gennas.objectives import parse_objectives
from gennas.search import SearchContext, make_searcher, run_search
from gennas.search.methods import check_options
from gennas.space import get_space, nb201_space
from predictors.baselines import SklearnPredictor
from predictors.mixture import MixturePredictor
from predictors.transfer import load_prior

FAST = {"n_init": 4, "fit_steps": 60, "pool": 8, "guidance": 10, "surrogate": "gnn+proxies"}


def _searcher(seed=0, space=None, **extra):
    oracle = TabularOracle("cifar10")
    context = SearchContext(space or nb201_space(), parse_objectives("accuracy:max"), seed=seed,
                            costs=oracle.cost, network=oracle.network, dataset="cifar10", options=FAST, **extra)
    return make_searcher("ours", context), oracle


def test_the_mixture_scores_candidates_within_the_budget_and_the_same_seed_repeats():
    histories = []
    for _ in range(2):
        searcher, oracle = _searcher(seed=5)
        run = run_search(searcher, oracle, 12, method="ours", seed=5)
        assert len(run.history) == 12 == oracle.queries and len({r["arch"] for r in run.history}) == 12
        histories.append([r["arch"] for r in run.history])
    assert histories[0] == histories[1]
    scorer = searcher.scorer
    assert isinstance(scorer, MixturePredictor) and scorer.members[0] is searcher.predictor
    forest = scorer.members[1]
    assert isinstance(forest, SklearnPredictor) and forest.features == "one-hot+proxies"
    cells = list(searcher.pool.values())
    mixed = scorer.predict(cells)["accuracy"].mean
    alone = [m.predict(cells)["accuracy"].mean for m in scorer.members]
    assert np.allclose(mixed, (alone[0] + alone[1]) / 2)


def test_the_option_is_refused_where_proxies_or_the_gnn_do_not_apply():
    with pytest.raises(GennasError, match="surrogate"):
        check_options({"surrogate": "forest"}, ["ours"])
    with pytest.raises(GennasError, match="zero-cost proxies of cells"):
        _searcher(space=get_space("darts"))
    with pytest.raises(GennasError, match="transfer prior"):
        _searcher(prior=load_prior("cifar10"))
