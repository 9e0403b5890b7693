"""Export beside TorchScript (issue 21): ONNX checked with onnxruntime, torch.export's ``model.pt2``.

Each format is loaded back the way the README shows a user doing it and run on test images:
its logits must be PyTorch's within 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gennas.cli import main
from gennas.data import DatasetSplits
from gennas.errors import GennasError
from gennas.supernet import export

#: Every op of the space, so each one's ONNX and torch.export translation is exercised.
ALL = "torchscript,onnx,pt2"


@pytest.fixture(scope="module")
def exported(trained_net, trained_cell: str, digits_splits: DatasetSplits, tmp_path_factory) -> tuple[dict[str, str], dict[str, float]]:
    out = tmp_path_factory.mktemp("export")
    return export.export_model(trained_net, out, {"arch": trained_cell}, {"dataset": "digits"}, ALL,
                               images=digits_splits.test.tensors[0])


def _pytorch(trained_net, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return trained_net(images).numpy()


def test_onnx_logits_match_pytorch_on_test_images(exported, trained_net, digits_splits: DatasetSplits) -> None:
    import onnxruntime

    paths, parity = exported
    assert paths["onnx"].endswith("model.onnx") and 0 <= parity["onnx"] <= export.PARITY_TOLERANCE
    session = onnxruntime.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
    images = digits_splits.test.tensors[0]
    (logits,) = session.run(None, {"images": images.numpy()})  # the whole test split: any batch size
    reference = _pytorch(trained_net, images)
    assert logits.shape == reference.shape == (len(images), 10)
    assert np.abs(logits - reference).max() <= 1e-4
    assert (logits.argmax(1) == digits_splits.test.tensors[1].numpy()).mean() > 0.8  # a trained_net model, not noise
    (one,) = session.run(None, {"images": images[:1].numpy()})
    assert np.abs(one - reference[:1]).max() <= 1e-4


def test_pt2_loads_and_runs_like_pytorch(exported, trained_net, digits_splits: DatasetSplits) -> None:
    paths, parity = exported
    assert paths["pt2"].endswith("model.pt2") and parity["pt2"] <= export.PARITY_TOLERANCE
    program = torch.export.load(paths["pt2"])
    model = program.module()
    for images in (digits_splits.test.tensors[0][:1], digits_splits.test.tensors[0][:37]):
        with torch.no_grad():
            assert np.abs(model(images).numpy() - _pytorch(trained_net, images)).max() <= 1e-4


def test_torchscript_is_still_the_model_and_every_file_is_listed(exported, trained_net, digits_splits: DatasetSplits) -> None:
    paths, parity = exported
    assert paths["model"] == paths["torchscript"] and paths["model"].endswith("model.pt")
    assert set(parity) == {"onnx", "pt2"}  # the formats that are loaded back and checked
    images = digits_splits.test.tensors[0][:16]
    with torch.no_grad():
        assert np.abs(torch.jit.load(paths["model"])(images).numpy() - _pytorch(trained_net, images)).max() <= 1e-5
    assert json.loads(Path(paths["arch"]).read_text())["dataset"] == "digits"


def test_default_export_is_torchscript_alone_and_removes_files_of_other_formats(trained_net, tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"an earlier export's file, of another model")
    paths, parity = export.export_model(trained_net, tmp_path, {}, {})
    assert set(paths) == {"model", "state_dict", "arch", "metrics"} and parity == {}
    assert paths == export.export_subnet(trained_net, tmp_path, {}, {})  # the old call, unchanged
    assert not (tmp_path / "model.onnx").exists() and (tmp_path / "model.pt").is_file()


def test_a_file_that_disagrees_with_pytorch_is_not_left_behind(trained_net, digits_splits: DatasetSplits, tmp_path: Path,
                                                               monkeypatch) -> None:
    real = export._checked
    monkeypatch.setattr(export, "_checked", lambda name, logits, reference: real(name, logits + 1e-3, reference))
    with pytest.raises(GennasError, match=r"differ from PyTorch's by 0\.001"):
        export.export_model(trained_net, tmp_path, {}, {}, "pt2", images=digits_splits.test.tensors[0])
    assert not list(tmp_path.glob("model.pt2*")) and not list(tmp_path.glob(".model.pt2*"))


@pytest.mark.parametrize("value, message", [
    ("onnx,tflite", "'tflite': unknown export format; use one or more of torchscript, onnx, pt2"),
    ("", "unknown export format"),
    ("onnx,,pt2", "unknown export format"),
    ("pt2,pt2", "names a format twice"),
])
def test_a_bad_format_is_a_clear_error(value: str, message: str, tmp_path: Path, capsys) -> None:
    assert main(["prune", str(tmp_path), "--format", value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("error: ")


def test_onnx_without_the_export_extra_names_the_extra(tmp_path: Path, capsys, monkeypatch) -> None:
    real = export.importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert main(["prune", str(tmp_path), "--format", "torchscript,onnx"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'gennas[export]'" in err and "onnxruntime not installed" in err and "Traceback" not in err
    assert main(["prune", str(tmp_path), "--format", "pt2"]) == 2  # torch.export needs no extra: the next error
    assert "written by `gennas run`" in capsys.readouterr().err


def test_the_readme_loads_each_format_as_written(exported, trained_net) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Exported model formats", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    folder = str(Path(exported[0]["model"]).parent)
    namespace: dict = {}
    exec(compile(code.replace("EXPORT", folder), "README export example", "exec"), namespace)
    x = namespace["x"]
    assert namespace["logits"].shape == (8, 10)  # the last one loaded, ONNX
    assert np.abs(namespace["logits"] - _pytorch(trained_net, x)).max() <= 1e-4
