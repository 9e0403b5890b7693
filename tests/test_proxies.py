"""Zero-cost proxies, the proxy table, proxy features in the forest, and the predictor mixture."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from gennas.errors import GennasError
from gennas.metrics import proxies
from gennas.metrics.proxies import PROXIES, ProxyTable, cell_proxies, naswot, proxy_features, synflow
from gennas.space import Cell, CellSpace, get_space, nb201_space
from gennas.space.genotype import DARTS_V2
from predictors import SklearnPredictor
from predictors.mixture import MixturePredictor

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NO_PATH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
POOLS = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"


def test_proxies_are_seeded_and_read_the_ops() -> None:
    conv, empty, pools = (Cell.from_string(a) for a in (ALL_CONV, NO_PATH, POOLS))
    assert synflow(conv) == synflow(conv) and naswot(conv) == naswot(conv)  # same weights, same noise
    # a cell that passes no signal passes the least; convolutions carry weights, so they carry the most flow
    assert synflow(empty) < synflow(pools) < synflow(conv)
    # with no path through the cells, the ReLUs before them see the same codes: no better than with a path
    assert naswot(empty) <= naswot(conv) and naswot(conv) > 0
    assert cell_proxies(conv) == dict(zip(PROXIES, (synflow(conv), naswot(conv))))


def test_the_table_holds_every_cell_as_evaluated_alone_and_survives_a_corrupt_cache(tmp_path) -> None:
    space = CellSpace(3, ("none", "skip_connect", "nor_conv_1x1"), require_connected=False, name="tiny")
    table = ProxyTable.load_or_build(space, root=tmp_path)
    path = ProxyTable.cache_path(space, tmp_path)
    assert path.exists() and all(len(v) == space.size == 27 for v in table.values.values())
    cell = space.from_ordinal(13)
    assert table.lookup(cell) == pytest.approx(cell_proxies(cell))
    path.write_bytes(b"not an npz")
    again = ProxyTable.load_or_build(space, root=tmp_path)
    assert all(np.array_equal(again.values[k], table.values[k]) for k in PROXIES)


def test_features_are_free_for_cells_and_refused_for_genotypes() -> None:
    cells = [Cell.from_string(a) for a in (ALL_CONV, NO_PATH)]
    features = proxy_features(cells)
    assert features.shape == (2, len(PROXIES) + 2) and np.isfinite(features).all()
    assert features[0, 2] > features[1, 2]  # log FLOPs: convolutions cost, none does not
    assert proxy_features([]).shape == (0, len(PROXIES) + 2)
    with pytest.raises(GennasError, match="cell spaces"):
        proxy_features([DARTS_V2])
    with pytest.raises(GennasError, match="unknown features"):
        SklearnPredictor(get_space("nb201"), ["accuracy"], "rf", features="proxies-only")


def _cells(n: int, seed: int) -> list[Cell]:
    space = nb201_space()
    return [space.from_ordinal(int(i)) for i in np.random.default_rng(seed).choice(space.size, n, replace=False)]


def test_the_forest_learns_from_the_proxies_what_one_hot_ops_do_not_show(monkeypatch) -> None:
    space = nb201_space()
    train, test = _cells(40, 0), _cells(60, 1)
    # a target that the proxies carry: the forest with them ranks held-out cells better than without
    target = lambda cells: proxy_features(cells)[:, 0] + 0.1 * proxy_features(cells)[:, 1]  # noqa: E731
    taus = {}
    for features in ("one-hot", "one-hot+proxies"):
        model = SklearnPredictor(space, ["accuracy"], "rf", seed=0, features=features).fit(
            train, {"accuracy": target(train)})
        taus[features] = kendalltau(model.predict(test)["accuracy"].mean, target(test))[0]
    assert taus["one-hot+proxies"] > taus["one-hot"] + 0.1 and taus["one-hot+proxies"] > 0.7


def test_the_mixture_has_its_members_moments() -> None:
    space = nb201_space()
    train, test = _cells(30, 2), _cells(20, 3)
    y = {"accuracy": proxy_features(train)[:, 0]}
    members = [SklearnPredictor(space, ["accuracy"], "rf", seed=0),
               SklearnPredictor(space, ["accuracy"], "rf", seed=0, features="one-hot+proxies")]
    mixture = MixturePredictor(members).fit(train, y)
    alone = [m.predict(test)["accuracy"] for m in members]
    mixed = mixture.predict(test)["accuracy"]
    assert np.allclose(mixed.mean, (alone[0].mean + alone[1].mean) / 2)
    # the spread covers each member's own and half the members' disagreement
    assert (mixed.std >= np.abs(alone[0].mean - alone[1].mean) / 2 - 1e-9).all()
    assert (mixed.std ** 2 >= (alone[0].std ** 2 + alone[1].std ** 2) / 2 - 1e-9).all()
    with pytest.raises(GennasError, match="different tasks"):
        MixturePredictor([members[0], SklearnPredictor(space, ["flops"], "rf")])


def test_a_table_feeds_the_features_without_evaluating_again(tmp_path, monkeypatch) -> None:
    space = CellSpace(3, ("none", "skip_connect", "nor_conv_1x1"), require_connected=False, name="tiny")
    ProxyTable.load_or_build(space, root=tmp_path)  # built, or read back and remembered
    ProxyTable.load_or_build(space, root=tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("evaluated a cell the table holds")

    monkeypatch.setattr(proxies, "synflow", refuse)
    monkeypatch.setattr(proxies, "naswot", refuse)
    assert proxy_features([space.from_ordinal(i) for i in range(space.size)]).shape == (27, 4)
