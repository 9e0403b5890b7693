"""Export one subnet as a standalone model: TorchScript, ONNX and/or torch.export, state dict,
``arch.json`` and its metrics.

The metrics written are recomputed on the exported network itself (FLOPs and params by
counting hooks, memory by a tracked forward, accuracy and PGD on the same splits with the
same attack seed), so what the user deploys is what the thresholds were checked against.
The ONNX and ``torch.export`` files are each loaded back (ONNX with onnxruntime) and run on
test images before they are renamed into place: a file whose logits differ from PyTorch's
by more than :data:`PARITY_TOLERANCE` is never left behind.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from gennas.data import DatasetSplits
from gennas.errors import GennasError
from gennas.io import atomic_write, write_json
from gennas.metrics.flops import count_flops, count_params
from gennas.metrics.latency import measure_latency
from gennas.metrics.memory import measure_peak_memory
from gennas.nn.network import CellNetwork
from gennas.space.cell import Cell
from gennas.supernet.family import family_of, parse_arch
from gennas.supernet.measure import SubnetMeasurer
from gennas.supernet.standalone import load_standalone
from gennas.train import RobustnessConfig, evaluate_robustness


def standalone_from(model: nn.Sequential, cell: Cell, splits: DatasetSplits, recalibration_images: int,
                    finetune_epochs: int = 0, finetune_seed: int = 0) -> nn.Sequential:
    """Normalize + the standalone network of ``cell`` as the run measured it: recalibrated supernet
    weights, fine-tuned ``finetune_epochs`` epochs (see :class:`gennas.supernet.measure.SubnetMeasurer`)."""
    measurer = SubnetMeasurer(model[-1], model, splits, RobustnessConfig(), recalibration_images,
                              finetune_epochs, finetune_seed)
    network = measurer.network(cell)
    if network is model:  # no fine-tune: the active subnet, extracted
        network = nn.Sequential(model[0], model[-1].extract(cell))
    return network.eval()


def deployable(model: nn.Sequential | None, pick: dict, splits: DatasetSplits, run_dir: str | Path,
               recalibration_images: int, finetune_epochs: int = 0, finetune_seed: int = 0,
               network=None) -> nn.Sequential:
    """The model to export for ``pick`` (a row of :func:`gennas.supernet.prune.verified_view`).

    A subnet verified by standalone training is exported as that trained model, so what is
    deployed is what was verified; any other subnet is rebuilt as the run measured it (the
    supernet's weights, fine-tuned as the run's measurement was).

    Args:
        model: ``Normalize`` + the run's supernet; None for a run without one (every pick is standalone).
        network: the run's skeleton (default: the supernet's).
    """
    network = network if network is not None else model[-1].config
    cell = parse_arch(pick["arch"], network)
    if pick.get("figures") == "standalone":
        return load_standalone(Path(run_dir) / "standalone", cell, splits, network).model
    if model is None:
        raise GennasError(f"{pick['arch']} was not trained standalone and the run has no supernet to rebuild it from")
    return standalone_from(model, cell, splits, recalibration_images, finetune_epochs, finetune_seed)


def computed_metrics(exported: nn.Sequential, splits: DatasetSplits, robustness: RobustnessConfig) -> dict:
    net: CellNetwork = exported[-1]
    shape = (net.config.in_channels, net.config.image_size, net.config.image_size)
    device = next(exported.parameters()).device
    val = evaluate_robustness(exported, splits.val, robustness, device)
    test = evaluate_robustness(exported, splits.test, robustness, device)
    arch = family_of(net.config).arch_of(net)
    return {"arch": arch.to_string(), "flops": count_flops(net, shape), "params": count_params(net),
            "memory_bytes": measure_peak_memory(net, shape), "latency_ms": measure_latency(exported, shape, device),
            "val_accuracy": val["clean_accuracy"], "val_pgd_accuracy": val["pgd_accuracy"],
            "accuracy": test["clean_accuracy"], "pgd_accuracy": test["pgd_accuracy"],
            "fgsm_accuracy": test["fgsm_accuracy"], "noise_accuracy": test["noise_accuracy"]}


#: Export formats and the file each writes. TorchScript stays the default (``model.pt``).
EXPORT_FILES: dict[str, str] = {"torchscript": "model.pt", "onnx": "model.onnx", "pt2": "model.pt2"}
DEFAULT_FORMATS: tuple[str, ...] = ("torchscript",)
#: Largest |logit difference| allowed between PyTorch and a re-loaded ONNX / torch.export file.
PARITY_TOLERANCE = 1e-4
#: Test images each re-loaded file is run on for that check.
PARITY_IMAGES = 256
#: What ``--format onnx`` needs beyond gennas's own dependencies (the ``export`` extra):
#: torch's exporter is built on onnxscript, and onnxruntime checks the file it wrote.
ONNX_PACKAGES: tuple[str, ...] = ("onnx", "onnxscript", "onnxruntime")


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``"torchscript,onnx,pt2"`` (or a sequence of names) as a checked tuple, in the order given."""
    names = [f.strip().lower() for f in formats.split(",")] if isinstance(formats, str) else [str(f) for f in formats]
    unknown = [name for name in names if name not in EXPORT_FILES]
    if not names or unknown or "" in names:
        shown = ", ".join(repr(n) for n in unknown) if unknown else repr(formats)
        raise GennasError(f"--format {shown}: unknown export format; use one or more of {', '.join(EXPORT_FILES)} "
                          "separated by commas, e.g. --format torchscript,onnx,pt2")
    if len(set(names)) != len(names):
        raise GennasError(f"--format {','.join(names)} names a format twice; list each once")
    return tuple(names)


def require_formats(formats: Sequence[str]) -> None:
    """Fail before any work when a chosen format's optional packages are not installed."""
    if "onnx" in formats:
        missing = [name for name in ONNX_PACKAGES if not _installed(name)]
        if missing:
            raise GennasError(f"--format onnx needs the optional packages {', '.join(ONNX_PACKAGES)} "
                              f"({', '.join(missing)} not installed): pip install 'gennas[export]'")


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (onnxruntime takes a second to load)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module blanked out in sys.modules
        return False


def export_subnet(exported: nn.Sequential, out: str | Path, metrics: dict, info: dict) -> dict[str, str]:
    """Write ``model.pt`` (TorchScript), ``state_dict.pt``, ``arch.json`` and ``metrics.json`` under ``out``."""
    return export_model(exported, out, metrics, info)[0]


def export_model(exported: nn.Sequential, out: str | Path, metrics: dict, info: dict,
                 formats: str | Sequence[str] = DEFAULT_FORMATS,
                 images: torch.Tensor | None = None) -> tuple[dict[str, str], dict[str, float]]:
    """Write the model in each of ``formats``, ``state_dict.pt``, ``arch.json`` and ``metrics.json`` under ``out``.

    Returns the paths (``model`` is the first format's file; with formats other than the
    default, each format's file is also under its name: ``torchscript``, ``onnx``, ``pt2``)
    and the parity check: per re-loaded format, the largest |logit difference| from PyTorch
    on ``images`` (test images; seeded random ones when none are given). A model file of a
    format not asked for, left in ``out`` by an earlier export, is removed: it would hold a
    different model than the files beside it.
    """
    formats = parse_formats(formats)
    require_formats(formats)
    out = Path(out)
    net: CellNetwork = exported[-1]
    cpu = exported.to("cpu").eval()
    shape = (net.config.in_channels, net.config.image_size, net.config.image_size)
    if images is None:
        images = torch.rand(8, *shape, generator=torch.Generator().manual_seed(0))
    images = images[:PARITY_IMAGES].to("cpu", torch.float32)
    with torch.no_grad():
        reference = cpu(images).numpy()
    writers = {"torchscript": _write_torchscript, "onnx": _write_onnx, "pt2": _write_pt2}
    exports: dict[str, str] = {}
    parity: dict[str, float] = {}
    for name in formats:
        checked: list[float] = []
        path = atomic_write(out / EXPORT_FILES[name],
                            lambda tmp, name=name: checked.extend(writers[name](cpu, shape, tmp, images, reference)))
        exports[name] = str(path)
        if checked:
            parity[name] = checked[0]
    for name, filename in EXPORT_FILES.items():
        if name not in formats:
            (out / filename).unlink(missing_ok=True)
    paths = {
        "model": exports[formats[0]],
        # Each format's file under its own name too, unless it is the default export alone (model.pt).
        **({} if formats == DEFAULT_FORMATS else exports),
        "state_dict": atomic_write(out / "state_dict.pt", lambda tmp: torch.save(cpu.state_dict(), tmp)),
        "arch": write_json(out / "arch.json", {"arch": family_of(net.config).arch_of(net).to_string(),
                                               "network": net.config.to_dict(),
                                               "input": "float images in [0, 1], shape (N, C, H, W); the model "
                                                        "normalises them itself", **info}),
        "metrics": write_json(out / "metrics.json", metrics),
    }
    return {k: str(v) for k, v in paths.items()}, parity


def _write_torchscript(model: nn.Module, shape: tuple[int, int, int], tmp: Path, images: torch.Tensor,
                       reference: np.ndarray) -> list[float]:
    example = torch.zeros(1, *shape)
    with torch.no_grad():
        scripted = torch.jit.trace(model, example)
    torch.jit.save(scripted, str(tmp))
    return []


def _dynamic_batch() -> tuple[dict[int, torch.export.Dim]]:
    """The batch dimension left free, so the exported file takes any number of images."""
    return ({0: torch.export.Dim("batch")},)


def _example(shape: tuple[int, int, int]) -> torch.Tensor:
    # Two images, not one: torch.export specialises a dimension traced at size 1 to a constant.
    return torch.zeros(2, *shape)


def _checked(name: str, logits: np.ndarray, reference: np.ndarray) -> list[float]:
    error = float(np.abs(logits - reference).max())
    if not error <= PARITY_TOLERANCE:
        raise GennasError(f"internal error: the exported {name} model's logits differ from PyTorch's by {error:.3g} "
                          f"(more than {PARITY_TOLERANCE:g}) on {len(reference)} test images; nothing was written")
    return [error]


def _write_onnx(model: nn.Module, shape: tuple[int, int, int], tmp: Path, images: torch.Tensor,
                reference: np.ndarray) -> list[float]:
    """ONNX through torch's exporter (``dynamo=True``; the TorchScript-based one is deprecated), checked with onnxruntime."""
    import onnxruntime

    try:
        with warnings.catch_warnings():  # the exporter's own deprecation notices are not the user's concern
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (_example(shape),), None, dynamo=True, verbose=False,
                                        input_names=["images"], output_names=["logits"],
                                        dynamic_shapes=_dynamic_batch())
        program.save(str(tmp))
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        logits = session.run(["logits"], {"images": images.numpy()})[0]
    except GennasError:
        raise
    except Exception as exc:  # the exporter's and onnxruntime's many error types: one clear line, no traceback
        raise GennasError(f"ONNX export failed ({type(exc).__name__}: {exc}); export with --format torchscript") from exc
    return _checked("ONNX", logits, reference)


def _write_pt2(model: nn.Module, shape: tuple[int, int, int], tmp: Path, images: torch.Tensor,
               reference: np.ndarray) -> list[float]:
    """A ``torch.export`` program (``model.pt2``), loaded back and run before it is kept."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, (_example(shape),), dynamic_shapes=_dynamic_batch())
            # Through buffers: torch's archive code wants a file name ending in .pt2, not our temp name.
            buffer = io.BytesIO()
            torch.export.save(program, buffer)
            tmp.write_bytes(buffer.getvalue())
            loaded = torch.export.load(io.BytesIO(tmp.read_bytes())).module()
            with torch.no_grad():
                logits = loaded(images).numpy()
    except Exception as exc:
        raise GennasError(f"torch.export failed ({type(exc).__name__}: {exc}); export with --format torchscript") from exc
    return _checked("torch.export", logits, reference)
