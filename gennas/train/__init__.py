"""Training and robustness evaluation on in-memory :class:`gennas.data.DatasetSplits`.

:mod:`gennas.train.trainer` trains (SGD + cosine, AMP on CUDA, exact checkpoint
resume); :mod:`gennas.train.attacks` measures FGSM / PGD / noise robustness.
"""

from gennas.train.attacks import RobustnessConfig, evaluate_robustness, fgsm_attack, pgd_attack
from gennas.device import resolve_device
from gennas.train.trainer import (
    Normalize,
    TrainConfig,
    TrainingRun,
    TrainResult,
    evaluate_accuracy,
    train_model,
    training_run,
    with_normalization,
)

__all__ = [
    "Normalize",
    "RobustnessConfig",
    "TrainConfig",
    "TrainResult",
    "TrainingRun",
    "evaluate_accuracy",
    "evaluate_robustness",
    "fgsm_attack",
    "pgd_attack",
    "resolve_device",
    "train_model",
    "training_run",
    "with_normalization",
]
