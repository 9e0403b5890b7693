"""Growing a benchmark row by batches of seeds: pooled summaries equal the summary of all the runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gennas.errors import GennasError
from gennas.objectives import parse_objectives
from gennas.provenance import provenance
from gennas.search.indicators import nb201_reference
from gennas.search.report import pool_summaries, summarise
from gennas.search.runner import SearchSpec, run_method

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import bench_search  # noqa: E402


@pytest.fixture(scope="module")
def _module_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _one_cache_for_the_module(_module_cache, monkeypatch):
    """The whole-space cost table these runs read is built once for the module, not once per test."""
    monkeypatch.setenv("GENNAS_CACHE_DIR", str(_module_cache))


def _runs(method: str, goal: str, first: int, seeds: int, budget: int):
    spec = SearchSpec(dataset="cifar10", budget=budget, seeds=seeds, seed=first, prior="none", objectives=goal)
    return run_method(spec, method)


def _close(a, b):
    """Summaries equal up to float rounding, key by key."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
    else:
        assert a == b


@pytest.mark.parametrize("goal", ["accuracy:max", "accuracy:max,flops:min"])
def test_pooled_batches_give_the_summary_of_all_their_runs(goal):
    objectives = parse_objectives(goal)
    reference = nb201_reference("cifar10", objectives)
    early, late = _runs("rea", goal, 0, 3, 60), _runs("rea", goal, 3, 4, 60)
    whole = summarise(early + late, objectives, reference)
    pooled = pool_summaries([summarise(early, objectives, reference), summarise(late, objectives, reference)])
    _close(pooled, whole)
    assert pooled["seeds"] == 7
    if len(objectives) == 1:
        assert pooled["queries_to_optimum"]["per_seed"] == whole["queries_to_optimum"]["per_seed"]


def test_summaries_of_other_budgets_are_not_pooled():
    objectives = parse_objectives("accuracy:max")
    reference = nb201_reference("cifar10", objectives)
    short = summarise(_runs("random", "accuracy:max", 0, 2, 20), objectives, reference)
    long = summarise(_runs("random", "accuracy:max", 2, 2, 50), objectives, reference)
    with pytest.raises(GennasError, match="budget"):
        pool_summaries([short, long])


def _entry(first: int, seeds: int, budget: int = 60, command_first: bool = True) -> dict:
    goal = "accuracy:max"
    objectives = parse_objectives(goal)
    summary = summarise(_runs("rea", goal, first, seeds, budget), objectives, nb201_reference("cifar10", objectives))
    command = "python experiments/bench_search.py --part single --methods rea" + (
        f" --first-seed {first} --seeds {seeds}" if command_first else f" --seeds {seeds}")
    return {"provenance": {**provenance(), "command": command, "commit": f"c{first}",
                           "date": f"2026-12-0{1 + first % 8} 00:00 UTC"},
            "dataset": "cifar10", "objectives": goal, "method": "rea", "prior": "none", "budget": budget,
            "stop_at_optimum": False, "flops_convention": "nas-bench-201-api", "summary": summary,
            "load_at_start": float(first), "shared": f"batch from seed {first}"}


def test_bench_search_pools_a_later_batch_into_the_committed_row(tmp_path):
    key = "cifar10 | accuracy:max | rea"
    committed, later = tmp_path / "committed", tmp_path / "later"
    committed.mkdir(), later.mkdir()
    old = _entry(0, 3, command_first=False)  # an entry from before seed_range was kept: seeds 0-2 by its command
    new = {**_entry(3, 2), "seed_range": [3, 4]}
    (committed / "search_single.json").write_text(json.dumps({"part": "single", "entries": {key: old}}))
    (later / "search_single.json").write_text(json.dumps({"part": "single", "entries": {key: new}}))
    args = [sys.executable, str(ROOT / "experiments" / "bench_search.py"), "--part", "single", "--out", str(committed)]
    done = subprocess.run(args + ["--merge-from", str(later), "--pool"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    row = json.loads((committed / "search_single.json").read_text())["entries"][key]
    assert row["summary"]["seeds"] == 5
    assert [b["seeds"] for b in row["batches"]] == [[0, 2], [3, 4]]
    _close(row["summary"], pool_summaries([old["summary"], new["summary"]]))
    md = (committed / "search_single.md").read_text()
    assert "rea (seeds 0-2)" in md and "rea (seeds 3-4)" in md  # each batch's command and load stay on record
    assert "batch from seed 3" in md

    again = subprocess.run(args + ["--merge-from", str(later), "--pool"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 2 and "overlap" in again.stderr  # the same seeds twice would double-count them
    assert "Traceback" not in again.stderr
    assert json.loads((committed / "search_single.json").read_text())["entries"][key]["summary"]["seeds"] == 5


def test_rows_of_other_settings_are_not_pooled():
    with pytest.raises(GennasError, match="budget differs"):
        bench_search.pooled_entry(_entry(0, 2), {**_entry(2, 2, budget=40), "seed_range": [2, 3]})


def test_merging_without_pool_replaces_the_row():
    results = {"part": "single", "entries": {"k": _entry(0, 2)}}
    bench_search.merge_entries(results, {"part": "single", "entries": {"k": _entry(2, 3)}}, pool=False)
    assert results["entries"]["k"]["summary"]["seeds"] == 3 and "batches" not in results["entries"]["k"]
    with pytest.raises(GennasError, match="part"):
        bench_search.merge_entries(results, {"part": "multi", "entries": {}}, pool=False)
