"""``gennas run --supernet never``: rounds that train their generated cells standalone instead of a supernet."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gennas.cli import main
from gennas.supernet.direct import DIRECT_FILE, REASON
from gennas.supernet.prune import is_verified
from gennas.supernet.table import read_subnet_table


@pytest.fixture(scope="module")
def four_digits(tmp_path_factory) -> Path:
    """Digits 0..3, inverted (white digits on black become black on white): a derived dataset run in seconds."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = digits.target < 4
    path = tmp_path_factory.mktemp("npz") / "digits4_inverted.npz"
    np.savez(path, x_train=(255 - digits.images[keep] * 255 / 16).astype(np.uint8), y_train=digits.target[keep])
    return path


def _argv(npz: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--dataset", f"npz:{npz}", "--objectives", "accuracy:max,flops:min", "--out", str(out),
            "--device", "cpu", "--n-cells", "2", "--candidates", "8", "--channels", "4", "--cells-per-stage", "1",
            "--epochs", "2", "--probe-cells", "2", "--finalists", "3", "--supernet", "never", *extra]


@pytest.fixture(scope="module")
def direct_run(four_digits: Path, tmp_path_factory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("direct") / "run"
    argv = _argv(four_digits, out, "--json")
    assert main(argv) == 0
    return out, argv


def test_a_run_without_a_supernet_trains_generated_cells_and_lists_every_trained_cell(direct_run) -> None:
    out, _ = direct_run
    assert not (out / "supernet.pt").exists() and (out / DIRECT_FILE).exists()
    rows = read_subnet_table(out / "subnets.csv")
    generated = json.loads((out / "generated.json").read_text())
    probes = json.loads((out / "probes.json").read_text())
    trained = [r for r in rows if r["selected_because"] == REASON]
    assert len(trained) == 3 and {r["arch"] for r in trained} <= {c["arch"] for c in generated["candidates"]}
    assert {r["arch"] for r in rows if r["selected_because"] == "probe"} == {p["arch"] for p in probes}
    for row in rows:  # every reading is the standalone training's
        assert is_verified(row) and row["val_accuracy"] == row["standalone_val_accuracy"]
        assert row["val_pgd_accuracy"] == row["standalone_val_pgd_accuracy"]
        assert math.isnan(row["fgsm_accuracy"]) and row["latency_ms"] > 0
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "direct" and results["supernet"] is None
    assert results["rounds"][0]["held_out"]["accuracy"]["cells"] == 3  # the round's own cells, not the probes
    assert "No supernet" in (out / "report.md").read_text()


def test_prune_of_a_run_without_a_supernet_exports_the_trained_model(direct_run, tmp_path: Path, capsys) -> None:
    out, _ = direct_run
    rows = read_subnet_table(out / "subnets.csv")
    limit = float(np.median([r["flops"] for r in rows]))
    capsys.readouterr()
    assert main(["prune", str(out), "--max-flops", str(limit), "--out", str(tmp_path / "pick"), "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)
    best = max((r for r in rows if r["flops"] <= limit), key=lambda r: (r["val_accuracy"], -r["memory_bytes"], -r["flops"]))
    assert picked["cell"] == best["arch"] and picked["chosen_on"] == "standalone" and picked["verified"]
    assert picked["val_accuracy"] == pytest.approx(best["val_accuracy"])  # the export is that training
    assert main(["prune", str(out), "--min-accuracy", "100.5", "--verify", "--json"]) == 2


def test_a_rerun_resumes_and_trains_nothing_again(direct_run, capsys) -> None:
    out, argv = direct_run
    before = {p.name: p.stat().st_mtime_ns for p in (out / "standalone").glob("*.pt")}
    table = (out / "subnets.csv").read_text()
    capsys.readouterr()
    assert main(argv) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "standalone").glob("*.pt")} == before
    assert (out / "subnets.csv").read_text() == table


def test_an_unknown_supernet_mode_exits_2(four_digits: Path, tmp_path: Path, capsys) -> None:
    assert main(_argv(four_digits, tmp_path / "run")[:-2] + ["--supernet", "sometimes"]) == 2
    err = capsys.readouterr().err
    assert "--supernet" in err and "Traceback" not in err and not (tmp_path / "run").exists()


def test_a_darts_run_without_a_supernet_trains_generated_genotypes_and_prunes_them(tmp_path: Path, capsys) -> None:
    from gennas.space import get_space

    out = tmp_path / "darts"
    assert main(["run", "--space", "darts", "--dataset", "digits", "--objectives", "accuracy:max,flops:min",
                 "--candidates", "4", "--n-cells", "2", "--epochs", "1", "--channels", "4", "--layers", "3",
                 "--probe-cells", "0", "--finalists", "2", "--supernet", "never", "--device", "cpu", "--out", str(out),
                 "--json"]) == 0
    rows = read_subnet_table(out / "subnets.csv")
    assert len(rows) == 2 and all(is_verified(r) for r in rows)
    for row in rows:
        get_space("darts").parse(row["arch"])
    capsys.readouterr()
    assert main(["prune", str(out), "--maximize", "accuracy", "--out", str(tmp_path / "pick"), "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)
    assert picked["cell"] in {r["arch"] for r in rows} and picked["chosen_on"] == "standalone"
