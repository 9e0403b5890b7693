import json

from gennas.run import pareto_mask, run_job

import numpy as np


def test_pareto_mask():
    acc = np.array([90.0, 95.0, 93.0, 95.0])
    flops = np.array([1.0, 3.0, 3.5, 2.0])
    assert pareto_mask(acc, flops).tolist() == [True, False, False, True]


def test_run_job_writes_report_and_resumes(tmp_path):
    kwargs = dict(dataset="digits", out_dir=tmp_path / "run", n_cells=2, epochs=1, channels=4,
                  cells_per_stage=1, device="cpu", progress=False)
    summary = run_job(**kwargs)
    for name in ("results.json", "results.csv", "report.md", "pareto.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    payload = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(payload["cells"]) == 2 and payload["provenance"]["commit"]
    assert summary["best"]["val_accuracy"] == max(c["val_accuracy"] for c in payload["cells"])
    assert any(c["pareto"] for c in payload["cells"])
    report = (tmp_path / "run" / "report.md").read_text()
    assert "\\|nor_conv" in report or "\\|none" in report or "\\|skip" in report or "\\|avg" in report
    again = run_job(**kwargs)  # everything comes from the run's cache: same numbers, wall-clock included
    assert again["best"] == summary["best"]


def test_run_job_logs_to_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_job(dataset="digits", out_dir=tmp_path / "run", n_cells=1, epochs=1, channels=4, cells_per_stage=1,
            device="cpu", progress=False, wandb=True)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
