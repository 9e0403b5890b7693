"""Our FGSM / PGD against torchattacks, a maintained attack library (issue 21).

The robustness figures gennas reports (``evaluate_robustness``) must agree with the library's
attacks under the same ε, steps and step size: within 0.5 points of accuracy on a trained
network. torchattacks is installed by ``make setup`` (see the Makefile for why with
``--no-deps``); without it these tests are skipped.
"""

from __future__ import annotations

import pytest
import torch

from gennas.data import DatasetSplits, load_dataset
from gennas.nn.network import NetworkConfig, build_network
from gennas.space.cell import Cell
from gennas.train import RobustnessConfig, TrainConfig, evaluate_robustness, train_model, with_normalization
from gennas.train.attacks import pgd_attack

torchattacks = pytest.importorskip("torchattacks", reason="the attack cross-check needs torchattacks (make setup)")

CELL = Cell.from_string("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
TOLERANCE = 0.5  # accuracy points


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits: DatasetSplits) -> torch.nn.Sequential:
    net = with_normalization(build_network(CELL, NetworkConfig.for_data(digits, channels=4, cells_per_stage=1)), digits)
    return train_model(net, digits, TrainConfig(epochs=3, device="cpu", seed=0), progress=False).model.eval()


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize("eps, steps, step_size", [(0.1, 10, None), (0.05, 5, 0.02)])
def test_reported_fgsm_and_pgd_match_torchattacks(trained, digits: DatasetSplits, eps: float, steps: int,
                                                  step_size: float | None) -> None:
    x, y = digits.test.tensors
    config = RobustnessConfig(eps=eps, pgd_steps=steps, pgd_step_size=step_size, seed=3, batch_size=len(y))
    ours = evaluate_robustness(trained, digits.test, config, device="cpu")
    assert 20 < ours["pgd_accuracy"] < ours["fgsm_accuracy"] < ours["clean_accuracy"]  # attacks that bite
    fgsm = _accuracy(trained, torchattacks.FGSM(trained, eps=eps)(x, y), y)
    torch.manual_seed(config.seed)  # torchattacks draws its random start from the global generator
    pgd = torchattacks.PGD(trained, eps=eps, alpha=config.step_size, steps=steps, random_start=True)(x, y)
    assert abs(ours["fgsm_accuracy"] - fgsm) <= TOLERANCE
    assert abs(ours["pgd_accuracy"] - _accuracy(trained, pgd, y)) <= TOLERANCE


def test_pgd_without_random_start_matches_torchattacks(trained, digits: DatasetSplits) -> None:
    """No random start: both attacks are deterministic, so this compares the steps and projection alone."""
    x, y = digits.test.tensors
    ours = _accuracy(trained, pgd_attack(trained, x, y, 0.1, steps=7, step_size=0.03, random_start=False), y)
    theirs = torchattacks.PGD(trained, eps=0.1, alpha=0.03, steps=7, random_start=False)(x, y)
    assert abs(ours - _accuracy(trained, theirs, y)) <= TOLERANCE
