"""Round 0 of the main job: probes chosen to inform, the prior adapted to a dataset it has never seen."""

from __future__ import annotations

import numpy as np
import pytest

from gennas.metrics.costs import cell_costs
from gennas.nn.network import NetworkConfig
from gennas.supernet.adapt import adapt_predictor, choose_probes, held_out_tau, probe_candidates, training_data
from gennas.supernet.calibration import calibrate
from gennas.supernet.rounds import zero_shot_prior


def test_probes_spread_over_the_priors_ranking_and_the_cost_range() -> None:
    network = NetworkConfig(channels=8, cells_per_stage=1, in_channels=1, image_size=8)
    prior = zero_shot_prior("probe-test")
    probes = choose_probes(prior, "accuracy@probe-test", network, 8, seed=0)
    assert len({p.canonical for p in probes}) == 8 and all(p.is_connected() for p in probes)
    assert choose_probes(prior, "accuracy@probe-test", network, 8, seed=0) == probes  # repeatable
    candidates = probe_candidates()
    flops = np.array([cell_costs(c, network)["flops"] for c in candidates])
    chosen = np.array([cell_costs(c, network)["flops"] for c in probes])
    assert chosen.min() < np.quantile(flops, 0.25) and chosen.max() > np.quantile(flops, 0.75)
    predicted = prior.predict(candidates, ["accuracy@probe-test"])["accuracy@probe-test"].mean
    mine = prior.predict(probes, ["accuracy@probe-test"])["accuracy@probe-test"].mean
    assert mine.min() < np.quantile(predicted, 0.25) and mine.max() > np.quantile(predicted, 0.75)


def test_calibration_recovers_the_supernets_bias_and_prefers_exact_figures() -> None:
    line = calibrate([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], [25.0, 45.0, 65.0, 85.0, 105.0, 125.0])
    assert (line.slope, line.intercept) == pytest.approx((2.0, 5.0))  # enough pairs, and a line predicts better
    few = calibrate([10.0, 20.0, 30.0, 40.0], [25.0, 45.0, 65.0, 85.0])
    assert (few.slope, few.intercept) == pytest.approx((1.0, 30.0))  # too few pairs for a line: the mean offset
    assert calibrate([10.0], [40.0])(12.0) == pytest.approx(42.0)  # one pair: the offset only
    rows = [{"arch": "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|", "val_accuracy": 10.0,
             "standalone_val_accuracy": 25.0},
            {"arch": "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|", "val_accuracy": 20.0,
             "standalone_val_accuracy": 45.0},
            {"arch": "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|", "val_accuracy": 30.0,
             "standalone_val_accuracy": 65.0},
            {"arch": "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|", "val_accuracy": 12.0,
             "standalone_val_accuracy": float("nan")}]
    cells, values, line = training_data(rows, "standalone_val_accuracy", "val_accuracy")
    assert line.pairs == 3 and list(values) == pytest.approx([25.0, 45.0, 65.0, 37.0])  # 12 + the mean offset 25


def test_round_0_adapts_the_prior_to_a_ranking_the_known_datasets_do_not_share() -> None:
    """Probes labelled with a figure the NB201 accuracies do not rank by (a network's memory on this skeleton):
    cross-validation must choose a head of its own for accuracy, and both adapted heads must rank held-out cells."""
    network = NetworkConfig(channels=8, cells_per_stage=1, in_channels=1, image_size=8)
    prior = zero_shot_prior("new-data")
    probes = choose_probes(prior, "accuracy@new-data", network, 12, seed=0)
    taken = {p.canonical for p in probes}
    pool = [c for c in probe_candidates() if c.canonical not in taken]
    held = [pool[i] for i in np.random.default_rng(1).choice(len(pool), 60, replace=False)]

    def figure(cell):  # measured exactly on the skeleton; no CIFAR table ranks cells by it
        return cell_costs(cell, network)["memory_bytes"] / 1e4

    def rows(cells):
        return [{"arch": c.to_string(), "standalone_val_accuracy": figure(c), "standalone_val_pgd_accuracy": figure(c)}
                for c in cells]
    adapted, notes = adapt_predictor(prior, "new-data", rows(probes), ["accuracy", "pgd_accuracy"])
    assert "a head of its own (cross-validated τ" in notes[0]
    zero_shot, _ = held_out_tau(prior, "accuracy@new-data", rows(held), "standalone_val_accuracy")
    for metric in ("accuracy", "pgd_accuracy"):
        tau, n = held_out_tau(adapted, f"{metric}@new-data", rows(held), f"standalone_val_{metric}")
        assert n == 60 and tau > 0.5 and tau > zero_shot + 0.3, metric
