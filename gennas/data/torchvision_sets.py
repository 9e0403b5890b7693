"""CIFAR-10/100, MNIST, Fashion-MNIST and image folders, read through ``torchvision.datasets``.

torchvision maintains these layouts, their checksums and their downloads; this module adds
what gennas promises on top: one ``error:`` line naming the file and the fix for every
missing, damaged or foreign file, and no code run from a data file.

CIFAR batches are Python pickles, and torchvision unpickles them with plain ``pickle.load``,
which runs whatever a crafted file names. torchvision first checks each batch's MD5 against
the published one (``CIFAR10.train_list`` and friends), and we check the same before calling
it, file by file: only the published batches are ever unpickled, and making a different
file with one of those MD5s is a second-preimage attack, which no one knows how to mount on
MD5. So a CIFAR folder must hold the published files; any other data goes through ``npz:``.
"""

from __future__ import annotations

import contextlib
import gzip
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.error import URLError

import numpy as np

from gennas.data.readers import Arrays, RawData
from gennas.errors import GennasError
from gennas.io import atomic_write

#: Keeps the op schemas defined by :func:`torchvision_datasets` alive (a dropped Library deregisters them).
_STUB_LIBRARY: Any = None


def torchvision_datasets() -> ModuleType:
    """``torchvision.datasets``, imported even where torchvision's compiled ops do not load.

    The torchvision wheel on PyPI is a CUDA build; beside a CPU build of the same torch
    (what ``make setup`` installs) its ``_C`` extension fails to load, and torchvision 0.28
    then fails on import when it registers a fake kernel for ``torchvision::nms``. Datasets
    need none of those ops, so in that case only we define the two op schemas it registers
    against (calling them raises) and import again. A matching pair imports untouched.
    """
    global _STUB_LIBRARY
    try:
        import torchvision.datasets as datasets
        return datasets
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or _STUB_LIBRARY is not None:
            raise GennasError(f"torchvision does not import ({exc}); install the torchvision release built for "
                              "your torch (torch 2.13 pairs with torchvision 0.28)") from exc
    except ImportError as exc:
        raise GennasError(f"this dataset is read through torchvision, which is not installed ({exc}); "
                          "pip install torchvision (the release built for your torch)") from exc
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package, so the second import starts afresh
    _STUB_LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
    _STUB_LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _STUB_LIBRARY.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Failed to load image Python extension": decoding goes through PIL
        import torchvision.datasets as datasets
    return datasets


@contextlib.contextmanager
def _downloading():
    """torchvision prints its download progress on stdout, which ``--json`` keeps for the result."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _manual(name: str, root: Path, example: str) -> str:
    return (f"Put the torchvision-format files for {name} under {root} (e.g. {example}), pass root=... or set "
            "GENNAS_DATA_DIR to the folder that holds them")


def _missing_error(name: str, root: Path, missing: list[Path], manual: str) -> GennasError:
    others = "" if len(missing) == 1 else f" (and {len(missing) - 1} more: {', '.join(p.name for p in missing[1:])})"
    return GennasError(f"{name} data not found: expected {missing[0]}{others}. {manual}, or pass download=True "
                       "(--download) to fetch it.")


def _download_error(name: str, url: str, exc: BaseException, manual: str, by_hand: str) -> GennasError:
    offline = " this machine may be offline." if isinstance(exc, (URLError, OSError)) or "urlopen" in str(exc) else ""
    reason = " ".join(str(exc).split())  # torchvision's message spans lines: one error line
    return GennasError(f"download of {name} from {url} failed ({reason});{offline} To place the files by hand, "
                       f"download {by_hand}. {manual}.")


# ---------------------------------------------------------------------- CIFAR
@dataclass(frozen=True)
class _Cifar:
    cls_name: str  # the torchvision class
    num_classes: int


CIFAR: dict[str, _Cifar] = {"cifar10": _Cifar("CIFAR10", 10), "cifar100": _Cifar("CIFAR100", 100)}


def cifar_files(cls: type) -> list[tuple[str, str]]:
    """(file name, published MD5) of every file torchvision's ``cls`` reads: batches, then the meta file."""
    return [(f, md5) for f, md5 in cls.train_list + cls.test_list] + [(cls.meta["filename"], cls.meta["md5"])]


def _check_cifar(name: str, cls: type, root: Path, manual: str) -> None:
    """Every file present and the published one, before anything is unpickled (see the module docstring)."""
    from torchvision.datasets.utils import calculate_md5

    folder = root / cls.base_folder
    missing = []
    for filename, md5 in cifar_files(cls):
        path = folder / filename
        if not path.is_file():
            missing.append(path)
            continue
        try:
            digest = calculate_md5(str(path))
        except OSError as exc:
            raise GennasError(f"could not read {path} ({exc}); delete it and re-download the dataset") from exc
        if digest != md5:
            raise GennasError(f"{path} is not the published {name} file (its MD5 is {digest}, expected {md5}): "
                              "refused, nothing was run or unpickled. A download cut short or a file from elsewhere; "
                              "delete it and re-download (--download). Other data in this format: convert it to npz "
                              "(gennas run --help)")
    if missing:
        raise _missing_error(name, root, missing, manual)


def read_cifar(name: str, root: Path, download: bool) -> RawData:
    """CIFAR-10 or CIFAR-100 (fine labels) through torchvision, its published files only."""
    datasets = torchvision_datasets()
    spec = CIFAR[name]
    cls = getattr(datasets, spec.cls_name)
    manual = _manual(name, root, f"{cls.base_folder}/{cls.train_list[0][0]}")
    if download:
        root.mkdir(parents=True, exist_ok=True)
        try:
            with _downloading():
                _cifar_download(cls, root)
        except Exception as exc:  # torchvision's download raises many kinds (URLError, RuntimeError, ...)
            raise _download_error(name, cls.url, exc, manual, f"{cls.url} into {root} and unpack it there") from exc
    _check_cifar(name, cls, root, manual)
    try:
        train, test = (cls(str(root), train=split) for split in (True, False))
    except (RuntimeError, OSError, KeyError, ValueError, EOFError) as exc:  # files changed since the check
        raise GennasError(f"{root / cls.base_folder}: torchvision could not read {name} ({exc}); delete the folder "
                          "and re-download") from exc
    return RawData(train=_cifar_arrays(train), val=None, test=_cifar_arrays(test), num_classes=spec.num_classes)


def _cifar_download(cls: type, root: Path) -> None:
    """torchvision's download: unless every file is the published one, the archive is fetched, checked
    against its MD5 and unpacked under ``root`` (replacing a damaged or foreign file)."""
    from torchvision.datasets.utils import check_integrity, download_and_extract_archive

    folder = root / cls.base_folder
    if all(check_integrity(str(folder / f), md5) for f, md5 in cifar_files(cls)):
        return
    download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)


def _cifar_arrays(dataset: Any) -> Arrays:
    images = np.ascontiguousarray(np.asarray(dataset.data, dtype=np.uint8).transpose(0, 3, 1, 2))  # NHWC -> NCHW
    return images, np.asarray(dataset.targets, dtype=np.int64)


# ---------------------------------------------------------------------- MNIST
MNIST: dict[str, str] = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
MNIST_FILES: tuple[str, ...] = tuple(f"{prefix}-{kind}" for prefix in ("train", "t10k")
                                     for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))


def mnist_raw_folder(name: str, root: Path) -> Path:
    return root / MNIST[name] / "raw"


def read_mnist(name: str, root: Path, download: bool) -> RawData:
    """MNIST or Fashion-MNIST: the four IDX files under ``<Class>/raw`` (plain, or ``.gz`` beside them)."""
    datasets = torchvision_datasets()
    cls = getattr(datasets, MNIST[name])
    raw = mnist_raw_folder(name, root)
    manual = _manual(name, root, f"{MNIST[name]}/raw/{MNIST_FILES[0]}")
    if download and _missing_mnist(raw):
        root.mkdir(parents=True, exist_ok=True)
        try:
            with _downloading():
                cls(str(root), train=False, download=True)
        except Exception as exc:  # torchvision's download raises many kinds (URLError, RuntimeError, ...)
            urls = " or ".join(cls.mirrors)
            by_hand = f"{', '.join(f for f, _ in cls.resources)} from {urls} into {raw}"
            raise _download_error(name, cls.mirrors[0], exc, manual, by_hand) from exc
    missing = _missing_mnist(raw)
    if missing:
        raise _missing_error(name, root, missing, manual)
    for filename in MNIST_FILES:
        _gunzip_if_only_gz(raw / filename)
    return RawData(train=_mnist_pair(raw, "train"), val=None, test=_mnist_pair(raw, "t10k"), num_classes=10)


def _missing_mnist(raw: Path) -> list[Path]:
    return [raw / f for f in MNIST_FILES if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()]


def _gunzip_if_only_gz(path: Path) -> None:
    """torchvision reads the plain files; a folder holding only ``.gz`` ones gets them unpacked beside."""
    gz = path.with_name(path.name + ".gz")
    if path.is_file() or not gz.is_file():
        return
    try:
        data = gzip.decompress(gz.read_bytes())
    except (OSError, EOFError) as exc:
        raise GennasError(f"could not unpack {gz} ({exc}); delete it and re-download") from exc
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def _mnist_pair(raw: Path, prefix: str) -> Arrays:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    def read(kind: str, reader: Any) -> np.ndarray:
        path = raw / f"{prefix}-{kind}"
        try:
            return reader(str(path)).numpy()
        except Exception as exc:  # torchvision's parser raises assertions, KeyError, RuntimeError ... on garbage
            raise GennasError(f"{path} is not a readable IDX file ({type(exc).__name__}: {exc}); delete it and "
                              "re-download") from exc

    images, labels = read("images-idx3-ubyte", read_image_file), read("labels-idx1-ubyte", read_label_file)
    if len(images) != len(labels):
        raise GennasError(f"{raw}: {prefix} images {images.shape} and labels {labels.shape} do not match (expected "
                          "N×H×W and N); re-download the files")
    return images[:, None], labels.astype(np.int64)


# -------------------------------------------------------------- image folders
def image_extensions() -> tuple[str, ...]:
    """The suffixes torchvision's ImageFolder reads (.jpg, .png, .bmp, .tif, .webp, ...)."""
    return torchvision_datasets().folder.IMG_EXTENSIONS


def _class_dirs(folder: Path) -> list[str]:
    # Hidden folders (.ipynb_checkpoints, ...) are not classes; torchvision's own listing would count them.
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_class_tree(folder: Path, classes: list[str], size: int) -> Arrays:
    """``folder/<class>/*`` through torchvision's ImageFolder, with ``classes`` (train's) as the label order."""
    datasets = torchvision_datasets()
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    for name in _class_dirs(folder):
        if name not in classes:
            raise GennasError(
                f"{folder / name} is a class that {folder.parent / 'train'} does not have; every class in "
                f"val/ and test/ must also exist in train/ (known classes: {', '.join(classes)})"
            )

    class Folder(datasets.ImageFolder):
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            return classes, {c: i for i, c in enumerate(classes)}

    extensions = datasets.folder.IMG_EXTENSIONS
    dataset = Folder(str(folder), allow_empty=True)
    if not dataset.samples:
        raise GennasError(f"no images ({', '.join(extensions)}) found under {folder}/<class>/; put each class's "
                          "images in its own sub-folder")
    images = []
    for path, _ in dataset.samples:
        try:
            image = dataset.loader(path)  # PIL, converted to RGB
        except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
            raise GennasError(f"could not read image {path} ({exc}); delete or replace the file") from exc
        rgb = resize(image, [size, size], interpolation=InterpolationMode.BILINEAR)
        images.append(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
    return np.stack(images), np.asarray(dataset.targets, dtype=np.int64)


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
        classes = _class_dirs(path / "train")
        if not classes:
            raise GennasError(f"{path / 'train'} has no class sub-folders; expected {path}/train/<class>/*.png")
        train = _read_class_tree(path / "train", classes, size)
        val = _read_class_tree(path / "val", classes, size) if (path / "val").is_dir() else None
        test = _read_class_tree(path / "test", classes, size) if (path / "test").is_dir() else None
        return RawData(train=train, val=val, test=test, num_classes=len(classes))
    classes = _class_dirs(path)
    if not classes:
        raise GennasError(
            f"{path} has no class sub-folders; expected {path}/<class>/*.png or {path}/train/<class>/*.png"
        )
    data = _read_class_tree(path, classes, size)
    return RawData(train=data, val=None, test=None, num_classes=len(classes), val_fraction=0.15, test_fraction=0.15)


def is_torchvision_set(name: str) -> bool:
    return name in CIFAR or name in MNIST


def read_torchvision(name: str, root: Path, download: bool) -> RawData:
    """One of the named torchvision datasets (see :data:`CIFAR`, :data:`MNIST`) under the data root."""
    return read_cifar(name, root, download) if name in CIFAR else read_mnist(name, root, download)
