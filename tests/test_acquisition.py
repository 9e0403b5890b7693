"""EHVI acquisition and the transfer prior's exact source scores."""

import numpy as np
import pytest
from pymoo.indicators.hv import HV

from gennas.bench.tabular import TransferPrior
from gennas.objectives import parse_objectives
from gennas.search.acquisition import ehvi_batch, expected_hv_improvement, hv_improvements
from gennas.search.indicators import Reference, protocol_reference
from gennas.space import nb201_space
from predictors.transfer import SourceScores

# A 2-D front (minimisation) with reference (10, 10): steps at (1, 8), (4, 4), (8, 1).
FRONT = np.array([[1.0, 8.0], [4.0, 4.0], [8.0, 1.0]])
REF = np.array([10.0, 10.0])


def test_hv_improvement_is_the_area_a_point_adds():
    points = np.array([
        [2.0, 5.0],   # fills the notch between (1, 8) and (4, 4): 2 x 3
        [4.0, 4.0],   # already on the front
        [5.0, 5.0],   # dominated
        [11.0, 0.5],  # beyond the reference
        [0.5, 0.5],   # dominates everything: the whole box minus the front's area
    ])
    gains = hv_improvements(FRONT, points, REF)
    front_hv = HV(ref_point=REF)(FRONT)
    assert gains == pytest.approx([6.0, 0.0, 0.0, 0.0, 9.5 * 9.5 - front_hv])


def test_ehvi_is_exact_without_spread_and_rewards_uncertainty():
    mean = np.array([[2.0, 5.0], [5.0, 5.0]])
    draws = np.random.default_rng(0).standard_normal((256, 2))
    exact = expected_hv_improvement(FRONT, mean, np.zeros_like(mean), REF, draws)
    assert exact == pytest.approx(hv_improvements(FRONT, mean, REF))
    # A dominated mean with spread in the second objective may still land below the front.
    spread = np.array([[0.0, 0.0], [0.0, 3.0]])
    assert expected_hv_improvement(FRONT, mean, spread, REF, draws)[1] > 0


def test_ehvi_batch_spreads_along_the_front_rather_than_stacking():
    measured = FRONT
    # Two near-identical candidates in one notch, one in the other notch.
    mean = np.array([[2.0, 5.0], [2.01, 5.01], [5.0, 2.0]])
    picked = ehvi_batch(measured, mean, np.zeros_like(mean), REF, 2, np.zeros((1, 2)))
    assert picked[0] in (0, 2) and sorted(picked) == [0, 2]


def test_protocol_reference_is_the_scoring_rule():
    objectives = parse_objectives("accuracy:max,flops:min")
    points = np.array([[-94.0, 20.0], [-90.0, 100.0]])
    assert protocol_reference(points, objectives) == pytest.approx([-84.0, 105.0])
    assert Reference(objectives, points).ref_point == pytest.approx([-84.0, 105.0])


def test_source_scores_are_the_mean_z_score_of_the_tables_that_hold_a_cell():
    space = nb201_space()
    rng = np.random.default_rng(0)
    cells = []
    while len(cells) < 50:
        cell = space.sample(rng)
        if cell.to_string() not in {c.to_string() for c in cells}:
            cells.append(cell)
    a, b = rng.normal(70, 5, 50), rng.normal(40, 3, 50)
    scores = SourceScores(TransferPrior(tuple(c.to_string() for c in cells), {"a": a, "b": b}))
    za, zb = (a - a.mean()) / a.std(), (b - b.mean()) / b.std()
    assert scores.score(cells[:3]) == pytest.approx(((za + zb) / 2)[:3])
    assert scores.score(cells[:3], {"a": 1.0, "b": 0.0}) == pytest.approx(za[:3])
    outsider = next(c for c in (space.sample(rng) for _ in range(1000)) if c.to_string() not in scores.row)
    assert np.isnan(scores.score([outsider])[0])
    best = cells[int(np.argmax(za + zb))].to_string()
    assert scores.top(1) == [best] and best not in scores.top(3, exclude={best})
    # Disagreement: with two sources weighted alike, mean + 1 x disagreement is the larger z-score,
    # so the optimistic top is the best cell of whichever source rates its own best highest.
    assert scores.disagreement(cells[:3]) == pytest.approx((np.abs(za - zb) / 2)[:3])
    assert scores.disagreement(cells[:3], {"a": 1.0, "b": 0.0}) == pytest.approx(np.zeros(3), abs=1e-9)
    assert np.isnan(scores.disagreement([outsider])[0])
    assert scores.top(1, optimism=1.0) == [cells[int(np.argmax(np.maximum(za, zb)))].to_string()]
