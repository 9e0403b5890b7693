"""Our FGSM / PGD against torchattacks, a maintained attack library (issue 21).

The robustness figures gennas reports (``evaluate_robustness``) must agree with the library's
attacks under the same ε, steps and step size: within 0.5 points of accuracy on a trained_net
network. torchattacks is installed by ``make setup`` (see the Makefile for why with
``--no-deps``); without it these tests are skipped.
"""

from __future__ import annotations

import pytest
import torch

from gennas.data import DatasetSplits
from gennas.train import RobustnessConfig, evaluate_robustness
from gennas.train.attacks import pgd_attack

torchattacks = pytest.importorskip("torchattacks", reason="the attack cross-check needs torchattacks (make setup)")

TOLERANCE = 0.5  # accuracy points


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize("eps, steps, step_size", [(0.1, 10, None), (0.05, 5, 0.02)])
def test_reported_fgsm_and_pgd_match_torchattacks(trained_net, digits_splits: DatasetSplits, eps: float, steps: int,
                                                  step_size: float | None) -> None:
    x, y = digits_splits.test.tensors
    config = RobustnessConfig(eps=eps, pgd_steps=steps, pgd_step_size=step_size, seed=3, batch_size=len(y))
    ours = evaluate_robustness(trained_net, digits_splits.test, config, device="cpu")
    assert 20 < ours["pgd_accuracy"] < ours["fgsm_accuracy"] < ours["clean_accuracy"]  # attacks that bite
    fgsm = _accuracy(trained_net, torchattacks.FGSM(trained_net, eps=eps)(x, y), y)
    torch.manual_seed(config.seed)  # torchattacks draws its random start from the global generator
    pgd = torchattacks.PGD(trained_net, eps=eps, alpha=config.step_size, steps=steps, random_start=True)(x, y)
    assert abs(ours["fgsm_accuracy"] - fgsm) <= TOLERANCE
    assert abs(ours["pgd_accuracy"] - _accuracy(trained_net, pgd, y)) <= TOLERANCE


def test_pgd_without_random_start_matches_torchattacks(trained_net, digits_splits: DatasetSplits) -> None:
    """No random start: both attacks are deterministic, so this compares the steps and projection alone."""
    x, y = digits_splits.test.tensors
    ours = _accuracy(trained_net, pgd_attack(trained_net, x, y, 0.1, steps=7, step_size=0.03, random_start=False), y)
    theirs = torchattacks.PGD(trained_net, eps=0.1, alpha=0.03, steps=7, random_start=False)(x, y)
    assert abs(ours - _accuracy(trained_net, theirs, y)) <= TOLERANCE
