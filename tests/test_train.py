"""Tests of `gennas.train`: real training of a small CNN on the embedded digits data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from gennas.data import DatasetSplits, load_dataset
from gennas.errors import GennasError
from gennas.train import (
    Normalize,
    RobustnessConfig,
    TrainConfig,
    TrainResult,
    evaluate_accuracy,
    evaluate_robustness,
    fgsm_attack,
    pgd_attack,
    resolve_device,
    train_model,
    with_normalization,
)
from gennas.train.trainer import augment_batch


class SmallCNN(nn.Module):
    """Two conv layers and a linear head: enough for >95% on 8×8 digits in a few epochs."""

    def __init__(self, channels: int = 1, classes: int = 10, size: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * (size // 2) ** 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class _Interrupted(Exception):
    """Raised from the epoch callback to simulate a run killed mid-way."""


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits")


def make_model(splits: DatasetSplits, init_seed: int = 0) -> nn.Module:
    torch.manual_seed(init_seed)
    return with_normalization(SmallCNN(), splits)


def cpu_config(**overrides: object) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "device": "cpu", **overrides})


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def trained(digits: DatasetSplits) -> TrainResult:
    return train_model(make_model(digits), digits, cpu_config(epochs=4), progress=False)


# -------------------------------------------------------------------- training
def test_training_reaches_high_test_accuracy(trained: TrainResult, digits: DatasetSplits) -> None:
    assert evaluate_accuracy(trained.model, digits.test) > 85.0
    assert [r["epoch"] for r in trained.history] == [1, 2, 3, 4]
    assert set(trained.history[0]) == {"epoch", "train_loss", "train_accuracy", "val_accuracy", "lr", "seconds"}
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
    lrs = [r["lr"] for r in trained.history]
    assert lrs[0] == pytest.approx(0.05) and lrs == sorted(lrs, reverse=True)  # cosine decay
    assert trained.device == "cpu" and trained.seconds > 0
    assert trained.val_accuracy == trained.history[-1]["val_accuracy"]
    assert not trained.model.training


def test_same_seed_same_weights_and_caller_rng_untouched(digits: DatasetSplits) -> None:
    augmented = dataclasses.replace(digits, augment=True)  # exercise the crop/flip path too
    rng_before = torch.get_rng_state()
    a = train_model(make_model(digits), augmented, cpu_config(), progress=False)
    assert torch.equal(torch.get_rng_state(), rng_before)
    b = train_model(make_model(digits), augmented, cpu_config(), progress=False)
    assert same_weights(a.model, b.model)
    c = train_model(make_model(digits), augmented, cpu_config(seed=1), progress=False)
    assert not same_weights(a.model, c.model)


def test_interrupted_run_resumes_to_identical_weights(digits: DatasetSplits, tmp_path: Path) -> None:
    config = cpu_config(epochs=4)
    reference = train_model(make_model(digits), digits, config, progress=False)

    def stop_after_two(record: dict) -> None:
        if record["epoch"] == 2:
            raise _Interrupted

    checkpoint = tmp_path / "run.pt"
    with pytest.raises(_Interrupted):
        train_model(make_model(digits), digits, config, checkpoint_path=checkpoint, progress=False, on_epoch_end=stop_after_two)
    assert checkpoint.is_file()
    resumed_from = []
    # A differently initialised model: everything must come from the checkpoint.
    resumed = train_model(
        make_model(digits, init_seed=7), digits, config, checkpoint_path=checkpoint, progress=False,
        on_epoch_end=lambda r: resumed_from.append(r["epoch"]),
    )
    assert resumed_from == [3, 4]
    assert same_weights(resumed.model, reference.model)
    assert [r["val_accuracy"] for r in resumed.history] == [r["val_accuracy"] for r in reference.history]
    # A finished checkpoint just returns the trained model.
    again = train_model(make_model(digits, init_seed=9), digits, config, checkpoint_path=checkpoint, progress=False)
    assert same_weights(again.model, reference.model) and len(again.history) == 4


def test_constant_schedule_run_can_be_extended(digits: DatasetSplits, tmp_path: Path) -> None:
    checkpoint = tmp_path / "const.pt"
    train_model(make_model(digits), digits, cpu_config(scheduler="constant"), checkpoint_path=checkpoint, progress=False)
    extended = train_model(
        make_model(digits), digits, cpu_config(scheduler="constant", epochs=4), checkpoint_path=checkpoint, progress=False
    )
    straight = train_model(make_model(digits), digits, cpu_config(scheduler="constant", epochs=4), progress=True)
    assert same_weights(extended.model, straight.model)
    assert [r["epoch"] for r in extended.history] == [1, 2, 3, 4]


def test_checkpoint_mismatches_and_corruption_are_reported(digits: DatasetSplits, tmp_path: Path) -> None:
    checkpoint = tmp_path / "ck.pt"
    train_model(make_model(digits), digits, cpu_config(epochs=1), checkpoint_path=checkpoint, progress=False)
    with pytest.raises(GennasError, match=r"different training config \(lr: checkpoint 0.05, now 0.1\).*delete"):
        train_model(make_model(digits), digits, cpu_config(epochs=1, lr=0.1), checkpoint_path=checkpoint, progress=False)
    with pytest.raises(GennasError, match="epochs"):  # cosine: the schedule depends on the length
        train_model(make_model(digits), digits, cpu_config(epochs=3), checkpoint_path=checkpoint, progress=False)
    with pytest.raises(GennasError, match="different data"):
        small = load_dataset("digits", max_train=200)
        train_model(make_model(small), small, cpu_config(epochs=1), checkpoint_path=checkpoint, progress=False)
    wide = with_normalization(SmallCNN(classes=12), digits)
    with pytest.raises(GennasError, match="does not fit this model"):
        train_model(wide, digits, cpu_config(epochs=1), checkpoint_path=checkpoint, progress=False)

    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(GennasError, match=f"{checkpoint}.*corrupt"):
        train_model(make_model(digits), digits, cpu_config(epochs=1), checkpoint_path=checkpoint, progress=False)
    torch.save({"weights": torch.zeros(1)}, checkpoint)
    with pytest.raises(GennasError, match="not a gennas training checkpoint"):
        train_model(make_model(digits), digits, cpu_config(epochs=1), checkpoint_path=checkpoint, progress=False)


def test_divergence_is_reported(digits: DatasetSplits) -> None:
    small = load_dataset("digits", max_train=200)
    with pytest.raises(GennasError, match="diverged.*lower lr"):
        train_model(make_model(small), small, cpu_config(epochs=1, lr=1e12, grad_clip=None), progress=False)


def test_train_config_round_trip_and_validation() -> None:
    config = TrainConfig(epochs=3, grad_clip=None, scheduler="constant")
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(GennasError, match="unknown training option.*optimizer"):
        TrainConfig.from_dict({"optimizer": "adam"})
    with pytest.raises(GennasError, match="scheduler must be one of cosine, constant"):
        TrainConfig(scheduler="step")
    with pytest.raises(GennasError, match="epochs"):
        TrainConfig(epochs=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_amp_training(digits: DatasetSplits) -> None:
    result = train_model(make_model(digits), digits, TrainConfig(epochs=3, device="cuda", amp=True), progress=False)
    assert result.device.startswith("cuda")
    assert evaluate_accuracy(result.model, digits.test) > 85.0


# --------------------------------------------------------- devices and helpers
def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(GennasError, match="unknown device"):
        resolve_device("gpu please")
    with pytest.raises(GennasError, match="not supported"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_resolve_device_cuda_without_gpu_is_explained() -> None:
    for spec in ("cuda", "cuda:1"):
        with pytest.raises(GennasError, match="CUDA is not available.*device='cpu'"):
            resolve_device(spec)


def test_normalize_and_evaluate_accuracy(digits: DatasetSplits, trained: TrainResult) -> None:
    x, y = digits.test.tensors
    norm = Normalize(digits.mean, digits.std)
    assert torch.allclose(norm(x), (x - digits.mean[0]) / digits.std[0])
    with pytest.raises(GennasError, match="std"):
        Normalize((0.5,), (0.0,))
    model = trained.model
    model.train()
    with torch.no_grad():
        model.eval()
        manual = 100.0 * (model(x).argmax(1) == y).float().mean().item()
        model.train()
    assert evaluate_accuracy(model, digits.test, batch_size=50) == pytest.approx(manual)
    assert model.training  # the caller's mode is restored
    model.eval()


def test_augment_batch_is_a_padded_crop_with_flips() -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    generator = torch.Generator().manual_seed(0)
    flipped_any = False
    for _ in range(10):
        out = augment_batch(x, generator)
        assert out.shape == x.shape
        for i in range(2):
            windows = [padded[i, :, dy : dy + 5, dx : dx + 5] for dy in range(9) for dx in range(9)]
            plain = any(torch.equal(out[i], w) for w in windows)
            mirrored = any(torch.equal(out[i], w.flip(2)) for w in windows)
            assert plain or mirrored
            flipped_any |= mirrored and not plain
    assert flipped_any


# ------------------------------------------------------------------ robustness
def test_attacks_lower_accuracy_and_pgd_is_stronger(trained: TrainResult, digits: DatasetSplits) -> None:
    config = RobustnessConfig(eps=0.1, pgd_steps=5)
    scores = evaluate_robustness(trained.model, digits.test, config)
    assert set(scores) == {"clean_accuracy", "fgsm_accuracy", "pgd_accuracy", "noise_accuracy"}
    assert scores["clean_accuracy"] == pytest.approx(evaluate_accuracy(trained.model, digits.test))
    assert scores["fgsm_accuracy"] < scores["clean_accuracy"]
    assert scores["pgd_accuracy"] < scores["clean_accuracy"]
    assert scores["pgd_accuracy"] <= scores["fgsm_accuracy"] + 2.0
    assert 0.0 <= scores["noise_accuracy"] <= 100.0
    assert evaluate_robustness(trained.model, digits.test, config) == scores  # seeded
    assert evaluate_robustness(trained.model, digits.test, dataclasses.replace(config, eps=0.0))["pgd_accuracy"] == (
        pytest.approx(scores["clean_accuracy"])
    )


def test_adversarial_examples_respect_the_constraints(trained: TrainResult, digits: DatasetSplits) -> None:
    model = trained.model
    x, y = digits.test.tensors[0][:64], digits.test.tensors[1][:64]
    marker = [torch.full_like(p, 0.5) for p in model.parameters()]
    for p, g in zip(model.parameters(), marker):
        p.grad = g.clone()
    model.train()
    eps = 0.1
    generator = torch.Generator().manual_seed(0)
    for adv in (fgsm_attack(model, x, y, eps), pgd_attack(model, x, y, eps, 5, 0.03, True, generator)):
        assert adv.shape == x.shape and not adv.requires_grad
        assert adv.min() >= 0.0 and adv.max() <= 1.0
        assert (adv - x).abs().max() <= eps + 1e-6
        assert (adv - x).abs().max() > eps / 2  # it actually moved
    assert model.training  # mode restored
    for p, g in zip(model.parameters(), marker):
        assert p.requires_grad and torch.equal(p.grad, g)  # parameters untouched
        p.grad = None
    model.eval()
    with pytest.raises(GennasError, match="eps"):
        fgsm_attack(model, x, y, -0.1)
    with pytest.raises(GennasError, match="pgd_steps"):
        RobustnessConfig(pgd_steps=0)
    assert RobustnessConfig(eps=0.2, pgd_steps=4).step_size == pytest.approx(0.125)
