"""DARTS and GDAS on real data (digits), on a tiny supernet so the whole file runs in seconds (resume: every method)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from gennas.data import load_dataset
from gennas.errors import GennasError
from gennas.space import get_space
from gennas.weightsharing import WeightSharingConfig, derive_cell, search_cell
from gennas.weightsharing.darts import unrolled_arch_gradient
from gennas.weightsharing.gdas import gumbel_hard_weights, temperature
from gennas.weightsharing.mixed import build_supernet
from gennas.weightsharing.search import ALGORITHMS

TINY = dict(channels=4, cells_per_stage=1, batch_size=32, max_steps=3, device="cpu")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _initial_alpha(space, splits, config):
    torch.manual_seed(config.seed)
    return build_supernet(space, splits, config.channels, config.cells_per_stage).alpha.detach().clone()


@pytest.mark.parametrize("method,order", [("darts", 1), ("darts", 2), ("gdas", 1)])
def test_steps_move_alpha_and_keep_weights_finite(digits, method, order):
    space = get_space("nb201")
    config = WeightSharingConfig(method=method, order=order, epochs=2, **TINY)
    result = search_cell(digits, space, config)
    before = _initial_alpha(space, digits, config)
    after = torch.tensor(result.alpha)
    assert not torch.allclose(before, after, atol=1e-6)  # α really moved
    assert torch.isfinite(after).all()
    assert len(result.trajectory) == 2 and result.stopped == "epochs"
    for record in result.trajectory:
        assert np.isfinite(record["train_loss"]) and np.isfinite(record["arch_loss"])
        assert set(record["alpha_softmax"]) == {f"{s}->{d}" for s, d in result.cell.edges}
        assert sum(record["op_mass"].values()) == pytest.approx(1.0, abs=1e-3)
    assert space.contains(result.cell) and "none" not in result.cell.ops
    if method == "gdas":
        assert result.trajectory[0]["tau"] == pytest.approx(10.0) and result.trajectory[1]["tau"] == pytest.approx(0.1)


def test_second_order_gradient_matches_exact_unrolled_gradient(digits):
    """The finite-difference Hessian-vector product agrees with autograd through the virtual step.

    In float64 with a small radius: ReLU kinks make the paper's radius (0.01) a coarse
    approximation on a network this tiny, which is a property of DARTS, not of the code.
    """
    space = get_space("nb201")
    torch.manual_seed(0)
    model = build_supernet(space, digits, 2, 1).double()
    x, y = (t.double() if t.is_floating_point() else t for t in digits.train.tensors)
    xt, yt, xv, yv = x[:16], y[:16], x[16:32], y[16:32]
    with torch.no_grad():
        model.alpha.normal_(0, 0.5)
    params = model.weight_parameters()
    names = [n for n, _ in model.named_parameters() if n != "alpha"]
    xi, wd = 0.05, 3e-4

    def loss(batch_x, batch_y, overrides=None):
        out = functional_call(model, overrides, (batch_x,)) if overrides else model(batch_x)
        return F.cross_entropy(out, batch_y)

    grad, _ = unrolled_arch_gradient(model.alpha, params, lambda: loss(xt, yt), lambda: loss(xv, yv),
                                     xi=xi, weight_decay=wd, fd_radius=1e-6)
    g = torch.autograd.grad(loss(xt, yt), params, create_graph=True)
    virtual = {n: p - xi * (gi + wd * p) for n, p, gi in zip(names, params, g)}
    exact = torch.autograd.grad(loss(xv, yv, {**virtual, "alpha": model.alpha}), model.alpha)[0]
    first_order = torch.autograd.grad(loss(xv, yv), model.alpha)[0]
    assert torch.allclose(grad, exact, rtol=1e-5, atol=1e-9)
    # ... and the second-order term is not negligible here, so the check has teeth.
    assert not torch.allclose(first_order, exact, rtol=1e-3, atol=1e-7)


def test_unrolled_gradient_leaves_weights_untouched(digits):
    space = get_space("nb201")
    torch.manual_seed(0)
    model = build_supernet(space, digits, 2, 1)
    x, y = digits.train.tensors
    before = [p.detach().clone() for p in model.weight_parameters()]
    batch_loss = lambda: F.cross_entropy(model(x[:8]), y[:8])  # noqa: E731
    unrolled_arch_gradient(model.alpha, model.weight_parameters(), batch_loss, batch_loss, xi=0.1, momentum=0.9,
                           momentum_buffers=[torch.ones_like(p) for p in before])
    assert all(torch.equal(a, b) for a, b in zip(before, model.weight_parameters()))


def test_derived_cells_are_valid_in_both_spaces(rng):
    for name in ("nb201", "dag6"):
        space = get_space(name)
        for _ in range(20):
            alpha = rng.normal(size=(space.num_edges, len(space.ops)))
            alpha[:, space.ops.index("none")] += 5.0  # 'none' dominating must still give a valid cell
            cell = derive_cell(alpha, space)
            assert space.contains(cell) and "none" not in cell.ops
    with pytest.raises(GennasError, match="shape"):
        derive_cell(np.zeros((3, 5)), get_space("nb201"))


def test_gdas_forward_computes_exactly_one_op_per_edge(digits):
    space = get_space("nb201")
    torch.manual_seed(0)
    model = build_supernet(space, digits, 4, 1)
    cell = model.layers[0]
    calls = []
    for e, mixed in enumerate(cell.mixed):
        for name, module in mixed.candidates.items():
            module.register_forward_hook(lambda *_, e=e, name=name: calls.append((e, name)))
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        calls.clear()
        weights, chosen = gumbel_hard_weights(model.alpha, 5.0, generator)
        assert torch.equal(weights.detach().sum(-1), torch.ones(space.num_edges))
        model(digits.train.tensors[0][:4], weights, chosen)
        expected = [(e, space.ops[k]) for e, k in enumerate(chosen) if space.ops[k] != "none"]
        assert calls == expected  # the sampled op and nothing else, edge by edge
    # The straight-through weights still give every op of every edge a gradient.
    weights, chosen = gumbel_hard_weights(model.alpha, 5.0, generator)
    model(digits.train.tensors[0][:4], weights, chosen).sum().backward()
    into_output = [e for e, (_, dst) in enumerate(cell.edges) if dst == space.n_nodes - 1]
    assert (model.alpha.grad[into_output] != 0).all()


#: Every method of the loop (SNAS ... ProxylessNAS are tested further in test_weightsharing_family.py).
EVERY = [("darts", 2), ("gdas", 1), *((m, 1) for m in ALGORITHMS if m not in ("darts", "gdas"))]


@pytest.mark.parametrize("method,order", EVERY)
def test_resume_continues_identically(digits, tmp_path, method, order):
    space = get_space("nb201")
    config = WeightSharingConfig(method=method, order=order, epochs=3, **TINY)
    straight = search_cell(digits, space, config)

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "search.pt"
    with pytest.raises(KeyboardInterrupt):
        search_cell(digits, space, config, checkpoint_path=ckpt, on_epoch_end=stop_after_two)
    torch.manual_seed(12345)  # whatever the global generator did meanwhile must not matter (DrNAS draws from it)
    resumed = search_cell(digits, space, config, checkpoint_path=ckpt)
    assert resumed.alpha == straight.alpha and resumed.cell == straight.cell
    strip = lambda t: [{k: v for k, v in r.items() if "seconds" not in k} for r in t]  # noqa: E731
    assert strip(resumed.trajectory) == strip(straight.trajectory)
    other = WeightSharingConfig(method=method, order=order, epochs=4, **TINY)
    with pytest.raises(GennasError, match="another search"):
        search_cell(digits, space, other, checkpoint_path=ckpt)


def test_larger_space_and_deadline(digits):
    import time

    space = get_space("dag6")
    result = search_cell(digits, space, WeightSharingConfig(method="darts", epochs=1, **TINY))
    assert space.contains(result.cell) and result.cell.n_nodes == 6
    stopped = search_cell(digits, space, WeightSharingConfig(method="gdas", epochs=5, **TINY),
                          deadline=time.monotonic())
    # A deadline already past still gets one epoch, so the derived cell comes from trained α.
    assert stopped.stopped == "time budget" and len(stopped.trajectory) == 1


def test_bad_config_messages():
    with pytest.raises(GennasError, match="method must be one of"):
        WeightSharingConfig(method="frobnicate")
    with pytest.raises(GennasError, match="GDAS is first order"):
        WeightSharingConfig(method="gdas", order=2)
    assert temperature(0, 5, 10, 0.1) == 10 and temperature(4, 5, 10, 0.1) == pytest.approx(0.1)
