"""Readers for the on-disk dataset formats, and the downloader that fetches them.

Every reader returns :class:`RawData`: images as NumPy arrays in N×C×H×W (uint8 or
float) plus int64 labels. Splitting, scaling to [0, 1] and statistics live in
:mod:`gennas.data.datasets`, so each reader only has to understand its file format.
We read torchvision's layouts ourselves (torchvision is not a dependency) so that a
data folder prepared for torchvision works unchanged here, and vice versa.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from gennas.errors import GennasError
from gennas.npz_format import NPZ_TEST_FRACTION, NPZ_VAL_FRACTION

Arrays = tuple[np.ndarray, np.ndarray]

#: File suffixes the image-folder reader treats as images.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp"})


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


# ------------------------------------------------------------------ downloads
@dataclass(frozen=True)
class Download:
    """One archive of a public dataset: where it lives and what it must hash to."""

    url: str
    md5: str
    #: Directory, relative to the data root, that the file is saved into.
    directory: str
    #: True for a ``.tar.gz`` that must be unpacked into the data root.
    extract: bool = False

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def download_all(downloads: tuple[Download, ...], root: Path, manual_hint: str) -> None:
    """Fetch (and unpack) every archive in ``downloads`` into ``root``.

    Each file is streamed into a temporary file next to its destination, checked
    against its MD5 and only then renamed into place, so an interrupted download never
    leaves a truncated file that a later run would mistake for data.
    """
    for item in downloads:
        target = root / item.directory / item.filename
        if not (target.is_file() and _md5(target) == item.md5):
            _fetch(item, target, manual_hint)
        if item.extract:
            _extract_tar(target, root)


def _fetch(item: Download, target: Path, manual_hint: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(item.url, timeout=60) as response:
            shutil.copyfileobj(response, out, length=1 << 20)
        digest = _md5(tmp)
        if digest != item.md5:
            raise GennasError(
                f"download of {item.url} failed: the file's MD5 is {digest}, expected {item.md5} "
                f"(a broken mirror or a truncated transfer). {manual_hint}"
            )
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        raise GennasError(
            f"download of {item.url} failed ({exc}); this machine may be offline. {manual_hint}"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _extract_tar(archive: Path, root: Path) -> None:
    """Unpack into a temporary folder first, then move files into place one by one."""
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise GennasError(
                f"could not unpack {archive} ({exc}); delete it and retry the download"
            ) from exc
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                destination = root / path.relative_to(staging)
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------ torchvision sets
@dataclass(frozen=True)
class TorchvisionSource:
    """A dataset stored in torchvision's on-disk layout under the data root.

    ``files`` are relative to the root; a ``gz_ok`` source also accepts each file with
    a ``.gz`` suffix (torchvision keeps both forms for the MNIST family).
    """

    name: str
    files: tuple[str, ...]
    downloads: tuple[Download, ...]
    num_classes: int
    read: Callable[[Path], RawData]
    gz_ok: bool = False

    def missing(self, root: Path) -> list[Path]:
        """The required files that exist neither plain nor (if allowed) gzipped."""
        return [root / rel for rel in self.files if not _existing(root / rel, self.gz_ok).is_file()]


def _existing(path: Path, gz_ok: bool) -> Path:
    """``path`` itself, or its ``.gz`` twin when only that exists and is allowed."""
    gz = path.with_name(path.name + ".gz")
    return gz if gz_ok and not path.is_file() and gz.is_file() else path


#: The only globals a CIFAR batch pickle refers to: numpy's array and dtype reconstructors
#: (old and new module names, pickle protocols 2 to 5) and ``_codecs.encode``, which
#: protocol 2 uses for bytes. Plain dicts, lists, str, bytes and ints need no global.
CIFAR_PICKLE_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
})


class RefusedPickle(pickle.UnpicklingError):
    """A pickle asked for a global outside :data:`CIFAR_PICKLE_GLOBALS`."""


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what a CIFAR batch holds, so a crafted file cannot run code."""

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle's signature)
        if (module, name) not in CIFAR_PICKLE_GLOBALS:
            raise RefusedPickle(f"{module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    """Load one CIFAR batch: a pickle, as its authors distribute it, with a restricted unpickler.

    Plain ``pickle.load`` would run any code a crafted batch names; this one refuses every
    global a CIFAR batch does not need, before anything is called.
    """
    try:
        with path.open("rb") as handle:
            batch = _CifarUnpickler(handle, encoding="bytes").load()
    except RefusedPickle as exc:
        raise GennasError(f"{path} is not a plain CIFAR batch: it asks to call {exc}, which no CIFAR batch does "
                          "(refused, nothing was run); delete it and re-download the dataset") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as exc:
        raise GennasError(f"{path} is not a readable CIFAR batch ({exc}); delete it and re-download") from exc
    if not isinstance(batch, dict):
        raise GennasError(f"{path} is not a CIFAR batch (expected a pickled dict); re-download it")
    # Batches pickled by Python 3 tools may use str keys instead of the original bytes.
    return {(key.decode() if isinstance(key, bytes) else key): value for key, value in batch.items()}


def _cifar_arrays(paths: list[Path], label_key: str) -> Arrays:
    images, labels = [], []
    for path in paths:
        batch = _unpickle(path)
        if "data" not in batch or label_key not in batch:
            raise GennasError(
                f"{path} lacks the b'data' / b'{label_key}' entries of a CIFAR batch; re-download it"
            )
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch[label_key]):
            raise GennasError(f"{path} holds data of shape {data.shape}, expected N×3072; re-download it")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _read_cifar10(root: Path) -> RawData:
    folder = root / "cifar-10-batches-py"
    train = _cifar_arrays([folder / f"data_batch_{i}" for i in range(1, 6)], "labels")
    return RawData(train=train, val=None, test=_cifar_arrays([folder / "test_batch"], "labels"), num_classes=10)


def _read_cifar100(root: Path) -> RawData:
    folder = root / "cifar-100-python"
    train = _cifar_arrays([folder / "train"], "fine_labels")
    return RawData(train=train, val=None, test=_cifar_arrays([folder / "test"], "fine_labels"), num_classes=100)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST format: magic, dims, then raw big-endian data)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            blob = handle.read()
    except (OSError, EOFError) as exc:
        raise GennasError(f"could not read IDX file {path} ({exc}); delete it and re-download") from exc
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08:
        raise GennasError(f"{path} is not an unsigned-byte IDX file (bad magic number); re-download it")
    ndim = blob[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(blob) != header + int(np.prod(shape)):
        raise GennasError(f"{path} is truncated: header says shape {shape}; re-download it")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape)


def _read_mnist(root: Path, folder: str) -> RawData:
    """Read the four IDX files (plain or ``.gz``) of an MNIST-family dataset."""

    def pair(prefix: str) -> Arrays:
        images = read_idx(_existing(root / f"{folder}/{prefix}-images-idx3-ubyte", gz_ok=True))
        labels = read_idx(_existing(root / f"{folder}/{prefix}-labels-idx1-ubyte", gz_ok=True))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise GennasError(
                f"{root / folder}: {prefix} images {images.shape} and labels {labels.shape} do not "
                "match (expected N×H×W and N); re-download the files"
            )
        return images[:, None], labels.astype(np.int64)

    return RawData(train=pair("train"), val=None, test=pair("t10k"), num_classes=10)


def _mnist_files(folder: str) -> tuple[str, ...]:
    return tuple(
        f"{folder}/{prefix}-{kind}"
        for prefix in ("train", "t10k")
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )


def _mnist_downloads(base: str, folder: str, md5s: tuple[str, str, str, str]) -> tuple[Download, ...]:
    names = [f"{name}.gz" for name in _mnist_files("")]
    return tuple(Download(base + name.lstrip("/"), md5, folder) for name, md5 in zip(names, md5s))


_TORONTO = "https://www.cs.toronto.edu/~kriz/"

#: The torchvision-layout datasets, keyed by their spec name.
SOURCES: dict[str, TorchvisionSource] = {
    "cifar10": TorchvisionSource(
        name="cifar10",
        files=tuple(f"cifar-10-batches-py/{name}" for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]),
        downloads=(Download(_TORONTO + "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "", True),),
        num_classes=10,
        read=_read_cifar10,
    ),
    "cifar100": TorchvisionSource(
        name="cifar100",
        files=("cifar-100-python/train", "cifar-100-python/test"),
        downloads=(Download(_TORONTO + "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", "", True),),
        num_classes=100,
        read=_read_cifar100,
    ),
    "mnist": TorchvisionSource(
        name="mnist",
        files=_mnist_files("MNIST/raw"),
        downloads=_mnist_downloads(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "MNIST/raw",
            (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        ),
        num_classes=10,
        read=partial(_read_mnist, folder="MNIST/raw"),
        gz_ok=True,
    ),
    "fashion-mnist": TorchvisionSource(
        name="fashion-mnist",
        files=_mnist_files("FashionMNIST/raw"),
        downloads=_mnist_downloads(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "FashionMNIST/raw",
            (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
        ),
        num_classes=10,
        read=partial(_read_mnist, folder="FashionMNIST/raw"),
        gz_ok=True,
    ),
}


# -------------------------------------------------------------- image folders
def _class_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _load_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # Pillow is only needed for this format

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, UnidentifiedImageError) as exc:
        raise GennasError(f"could not read image {path} ({exc}); delete or replace the file") from exc
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def _read_class_tree(folder: Path, classes: list[str], size: int) -> Arrays:
    """Read ``folder/<class>/*`` for the given class order (names → label indices)."""
    index = {name: label for label, name in enumerate(classes)}
    images: list[np.ndarray] = []
    labels: list[int] = []
    for class_dir in _class_dirs(folder):
        if class_dir.name not in index:
            raise GennasError(
                f"{class_dir} is a class that {folder.parent / 'train'} does not have; every class in "
                f"val/ and test/ must also exist in train/ (known classes: {', '.join(classes)})"
            )
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                images.append(_load_image(path, size))
                labels.append(index[class_dir.name])
    if not images:
        raise GennasError(
            f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {folder}/<class>/; "
            "put each class's images in its own sub-folder"
        )
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def read_imagefolder(path: Path, size: int) -> RawData:
    """Read ``path/train/<class>/*`` (+ optional val/, test/) or ``path/<class>/*``.

    Images are converted to RGB and resized (bilinear, aspect ratio not kept) to
    ``size``×``size`` so they stack into one tensor. Without val/ and test/ folders the
    loader carves them from train: 15%/15% for a flat folder (70/15/15), 10% each for a
    train/ folder whose val/ or test/ is missing.
    """
    if not path.is_dir():
        raise GennasError(
            f"image folder {path} does not exist; pass imagefolder:PATH where PATH/<class>/*.png "
            "or PATH/train/<class>/*.png exists"
        )
    if (path / "train").is_dir():
        classes = [d.name for d in _class_dirs(path / "train")]
        if not classes:
            raise GennasError(f"{path / 'train'} has no class sub-folders; expected {path}/train/<class>/*.png")
        train = _read_class_tree(path / "train", classes, size)
        val = _read_class_tree(path / "val", classes, size) if (path / "val").is_dir() else None
        test = _read_class_tree(path / "test", classes, size) if (path / "test").is_dir() else None
        return RawData(train=train, val=val, test=test, num_classes=len(classes))
    classes = [d.name for d in _class_dirs(path)]
    if not classes:
        raise GennasError(
            f"{path} has no class sub-folders; expected {path}/<class>/*.png or {path}/train/<class>/*.png"
        )
    data = _read_class_tree(path, classes, size)
    return RawData(train=data, val=None, test=None, num_classes=len(classes), val_fraction=0.15, test_fraction=0.15)


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
