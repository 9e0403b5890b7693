"""The rest of the weight-sharing family on real data (digits), on a tiny supernet.

SNAS, PC-DARTS, DrNAS, SDARTS-RS/ADV, P-DARTS, DARTS-PT, RSPS, SETN, ENAS, ProxylessNAS, in
the pattern of test_weightsharing.py (where the bit-for-bit resume test runs for every
method): each method's α (or policy) moves and stays finite, the derived cell belongs to
the space, and each method's own mechanism is checked where it acts (partial channels,
soft samples, pathwise Dirichlet gradients, PGD ascent, pruning, perturbation selection,
single-path training, REINFORCE, BinaryConnect gates), then the CLI.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gennas.cli import main
from gennas.data import load_dataset
from gennas.errors import GennasError
from gennas.search import REGISTRY
from gennas.search.wallclock import CONTRACT_KEYS
from gennas.space import get_space
from gennas.weightsharing import WeightSharingConfig, search_cell
from gennas.weightsharing.drnas import anchor_kl, dirichlet_mean, dirichlet_weights
from gennas.weightsharing.mixed import MixedOp, build_supernet
from gennas.weightsharing.partial import PartialMixedOp, PartialSuperNetwork, channel_shuffle, edge_normalisation
from gennas.weightsharing.oneshot import sample_cells, shared_weight_accuracy, uniform_draw, uniform_path
from gennas.weightsharing.sdarts import adversarial_weights, clip_to_simplex, random_smoothing
from gennas.weightsharing.snas import exponential_temperature, op_costs

TINY = dict(channels=4, cells_per_stage=1, batch_size=32, max_steps=3, device="cpu")
NEW = ("snas", "pcdarts", "drnas", "sdarts-rs", "sdarts-adv", "rsps", "setn", "enas", "pdarts", "dartspt", "proxyless")
SELECTING = ("rsps", "setn", "enas")  # the result is a scored cell, 'none' edges and all


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _initial_alpha(space, splits, config):
    torch.manual_seed(config.seed)
    return build_supernet(space, splits, config.channels, config.cells_per_stage,
                          config.algorithm.network(config.options)).alpha.detach().clone()


@pytest.mark.parametrize("space_name", ["nb201", "dag5"])
@pytest.mark.parametrize("method", NEW)
def test_alpha_moves_stays_finite_and_derives_a_cell_of_the_space(digits, method, space_name):
    space = get_space(space_name)
    config = WeightSharingConfig(method=method, epochs=2, **TINY)
    result = search_cell(digits, space, config)
    before, after = _initial_alpha(space, digits, config), torch.tensor(result.alpha)
    if method in ("rsps", "enas"):
        assert torch.allclose(before, after, atol=1e-6)  # no α to train: the policy is the selection (and ENAS's controller)
    else:
        assert not torch.allclose(before, after, atol=1e-6) and torch.isfinite(after).all()
    assert len(result.trajectory) == 2 and result.label == method
    for record in result.trajectory:
        assert np.isfinite(record["train_loss"])
        assert (record["arch_loss"] is None) == (method == "rsps" or bool(record.get("fine_tune")))
        if method in SELECTING:
            assert record["candidates"] == 20 and record["best_shared_accuracy"] >= record["mean_shared_accuracy"]
        assert sum(record["op_mass"].values()) == pytest.approx(1.0, abs=1e-3)
        assert space.contains(space.parse(record["arch"]))
    assert space.contains(result.cell) and result.cell.to_string() == result.trajectory[-1]["arch"]
    if method not in SELECTING:
        assert "none" not in result.cell.ops  # the NB201 convention of α-derived cells


def test_pcdarts_mixed_op_sees_one_kth_of_the_channels(digits):
    space = get_space("nb201")
    torch.manual_seed(0)
    model = build_supernet(space, digits, 8, 1, lambda *a: PartialSuperNetwork(*a, k=4))
    seen = []
    for module in model.modules():
        if isinstance(module, PartialMixedOp):
            module.inner.register_forward_hook(lambda m, args, out: seen.append((args[0].shape[1], out.shape[1])))
            module.register_forward_hook(lambda m, args, out: seen.append(("edge", args[0].shape[1], out.shape[1])))
    model(digits.train.tensors[0][:4])
    inner = [s for s in seen if s[0] != "edge"]
    edges = [s for s in seen if s[0] == "edge"]
    assert len(edges) == 3 * space.num_edges  # one search cell per stage
    # Stage channels 8, 16, 32: the mixed op runs on 2, 4, 8 of them and the edge keeps them all.
    assert {c_in for c_in, _ in inner} == {2, 4, 8} and all(c_in == c_out for c_in, c_out in inner)
    assert all(4 * c_mixed == c_edge_in == c_edge_out for (c_mixed, _), (_, c_edge_in, c_edge_out) in zip(inner, edges))
    assert model.layers[0].mixed[0].inner.candidates["nor_conv_3x3"][1].in_channels == 2


def test_channel_shuffle_interleaves_the_groups_and_edge_normalisation_sums_to_one_per_node():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 4).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    beta = torch.randn(6)
    scale = edge_normalisation(beta, 4)  # edges 0->1 | 0->2 1->2 | 0->3 1->3 2->3
    assert scale[0] == 1 and float(scale[1:3].sum()) == pytest.approx(1) and float(scale[3:].sum()) == pytest.approx(1)
    assert torch.allclose(scale[3:], torch.softmax(beta[3:], 0))


def test_pcdarts_learns_beta_and_logs_the_edge_normalisation(digits):
    space = get_space("nb201")
    result = search_cell(digits, space, WeightSharingConfig(method="pcdarts", epochs=2, **TINY))
    scale = result.trajectory[-1]["edge_scale"]
    assert scale["0->1"] == pytest.approx(1.0)
    assert sum(scale[e] for e in ("0->3", "1->3", "2->3")) == pytest.approx(1.0, abs=1e-4)
    assert len({round(scale[e], 5) for e in ("0->3", "1->3", "2->3")}) > 1  # β moved off its near-uniform start
    with pytest.raises(GennasError, match="partial_k=3 must divide channels=4"):
        WeightSharingConfig(method="pcdarts", options={"partial_k": 3}, **TINY)


def test_snas_forward_is_soft_runs_every_op_and_anneals_exponentially(digits):
    assert exponential_temperature(0, 5, 1.0, 0.01) == 1.0
    assert exponential_temperature(2, 5, 1.0, 0.01) == pytest.approx(0.1)
    assert exponential_temperature(4, 5, 1.0, 0.01) == pytest.approx(0.01)
    result = search_cell(digits, get_space("nb201"), WeightSharingConfig(method="snas", epochs=3, **TINY,
                                                                         options={"tau_start": 2.0, "tau_end": 0.5}))
    assert [r["tau"] for r in result.trajectory] == pytest.approx([2.0, 1.0, 0.5])
    from gennas.weightsharing.gdas import gumbel_softmax

    sample = gumbel_softmax(torch.zeros(6, 5), 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(sample.sum(-1), torch.ones(6)) and ((sample > 0) & (sample < 1)).all()  # not one-hot


def test_snas_resource_penalty_moves_mass_off_the_convolutions(digits):
    space = get_space("nb201")
    torch.manual_seed(0)
    costs = op_costs(build_supernet(space, digits, 4, 1), space.ops).tolist()
    assert costs[space.ops.index("nor_conv_3x3")] == 1.0 and costs[space.ops.index("skip_connect")] == 0.0
    c = 4  # conv C²·k² weights plus BatchNorm's 2C
    assert costs[space.ops.index("nor_conv_1x1")] == pytest.approx((c * c + 2 * c) / (9 * c * c + 2 * c))

    def conv_mass(penalty):
        config = WeightSharingConfig(method="snas", epochs=3, arch_lr=0.03, **{**TINY, "max_steps": 5},
                                     options={"resource_penalty": penalty})  # a large α lr: 15 steps show it
        mass = search_cell(digits, space, config).trajectory[-1]["op_mass"]
        return mass["nor_conv_3x3"] + mass["nor_conv_1x1"]

    assert conv_mass(50.0) < conv_mass(0.0) - 0.05


def test_drnas_gradient_is_pathwise_and_its_regulariser_anchors_at_dir_one():
    alpha = torch.zeros(6, 5, requires_grad=True)
    assert float(anchor_kl(alpha.detach())) == pytest.approx(0.0, abs=1e-6)  # ELU(0) + 1 = 1: the anchor itself
    assert float(anchor_kl(torch.full((6, 5), 2.0))) > 0
    torch.manual_seed(0)
    weights, chosen = dirichlet_weights(alpha)
    assert chosen is None and torch.allclose(weights.sum(-1), torch.ones(6))
    (weights[:, 0] * 3.0).sum().backward()  # through rsample, no score function
    assert torch.isfinite(alpha.grad).all() and (alpha.grad[:, 0] != 0).all()
    mean = dirichlet_mean(torch.tensor([[0.0, 1.0, -0.5]]))
    elu = float(np.exp(-0.5))  # ELU(-0.5) + 1
    assert torch.allclose(mean, torch.tensor([[1.0, 2.0, elu]]) / (3.0 + elu))


def test_drnas_logs_the_dirichlet_mean(digits):
    space = get_space("nb201")
    result = search_cell(digits, space, WeightSharingConfig(method="drnas", epochs=1, **TINY))
    logged = np.array([list(e.values()) for e in result.trajectory[-1]["alpha_softmax"].values()])
    expected = dirichlet_mean(torch.tensor(result.alpha)).numpy()
    assert np.allclose(logged, expected, atol=1e-4)


def test_sdarts_perturbations_stay_on_the_simplex_and_pgd_raises_the_loss(digits):
    w = torch.tensor([[0.9, 0.1, 0.0], [-0.2, -0.1, -0.3]])
    clipped = clip_to_simplex(w)
    assert torch.allclose(clipped.sum(-1), torch.ones(2)) and clipped[1].tolist() == [0.0, 1.0, 0.0]
    generator = torch.Generator().manual_seed(0)
    base = torch.softmax(torch.randn(6, 5), -1)
    smoothed = random_smoothing(base, 0.1, generator)
    assert torch.allclose(smoothed.sum(-1), torch.ones(6)) and not torch.allclose(smoothed, base)
    space = get_space("nb201")
    torch.manual_seed(0)
    model = build_supernet(space, digits, 4, 1).eval()
    x, y = digits.train.tensors[0][:64], digits.train.tensors[1][:64]
    loss_of = lambda weights: F.cross_entropy(model(x, weights), y)  # noqa: E731
    base = torch.softmax(model.alpha.detach(), -1)
    worst = adversarial_weights(loss_of, base, 0.3, 7, generator)
    assert torch.allclose(worst.sum(-1), torch.ones(6), atol=1e-6)
    with torch.no_grad():
        assert float(loss_of(worst)) > float(loss_of(base)) + 1e-3
        assert float(loss_of(worst)) > float(loss_of(random_smoothing(base, 0.3, generator)))


def test_rsps_trains_one_path_per_step_and_scores_without_changing_the_supernet(digits):
    space = get_space("nb201")
    torch.manual_seed(0)
    model = build_supernet(space, digits, 4, 1)
    generator = torch.Generator().manual_seed(0)
    weights, chosen = uniform_path(model.alpha, generator)
    model(digits.train.tensors[0][:8], weights, chosen).sum().backward()
    for e, mixed in enumerate(model.layers[0].mixed):
        for name, op in mixed.candidates.items():
            grads = [p.grad for p in op.parameters()]
            assert all(g is not None for g in grads) == (name == space.ops[chosen[e]]) or not grads
    cells = sample_cells(space, 5, uniform_draw(space, generator))
    assert len(cells) == 5 and all(space.contains(c) for c in cells)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = digits.val.tensors[0], digits.val.tensors[1]
    scores = shared_weight_accuracy(model, cells, x, y)
    assert all(0 <= s <= 100 for s in scores)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert shared_weight_accuracy(model, cells, x, y) == scores


def test_rsps_result_is_its_best_scored_candidate(digits):
    result = search_cell(digits, get_space("nb201"), WeightSharingConfig(method="rsps", epochs=2, **TINY,
                                                                         options={"candidates": 7}))
    last = result.trajectory[-1]
    assert last["candidates"] == 7 and last["best_shared_accuracy"] >= last["mean_shared_accuracy"]
    policy = np.array([list(e.values()) for e in last["alpha_softmax"].values()])
    ops = get_space("nb201").ops
    assert [ops[i] for i in policy.argmax(1)] == list(result.cell.ops) and (policy.sum(1) == 1).all()  # one-hot


def test_enas_controller_learns_from_reward_and_keeps_a_baseline(digits):
    from gennas.weightsharing.enas import Controller

    torch.manual_seed(0)
    controller = Controller(6, 5)
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(controller.parameters(), lr=0.05)
    for _ in range(60):  # reward 1 for op 2 on edge 0, else 0: REINFORCE must find it
        ops, log_p, entropy, _ = controller.sample(generator)
        loss = controller.reinforce_loss(log_p, entropy, float(ops[0] == 2), 0.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    probs = controller.sample(greedy=True)[3].detach()
    assert probs.shape == (6, 5) and float(probs[0, 2]) > 0.6
    assert 0 < float(controller.baseline) < 1 and bool(controller.baseline_set)
    result = search_cell(digits, get_space("nb201"), WeightSharingConfig(method="enas", epochs=2, **TINY))
    start = dict(result.trajectory[0]["alpha_softmax"]["0->1"])
    assert start != result.trajectory[1]["alpha_softmax"]["0->1"]  # the policy moved
    assert all(np.isfinite(r["arch_loss"]) for r in result.trajectory)


def test_setn_draws_candidates_from_softmax_alpha(digits):
    from gennas.weightsharing.oneshot import edgewise_draw

    space = get_space("nb201")
    probabilities = torch.zeros(space.num_edges, len(space.ops))
    probabilities[:, space.ops.index("nor_conv_3x3")] = 1.0
    cells = sample_cells(space, 3, edgewise_draw(probabilities, torch.Generator().manual_seed(0)))
    assert all(set(c.ops) == {"nor_conv_3x3"} for c in cells)


def test_pdarts_deepens_prunes_and_stops_computing_pruned_ops(digits):
    from gennas.weightsharing.pdarts import PrunableMixedOp

    space = get_space("nb201")
    config = WeightSharingConfig(method="pdarts", epochs=3, **{**TINY, "cells_per_stage": 2})
    result = search_cell(digits, space, config)
    assert [(r["stage"], r["depth"]) for r in result.trajectory] == [(0, 1), (1, 2), (2, 2)]
    assert [r.get("pruned_to") for r in result.trajectory] == [4, 3, None]
    assert [r["skip_dropout"] for r in result.trajectory] == pytest.approx([0.0, 0.15, 0.3])
    last = result.trajectory[-1]["alpha_softmax"]
    assert all(sum(v > 0 for v in edge.values()) == 3 for edge in last.values())  # 5 ops -> 4 -> 3 per edge
    torch.manual_seed(0)
    model = build_supernet(space, digits, 4, 2, config.algorithm.network(config.options))
    model.prune(2)
    calls = []
    for module in model.modules():
        if isinstance(module, PrunableMixedOp):
            for name, op in module.candidates.items():
                op.register_forward_hook(lambda *_, name=name: calls.append(name))
    model.configure(1, 0.0)
    model(digits.train.tensors[0][:4], torch.softmax(model.alpha, -1))
    active = model.active()
    assert (active.sum(-1) == 2).all() and len(calls) == sum(  # exactly the active ops other than 'none'
        3 * int(active[e, k]) for e in range(6) for k in range(5) if space.ops[k] != "none")


def test_pdarts_caps_skip_connections_and_drops_skip_outputs(digits):
    from gennas.weightsharing.pdarts import PrunableMixedOp, capped_cell

    space = get_space("nb201")
    p = torch.full((6, 5), 0.1)
    p[:, space.ops.index("skip_connect")] = torch.tensor([0.6, 0.5, 0.7, 0.55, 0.65, 0.4])
    cell = capped_cell(p, space, 2)
    assert [op for op in cell.ops].count("skip_connect") == 2
    assert cell.ops[2] == cell.ops[4] == "skip_connect"  # the two strongest skip edges stay
    op = PrunableMixedOp(space.ops, 4).train()
    op.skip_dropout.p = 0.5
    weights = torch.zeros(5)
    weights[space.ops.index("skip_connect")] = 1.0
    torch.manual_seed(0)
    out = op(torch.ones(2, 4, 3, 3), weights)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # inverted dropout on the skip output


def test_dartspt_decides_every_edge_by_perturbation_with_alpha_frozen_meanwhile(digits):
    space = get_space("nb201")
    result = search_cell(digits, space, WeightSharingConfig(method="dartspt", epochs=4, **TINY))
    traj = result.trajectory
    assert [r["fine_tune"] for r in traj] == [0, 0, 1, 1] and [r["arch_loss"] is None for r in traj] == [0, 0, 1, 1]
    decided = {edge: drops for r in traj for edge, drops in r.get("decided", {}).items()}
    assert len(decided) == space.num_edges and "decided" not in traj[0]
    ops = dict(zip([f"{s}->{d}" for s, d in result.cell.edges], result.cell.ops))
    for edge, drops in decided.items():
        assert ops[edge] in drops and drops[ops[edge]] == min(drops.values())  # the op whose removal hurt most
    assert all(max(e.values()) == 1.0 for e in traj[-1]["alpha_softmax"].values())  # every edge one-hot at the end
    single = search_cell(digits, space, WeightSharingConfig(method="dartspt", epochs=1, **TINY))
    assert len(single.trajectory[0]["decided"]) == space.num_edges  # one epoch: all decided at its end


def _op_calls(model):
    calls = []
    for module in model.modules():
        if isinstance(module, MixedOp):
            for name, op in module.candidates.items():
                op.register_forward_hook(lambda *_, m=module, name=name: calls.append((id(m), name)))
    return calls


def test_proxyless_keeps_one_path_per_weight_step_and_two_per_alpha_step(digits):
    from gennas.weightsharing.proxyless import GatedSuperNetwork, sample_pairs, sample_path

    space = get_space("nb201")
    torch.manual_seed(0)
    model = build_supernet(space, digits, 4, 1, GatedSuperNetwork)
    calls = _op_calls(model)
    generator = torch.Generator().manual_seed(0)
    x = digits.train.tensors[0][:8]
    for _ in range(3):
        calls.clear()
        weights, chosen = sample_path(model.alpha, generator)
        model(x, weights, chosen)
        built = [k for k in chosen if space.ops[k] != "none"]
        assert len(calls) == 3 * len(built)  # one op per edge and cell at most: one path in memory
        assert len({m for m, _ in calls}) == len(calls)
        calls.clear()
        pairs = sample_pairs(model.alpha, generator)
        assert (pairs[:, 0] != pairs[:, 1]).all()
        gates = torch.zeros_like(model.alpha).scatter_(-1, pairs[:, :1], 1.0).requires_grad_(True)
        model(x, gates, [tuple(p) for p in pairs.tolist()]).sum().backward()
        assert len(calls) <= 3 * 2 * space.num_edges
        nonzero = gates.grad != 0
        assert not nonzero.scatter(-1, pairs, False).any()  # gate gradients only on the sampled pair


def test_proxyless_binaryconnect_gradient_pair_rescaling_and_latency_loss(digits):
    from gennas.weightsharing.proxyless import (GatedSuperNetwork, expected_latency, keep_pair_mass,
                                                pair_surrogate)

    alpha = torch.randn(3, 5, requires_grad=True)
    pairs = torch.tensor([[0, 2], [4, 1], [3, 0]])
    gate_grad = torch.randn(3, 5)
    pair_surrogate(alpha, pairs, gate_grad).backward()
    for e, (a, b) in enumerate(pairs.tolist()):
        q = torch.softmax(alpha.detach()[e, [a, b]], 0)
        expected = [sum(gate_grad[e, j] * q[jj] * (float(i == j) - q[ii]) for jj, j in enumerate((a, b)))
                    for ii, i in enumerate((a, b))]
        assert torch.allclose(alpha.grad[e, [a, b]], torch.stack(expected), atol=1e-6)
        assert (alpha.grad[e, [k for k in range(5) if k not in (a, b)]] == 0).all()
    before = alpha.detach().clone()
    moved = before + torch.randn(3, 5)
    keep_pair_mass(moved, before, pairs)
    assert torch.allclose(torch.logsumexp(moved.gather(-1, pairs), -1), torch.logsumexp(before.gather(-1, pairs), -1))
    space = get_space("nb201")
    torch.manual_seed(0)
    table = build_supernet(space, digits, 8, 1, GatedSuperNetwork).op_latency
    ops = space.ops
    assert table[ops.index("none")] == 0 and table[ops.index("nor_conv_3x3")] > table[ops.index("skip_connect")]
    assert 0 < float(expected_latency(torch.zeros(6, 5), table)) < 1

    def conv_mass(weight):
        config = WeightSharingConfig(method="proxyless", epochs=3, arch_lr=0.03, **{**TINY, "max_steps": 5},
                                     options={"latency_weight": weight})
        mass = search_cell(digits, space, config).trajectory[-1]["op_mass"]
        return mass["nor_conv_3x3"] + mass["nor_conv_1x1"]

    assert conv_mass(1.0) < conv_mass(0.0) - 0.05


def test_registry_and_cli_names():
    assert set(NEW) <= set(REGISTRY) and all(REGISTRY[m].kind == "weight-sharing" for m in NEW)
    assert set(REGISTRY["sdarts-adv"].options) == {"epsilon", "adv_steps"}


def test_compare_runs_every_new_method_with_real_retrained_figures(tmp_path):
    """The wall-clock comparison (the CLI form is tested in test_compare_wallclock.py) on a small skeleton."""
    from gennas.search.wallclock import WallClockSpec, run_wallclock

    spec = WallClockSpec(dataset="digits", minutes=0.03, epochs=1, device="cpu", channels=4, cells_per_stage=1,
                         max_train=600, options={"candidates": 4, "adv_steps": 2})
    rows = run_wallclock(spec, list(NEW), tmp_path / "cmp")["rows"]
    assert [r["method"] for r in rows] == list(NEW)
    for row in rows:
        assert set(CONTRACT_KEYS) <= set(row) and row["epochs"] >= 1 and row["label"] == row["method"]
        assert 0 < row["accuracy"] <= 100 and 0 <= row["pgd_accuracy"] <= row["accuracy"] + 1e-9
        assert row["flops"] > 0 and get_space("nb201").contains(get_space("nb201").parse(row["arch"]))


@pytest.mark.parametrize("argv,message", [
    (["--methods", "pcdarts", "--option", "partial_k=0"], "partial_k must be at least 1"),
    (["--methods", "pcdarts", "--option", "partial_k=2.5"], "partial_k must be a whole number"),
    (["--methods", "snas", "--option", "tau_end=5"], "tau_start must be >= tau_end"),
    (["--methods", "snas", "--option", "resource_penalty=-1"], "resource_penalty must be at least 0"),
    (["--methods", "drnas", "--option", "dirichlet_reg=nan"], "dirichlet_reg must be a finite number"),
    (["--methods", "sdarts-adv", "--option", "adv_steps=0"], "adv_steps must be at least 1"),
    (["--methods", "sdarts-rs", "--option", "epsilon=x"], "epsilon must be a finite number"),
    (["--methods", "rsps", "--option", "candidates=0"], "candidates must be at least 1"),
    (["--methods", "rsps,darts", "--option", "partial_k=4"], "unknown option for rsps, darts"),
])
def test_bad_option_values_give_one_clear_error(capsys, argv, message):
    assert main(["compare", *argv, "--budget-minutes", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("error:") == 1


def test_bad_config_values_through_the_api():
    with pytest.raises(GennasError, match="snas has no option 'partial_k'"):
        WeightSharingConfig(method="snas", options={"partial_k": 2})
    with pytest.raises(GennasError, match="SNAS is first order only"):
        WeightSharingConfig(method="snas", order=2)
    assert WeightSharingConfig(method="drnas").options == {"dirichlet_reg": 1e-3}


def test_step_memory_counts_what_autograd_keeps_and_ranks_the_methods(digits):
    from gennas.weightsharing.footprint import SavedTensorMeter, search_step_memory

    meter = SavedTensorMeter()
    x = torch.randn(1000, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        y = (x * x).sum()  # saves x twice: one storage, counted once
    assert meter.peak == 4000 and meter.live == 4000
    y.backward()
    del y
    assert meter.live == 0
    space, small = get_space("nb201"), dict(channels=8, cells_per_stage=1, batch_size=32, device="cpu")
    peak = {m: search_step_memory(digits, space, WeightSharingConfig(method=m, **small))["peak_saved_bytes"]
            for m in ("darts", "pcdarts", "gdas")}
    assert peak["pcdarts"] < 0.7 * peak["darts"] and peak["gdas"] < 0.7 * peak["darts"]
