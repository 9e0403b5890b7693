"""``gennas run --backend ray``: the run's standalone trainings spread over Ray give the serial figures."""

from __future__ import annotations

from pathlib import Path

import torch

from gennas.data import load_dataset
from gennas.nn.network import NetworkConfig
from gennas.search.backends import SerialBackend
from gennas.space.cell import Cell
from gennas.supernet.rounds import RunContext
from gennas.supernet.run_settings import RunSettings
from gennas.tracking import RunLogger

CELLS = ["|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
         "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|skip_connect~1|nor_conv_3x3~2|"]


def _context(out: Path, backend) -> RunContext:
    splits = load_dataset("digits", max_train=200)
    network = NetworkConfig.for_data(splits, channels=4, cells_per_stage=1)
    return RunContext(RunSettings(epochs=1), splits, network, out, "cpu", False, lambda text: None,
                      RunLogger(False), backend=backend)


def test_standalone_trainings_on_ray_give_the_serial_figures_and_land_in_the_run(tmp_path: Path, ray_backend) -> None:
    cells = [Cell.from_string(a) for a in CELLS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Ray workers train single-threaded; match them for bitwise-equal training
    try:
        serial = _context(tmp_path / "serial", SerialBackend()).standalone_figures(cells, "probes")
        on_ray = _context(tmp_path / "ray", ray_backend).standalone_figures(cells, "probes")
    finally:
        torch.set_num_threads(threads)
    assert on_ray == serial and len(serial) == 2
    assert len(list((tmp_path / "ray" / "standalone").glob("*.pt"))) == 2  # a resumed run finds them
