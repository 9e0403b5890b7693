"""Net2Net transforms keep the parent's function exactly; warm-started searches inherit real trained weights."""

from __future__ import annotations

import pytest
import torch

from gennas.bench.training import TrainingOracle
from gennas.data import load_dataset
from gennas.errors import GennasError
from gennas.nn.net2net import change_ops, deepen, widen
from gennas.nn.network import CellNetwork, NetworkConfig, build_network
from gennas.objectives import parse_objectives
from gennas.search.methods import Problem, get_method
from gennas.search.searcher import SearchContext
from gennas.search.stopping import Stopping
from gennas.space import Cell, get_space
from gennas.train import RobustnessConfig, TrainConfig

PARENT = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
#: none -> conv on two edges, 1x1 -> 3x3 on one: every change has an identity form.
PRESERVING = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|nor_conv_3x3~1|avg_pool_3x3~2|"
#: none -> avg pool adds a term to a sum: no identity form.
BREAKING = "|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
TIMES = ("seconds", "latency_ms")


@pytest.fixture(scope="module")
def parent() -> CellNetwork:
    """A parent whose weights and BatchNorm statistics have moved away from their initial values."""
    torch.manual_seed(0)
    net = CellNetwork(Cell.from_string(PARENT), NetworkConfig(channels=4, cells_per_stage=1, in_channels=1,
                                                              image_size=8, num_classes=10))
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(32, 1, 8, 8)
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(net(x), torch.arange(32) % 10)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net


@pytest.mark.parametrize("training", [False, True])
def test_op_changes_with_an_identity_form_keep_the_function_exactly(parent, training):
    parent.train(training)
    x = torch.randn(8, 1, 8, 8)
    morph = change_ops(parent, Cell.from_string(PRESERVING))
    assert morph.exact and morph.fresh == []
    assert morph.network.cell.to_string() == PRESERVING
    assert torch.allclose(parent(x), morph.network(x), atol=1e-6)
    broken = change_ops(parent, Cell.from_string(BREAKING))
    assert not broken.exact and broken.fresh == ["0_2"]  # said, not hidden
    assert not torch.allclose(parent(x), broken.network(x), atol=1e-4)
    parent.eval()


@pytest.mark.parametrize("training", [False, True])
def test_widen_and_deepen_keep_the_function_exactly(parent, training):
    parent.train(training)
    x = torch.randn(8, 1, 8, 8)
    wider = widen(parent, 7, seed=3)
    assert wider.config.stage_channels == (7, 14, 28) and wider.classifier.in_features == 28
    assert torch.allclose(parent(x), wider(x), atol=1e-5)
    deeper = deepen(parent, stage=1)
    assert len(deeper.layers) == len(parent.layers) + 1
    assert torch.allclose(parent(x), deeper(x), atol=1e-6)
    assert any(p.requires_grad for p in deeper.layers[3].parameters())  # the new cell can learn
    parent.eval()
    with pytest.raises(GennasError, match="widen grows"):
        widen(parent, 2)


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", max_train=120)


def _oracle(splits, root, epochs: int = 2) -> TrainingOracle:
    return TrainingOracle(splits, space=get_space("nb201"), train=TrainConfig(epochs=epochs, seed=0, device="cpu"),
                          robustness=RobustnessConfig(eps=0.1, pgd_steps=1), channels=4, cells_per_stage=1,
                          cache=root, progress=False, use_cache=False)


def _problem(oracle, journal=None, **options) -> Problem:
    context = SearchContext(space=oracle.space, objectives=parse_objectives("accuracy:max"), seed=0,
                            costs=oracle.cost, network=oracle.network, options=options)
    return Problem(context, oracle=oracle, select="val_accuracy", journal=journal, settings={"t": 1})


def test_a_warm_started_child_starts_from_its_parents_trained_function_and_pays_its_epochs(small, tmp_path):
    oracle = _oracle(small, tmp_path, epochs=4)
    oracle.warm_start(1)
    parent_cell, child = Cell.from_string(PARENT), Cell.from_string(PRESERVING)
    oracle.query(parent_cell)
    oracle.inherit({PRESERVING: parent_cell})
    assert oracle.epoch_cost(child) == 1 and oracle.epochs_spent == 4
    trained = build_network(parent_cell, oracle.network)
    trained.load_state_dict(oracle.warm.store.load(oracle.cache_key(parent_cell)))
    x = small.val.tensors[0][:16]
    start = change_ops(trained.eval(), child).network.eval()  # what the child's training starts from
    assert torch.allclose(trained(x), start(x), atol=1e-5)
    result = oracle.query(child)
    assert result["warm_from"] == PARENT and result["epochs"] == 1 and oracle.epochs_spent == 5
    assert "warm_from" not in oracle.for_searcher(result)


#: Small settings per method so each run takes seconds (ours: as in test_search, and a shorter run).
OWN = {"rea": {"population_size": 3}, "ls": {}, "ours": {"pool": 8, "n_init": 2, "batch": 2, "fit_steps": 30,
                                                          "guidance": 10}}
BUDGET = {"rea": 8, "ls": 8, "ours": 5}


@pytest.mark.parametrize("method", list(OWN))
def test_warm_started_searches_inherit_and_resume_into_the_same_run(method, small, tmp_path):
    options = {"warm_start": "net2net", "warm_epochs": 1, **OWN[method]}
    whole = _oracle(small, tmp_path / "a")
    budget = BUDGET[method]
    uninterrupted = get_method(method).search(_problem(whole, **options), Stopping.of(budget)).run.history
    warm = [r for r in uninterrupted if "warm_from" in r]
    assert warm and all(r["epochs"] == 1 for r in warm)
    assert all(r["warm_from"] in {q["arch"] for q in uninterrupted[:i]} for i, r in enumerate(uninterrupted)
               if "warm_from" in r)  # a parent is measured before its child
    assert whole.epochs_spent == sum(r["epochs"] for r in uninterrupted)
    journal = tmp_path / "run.json"
    get_method(method).search(_problem(_oracle(small, tmp_path / "b"), journal, **options),
                              Stopping.of(budget // 2 + 1))
    resumed = get_method(method).search(_problem(_oracle(small, tmp_path / "b"), journal, **options),
                                        Stopping.of(budget)).run.history
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMES} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(uninterrupted)


def test_warm_starts_refuse_a_table_and_epochs_beyond_the_recipe(small, tmp_path):
    oracle = _oracle(small, tmp_path)
    with pytest.raises(GennasError, match="warm_epochs must be 1..2"):
        get_method("rea").search(_problem(oracle, warm_start="net2net", warm_epochs=3), Stopping.of(2))
    from gennas.bench.oracle import Oracle

    class Table(Oracle):
        def _measure(self, cell):
            return {"accuracy": 1.0}

    table = Table(get_space("nb201"), NetworkConfig())
    with pytest.raises(GennasError, match="not a benchmark table"):
        get_method("ls").search(_problem(table, warm_start="net2net"), Stopping.of(2))


def test_a_shared_warm_start_option_warm_starts_only_the_methods_that_take_it(small, tmp_path):
    for method, warm in (("random", False), ("rea", True)):
        oracle = _oracle(small, tmp_path / method)
        rows = get_method(method).search(_problem(oracle, warm_start="net2net", warm_epochs=1, population_size=3),
                                         Stopping.of(4)).run.history
        assert any("warm_from" in r for r in rows) == warm
