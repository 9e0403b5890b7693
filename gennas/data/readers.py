"""The project's own on-disk format (``npz:``) and :class:`RawData`, what every reader returns.

Every reader returns :class:`RawData`: images as NumPy arrays in N×C×H×W (uint8 or
float) plus int64 labels. Splitting, scaling to [0, 1] and statistics live in
:mod:`gennas.data.datasets`, so each reader only has to understand its file format.
CIFAR, MNIST and image folders are read through torchvision (:mod:`gennas.data.torchvision_sets`).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gennas.errors import GennasError
from gennas.npz_format import NPZ_TEST_FRACTION, NPZ_VAL_FRACTION

Arrays = tuple[np.ndarray, np.ndarray]

@dataclass(frozen=True)
class RawData:
    """Images and labels as read from disk, before splitting and scaling.

    ``val`` / ``test`` are None when the format has no such split; the loader then
    carves a fixed stratified ``val_fraction`` / ``test_fraction`` of the *original*
    train pool off the train arrays, so every format ends with three splits.
    """

    train: Arrays
    val: Arrays | None
    test: Arrays | None
    num_classes: int
    val_fraction: float = 0.1
    test_fraction: float = 0.1


# ------------------------------------------------------------------------ npz
NPZ_REQUIRED = ("x_train", "y_train")
NPZ_OPTIONAL = ("x_val", "y_val", "x_test", "y_test")


def _npz_images(array: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Bring N×H×W, N×C×H×W or N×H×W×C images to N×C×H×W.

    A 4-D array is channels-first when its dim 1 is a plausible channel count (1-4)
    and the remaining two dims are square; otherwise channels-last. Images must be
    square, because the search space's networks are built for one ``image_size``.
    """
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4:
        n, a, b, c = array.shape
        nchw = a <= 4 and b == c
        nhwc = c <= 4 and a == b
        if nhwc and not nchw:
            array = array.transpose(0, 3, 1, 2)
        elif not nchw:
            raise GennasError(
                f"{path}: {key} has shape {array.shape}; expected square images as N×H×W, "
                "N×C×H×W or N×H×W×C with 1-4 channels"
            )
    else:
        raise GennasError(
            f"{path}: {key} has shape {array.shape}; expected N×H×W, N×C×H×W or N×H×W×C images"
        )
    if array.shape[2] != array.shape[3]:
        raise GennasError(f"{path}: {key} images are {array.shape[2]}×{array.shape[3]}; resize them to square")
    return np.ascontiguousarray(array)


def _npz_labels(array: np.ndarray, key: str, count: int, path: Path) -> np.ndarray:
    if array.ndim != 1 or len(array) != count or not np.issubdtype(array.dtype, np.integer):
        raise GennasError(
            f"{path}: {key} must be a 1-D integer array with one label per image ({count}), "
            f"got dtype {array.dtype} shape {array.shape}"
        )
    if count and array.min() < 0:
        raise GennasError(f"{path}: {key} has negative labels; use class indices 0..K-1")
    return array.astype(np.int64)


def read_npz(path: Path) -> RawData:
    """Read ``x_train, y_train`` (+ optional ``x_val, y_val`` and ``x_test, y_test`` pairs).

    A missing val or test pair is carved off the train arrays later, with the fixed
    split seed (see :func:`gennas.data.datasets.load_dataset`).
    """
    expected = (f"expected arrays {', '.join(NPZ_REQUIRED)} and optionally the pairs x_val, y_val and x_test, y_test "
                "(see `gennas run --help` for shapes and dtypes)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # a damaged archive fails its CRC
        raise GennasError(f"could not read {path} as an .npz archive ({exc}); {expected}") from exc
    missing = [key for key in NPZ_REQUIRED if key not in arrays]
    if missing:
        raise GennasError(f"{path} lacks {', '.join(missing)}; {expected}. It has: {', '.join(sorted(arrays)) or 'nothing'}")
    for split in ("val", "test"):
        if (f"x_{split}" in arrays) != (f"y_{split}" in arrays):
            raise GennasError(f"{path} has only one of x_{split} / y_{split}; {expected}")

    def pair(split: str) -> Arrays:
        images = _npz_images(arrays[f"x_{split}"], f"x_{split}", path)
        return images, _npz_labels(arrays[f"y_{split}"], f"y_{split}", len(images), path)

    splits = {split: pair(split) for split in ("train", "val", "test") if f"x_{split}" in arrays}
    if len(splits["train"][1]) == 0:
        raise GennasError(f"{path}: x_train is empty; the train split needs images")
    shapes = {images.shape[1:] for images, _ in splits.values()}
    if len(shapes) != 1:
        raise GennasError(f"{path}: the splits have different image shapes {sorted(shapes)}; they must match")
    num_classes = int(max(int(labels.max()) for _, labels in splits.values() if len(labels)) + 1)
    return RawData(train=splits["train"], val=splits.get("val"), test=splits.get("test"), num_classes=num_classes,
                   val_fraction=NPZ_VAL_FRACTION, test_fraction=NPZ_TEST_FRACTION)
