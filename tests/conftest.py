"""Shared fixtures. Tests write caches to a temp folder, never to the user's home."""

import os

import numpy as np
import pytest


def pytest_configure(config) -> None:
    """One torch thread per test worker: the suite runs on pytest-xdist workers (pyproject's addopts), and
    several processes each taking every core oversubscribe them (the same CLI call ran 2.7x slower)."""
    if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the CLI subprocesses and Ray workers tests start
        import torch

        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENNAS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


#: The cell of the small trained network that export and attack tests share.
TRAINED_CELL = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


@pytest.fixture(scope="session")
def trained_cell() -> str:
    return TRAINED_CELL


@pytest.fixture(scope="session")
def digits_splits():
    from gennas.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def trained_net(digits_splits):
    """A small network trained 3 epochs on digits: real weights and BN statistics, not an initialisation."""
    from gennas.nn.network import NetworkConfig, build_network
    from gennas.space.cell import Cell
    from gennas.train import TrainConfig, train_model, with_normalization

    config = NetworkConfig.for_data(digits_splits, channels=4, cells_per_stage=1)
    net = with_normalization(build_network(Cell.from_string(TRAINED_CELL), config), digits_splits)
    return train_model(net, digits_splits, TrainConfig(epochs=3, device="cpu", seed=0), progress=False).model.eval()


@pytest.fixture(scope="session")
def ray_backend():
    """One local Ray cluster (2 CPUs) for every test that needs one: starting Ray and its workers is most of their time."""
    pytest.importorskip("ray")
    from gennas.search.backends import RayBackend

    backend = RayBackend(num_cpus=2)
    yield backend
    backend.shutdown()
