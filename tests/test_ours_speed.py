"""Ours' fast options (issue 16): a cached unguided pool re-scored each round, warm refits."""

import pytest

from gennas.bench.tabular import TabularOracle
from gennas.errors import GennasError
from gennas.objectives import parse_objectives
from gennas.search import SearchContext, make_searcher, run_search
from gennas.search.methods import check_options
from gennas.space import nb201_space

FAST = {"n_init": 4, "fit_steps": 60, "pool_source": "cached", "refit_steps": 10, "cached_pool": 40, "guidance": 10}


def _searcher(options, seed=0):
    oracle = TabularOracle("cifar10")
    context = SearchContext(nb201_space(), parse_objectives("accuracy:max"), seed=seed, costs=oracle.cost,
                            network=oracle.network, dataset="cifar10",
                            options={k: v for k, v in {**FAST, **options}.items() if v is not None})
    return make_searcher("ours", context), oracle


def _counting(searcher, name):
    """Wrap one of the searcher's methods so its calls are counted."""
    calls = []
    original = getattr(searcher, name)

    def counted(*args, **kwargs):
        calls.append(searcher.rounds)
        return original(*args, **kwargs)

    setattr(searcher, name, counted)
    return calls


def test_cached_pool_is_drawn_once_and_refits_are_warm():
    searcher, oracle = _searcher({})
    regenerated, fresh = _counting(searcher, "_regenerate"), []
    fit = searcher.__class__._adapt

    def adapt():
        fresh.append(searcher.predictor is None or not searcher._warm_refit())
        fit(searcher)

    searcher._adapt = adapt
    run = run_search(searcher, oracle, 24, method="ours", seed=0)
    assert len(run.history) == 24 and searcher.rounds == 4
    assert regenerated == [0]  # one unguided draw serves every round; the predictor re-scores it
    assert len(searcher.pool) == FAST["cached_pool"]
    assert fresh == [True] + [False] * 4  # only the first fit starts from scratch


def test_full_refit_every_k_rounds():
    searcher, _ = _searcher({"full_refit_every": 2})
    searcher.predictor = object()  # any fitted predictor
    assert [searcher._warm_refit() for searcher.rounds in range(5)] == [False, True, False, True, False]
    old, _ = _searcher({"refit_steps": 0})
    old.predictor = object()
    assert not old._warm_refit()


def test_same_seed_same_history_and_the_old_configuration_stays_reachable():
    histories = []
    for options in ({}, {}, {"pool_source": "guided", "refit_steps": 0, "pool": 8}):
        searcher, oracle = _searcher(options, seed=3)
        histories.append([r["arch"] for r in run_search(searcher, oracle, 14, method="ours", seed=3).history])
    assert histories[0] == histories[1]
    assert len(set(histories[2])) == 14 and histories[2][:4] == histories[0][:4]  # same unguided start


def test_unknown_pool_source_is_refused():
    with pytest.raises(GennasError, match="pool_source"):
        check_options({"pool_source": "bogus"}, ["ours"])


def test_defaults_stay_the_guided_pool_and_fits_from_scratch():
    """The fast options lose quality on NB201 (search_speed_ours.md): they are not the default."""
    searcher, _ = _searcher({"pool_source": None, "refit_steps": None})
    assert (searcher.pool_source, searcher.refit_steps) == ("guided", 0)
