"""`load_dataset`: one call from a spec string to fixed train/val/test tensors.

Every dataset ends up as in-memory float32 tensors in [0, 1] (N×C×H×W) with int64
labels, because the trainer batches on the device without a DataLoader and the
attacks clamp in pixel space. Splits are *fixed*: carved with a constant seed, never
with a training seed, so every architecture in a search is scored on the same
validation images and results stay comparable across runs and machines.

Specs::

    digits                   scikit-learn's 8×8 digits (embedded, no files needed)
    cifar10, cifar100        torchvision.datasets under the data root (the published files, MD5-checked)
    mnist, fashion-mnist     torchvision.datasets under the data root (raw IDX, .gz ok)
    imagefolder:PATH[?size=N]  PATH/<class>/* or PATH/train/<class>/* (+ val/, test/);
                               images resized to N×N RGB (default 32)
    npz:PATH                 x_train, y_train (+ x_val, y_val and x_test, y_test); see NPZ_FORMAT

Relative PATHs are looked up in the working directory first, then in the data root.
The data root is ``root``, else ``$GENNAS_DATA_DIR``, else ``~/.cache/gennas/data``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import torch
from torch.utils.data import TensorDataset

from gennas.data.readers import Arrays, RawData, read_npz
from gennas.errors import GennasError
from gennas.settings import data_dir

#: The named datasets; ``imagefolder:PATH`` and ``npz:PATH`` are accepted as well.
DATASET_NAMES: tuple[str, ...] = ("digits", "cifar10", "cifar100", "mnist", "fashion-mnist")

#: The named datasets read through torchvision.datasets (see :mod:`gennas.data.torchvision_sets`).
TORCHVISION_SETS: frozenset[str] = frozenset({"cifar10", "cifar100", "mnist", "fashion-mnist"})

#: Seed of every fixed split. Deliberately not a training seed: see the module docstring.
SPLIT_SEED = 20240601

DEFAULT_IMAGE_SIZE = 32
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}
_NATURAL_IMAGES = frozenset({"cifar10", "cifar100", "imagefolder"})


@dataclass(frozen=True)
class DatasetSplits:
    """Train/val/test tensors of one dataset plus the facts a network builder needs.

    ``mean``/``std`` are per-channel statistics of the train split, for
    :class:`gennas.train.Normalize`; images themselves stay in [0, 1]. ``augment``
    says whether crop+flip augmentation suits the data (natural images: yes; digits:
    no, a flipped digit is a different symbol).
    """

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool
    notes: tuple[str, ...] = ()  # how splits the data did not bring were made, for the user to see

    def __repr__(self) -> str:
        sizes = "/".join(str(len(split)) for split in (self.train, self.val, self.test))
        return (
            f"DatasetSplits(name={self.name!r}, train/val/test={sizes}, num_classes={self.num_classes}, "
            f"shape={self.in_channels}×{self.image_size}×{self.image_size}, augment={self.augment})"
        )


def default_data_root() -> Path:
    """``$GENNAS_DATA_DIR`` if set, else ``~/.cache/gennas/data`` (see :mod:`gennas.settings`)."""
    return data_dir()


def load_dataset(
    spec: str,
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    max_train: int | None = None,
) -> DatasetSplits:
    """Load the dataset named by ``spec`` (see the module docstring) as fixed splits.

    ``download=True`` fetches missing cifar10/cifar100/mnist/fashion-mnist archives
    into the root. ``max_train`` keeps a stratified, deterministic subset of the train
    split for quick runs (val and test are unchanged so scores stay comparable).
    """
    if max_train is not None and max_train < 1:
        raise GennasError(f"max_train must be a positive number of images, got {max_train}")
    data_root = Path(root).expanduser() if root is not None else default_data_root()
    kind, name, raw = _read(spec, data_root, download)
    train, val, test, notes = _fixed_splits(raw, name)
    if max_train is not None and max_train < len(train[1]):
        keep, _ = _stratified_split(train[1], len(train[1]) - max_train, salt=3)
        train = (train[0][keep], train[1][keep])
    return _assemble(name, kind, raw.num_classes, train, val, test, notes)


# ---------------------------------------------------------------- spec → data
def _read(spec: str, root: Path, download: bool) -> tuple[str, str, RawData]:
    """Parse ``spec`` and read its raw arrays. Returns (kind, display name, data)."""
    text = spec.strip()
    prefix, sep, rest = text.partition(":")
    kind = _ALIASES.get(prefix.lower(), prefix.lower())
    if sep and kind == "imagefolder":
        path_text, size = _parse_imagefolder(rest)
        path = _resolve_path(path_text, root, "imagefolder")
        name = f"imagefolder:{path}" + (f"?size={size}" if size != DEFAULT_IMAGE_SIZE else "")
        from gennas.data.torchvision_sets import read_imagefolder  # torchvision is imported only when needed

        return kind, name, read_imagefolder(path, size)
    if sep and kind == "npz":
        path = _resolve_path(rest, root, "npz")
        if not path.is_file():
            raise GennasError(
                f"npz file {path} does not exist; pass npz:PATH to an .npz with arrays x_train, y_train "
                "(+ optional x_val, y_val, x_test, y_test; relative paths are tried in the working directory, then "
                "the data root)"
            )
        return kind, f"npz:{path}", read_npz(path)
    if not sep and kind == "digits":
        return kind, kind, _read_digits()
    if not sep and kind in TORCHVISION_SETS:
        from gennas.data.torchvision_sets import read_torchvision

        return kind, kind, read_torchvision(kind, root, download)
    raise GennasError(
        f"unknown dataset {spec!r}; use one of {', '.join(DATASET_NAMES)}, "
        "'imagefolder:PATH' (optionally 'imagefolder:PATH?size=64') or 'npz:PATH'"
    )


def _parse_imagefolder(rest: str) -> tuple[str, int]:
    path_text, _, query = rest.partition("?")
    size = DEFAULT_IMAGE_SIZE
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "size":
            raise GennasError(f"unknown imagefolder option {key!r}; the only option is size, e.g. imagefolder:PATH?size=64")
        if not value.isdigit() or not 4 <= int(value) <= 1024:
            raise GennasError(f"imagefolder size must be an integer in 4..1024, got {value!r}")
        size = int(value)
    if not path_text:
        raise GennasError("imagefolder needs a path: imagefolder:PATH (e.g. imagefolder:./my_images)")
    return path_text, size


def _resolve_path(text: str, root: Path, kind: str) -> Path:
    if not text:
        raise GennasError(f"{kind} needs a path: {kind}:PATH")
    path = Path(text).expanduser()
    if not path.is_absolute() and not path.exists() and (root / path).exists():
        path = root / path
    return path.resolve()


def _read_digits() -> RawData:
    from sklearn.datasets import load_digits  # embedded in scikit-learn, no files needed

    digits = load_digits()
    images = (digits.images[:, None] / 16.0).astype(np.float32)
    return RawData(
        train=(images, digits.target.astype(np.int64)), val=None, test=None, num_classes=10,
        val_fraction=0.2, test_fraction=0.2,
    )


# ------------------------------------------------------------------ splitting
def _fixed_splits(raw: RawData, name: str) -> tuple[Arrays, Arrays, Arrays, tuple[str, ...]]:
    """Carve the missing val/test splits off train with the fixed split seed.

    Returns:
        (train, val, test, notes): the arrays, and one sentence per carved split saying how.
    """
    train, val, test = raw.train, raw.val, raw.test
    pool = len(train[1])
    notes = []
    if test is None:
        rest, taken = _stratified_split(train[1], round(pool * raw.test_fraction), salt=1)
        train, test = _take(train, rest), _take(train, taken)
        notes.append(_carved_note(name, "test", raw.test_fraction, len(taken), pool))
    if val is None:
        rest, taken = _stratified_split(train[1], round(pool * raw.val_fraction), salt=2)
        train, val = _take(train, rest), _take(train, taken)
        notes.append(_carved_note(name, "val", raw.val_fraction, len(taken), pool))
    for split, (_, labels) in (("train", train), ("val", val), ("test", test)):
        if len(labels) == 0:
            raise GennasError(
                f"{name}: the {split} split is empty; the dataset is too small to split "
                "(add images, or provide explicit val/test data)"
            )
        if labels.max() >= raw.num_classes:
            raise GennasError(f"{name}: {split} has label {labels.max()} but only {raw.num_classes} classes")
    return train, val, test, tuple(notes)


def _carved_note(name: str, split: str, fraction: float, taken: int, pool: int) -> str:
    return (f"{name} brings no {split} split: a fixed stratified {fraction:.0%} of its training images "
            f"({taken} of {pool}, split seed {SPLIT_SEED}) is held out as the {split} split")


def _take(arrays: Arrays, index: np.ndarray) -> Arrays:
    return arrays[0][index], arrays[1][index]


def _stratified_split(labels: np.ndarray, count: int, salt: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (rest, taken) with ``count`` taken, proportionally per class.

    Per-class quotas use the largest-remainder method, so the total is exact and each
    class keeps its share; within a class the choice is a permutation seeded by
    :data:`SPLIT_SEED` and ``salt`` (one salt per carve, so carves are independent).
    Both index arrays come back sorted, preserving the on-disk order.
    """
    count = int(min(max(count, 0), len(labels)))
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * (count / max(len(labels), 1))
    take = np.floor(quotas).astype(np.int64)
    leftover = count - int(take.sum())
    order = np.argsort(-(quotas - take), kind="stable")
    take[order[:leftover]] += 1
    take = np.minimum(take, counts)
    rng = np.random.default_rng([SPLIT_SEED, salt])
    taken = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    taken_index = np.sort(np.concatenate(taken)) if taken else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[taken_index] = False
    return np.flatnonzero(mask), taken_index


# ------------------------------------------------------------------ tensors
def _to_unit_float(images: np.ndarray, name: str) -> torch.Tensor:
    """uint8 (or any integer type) 0..255 → /255; floats must already be in [0, 1]."""
    if np.issubdtype(images.dtype, np.integer):
        if images.size and (images.min() < 0 or images.max() > 255):
            raise GennasError(f"{name}: integer pixels must be in 0..255, got {images.min()}..{images.max()}")
        return torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
    if not np.issubdtype(images.dtype, np.floating):
        raise GennasError(f"{name}: images have dtype {images.dtype}; use uint8 in 0..255 or floats in [0, 1]")
    floats = images.astype(np.float32)
    if floats.size and not (np.isfinite(floats).all() and floats.min() >= 0.0 and floats.max() <= 1.0):
        raise GennasError(
            f"{name}: float pixels must be finite and in [0, 1], got {floats.min()}..{floats.max()}; "
            "divide by 255 or store the images as uint8"
        )
    return torch.from_numpy(np.ascontiguousarray(floats))


def _assemble(name: str, kind: str, num_classes: int, train: Arrays, val: Arrays, test: Arrays,
              notes: tuple[str, ...] = ()) -> DatasetSplits:
    tensors = {
        split: TensorDataset(_to_unit_float(images, name), torch.from_numpy(np.ascontiguousarray(labels)))
        for split, (images, labels) in (("train", train), ("val", val), ("test", test))
    }
    x_train = tensors["train"].tensors[0]
    # Float32 with torch's cascaded reductions: accurate, and no float64 copy of CIFAR.
    var, mean = torch.var_mean(x_train, dim=(0, 2, 3), correction=0)
    std = var.sqrt()
    # A constant channel has std 0; 1.0 keeps Normalize finite and leaves it centred.
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return DatasetSplits(
        name=name,
        train=tensors["train"],
        val=tensors["val"],
        test=tensors["test"],
        num_classes=num_classes,
        in_channels=int(x_train.shape[1]),
        image_size=int(x_train.shape[2]),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        augment=kind in _NATURAL_IMAGES,
        notes=notes,
    )
