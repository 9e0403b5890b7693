"""Supernet readings put on the standalone scale, and subnets read after a short fine-tune from shared weights."""

from __future__ import annotations

import math

import pytest
import torch

from gennas.data import load_dataset
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.supernet.calibration import calibrate, fitted_calibrations
from gennas.supernet.export import computed_metrics, standalone_from
from gennas.supernet.measure import SubnetMeasurer
from gennas.supernet.model import Supernet
from gennas.supernet.prune import estimated_view
from gennas.supernet.subnets import SubnetSpace
from gennas.supernet.train import SupernetTrainConfig, train_supernet
from gennas.train import RobustnessConfig, with_normalization


def test_a_line_needs_enough_pairs_and_must_predict_held_out_pairs_better_than_an_offset() -> None:
    readings = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    noisy = [r + 20.0 + e for r, e in zip(readings, (3.0, -3.0, 3.0, -3.0, 3.0, -3.0))]
    assert (calibrate(readings, noisy).slope, calibrate(readings, noisy).intercept) == pytest.approx((1.0, 20.0))
    steep = [5.0 + 2.0 * r for r in readings]
    assert (calibrate(readings, steep).slope, calibrate(readings, steep).intercept) == pytest.approx((2.0, 5.0))
    assert calibrate(readings[:5], steep[:5]).slope == 1.0  # five pairs: the offset, however straight the line
    assert calibrate([], []).pairs == 0 and calibrate([], [])(42.0) == 42.0


def _row(arch: str, pgd: float, standalone_pgd: float = math.nan) -> dict:
    verified = not math.isnan(standalone_pgd)
    return {"arch": arch, "val_accuracy": 90.0, "accuracy": 89.0, "val_pgd_accuracy": pgd, "pgd_accuracy": pgd,
            "standalone_val_accuracy": 92.0 if verified else math.nan,
            "standalone_accuracy": 91.0 if verified else math.nan,
            "standalone_val_pgd_accuracy": standalone_pgd, "standalone_pgd_accuracy": standalone_pgd}


def test_prune_verify_judges_unverified_subnets_on_the_calibrated_scale() -> None:
    rows = [_row("a", 20.0, 40.0), _row("b", 30.0, 50.0), _row("c", 25.0, 45.0), _row("d", 35.0), _row("e", 95.0)]
    assert fitted_calibrations(rows)["val_pgd_accuracy"].intercept == pytest.approx(20.0)
    view = {r["arch"]: r for r in estimated_view(rows)}
    assert view["a"]["figures"] == "standalone" and view["a"]["val_pgd_accuracy"] == 40.0
    assert view["d"]["figures"] == "calibrated" and view["d"]["val_pgd_accuracy"] == pytest.approx(55.0)
    assert view["d"]["supernet_val_pgd_accuracy"] == 35.0 and view["d"]["val_accuracy"] == pytest.approx(92.0)
    assert view["e"]["val_pgd_accuracy"] == 100.0  # a percentage stays one
    unverified = [_row("d", 35.0), _row("e", 95.0)]
    assert [r["figures"] for r in estimated_view(unverified)] == ["supernet", "supernet"]  # nothing to fit on


@pytest.fixture(scope="module")
def trained() -> tuple:
    digits = load_dataset("digits")
    cells = [Cell.from_string(a) for a in ("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|",
                                           "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_3x3~2|")]
    network = NetworkConfig.for_data(digits, channels=4, cells_per_stage=1)
    torch.manual_seed(0)
    supernet = Supernet(SubnetSpace.from_cells(cells), network)
    model = with_normalization(supernet, digits)
    train_supernet(supernet, model, digits, SupernetTrainConfig(epochs=1, device="cpu"), progress=False)
    return digits, cells, supernet, model


def test_a_fine_tuned_reading_is_of_the_network_prune_exports_and_leaves_the_shared_weights(trained) -> None:
    digits, cells, supernet, model = trained
    robustness = RobustnessConfig(pgd_steps=2)
    weights = {k: v.clone() for k, v in supernet.named_parameters()}
    plain = SubnetMeasurer(supernet, model, digits, robustness, 256)(cells[1])
    tuned = SubnetMeasurer(supernet, model, digits, robustness, 256, finetune_epochs=2, finetune_seed=3,
                           test_figures=True)(cells[1])
    assert all(torch.equal(weights[k], v) for k, v in supernet.named_parameters())
    assert math.isnan(plain["accuracy"]) and math.isnan(plain["pgd_accuracy"])  # a run reads subnets on val only
    assert tuned["val_accuracy"] != plain["val_accuracy"]  # one supernet epoch leaves a lot for a fine-tune to learn
    exported = computed_metrics(standalone_from(model, cells[1], digits, 256, 2, 3), digits, robustness)
    assert {k: exported[k] for k in ("val_accuracy", "val_pgd_accuracy", "accuracy", "pgd_accuracy")} == \
        {k: tuned[k] for k in ("val_accuracy", "val_pgd_accuracy", "accuracy", "pgd_accuracy")}
