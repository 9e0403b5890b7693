import json

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from gennas.bench.nb201 import load_table
from gennas.cli import main
from gennas.errors import GennasError
from gennas.metrics import cell_costs
from gennas.space import Cell, get_space, nb201_space
from predictors import GNNConfig, GNNPredictor, SklearnPredictor, load_predictor, save_predictor
from predictors.measurements import read_measurements

TINY = GNNConfig(hidden=32, layers=2, ensemble=2, steps=150, batch_per_task=32, seed=0)


@pytest.fixture(scope="module")
def nb201():
    table = load_table()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(table.archs), 600, replace=False)
    cells = [Cell.from_string(table.archs[i]) for i in idx]
    return cells, table.accuracy["cifar10"][idx], np.array([cell_costs(c)["flops"] for c in cells])


@pytest.fixture(scope="module")
def fitted(nb201):
    cells, acc, flops = nb201
    targets = {"accuracy@cifar10": np.where(np.arange(600) < 80, acc, np.nan), "flops": flops}
    return GNNPredictor(nb201_space(), list(targets), TINY).fit(cells, targets)


def test_fit_on_small_labelled_set_beats_a_constant(nb201, fitted):
    cells, acc, flops = nb201
    held = slice(80, 600)
    pred = fitted.predict(cells[held])
    mean = pred["accuracy@cifar10"].mean
    assert kendalltau(mean, acc[held])[0] > 0.3
    assert np.mean((mean - acc[held]) ** 2) < np.mean((acc[:80].mean() - acc[held]) ** 2)
    assert (pred["accuracy@cifar10"].std > 0).all()  # the ensemble disagrees somewhere
    r2 = 1 - np.mean((pred["flops"].mean - flops[held]) ** 2) / np.var(flops[held])
    assert r2 > 0.8


def test_soft_path_shapes_gradients_and_clean_agreement(nb201, fitted):
    cells = nb201[0][:4]
    logits = torch.randn(4, 6, 5, requires_grad=True)
    mean, std = fitted.predict_soft(torch.softmax(logits, -1), torch.rand(4))
    assert mean.shape == std.shape == (4, 2)
    mean[:, 1].sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(np.stack([nb201_space().encode(c) for c in cells])), 5).float()
    soft_mean, _ = fitted.predict_soft(one_hot, torch.zeros(4))
    clean = fitted.predict(cells)
    assert np.allclose(soft_mean[:, 0].detach().cpu().numpy(), clean["accuracy@cifar10"].mean, atol=1e-4)
    with pytest.raises(GennasError, match="soft cells must have shape"):
        fitted.predict_soft(torch.rand(4, 5, 5), torch.zeros(4))


def test_new_metric_head_leaves_other_predictions_unchanged(nb201, fitted, tmp_path):
    cells = nb201[0]
    before = fitted.predict(cells[:50])
    extended = fitted.copy().fit_task("params", cells[:40], np.array([cell_costs(c)["params"] for c in cells[:40]]))
    after = extended.predict(cells[:50])
    for task in before:
        assert np.array_equal(before[task].mean, after[task].mean)
    assert "params" in after and extended.tasks == ["accuracy@cifar10", "flops", "params"]
    path = save_predictor(extended, tmp_path / "p.pt")
    loaded = load_predictor(path).predict(cells[:50])
    for task in after:
        assert np.allclose(loaded[task].mean, after[task].mean, atol=1e-6)


def test_frozen_encoder_fits_read_stored_encodings_as_the_network_would_compute_them(nb201, fitted):
    """Head-only fits encode clean cells once and noised rows each step: the outputs must be the whole network's."""
    from predictors.encoding import one_hot_ops

    cells = nb201[0][:40]
    stacked = fitted._stacked(["accuracy@cifar10", "flops"])
    ops = one_hot_ops(fitted.space, cells)
    clean = stacked.encode_all(ops, torch.zeros(len(cells)))
    gen = torch.Generator().manual_seed(3)
    rows = torch.randint(len(cells), (len(fitted.members), 16), generator=gen)
    batch, t = fitted._noised(ops[rows.flatten()], gen)
    batch, t = batch.view(*rows.shape, *batch.shape[1:]), t.view(rows.shape)
    counts = (t > 0).sum(dim=1).tolist()
    assert 0 < sum(counts) < t.numel() and len(set(counts)) > 1  # both kinds of rows; members noise unequal counts
    whole = stacked.forward(stacked.params, stacked.buffers, batch, t)
    parts = stacked.decode(stacked.params, stacked.buffers, stacked.encode_rows(clean, rows, batch, t))
    assert whole.shape == (len(fitted.members), 16, 2)
    assert torch.allclose(parts, whole, atol=1e-5)


def test_few_shot_transfer_mixes_known_datasets(nb201):
    table = load_table()
    cells = nb201[0]
    targets = {"accuracy@cifar100": table.accuracy["cifar100"][:0]}  # placeholder replaced below
    idx = [table.index_of(c) for c in cells]
    targets = {d: table.accuracy[d.split("@")[1]][idx] for d in ("accuracy@cifar100", "accuracy@ImageNet16-120")}
    prior = GNNPredictor(nb201_space(), list(targets), TINY).fit(cells, targets)
    zero_shot = prior.copy().fit_task("accuracy@cifar10", [], None)
    assert zero_shot.predict(cells[:5], ["accuracy@cifar10"])["accuracy@cifar10"].mean.shape == (5,)
    truth = table.accuracy["cifar10"][idx]
    few = prior.copy().fit_task("accuracy@cifar10", cells[:10], truth[:10])
    weights = few.mixtures["accuracy@cifar10"]
    assert set(weights) == set(targets) and abs(sum(weights.values()) - 1) < 1e-5
    pred = few.predict(cells[10:], ["accuracy@cifar10"])["accuracy@cifar10"].mean
    assert kendalltau(pred, truth[10:])[0] > 0.3
    assert abs(np.median(pred) - np.median(truth)) < 15  # calibrated to CIFAR-10's scale, not the sources'
    for task in targets:  # the known datasets' predictions do not move
        assert np.array_equal(few.predict(cells[:20], [task])[task].mean, prior.predict(cells[:20], [task])[task].mean)


@pytest.mark.parametrize("kind", ["gbr", "rf"])
def test_sklearn_baselines(nb201, kind):
    cells, acc, _ = nb201
    model = SklearnPredictor(nb201_space(), ["accuracy@cifar10"], kind=kind, n_models=2).fit(cells[:100], {"accuracy@cifar10": acc[:100]})
    pred = model.predict(cells[100:])["accuracy@cifar10"]
    assert kendalltau(pred.mean, acc[100:])[0] > 0.2 and pred.std.shape == (500,)


def test_checkpoint_errors(tmp_path, fitted):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(GennasError, match="unreadable or corrupt"):
        load_predictor(bad)
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(GennasError, match="not a gennas predictor"):
        load_predictor(tmp_path / "other.pt")
    with pytest.raises(GennasError, match="not found"):
        load_predictor(tmp_path / "missing.pt")
    with pytest.raises(GennasError, match="no trained head"):
        fitted.predict([nb201_space().sample(np.random.default_rng(0))], ["latency_ms"])


@pytest.mark.parametrize("content, fragment", [
    ("arch,value\n|nor_conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n", "line 2: unknown op"),
    ("arch,score\nx,1\n", "missing column(s) ['value']"),
    ("arch,value\n|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|,nan\n", "line 2: value 'nan' is not finite"),
    ("arch,value\n|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|,abc\n", "line 2: value 'abc' is not a number"),
    ("arch,value\n|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|,1\n", "at least 2 measured cells"),
])
def test_bad_measurement_csv(tmp_path, content, fragment):
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(GennasError) as err:
        read_measurements(path, nb201_space())
    assert fragment in str(err.value)


def test_cli_fit_extend_and_predict(tmp_path, capsys, rng):
    space = get_space("dag5")
    cells = space.sample(rng, 24)
    lines = ["arch,value"] + [f"{c},{cell_costs(c)['params'] * 3 + 0.1 * i % 1}" for i, c in enumerate(cells)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    common = ["--space", "dag5", "--ensemble", "2", "--steps", "60", "--json"]
    assert main(["predictor", "fit", "--metric", "energy", "--data", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "a.pt"), *common]) == 2
    assert "--direction" in capsys.readouterr().err
    assert main(["predictor", "fit", "--metric", "energy", "--direction", "min", "--unit", "mJ", "--data",
                 str(tmp_path / "m.csv"), "--out", str(tmp_path / "a.pt"), "--cv", "3", *common]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tasks"] == ["energy"] and -1 <= report["cv_kendall_tau"]["pooled"] <= 1
    (tmp_path / "cells.txt").write_text("# two cells\n" + "\n".join(str(c) for c in cells[:2]) + "\n\n")
    assert main(["predictor", "predict", str(tmp_path / "a.pt"), "--cells", str(tmp_path / "cells.txt"), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in first] == [str(c) for c in cells[:2]] and set(first[0]["metrics"]) == {"energy"}
    assert main(["predictor", "fit", "--metric", "flops", "--data", str(tmp_path / "m.csv"), "--base",
                 str(tmp_path / "a.pt"), "--out", str(tmp_path / "b.pt"), *common]) == 0
    capsys.readouterr()
    assert main(["predictor", "predict", str(tmp_path / "b.pt"), "--cells", str(tmp_path / "cells.txt"), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert set(second[0]["metrics"]) == {"energy", "flops"}
    for a, b in zip(first, second):
        assert a["metrics"]["energy"] == pytest.approx(b["metrics"]["energy"], abs=1e-6)


def test_pretrain_command_regenerates_a_prior_on_a_tiny_budget(tmp_path, capsys):
    out = tmp_path / "prior.pt"
    assert main(["predictor", "pretrain", "--dataset", "cifar100", "--steps", "2", "--ensemble", "1",
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "accuracy@cifar100" not in report["tasks"]
    assert set(report["tasks"]) == {"accuracy@cifar10", "accuracy@ImageNet16-120", "flops", "params", "memory_bytes"}
    assert load_predictor(out).tasks == report["tasks"]


def test_warm_refit_learns_the_new_cells_and_still_ranks_held_out_ones(nb201):
    """A short continuation (ours' default refit, issue 16) must fit the newly labelled cells
    and keep ranking cells it never saw; it is not a from-scratch fit in disguise."""
    cells, acc, _ = nb201
    first, new, held = slice(0, 40), slice(40, 80), slice(80, 600)
    predictor = GNNPredictor(nb201_space(), ["accuracy@cifar10"], TINY).fit(cells[first], {"accuracy@cifar10": acc[first]})
    before = [p.detach().clone() for p in predictor.members[0].parameters()]
    error = lambda: np.abs(predictor.predict(cells[new])["accuracy@cifar10"].mean - acc[new]).mean()  # noqa: E731
    error_before = error()
    predictor.fit(cells[:80], {"accuracy@cifar10": acc[:80]}, warm_start=True, steps=30, seed=1)
    # Continued, not restarted: a fresh member would not start from the first fit's weights.
    moved = max(float((a - b).abs().max()) for a, b in zip(before, predictor.members[0].parameters()))
    assert 0 < moved < 1.0
    assert error() < error_before
    assert kendalltau(predictor.predict(cells[held])["accuracy@cifar10"].mean, acc[held])[0] > 0.3
