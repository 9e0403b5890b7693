"""CUDA smoke checks of DARTS/GDAS (not run in CI: tests never need a GPU).

On a machine with CUDA: bf16 autocast in use, every method on nb201 and dag6 gives finite α
and a valid cell, and a search interrupted and resumed on CUDA ends at (nearly) the α of an
uninterrupted one (CUDA convolutions are not bit-deterministic, so the difference is printed).
Then run the benchmark's quick form, which fits in about 4 minutes on one GPU:

    python experiments/check_weightsharing_cuda.py
    python experiments/bench_weightsharing.py --part all --quick --device cuda --out /tmp/ws_gpu
"""

import tempfile
import time
from pathlib import Path

import torch

from gennas.data import load_dataset
from gennas.space import get_space
from gennas.weightsharing import WeightSharingConfig, search_cell
from gennas.weightsharing.search import _amp_dtype


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: nothing to check (the CPU path is covered by tests/test_weightsharing.py)")
    splits = load_dataset("digits")
    amp = _amp_dtype(WeightSharingConfig(device="cuda"), torch.device("cuda"))
    print("device", torch.cuda.get_device_name(0), "autocast dtype", amp)
    for space in ("nb201", "dag6"):
        for method, order in (("darts", 1), ("darts", 2), ("gdas", 1)):
            config = WeightSharingConfig(method=method, order=order, epochs=3, device="cuda")
            tic = time.time()
            result = search_cell(splits, get_space(space), config)
            alpha = torch.tensor(result.alpha)
            assert torch.isfinite(alpha).all(), f"{space} {config.label}: non-finite alpha"
            print(space, config.label, f"{time.time() - tic:.1f}s", "alpha span", f"{(alpha.max() - alpha.min()).item():.4g}",
                  "supernet val", [round(r["supernet_val_accuracy"], 1) for r in result.trajectory], result.cell)
    config = WeightSharingConfig(method="gdas", epochs=3, device="cuda")
    straight = search_cell(splits, get_space("nb201"), config)

    def stop(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "search.pt"
        try:
            search_cell(splits, get_space("nb201"), config, checkpoint_path=ckpt, on_epoch_end=stop)
        except KeyboardInterrupt:
            pass
        resumed = search_cell(splits, get_space("nb201"), config, checkpoint_path=ckpt)
    diff = (torch.tensor(straight.alpha) - torch.tensor(resumed.alpha)).abs().max().item()
    print("resume on CUDA: max |alpha difference|", diff, "same cell", straight.cell == resumed.cell)


if __name__ == "__main__":
    main()
