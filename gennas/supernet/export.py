"""Export one subnet as a standalone model: TorchScript, state dict, ``arch.json`` and its metrics.

The metrics written are recomputed on the exported network itself (FLOPs and params by
counting hooks, memory by a tracked forward, accuracy and PGD on the same splits with the
same attack seed), so what the user deploys is what the thresholds were checked against.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gennas.data import DatasetSplits
from gennas.io import atomic_write, write_json
from gennas.metrics.flops import count_flops, count_params
from gennas.metrics.latency import measure_latency
from gennas.metrics.memory import measure_peak_memory
from gennas.nn.network import CellNetwork
from gennas.space.cell import Cell
from gennas.supernet.measure import recalibrate_bn
from gennas.supernet.model import Supernet
from gennas.supernet.standalone import load_standalone
from gennas.train import RobustnessConfig, TrainConfig, evaluate_robustness, train_model


def standalone_from(model: nn.Sequential, cell: Cell, splits: DatasetSplits, recalibration_images: int) -> nn.Sequential:
    """Normalize + the standalone network of ``cell`` with its recalibrated supernet weights."""
    supernet: Supernet = model[-1]
    supernet.activate(cell)
    recalibrate_bn(model, splits, recalibration_images)
    return nn.Sequential(model[0], supernet.extract(cell)).eval()


def deployable(model: nn.Sequential, pick: dict, splits: DatasetSplits, run_dir: str | Path,
               recalibration_images: int) -> nn.Sequential:
    """The model to export for ``pick`` (a row of :func:`gennas.supernet.prune.verified_view`).

    A subnet verified by standalone training is exported as that trained model, so what is
    deployed is what was verified; any other subnet is extracted with the supernet's weights.
    """
    cell = Cell.from_string(pick["arch"])
    if pick.get("figures") == "standalone":
        network = model[-1].config
        return load_standalone(Path(run_dir) / "standalone", cell, splits, network).model
    return standalone_from(model, cell, splits, recalibration_images)


def computed_metrics(exported: nn.Sequential, splits: DatasetSplits, robustness: RobustnessConfig) -> dict:
    net: CellNetwork = exported[-1]
    shape = (net.config.in_channels, net.config.image_size, net.config.image_size)
    device = next(exported.parameters()).device
    val = evaluate_robustness(exported, splits.val, robustness, device)
    test = evaluate_robustness(exported, splits.test, robustness, device)
    return {"arch": net.cell.to_string(), "flops": count_flops(net, shape), "params": count_params(net),
            "memory_bytes": measure_peak_memory(net, shape), "latency_ms": measure_latency(exported, shape, device),
            "val_accuracy": val["clean_accuracy"], "val_pgd_accuracy": val["pgd_accuracy"],
            "accuracy": test["clean_accuracy"], "pgd_accuracy": test["pgd_accuracy"],
            "fgsm_accuracy": test["fgsm_accuracy"], "noise_accuracy": test["noise_accuracy"]}


def finetune(exported: nn.Sequential, splits: DatasetSplits, epochs: int, seed: int, device: str) -> nn.Sequential:
    """A short standalone fine-tune from the supernet weights (small constant learning rate)."""
    config = TrainConfig(epochs=epochs, lr=0.01, scheduler="cosine", seed=seed, device=device)
    return train_model(exported, splits, config, progress=False).model.eval()


def export_subnet(exported: nn.Sequential, out: str | Path, metrics: dict, info: dict) -> dict[str, str]:
    """Write ``model.pt`` (TorchScript), ``state_dict.pt``, ``arch.json`` and ``metrics.json`` under ``out``."""
    out = Path(out)
    net: CellNetwork = exported[-1]
    cpu = exported.to("cpu").eval()
    example = torch.zeros(1, net.config.in_channels, net.config.image_size, net.config.image_size)
    with torch.no_grad():
        scripted = torch.jit.trace(cpu, example)
    paths = {
        "model": atomic_write(out / "model.pt", lambda tmp: torch.jit.save(scripted, str(tmp))),
        "state_dict": atomic_write(out / "state_dict.pt", lambda tmp: torch.save(cpu.state_dict(), tmp)),
        "arch": write_json(out / "arch.json", {"arch": net.cell.to_string(), "network": net.config.to_dict(),
                                               "input": "float images in [0, 1], shape (N, C, H, W); the model "
                                                        "normalises them itself", **info}),
        "metrics": write_json(out / "metrics.json", metrics),
    }
    return {k: str(v) for k, v in paths.items()}
