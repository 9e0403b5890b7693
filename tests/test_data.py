"""Tests of `gennas.data`: every format is written for real (pickles, IDX, npz, PNG/JPEG) and read
through the reader users get (torchvision.datasets for CIFAR, MNIST and image folders)."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gennas.data import DATASET_NAMES, DatasetSplits, load_dataset
from gennas.data.torchvision_sets import torchvision_datasets
from gennas.errors import GennasError


def _splits_arrays(splits: DatasetSplits) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        name: (split.tensors[0].numpy(), split.tensors[1].numpy())
        for name, split in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }


# --------------------------------------------------------------------- digits
@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits")


def test_digits_shapes_ranges_and_metadata(digits: DatasetSplits) -> None:
    assert (digits.num_classes, digits.in_channels, digits.image_size, digits.augment) == (10, 1, 8, False)
    for x, y in _splits_arrays(digits).values():
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == (1, 8, 8)
        assert x.min() >= 0.0 and x.max() <= 1.0
    sizes = [len(digits.train), len(digits.val), len(digits.test)]
    assert sum(sizes) == 1797
    assert sizes == [1079, 359, 359]  # 60/20/20
    x_train = digits.train.tensors[0].double()
    assert digits.mean == pytest.approx((float(x_train.mean()),))
    assert digits.std == pytest.approx((float(x_train.std(unbiased=False)),))


def test_digits_splits_are_stratified(digits: DatasetSplits) -> None:
    for split, share in ((digits.train, 0.6), (digits.val, 0.2), (digits.test, 0.2)):
        counts = torch.bincount(split.tensors[1], minlength=10).numpy()
        assert counts.min() >= 1
        assert counts.max() - counts.min() <= 6, counts  # the source has ~180 per class
        assert abs(len(split) / 1797 - share) < 0.01


def test_digits_split_is_fixed_and_a_partition(digits: DatasetSplits) -> None:
    from sklearn.datasets import load_digits

    again = load_dataset("digits")
    for name, (x, y) in _splits_arrays(digits).items():
        x2, y2 = _splits_arrays(again)[name]
        assert np.array_equal(x, x2) and np.array_equal(y, y2)
    source = load_digits()
    original = Counter(
        ((img / 16.0).astype(np.float32).tobytes(), int(label)) for img, label in zip(source.images, source.target)
    )
    seen = Counter()
    for x, y in _splits_arrays(digits).values():
        seen.update((img[0].tobytes(), int(label)) for img, label in zip(x, y))
    assert seen == original  # every image in exactly one split: disjoint and complete


def test_max_train_caps_stratified_and_keeps_eval_splits(digits: DatasetSplits) -> None:
    small = load_dataset("digits", max_train=100)
    assert len(small.train) == 100
    assert torch.bincount(small.train.tensors[1], minlength=10).tolist() == [10] * 10
    assert torch.equal(small.val.tensors[0], digits.val.tensors[0])
    assert torch.equal(small.test.tensors[1], digits.test.tensors[1])
    assert torch.equal(load_dataset("digits", max_train=100).train.tensors[0], small.train.tensors[0])
    assert small.mean == pytest.approx((float(small.train.tensors[0].double().mean()),))
    with pytest.raises(GennasError, match="max_train"):
        load_dataset("digits", max_train=0)


# ------------------------------------------------------------------------ npz
def test_npz_nhwc_uint8(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(40, 6, 6, 3), dtype=np.uint8)
    y_train = np.repeat(np.arange(4), 10)
    x_test = rng.integers(0, 256, size=(8, 6, 6, 3), dtype=np.uint8)
    y_test = np.arange(8) % 4
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    splits = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert (splits.num_classes, splits.in_channels, splits.image_size, splits.augment) == (4, 3, 6, False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 4, 8)
    assert torch.bincount(splits.val.tensors[1]).tolist() == [1, 1, 1, 1]
    expected = torch.from_numpy(x_test.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    assert torch.equal(splits.test.tensors[0], expected)
    assert torch.equal(splits.test.tensors[1], torch.from_numpy(y_test))


def test_npz_grayscale_float_with_val_and_relative_to_root(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.random((20, 5, 5), dtype=np.float32),
        "y_train": np.arange(20) % 2,
        "x_val": rng.random((6, 5, 5), dtype=np.float32),
        "y_val": np.arange(6) % 2,
        "x_test": rng.random((4, 5, 5), dtype=np.float32),
        "y_test": np.arange(4) % 2,
    }
    np.savez(tmp_path / "gray.npz", **arrays)
    splits = load_dataset("npz:gray.npz", root=tmp_path)  # not in the cwd: found in the root
    assert (splits.in_channels, splits.image_size, splits.num_classes) == (1, 5, 2)
    assert len(splits.train) == 20
    assert torch.equal(splits.val.tensors[0], torch.from_numpy(arrays["x_val"][:, None]))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.zeros((4, 5, 5)), "y_train": np.zeros(4, int), "x_test": np.zeros((2, 5, 5))},
         "only one of x_test / y_test"),
        ({"y_train": np.zeros(4, int)}, "lacks x_train"),
        ({"x_train": np.zeros((4, 25)), "y_train": np.zeros(4, int), "x_test": np.zeros((2, 25)), "y_test": np.zeros(2, int)}, "N×H×W"),
        ({"x_train": np.full((20, 5, 5), 3.0), "y_train": np.zeros(20, int), "x_test": np.zeros((2, 5, 5)), "y_test": np.zeros(2, int)}, r"\[0, 1\]"),
        ({"x_train": np.zeros((4, 5, 5)), "y_train": np.zeros(3, int), "x_test": np.zeros((2, 5, 5)), "y_test": np.zeros(2, int)}, "one label per image"),
    ],
)
def test_npz_bad_input_is_explained(tmp_path: Path, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(GennasError, match=message):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


def test_npz_without_test_split_gets_a_fixed_stratified_one_and_says_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 256, size=(60, 6, 6), dtype=np.uint8), np.repeat(np.arange(3), 20)
    np.savez(tmp_path / "train_only.npz", x_train=x, y_train=y)
    splits = load_dataset(f"npz:{tmp_path / 'train_only.npz'}")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (45, 6, 9)  # 15 % test, 10 % val of 60
    assert torch.bincount(splits.test.tensors[1]).tolist() == [3, 3, 3]  # stratified
    seen = {tuple(t.flatten().tolist()) for split in (splits.train, splits.val, splits.test) for t in split.tensors[0]}
    assert len(seen) == 60  # disjoint splits covering every image
    assert [n.split(" brings no ")[1].split(" ")[0] for n in splits.notes] == ["test", "val"]
    assert "9 of 60" in splits.notes[0] and "split seed" in splits.notes[0]
    again = load_dataset(f"npz:{tmp_path / 'train_only.npz'}")
    assert torch.equal(again.test.tensors[0], splits.test.tensors[0])  # fixed: the same split every time


def test_npz_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GennasError, match="does not exist.*x_train, y_train"):
        load_dataset(f"npz:{tmp_path / 'nope.npz'}")


# ---------------------------------------------------------------- imagefolder
COLORS = {"blue": (0, 0, 255), "red": (255, 0, 0)}


def _write_images(folder: Path, per_class: int) -> None:
    for name, color in COLORS.items():
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            suffix = ".png" if i % 2 else ".jpg"
            Image.new("RGB", (10 + i, 12), color).save(folder / name / f"{i}{suffix}")


def test_imagefolder_flat_layout_split_70_15_15(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs", per_class=10)
    (tmp_path / "imgs" / "red" / "notes.txt").write_text("not an image")
    splits = load_dataset(f"imagefolder:{tmp_path / 'imgs'}?size=16")
    assert (splits.num_classes, splits.in_channels, splits.image_size, splits.augment) == (2, 3, 16, True)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (14, 3, 3)
    x, y = splits.train.tensors
    assert x.shape[1:] == (3, 16, 16)
    blue, red = x[y == 0], x[y == 1]  # labels follow sorted class names
    assert blue[:, 2].min() > 0.9 and blue[:, 0].max() < 0.1
    assert red[:, 0].min() > 0.9 and red[:, 2].max() < 0.1


def test_imagefolder_train_test_layout_default_size(tmp_path: Path) -> None:
    _write_images(tmp_path / "ds" / "train", per_class=10)
    _write_images(tmp_path / "ds" / "test", per_class=2)
    splits = load_dataset(f"imagefolder:{tmp_path / 'ds'}")
    assert splits.image_size == 32
    assert (len(splits.train), len(splits.val), len(splits.test)) == (18, 2, 4)


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(GennasError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GennasError, match="no class sub-folders"):
        load_dataset(f"imagefolder:{tmp_path / 'empty'}")
    _write_images(tmp_path / "ok", per_class=10)
    with pytest.raises(GennasError, match="only option is size"):
        load_dataset(f"imagefolder:{tmp_path / 'ok'}?width=3")
    (tmp_path / "ok" / "red" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(GennasError, match="broken.png"):
        load_dataset(f"imagefolder:{tmp_path / 'ok'}")


def test_imagefolder_reads_torchvisions_formats_and_skips_hidden_folders(tmp_path: Path) -> None:
    _write_images(tmp_path / "ds" / "train", per_class=4)
    Image.new("RGB", (9, 9), COLORS["red"]).save(tmp_path / "ds" / "train" / "red" / "extra.tiff")
    Image.new("RGB", (9, 9), COLORS["blue"]).save(tmp_path / "ds" / "train" / "blue" / "extra.bmp")
    (tmp_path / "ds" / "train" / ".ipynb_checkpoints").mkdir()  # not a class
    _write_images(tmp_path / "ds" / "val", per_class=1)
    splits = load_dataset(f"imagefolder:{tmp_path / 'ds'}?size=8")
    assert splits.num_classes == 2 and len(splits.train) + len(splits.test) == 10 and len(splits.val) == 2
    x, y = splits.val.tensors
    assert y.tolist() == [0, 1] and x[0, 2].min() > 0.9 and x[1, 0].min() > 0.9  # blue, then red
    (tmp_path / "ds" / "val" / "green").mkdir()
    Image.new("RGB", (9, 9), (0, 255, 0)).save(tmp_path / "ds" / "val" / "green" / "0.png")
    with pytest.raises(GennasError, match="green is a class that .*train does not have"):
        load_dataset(f"imagefolder:{tmp_path / 'ds'}")


# ---------------------------------------------------------------- CIFAR files
# torchvision reads only the published CIFAR files (it checks their MD5s, and so does gennas,
# before anything is unpickled). Small fixture files stand in for them by taking their place
# in torchvision's own lists of published files and MD5s.
def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _cifar_batch(rng: np.random.Generator, n: int, label_key: str, classes: int) -> dict:
    # str keys, as torchvision sees the published (Python 2) batches once unpickled with latin1
    return {"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), label_key: list(rng.integers(0, classes, n))}


def _publish(monkeypatch: pytest.MonkeyPatch, cls_name: str, folder: Path) -> None:
    """Make the fixture files under ``folder`` the ones torchvision's class ``cls_name`` knows."""
    cls = getattr(torchvision_datasets(), cls_name)
    md5 = {path.name: _md5(path.read_bytes()) for path in folder.iterdir()}
    monkeypatch.setattr(cls, "train_list", [[name, md5[name]] for name, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[name, md5[name]] for name, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[cls.meta["filename"]]})


def _write_cifar10(root: Path, per_batch: int = 4) -> dict[str, dict]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = _cifar_batch(rng, per_batch, "labels", 10)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2))
    return batches


def test_cifar10_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = _write_cifar10(tmp_path)
    _publish(monkeypatch, "CIFAR10", tmp_path / "cifar-10-batches-py")
    splits = load_dataset("cifar10", root=tmp_path)
    assert (splits.num_classes, splits.in_channels, splits.image_size, splits.augment) == (10, 3, 32, True)
    assert (len(splits.train) + len(splits.val), len(splits.val), len(splits.test)) == (20, 2, 4)
    test = batches["test_batch"]
    x, y = splits.test.tensors
    # Rows are 1024 red, then green, then blue values, each row-major.
    assert float(x[1, 2, 5, 7]) == pytest.approx(test["data"][1, 2 * 1024 + 5 * 32 + 7] / 255)
    assert y.tolist() == [int(v) for v in test["labels"]]


def test_cifar100_through_torchvision_and_env_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 30), ("test", 5)):
        (folder / name).write_bytes(pickle.dumps(_cifar_batch(rng, n, "fine_labels", 100), protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}, protocol=2))
    _publish(monkeypatch, "CIFAR100", folder)
    monkeypatch.setenv("GENNAS_DATA_DIR", str(tmp_path))
    splits = load_dataset("cifar100")
    assert splits.num_classes == 100
    assert (len(splits.train), len(splits.val), len(splits.test)) == (27, 3, 5)


def test_a_cifar_file_that_is_not_the_published_one_is_refused_unread(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    _publish(monkeypatch, "CIFAR10", folder)
    (folder / "test_batch").write_bytes(pickle.dumps(_cifar_batch(np.random.default_rng(5), 4, "labels", 10)))
    unpickled = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: unpickled.append(a) or {})  # torchvision's pickle.load
    with pytest.raises(GennasError, match=r"test_batch is not the published cifar10 file .*refused, nothing was run"):
        load_dataset("cifar10", root=tmp_path)
    assert unpickled == []
    (folder / "batches.meta").unlink()
    (folder / "test_batch").unlink()
    with pytest.raises(GennasError, match=r"expected .*test_batch \(and 1 more: batches.meta\)"):
        load_dataset("cifar10", root=tmp_path)


def test_missing_data_says_where_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GennasError) as info:
        load_dataset("cifar10", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert "GENNAS_DATA_DIR" in message and "download=True" in message
    monkeypatch.setenv("GENNAS_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(GennasError, match=str(tmp_path / "env" / "MNIST" / "raw")):
        load_dataset("mnist")


def test_unknown_spec_lists_the_choices() -> None:
    with pytest.raises(GennasError) as info:
        load_dataset("imagenet")
    for name in DATASET_NAMES:
        assert name in str(info.value)
    assert "imagefolder:PATH" in str(info.value) and "npz:PATH" in str(info.value)


# ---------------------------------------------------------------- MNIST files
def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _mnist_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(20) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(5) % 10,
    }


@pytest.mark.parametrize(("spec", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_idx_files_plain_and_gz(tmp_path: Path, spec: str, folder: str) -> None:
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    arrays = _mnist_arrays()
    for name, array in arrays.items():
        if name.startswith("train"):
            (raw / f"{name}.gz").write_bytes(gzip.compress(_idx(array)))
        else:
            (raw / name).write_bytes(_idx(array))
    splits = load_dataset(spec, root=tmp_path)
    assert (splits.num_classes, splits.in_channels, splits.image_size, splits.augment) == (10, 1, 28, False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (18, 2, 5)
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"][:, None].astype(np.float32) / 255)
    assert torch.equal(splits.test.tensors[0], expected)


def test_corrupt_idx_file_is_named(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, array in _mnist_arrays().items():
        (raw / name).write_bytes(_idx(array))
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x03garbage")
    with pytest.raises(GennasError, match="t10k-images-idx3-ubyte"):
        load_dataset("mnist", root=tmp_path)


# ------------------------------------------------------------------ downloads
@pytest.fixture
def mirror(tmp_path: Path):
    """A folder served over HTTP on the loopback interface, as a dataset mirror (torchvision's download needs HTTP)."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "mirror"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_fetches_checks_and_places_files(tmp_path: Path, mirror, monkeypatch: pytest.MonkeyPatch,
                                                   capsys) -> None:
    folder, url = mirror
    resources = []
    for name, array in _mnist_arrays().items():
        blob = gzip.compress(_idx(array))
        (folder / f"{name}.gz").write_bytes(blob)
        resources.append((f"{name}.gz", _md5(blob)))
    mnist = torchvision_datasets().MNIST
    monkeypatch.setattr(mnist, "mirrors", [url])
    monkeypatch.setattr(mnist, "resources", resources)
    root = tmp_path / "root"
    splits = load_dataset("mnist", root=root, download=True)
    assert len(splits.test) == 5
    assert {f"{n}.gz" for n in _mnist_arrays()} <= {p.name for p in (root / "MNIST" / "raw").iterdir()}
    assert capsys.readouterr().out == ""  # torchvision's progress goes to stderr: stdout is for --json


def test_download_extracts_cifar_archive(tmp_path: Path, mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, url = mirror
    staging = tmp_path / "staging"
    _write_cifar10(staging)
    _publish(monkeypatch, "CIFAR10", staging / "cifar-10-batches-py")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    (folder / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    cifar = torchvision_datasets().CIFAR10
    monkeypatch.setattr(cifar, "url", url + "cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar, "tgz_md5", _md5(buffer.getvalue()))
    splits = load_dataset("cifar10", root=tmp_path / "root", download=True)
    assert len(splits.test) == 4
    assert (tmp_path / "root" / "cifar-10-batches-py" / "test_batch").is_file()


def test_failed_download_explains_manual_placement(tmp_path: Path, mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, url = mirror
    cifar = torchvision_datasets().CIFAR10
    monkeypatch.setattr(cifar, "url", url + "absent.tar.gz")
    with pytest.raises(GennasError, match="download of cifar10 from .* failed.*by hand"):
        load_dataset("cifar10", root=tmp_path / "root", download=True)
    # A checksum mismatch is a failure too.
    (folder / "wrong.tar.gz").write_bytes(b"not the archive")
    monkeypatch.setattr(cifar, "url", url + "wrong.tar.gz")
    with pytest.raises(GennasError, match="download of cifar10 .* failed"):
        load_dataset("cifar10", root=tmp_path / "root", download=True)
