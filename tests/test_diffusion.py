import json

import numpy as np
import pytest
import torch

from diffusion.guidance import MetricModel, ParetoGuide, generate
from diffusion.model import CellDiffusion, DiffusionConfig
from gennas.objectives import parse_constraint, parse_objectives
from gennas.space.noise import OpNoiseSchedule
from gennas.cli import main
from gennas.errors import GennasError
from gennas.metrics import cell_costs
from gennas.nn import NetworkConfig
from gennas.space import Cell, get_space, nb201_space

TINY = DiffusionConfig(hidden=32, layers=2, steps=120, batch_size=128, sample_steps=12, seed=0)


@pytest.fixture(scope="module")
def nb201_model():
    space = nb201_space()
    model = CellDiffusion(space, TINY)
    losses = model.fit(list(space.enumerate()))
    return model, losses


def test_schedule_endpoints():
    s = OpNoiseSchedule(5)
    assert float(s.alpha_bar(torch.tensor(0.0))) == pytest.approx(1.0)
    assert float(s.alpha_bar(torch.tensor(1.0))) == pytest.approx(0.0, abs=1e-6)
    x0 = torch.nn.functional.one_hot(torch.tensor([[3, 1]]), 5).float()
    assert torch.allclose(s.marginal(x0, torch.tensor([1.0])), torch.full((1, 2, 5), 0.2), atol=1e-5)


def test_training_loss_drops_on_a_small_set():
    space = nb201_space()
    cells = space.sample(np.random.default_rng(0), 64)
    losses = CellDiffusion(space, TINY).fit(cells)
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.1


def test_samples_are_valid_canonical_distinct_and_seeded(nb201_model):
    model, _ = nb201_model
    cells = model.sample(60, seed=3)
    assert len(cells) == 60 and all(model.space.contains(c) for c in cells)
    assert len({c.canonical for c in cells}) == 60
    assert [c.to_string() for c in model.sample(60, seed=3)] == [c.to_string() for c in cells]
    assert [c.to_string() for c in model.sample(60, seed=4)] != [c.to_string() for c in cells]


def test_large_space_samples_are_connected():
    space = get_space("dag6")
    model = CellDiffusion(space, TINY)
    model.fit(space.sample(np.random.default_rng(0), 200))
    cells = model.sample(30, seed=0)
    assert len(cells) == 30 and all(c.n_nodes == 6 and c.is_connected() for c in cells)


def test_flops_guidance_lowers_flops(nb201_model):
    model, _ = nb201_model
    net = NetworkConfig()
    metric_model = MetricModel(None, net, None, model.space.ops, model.space.num_edges)
    guide = ParetoGuide(metric_model, parse_objectives("flops:min"), [])
    plain = model.sample(80, seed=1)
    guided = model.sample(80, seed=1, guide=guide, scale=2.0)
    mean = lambda cells: np.mean([cell_costs(c, net)["flops"] for c in cells])  # noqa: E731
    assert mean(guided) < 0.8 * mean(plain)


def test_a_collapsed_chain_stops_early_instead_of_resampling(nb201_model, monkeypatch):
    """Guidance that pins every draw to one cell: sampling stops after the chain that only repeats it."""
    model, _ = nb201_model
    target = torch.nn.functional.one_hot(torch.tensor(model.space.encode(model.sample(1, seed=0)[0])), 5).float()
    chains = []
    original = model.sample_ops
    monkeypatch.setattr(model, "sample_ops", lambda *a, **k: chains.append(1) or original(*a, **k))
    pinned = model.sample(48, seed=0, guide=lambda x, t: (x * target).sum((1, 2)), scale=1000.0)
    assert len(pinned) < 48 and len(chains) <= 2  # before the stop: up to 20 chains for the missing cells
    chains.clear()
    assert len(model.sample(48, seed=0)) == 48 and len(chains) >= 1  # a diverse chain still fills the request


def test_linear_cost_model_is_exact_on_hard_cells(rng):
    space = get_space("dag5")
    net = NetworkConfig(channels=8, cells_per_stage=2, image_size=16)
    model = MetricModel(None, net, None, space.ops, space.num_edges)
    cells = space.sample(rng, 10)
    x = torch.nn.functional.one_hot(torch.from_numpy(np.stack([space.encode(c) for c in cells])), 5).float()
    values = model(x, torch.zeros(10), ["flops", "params"]).numpy()
    truth = np.array([[cell_costs(c, net)["flops"], cell_costs(c, net)["params"]] for c in cells])
    assert np.allclose(values, truth, rtol=1e-6)  # float32 arithmetic on exact coefficients


def test_constraints_hold_after_filtering(nb201_model):
    model, _ = nb201_model
    result = generate(model, parse_objectives("flops:min,params:min"), [parse_constraint("flops<=40")], 25,
                      None, NetworkConfig(), guidance=1.0, seed=0)
    assert len(result["cells"]) == 25
    assert all(r["flops"] <= 40 for r in result["cells"])
    assert 0 < result["satisfied_before_filter"] <= 1
    assert any(r["pareto"] for r in result["cells"])


@pytest.mark.parametrize("spec, fragment", [
    ("flops<100", "malformed constraint"),
    ("zzz<=3", "unknown metric 'zzz'"),
    ("flops<=abc", "malformed constraint"),
])
def test_bad_constraints(spec, fragment):
    with pytest.raises(GennasError, match=fragment):
        parse_constraint(spec)


def test_bad_objectives():
    with pytest.raises(GennasError, match="unknown metric 'speed'"):
        parse_objectives("speed:max")
    with pytest.raises(GennasError, match="direction must be"):
        parse_objectives("flops:down")
    with pytest.raises(GennasError, match="twice"):
        parse_objectives("flops:min,flops:max")


def test_generate_cli_contract(nb201_model, tmp_path, capsys):
    model, _ = nb201_model
    path = model.save(tmp_path / "g.pt")
    assert main(["generate", "--space", "nb201", "--objectives", "accuracy:max,flops:min", "--n", "8", "--json",
                 "--generator", str(path), "--dataset", "cifar100", "--constraint", "flops<=120"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8
    for row in rows:
        Cell.from_string(row["arch"])
        assert {"accuracy", "flops", "pareto"} <= set(row) and row["flops"] <= 120
    assert main(["generate", "--space", "nb201", "--objectives", "latency_ms:min", "--n", "3", "--generator",
                 str(path)]) == 2
    assert "no predictor head for 'latency_ms'" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert main(["generate", "--n", "3", "--generator", str(tmp_path / "bad.pt")]) == 2
    assert "corrupt" in capsys.readouterr().err
