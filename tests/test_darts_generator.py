"""The generator, the predictor and guided search on the DARTS space (issue 20).

The generator is trained here on a small budget (its committed weights are for the
benchmark); what must hold at any budget: every sample is a valid genotype straight from
the chain (none filtered), the exact soft costs equal the closed form on real genotypes,
guidance moves the samples, and the predictor learns from measurements.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from diffusion.guidance import generate
from diffusion.model import CellDiffusion, DiffusionConfig
from gennas.metrics.darts_costs import darts_costs
from gennas.nn.darts_network import DartsNetworkConfig
from gennas.objectives import parse_objectives
from gennas.search import SearchContext, make_searcher, run_search
from gennas.space import get_space
from predictors.checkpoint import load_predictor, save_predictor
from predictors.encoding import one_hot_ops
from predictors.gnn_predictor import GNNConfig, GNNPredictor

from test_darts_search import ScoreOracle

SKELETON = DartsNetworkConfig(channels=4, layers=5, in_channels=1, image_size=8)


@pytest.fixture(scope="module")
def space():
    return get_space("darts")


@pytest.fixture(scope="module")
def generator(space, tmp_path_factory):
    """A small generator trained on uniform genotypes, saved and loaded back."""
    model = CellDiffusion(space, DiffusionConfig(hidden=32, layers=2, steps=60, batch_size=64, sample_steps=20))
    model.fit(space.sample(np.random.default_rng(0), 300))
    path = model.save(tmp_path_factory.mktemp("gen") / "darts.pt")
    return CellDiffusion.load(path), path


def test_every_sample_is_a_valid_genotype_without_filtering(space, generator):
    model, _ = generator
    samples = model.sample(200, seed=1)
    assert model.invalid_draws == 0  # no draw had to be thrown away: valid by construction
    assert len(samples) == 200 == len({g.canonical for g in samples})
    for genotype in samples:
        space.validate(genotype)  # exactly two distinct inputs per node, DARTS ops, full concat
    raw = model.sample_ops(64, torch.Generator().manual_seed(2))
    cards = torch.tensor([len(c) for c in space.choices])
    assert bool((raw < cards).all())  # the chain itself never leaves each variable's range


def test_soft_costs_are_exact_on_genotypes(space):
    soft = space.soft_costs(SKELETON)
    genotypes = space.sample(np.random.default_rng(4), 40)
    x = one_hot_ops(space, genotypes).double()
    for metric in ("flops", "params"):
        exact = torch.tensor([darts_costs(g, SKELETON)[metric] for g in genotypes], dtype=torch.float64)
        assert torch.allclose(soft[metric](x), exact, rtol=0, atol=1e-12)


def test_guidance_on_exact_flops_lowers_them(space, generator):
    model, _ = generator
    goal = parse_objectives("flops:min")
    unguided = generate(model, goal, [], 40, None, SKELETON, guidance=0.0, seed=0)["cells"]
    guided = generate(model, goal, [], 40, None, SKELETON, guidance=30.0, seed=0)["cells"]
    mean = lambda rows: np.mean([r["flops"] for r in rows])  # noqa: E731
    assert mean(guided) < 0.8 * mean(unguided)
    for row in guided:  # the reported FLOPs are the genotype's exact ones
        assert row["flops"] == pytest.approx(darts_costs(space.parse(row["arch"]), SKELETON)["flops"])


def test_predictor_learns_from_measurements_and_round_trips(space, tmp_path):
    rng = np.random.default_rng(5)
    train, test = space.sample(rng, 80), space.sample(rng, 40)
    target = lambda gs: np.array([darts_costs(g, SKELETON)["params"] for g in gs])  # noqa: E731
    predictor = GNNPredictor(space, ["params"], GNNConfig(hidden=32, layers=2, ensemble=2, steps=150, device="cpu"))
    predictor.fit(train, {"params": target(train)})
    tau = kendalltau(predictor.predict(test)["params"].mean, target(test)).statistic
    assert tau > 0.5
    loaded = load_predictor(save_predictor(predictor, tmp_path / "p.pt"))
    assert np.allclose(loaded.predict(test)["params"].mean, predictor.predict(test)["params"].mean)


def test_ours_searches_the_darts_space(space, generator):
    _, path = generator
    oracle = ScoreOracle()
    options = {"generator": str(path), "pool": 6, "n_init": 3, "fit_steps": 20, "guidance": 5}
    context = SearchContext(space, parse_objectives("accuracy:max"), seed=0, costs=oracle.cost,
                            network=oracle.network, dataset="digits", options=options)
    run = run_search(make_searcher("ours", context), oracle, 6, method="ours", seed=0)
    assert len(run.history) == 6 == oracle.queries
    for row in run.history:
        space.parse(row["arch"])


def test_predictor_fit_command_measures_darts_genotypes(tmp_path, capsys):
    """`gennas predictor fit --from-oracle --space darts`: real training of a few genotypes, then a fitted head."""
    import json

    from gennas.cli import main

    out = tmp_path / "darts_acc.pt"
    assert main(["predictor", "fit", "--metric", "accuracy@digits", "--from-oracle", "--space", "darts",
                 "--n-cells", "2", "--epochs", "1", "--channels", "4", "--steps", "20", "--ensemble", "1",
                 "--out", str(out), "--json"]) == 0
    json.loads(capsys.readouterr().out)
    predictor = load_predictor(out)
    assert type(predictor.space).__name__ == "DartsSpace"
    import csv

    with out.with_suffix(".csv").open() as handle:
        rows = [row["arch"] for row in csv.DictReader(handle)]  # the compact form's commas are quoted
    assert len(rows) == 2 and all(get_space("darts").parse(arch) for arch in rows)
