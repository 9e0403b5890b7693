"""`gennas compare --budget-minutes`: equal search time, real retraining, one row per method."""

import json

import pytest

from gennas.cli import main
from gennas.search.wallclock import CONTRACT_KEYS

BUDGET = ["--budget-minutes", "0.04", "--epochs", "1", "--device", "cpu", "--dataset", "digits"]


def test_compare_budget_minutes_rows_with_real_retrained_figures(capsys, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "darts,gdas,random", *BUDGET, "--json", "--out", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in rows] == ["darts", "gdas", "random"]
    for row in rows:
        assert set(CONTRACT_KEYS) <= set(row)
        assert 0 < row["accuracy"] <= 100 and 0 <= row["pgd_accuracy"] <= row["accuracy"] + 1e-9
        assert row["flops"] > 0 and row["memory_bytes"] > 0 and row["retrain_seconds"] > 0
        assert row["search_seconds"] > 0
    assert rows[2]["stopped"] == "time budget" and rows[2]["queries"] >= 1
    assert rows[2]["search_seconds"] >= 0.04 * 60  # the black-box run used its time
    assert all(r["epochs"] >= 1 and "none~" not in r["arch"] for r in rows[:2])  # derived, NB201 convention
    assert (out / "compare.md").read_text().count("| darts |") == 2  # summary and per-run tables
    # A rerun with the same settings reuses the finished rows instead of searching again.
    assert main(["compare", "--methods", "darts,gdas,random", *BUDGET, "--json", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == rows


@pytest.mark.parametrize("argv,message", [
    (["--methods", "darts,frobnicate"], "unknown method"),
    (["--methods", "darts", "--prior", "transfer"], "cannot be combined with --budget-minutes"),
])
def test_compare_budget_minutes_bad_input(capsys, argv, message):
    assert main(["compare", *argv, *BUDGET]) == 2
    assert message in capsys.readouterr().err


def test_disconnected_nb201_cell_can_be_measured():
    """NB201 holds cells whose output ignores the input; a black-box search may ask for one.

    Its input gradient is zero, so every attack leaves the images unchanged (the first
    comparison run crashed here in FGSM).
    """
    from gennas.bench.training import TrainingOracle
    from gennas.space import Cell
    from gennas.train import TrainConfig

    oracle = TrainingOracle("digits", train=TrainConfig(epochs=1, device="cpu"), channels=4, cells_per_stage=1,
                            progress=False, use_cache=False)
    cut = Cell.from_string("|none~0|+|none~0|skip_connect~1|+|none~0|skip_connect~1|skip_connect~2|")
    assert not cut.is_connected()
    result = oracle.query(cut)
    assert result["pgd_accuracy"] == result["fgsm_accuracy"] == result["accuracy"]
