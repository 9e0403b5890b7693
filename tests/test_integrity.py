"""Integrity: content hashes on weights and journals, stale temp files, threads, Ctrl-C messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from gennas.cli import build_parser, interrupted_message
from gennas.errors import GennasError
from gennas.io import atomic_write, load_checked, read_json_checked, save_checked, write_json_checked
from gennas.threads import thread_count, usable_cores
from damage import CELLS, flip_bit, write_run_dir


def test_flipped_bit_in_a_tensor_is_an_error_naming_the_file(tmp_path):
    path = save_checked(tmp_path / "w.pt", {"format": "x", "w": torch.arange(1000, dtype=torch.float32)})
    assert torch.equal(load_checked(path, "weights")["w"], torch.arange(1000, dtype=torch.float32))
    flip_bit(path)
    assert not torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(1000.0))  # torch alone loads it
    with pytest.raises(GennasError, match=f"weights {path} is corrupt.*delete or move {path}"):
        load_checked(path, "weights")


def test_files_without_a_hash_load_unchecked(tmp_path):
    """Checkpoints and journals written before hashes existed (the committed weights) still load."""
    torch.save({"format": "x", "w": torch.ones(3)}, tmp_path / "old.pt")
    assert load_checked(tmp_path / "old.pt", "weights")["w"].sum() == 3
    (tmp_path / "old.json").write_text(json.dumps({"run": {"history": [1.5]}}))
    assert read_json_checked(tmp_path / "old.json", "journal") == {"run": {"history": [1.5]}}


def test_committed_weights_keep_loading():
    from diffusion.commands import generator_path
    from diffusion.model import CellDiffusion
    from predictors.checkpoint import load_predictor
    from predictors.transfer import prior_weights_path

    assert CellDiffusion.load(generator_path("nb201")).space.name == "nb201"
    assert load_predictor(prior_weights_path("cifar10")).tasks


def test_edited_json_record_is_refused(tmp_path):
    path = write_json_checked(tmp_path / "j.json", {"history": [{"arch": "a", "accuracy": 93.0}]})
    assert read_json_checked(path, "journal")["history"][0]["accuracy"] == 93.0
    path.write_text(path.read_text().replace("93.0", "39.0"))
    with pytest.raises(GennasError, match="no longer matches the sha256"):
        read_json_checked(path, "journal")


@pytest.mark.parametrize("loader", ["predictor", "generator", "supernet", "trainer", "weightsharing"])
def test_each_loader_checks_its_hash(tmp_path, loader):
    path = tmp_path / "ckpt.pt"
    if loader == "predictor":
        from predictors.checkpoint import load_predictor, save_predictor
        from predictors.transfer import prior_weights_path

        save_predictor(load_predictor(prior_weights_path("cifar10")), path)
        load = lambda: load_predictor(path)  # noqa: E731
    elif loader == "generator":
        from diffusion.commands import generator_path
        from diffusion.model import CellDiffusion

        CellDiffusion.load(generator_path("nb201")).save(path)
        load = lambda: CellDiffusion.load(path)  # noqa: E731
    elif loader == "supernet":
        from gennas.supernet.store import load_supernet

        path = write_run_dir(tmp_path) / "supernet.pt"
        load = lambda: load_supernet(path)  # noqa: E731
    elif loader == "trainer":
        from gennas.train.trainer import CHECKPOINT

        save_checked(path, {"format": "gennas-train-checkpoint/1", "model": {"w": torch.randn(500)}})
        load = lambda: CHECKPOINT.load(path, "rerun", "not a training checkpoint")  # noqa: E731
    else:
        from gennas.weightsharing.search import CHECKPOINT

        save_checked(path, {"format": "gennas-weightsharing-checkpoint/1", "model": {"w": torch.randn(500)}})
        load = lambda: CHECKPOINT.load(path, "rerun", "not a DARTS/GDAS checkpoint")  # noqa: E731
    if loader not in ("trainer", "weightsharing"):
        load()  # a good file loads
    flip_bit(path)
    with pytest.raises(GennasError, match=f"{path} is corrupt.*delete or move {path}"):
        load()


def test_stale_temp_of_a_killed_writer_is_removed_and_a_live_one_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".w.pt.{int(dead.stdout)}.abcd.tmp"
    live = tmp_path / f".w.pt.{os.getppid()}.efgh.tmp"  # the parent (pytest's launcher) is alive
    stale.write_bytes(b"")
    live.write_bytes(b"")
    atomic_write(tmp_path / "w.pt", lambda tmp: tmp.write_bytes(b"ok"))
    assert not stale.exists() and live.exists() and (tmp_path / "w.pt").read_bytes() == b"ok"


def test_a_failing_torch_save_leaves_no_temp(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_checked(tmp_path / "w.pt", {"x": Unpicklable()})
    assert list(tmp_path.iterdir()) == []


def test_thread_count_respects_omp_num_threads_and_affinity():
    assert thread_count({"OMP_NUM_THREADS": "1"}) == 1
    assert thread_count({"OMP_NUM_THREADS": "3"}) == 3
    assert thread_count({}) == usable_cores() == len(os.sched_getaffinity(0))
    assert thread_count({"OMP_NUM_THREADS": "junk"}) == usable_cores()
    assert "OMP_NUM_THREADS" in build_parser().format_help()


def test_taskset_limits_the_threads():
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores to restrict to one")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); " \
           "from gennas.threads import configure_threads; print(configure_threads())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "1"


@pytest.mark.parametrize("argv, phrase", [
    (["generate"], "nothing was saved"),
    (["predictor", "fit", "--metric", "a", "--out", "x.pt"], "no checkpoint was written"),
    (["generator", "train"], "no checkpoint was written"),
    (["search", "--method", "rea"], "nothing was saved (no --out)"),
    (["search", "--method", "rea", "--out", "runs/x"], "journals under runs/x"),
    (["compare", "--budget-minutes", "1", "--out", "runs/y"], "rows are kept in runs/y"),
    (["run", "--out", "runs/z"], "kept in runs/z"),
    (["train", CELLS[0]], "nothing was saved"),
])
def test_interrupted_message_says_what_each_command_saved(argv, phrase):
    assert phrase in interrupted_message(build_parser().parse_args(argv))


def test_a_ctrl_c_swallowed_by_a_library_still_stops_the_search_and_resume_is_exact(tmp_path):
    """sklearn's MLP catches KeyboardInterrupt; the loop must stop anyway, before that round is measured."""
    import signal

    from gennas import interrupt
    from gennas.bench.tabular import TabularOracle
    from gennas.cli import _first_interrupt
    from gennas.objectives import parse_objectives
    from gennas.search import SearchContext, make_searcher, run_search
    from gennas.space import nb201_space

    def search(journal, swallow_at=None):
        oracle = TabularOracle("cifar10")
        context = SearchContext(nb201_space(), parse_objectives("accuracy:max"), seed=5, costs=oracle.cost,
                                network=oracle.network, dataset="cifar10")
        searcher = make_searcher("rea", context)
        ask, calls = searcher.ask, []

        def swallowing_ask(n):
            calls.append(n)
            if len(calls) == swallow_at:
                try:  # what sklearn's MLP fit does with a Ctrl-C
                    os.kill(os.getpid(), signal.SIGINT)
                except KeyboardInterrupt:
                    pass
            return ask(n)

        searcher.ask = swallowing_ask
        return run_search(searcher, oracle, 30, method="rea", seed=5, journal=journal)

    reference = search(tmp_path / "ref.json")
    previous = signal.signal(signal.SIGINT, _first_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            search(tmp_path / "cut.json", swallow_at=12)
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupt.clear()
    assert len(json.loads((tmp_path / "cut.json").read_text())["run"]["history"]) == 11
    assert search(tmp_path / "cut.json").history == reference.history
