"""PNAS: cells grow one edge per level from input-to-output single edges, the surrogate picks a beam of K."""

from __future__ import annotations

import json

import numpy as np

import pytest

from gennas.bench.tabular import TabularOracle
from gennas.objectives import parse_objectives
from gennas.search import SearchContext, make_searcher, run_search
from gennas.space import Cell, get_space


def _edges(cell: Cell) -> int:
    return sum(op != "none" for op in cell.ops)


def _score(cell: Cell) -> dict[str, float]:
    """A real function of the cell (3x3 convs count most) for the surrogate to learn: no table needed on dagN."""
    return {"accuracy": 2.0 * cell.ops.count("nor_conv_3x3") + cell.ops.count("nor_conv_1x1")
            + 0.5 * cell.ops.count("skip_connect")}


def _extends_by_one_edge(child: Cell, parent: Cell) -> bool:
    added = [(a, b) for a, b in zip(parent.ops, child.ops) if a != b]
    return len(added) == 1 and added[0][0] == "none"


@pytest.mark.parametrize("space_name", ["nb201", "dag5"])
def test_pnas_proposes_only_valid_cells_grown_one_edge_at_a_time(space_name):
    space = get_space(space_name)
    searcher = make_searcher("pnas", SearchContext(space=space, objectives=parse_objectives("accuracy:max"), seed=0,
                                                   options={"beam": 3}))
    measured: list[Cell] = []
    levels = []
    for _ in range(7):
        cells = searcher.ask(searcher.batch_size)
        assert 1 <= len(cells) <= 3 and len({c.to_string() for c in cells}) == len(cells)
        for cell in cells:
            assert space.contains(cell) and cell.is_connected()
            assert cell.to_string() not in {m.to_string() for m in measured}
        levels.append({_edges(c) for c in cells})
        if len(measured) >= len(searcher.level_one()):  # past level 1: each extends a measured cell by one edge
            assert all(any(_extends_by_one_edge(c, m) for m in measured) for c in cells)
        searcher.tell(cells, [_score(c) for c in cells])
        measured += cells
    assert levels[0] == {1} and max(levels[-1]) > max(levels[1])
    assert all(_edges(c) == 1 and c.ops[space.num_edges - space.n_nodes + 1] != "none" for c in measured[:3])


def test_the_surrogate_steers_growth_towards_what_it_learned():
    space = get_space("dag5")
    searcher = make_searcher("pnas", SearchContext(space=space, objectives=parse_objectives("accuracy:max"), seed=0,
                                                   options={"beam": 2}))
    grown = []
    for _ in range(8):
        cells = searcher.ask(searcher.batch_size)
        searcher.tell(cells, [_score(c) for c in cells])
        grown += cells
    share = sum(c.ops.count("nor_conv_3x3") / _edges(c) for c in grown[4:]) / len(grown[4:])
    assert share > 0.4  # the op the score favours most, on well over the 1/4 of edges an unguided growth gives it


def test_an_interrupted_pnas_run_resumes_into_the_same_history(tmp_path):
    context = lambda: SearchContext(get_space("nb201"), parse_objectives("accuracy:max"), seed=2,  # noqa: E731
                                    options={"beam": 3})
    reference = run_search(make_searcher("pnas", context()), TabularOracle("cifar10"), 20, method="pnas", seed=2)
    journal = tmp_path / "pnas.json"
    run_search(make_searcher("pnas", context()), TabularOracle("cifar10"), 11, method="pnas", seed=2, journal=journal)
    assert len(json.loads(journal.read_text())["run"]["history"]) == 11
    oracle = TabularOracle("cifar10")
    resumed = run_search(make_searcher("pnas", context()), oracle, 20, method="pnas", seed=2, journal=journal)
    assert resumed.history == reference.history


def test_pnas_on_darts_decides_one_node_per_level_alike_in_both_cells():
    space = get_space("darts")
    searcher = make_searcher("pnas", SearchContext(space=space, objectives=parse_objectives("accuracy:max"), seed=0,
                                                   options={"beam": 3}))
    level_one = searcher.level_one()
    assert len(level_one) == 49  # node 0 reads inputs 0 and 1, through any two of the 7 ops
    measured = []
    score = lambda g: {"accuracy": float(g.ops.count("sep_conv_3x3") + 0.5 * g.ops.count("dil_conv_3x3"))}  # noqa: E731
    while len(measured) < len(level_one) + 6:
        genotypes = searcher.ask(searcher.batch_size)
        for g in genotypes:
            x = space.encode(space.validate(g))
            assert (x[:12] == x[12:]).all()  # the normal and the reduction cell alike, as PNAS ties them
            level = searcher.growth.decided[g.to_string()]  # nodes decided
            if len(measured) >= len(level_one):  # past level 1: node level-1 decided on a measured genotype
                parents = [m for m in measured if searcher.growth.decided[m.to_string()] == level - 1]
                assert level >= 2 and any(set(np.flatnonzero(x != space.encode(m)) // 3 % 4) == {level - 1}
                                          for m in parents)
        searcher.tell(genotypes, [score(g) for g in genotypes])
        measured += genotypes
    assert {m.to_string() for m in measured[:49]} == {g.to_string() for g in level_one}
    assert max(searcher.growth.decided[m.to_string()] for m in measured) >= 3  # it grew past level 2
