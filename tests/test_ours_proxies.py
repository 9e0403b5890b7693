"""Ours with ``surrogate=gnn+proxies``: candidates scored by the GNN mixed with a forest on zero-cost proxies."""

import numpy as np
import pytest

from gennas.bench.nb201 import load_table
from gennas.bench.tabular import TabularOracle
from gennas.errors import GennasError
from gennas.objectives import parse_objectives
from gennas.search import SearchContext, make_searcher, run_search
from gennas.search.methods import check_options
from gennas.space import get_space, nb201_space
from gennas.space.space import sample_distinct
from predictors.base import Prediction
from predictors.baselines import SklearnPredictor
from predictors.gnn_predictor import GNNConfig, GNNPredictor
from predictors.mixture import MixturePredictor, forecast_weights
from predictors.transfer import load_prior

FAST = {"n_init": 4, "fit_steps": 60, "pool": 8, "guidance": 10, "surrogate": "gnn+proxies"}


def _searcher(seed=0, space=None, options=None, **extra):
    oracle = TabularOracle("cifar10")
    context = SearchContext(space or nb201_space(), parse_objectives("accuracy:max"), seed=seed,
                            costs=oracle.cost, network=oracle.network, dataset="cifar10",
                            options=FAST if options is None else options, **extra)
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


def test_weighted_moments_follow_the_weights():
    space, table = nb201_space(), load_table()
    cells = sample_distinct(space, 16, np.random.default_rng(0))
    values = {"accuracy": np.array([table.accuracy["cifar10"][table.index_of(c)] for c in cells[:10]])}
    gnn = GNNPredictor(space, ["accuracy"], GNNConfig(seed=0, ensemble=2, steps=40)).fit(cells[:10], values)
    forest = SklearnPredictor(space, ["accuracy"], "rf", features="one-hot+proxies").fit(cells[:10], values)
    members, unseen = [gnn, forest], cells[10:]
    alone = [m.predict(unseen)["accuracy"] for m in members]
    alone = [Prediction(a.mean.astype(np.float64), a.std.astype(np.float64)) for a in alone]  # the GNN's are float32
    only_first = MixturePredictor(members, weights=[1.0, 0.0]).predict(unseen)["accuracy"]
    assert np.allclose(only_first.mean, alone[0].mean) and np.allclose(only_first.std, alone[0].std)
    mixed = MixturePredictor(members, weights=[3.0, 1.0]).predict(unseen)["accuracy"]
    assert np.allclose(mixed.mean, 0.75 * alone[0].mean + 0.25 * alone[1].mean)
    second = 0.75 * (alone[0].std ** 2 + alone[0].mean ** 2) + 0.25 * (alone[1].std ** 2 + alone[1].mean ** 2)
    assert np.allclose(mixed.std ** 2, second - mixed.mean ** 2)
    with pytest.raises(GennasError, match="non-negative"):
        MixturePredictor(members, weights=[1.0, -1.0])


def test_forecast_weights_favour_the_member_whose_forecasts_came_true():
    truth = np.array([70.0, 72.0, 68.0])
    errors = np.array([((truth - (truth + 3.0)) ** 2).sum(), ((truth - (truth + 1.0)) ** 2).sum()])
    weights = forecast_weights(errors, np.array([3, 3]))
    assert weights == pytest.approx([0.1, 0.9])  # inverse mean squared errors 1/9 and 1, normalised
    assert np.allclose(forecast_weights(np.zeros(2), np.zeros(2)), 0.5)  # no forecast scored yet: equal


def test_forecast_weights_score_each_member_on_the_cells_it_forecast():
    searcher, oracle = _searcher(seed=3, options={**FAST, "parents": 1, "batch": 3, "mixture_weights": "forecast"})
    run = run_search(searcher, oracle, 10, method="ours", seed=3)
    assert len(run.history) == 10 == oracle.queries
    # The 4 initial cells had no forecast; each of the 6 picked since was scored for both members.
    assert list(searcher.forecast_counts) == [6, 6] and (searcher.forecast_errors > 0).all()
    assert np.allclose(searcher.scorer.weights, forecast_weights(searcher.forecast_errors, searcher.forecast_counts))
    last = run.history[-1]
    assert len(searcher.forecasts[last["arch"]]) == 2


def test_forecast_weights_need_a_mixture():
    with pytest.raises(GennasError, match="mixture_weights"):
        check_options({"mixture_weights": "stacked"}, ["ours"])
    with pytest.raises(GennasError, match="surrogate=gnn\\+proxies"):
        _searcher(options={"n_init": 4, "mixture_weights": "forecast"})
