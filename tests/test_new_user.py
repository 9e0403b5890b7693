"""What a new user sees on their own data: the npz format, one cost per cell, plans, messages, typed outputs."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from gennas.cli import main
from gennas.data import load_dataset
from gennas.errors import GennasError
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.supernet import SubnetSpace, Supernet, SupernetTrainConfig
from gennas.supernet.measure import SubnetMeasurer, choose_subnets
from gennas.supernet.prune import make_thresholds, select, verified_view
from gennas.supernet.table import read_subnet_table, write_subnet_table
from gennas.supernet.train import time_training_step
from gennas.train import RobustnessConfig, with_normalization

README = Path(__file__).resolve().parents[1] / "README.md"
TINY_RUN = dict(n_cells=2, candidates=8, epochs=1, channels=4, cells_per_stage=1, max_subnets=4, probe_cells=4,
                rounds=2)


def _readme_npz_example() -> str:
    text = README.read_text()
    block = text.split("<!-- npz-example -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.fixture(scope="module")
def derived_npz(tmp_path_factory) -> Path:
    """The README's example, run as written: 4 digit classes upsampled to 16x16, no test split."""
    folder = tmp_path_factory.mktemp("npz")
    code = _readme_npz_example()
    cwd = Path.cwd()
    try:
        import os

        os.chdir(folder)
        exec(compile(code, "README npz example", "exec"), {})
    finally:
        os.chdir(cwd)
    return folder / "digits4x16.npz"


def test_the_readme_npz_example_writes_a_dataset_that_loads_with_a_carved_test_split(derived_npz: Path) -> None:
    splits = load_dataset(f"npz:{derived_npz}")
    assert (splits.num_classes, splits.in_channels, splits.image_size) == (4, 1, 16)
    total = len(splits.train) + len(splits.val) + len(splits.test)
    assert len(splits.test) == round(0.15 * total) and len(splits.val) == round(0.10 * total)
    assert any("no test split" in note for note in splits.notes)


def test_run_and_train_help_state_the_npz_format(capsys) -> None:
    for command in ("run", "train"):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "x_train, y_train" in out and "uint8 in 0..255" in out and "x_test, y_test" in out


# ------------------------------------------------------------------ one cost for one cell
def test_cost_with_a_dataset_uses_the_skeleton_run_and_train_build(capsys) -> None:
    from gennas.supernet.pipeline import RunSettings, _network

    arch = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    assert main(["cost", arch, "--dataset", "digits", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    run_network = _network(RunSettings(), load_dataset("digits"))
    assert out["network"] == run_network.to_dict() and "as gennas run/train build it" in out["skeleton"]
    assert main(["cost", "nb201", arch, "--json"]) == 0  # the contract form keeps the NB201 skeleton
    nb201 = json.loads(capsys.readouterr().out)
    assert nb201["network"] == NetworkConfig().to_dict() and nb201["flops"] > out["flops"]


def test_generate_and_search_name_the_skeleton_of_their_costs(capsys) -> None:
    assert main(["generate", "--n", "2", "--objectives", "flops:min,params:min", "--guidance", "0", "--json"]) == 0
    capsys.readouterr()
    assert main(["generate", "--n", "2", "--objectives", "flops:min,params:min", "--guidance", "0"]) == 0
    assert "costs on the skeleton C=16, N=5 cells/stage, input 3x32x32" in capsys.readouterr().out
    assert main(["search", "--method", "random", "--budget", "3", "--dataset", "ImageNet16-120", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skeleton"] == "C=16, N=5 cells/stage, input 3x16x16, 120 classes"


# ------------------------------------------------------------------ same function, measured once
def test_configurations_that_compute_the_same_function_are_one_subnet() -> None:
    dead_branch = Cell.from_string("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|")
    other = Cell.from_string("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|skip_connect~1|none~2|")
    space = SubnetSpace.from_cells([dead_branch, other])
    network = NetworkConfig(channels=4, cells_per_stage=1, in_channels=1, image_size=8)
    choices = choose_subnets(space, network, limit=10_000)
    canonicals = [c.cell.canonical for c in choices]
    assert len(canonicals) == len(set(canonicals))
    # node 1 of dead_branch feeds nothing: the same function without its conv is cheaper and stands for it
    cheaper = Cell.from_string("|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|")
    choice = next(c for c in choices if c.cell == cheaper)
    assert dead_branch in choice.equivalent and choice.reason == "source cell"
    from gennas.metrics.costs import cell_costs

    for c in choices:
        assert all(cell_costs(c.cell, network)["flops"] <= cell_costs(e, network)["flops"] for e in c.equivalent)


def test_ties_under_a_threshold_go_to_the_smaller_memory() -> None:
    rows = [{"arch": "a", "val_accuracy": 90.0, "flops": 1.0, "memory_bytes": 900},
            {"arch": "b", "val_accuracy": 90.0, "flops": 2.0, "memory_bytes": 500},
            {"arch": "c", "val_accuracy": 80.0, "flops": 0.5, "memory_bytes": 100}]
    assert select(rows, make_thresholds({"max_flops": 5}), "accuracy")["arch"] == "b"


# ------------------------------------------------------------------ units and typed tables
@pytest.mark.parametrize("flag, text, value", [
    ("min_robustness", "45%", 0.45), ("min_robustness", "0.45", 0.45), ("min_robustness", " 7.5% ", 0.075),
    ("min_accuracy", "97%", 97.0), ("min_accuracy", "97", 97.0), ("max_flops", "3.5", 3.5),
])
def test_thresholds_accept_the_unit_the_outputs_use(flag: str, text: str, value: float) -> None:
    (threshold,) = make_thresholds({flag: text})
    assert threshold.value == pytest.approx(value)


@pytest.mark.parametrize("flag, text, message", [
    ("min_robustness", "45", r"fraction in \[0, 1\].*45%"),
    ("max_flops", "3%", "not a percentage"),
    ("min_robustness", "half", "takes a number or a percentage"),
    ("min_robustness", "150%", "fraction in"),
])
def test_ambiguous_or_wrong_units_are_explained(flag: str, text: str, message: str) -> None:
    with pytest.raises(GennasError, match=message):
        make_thresholds({flag: text})


def test_the_subnet_table_keeps_types_and_names_damage(tmp_path: Path) -> None:
    row = {"arch": "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|", "selected_because": "smallest",
           "equivalent": "", "blocks_on": 2, "flops": 0.03, "params": 0.004, "memory_bytes": 23208, "latency_ms": 0.1,
           "latency_spread_ms": 0.01, "val_accuracy": 90.5, "val_pgd_accuracy": 20.0, "accuracy": 88.0,
           "pgd_accuracy": 19.0, "fgsm_accuracy": 40.0, "noise_accuracy": 80.0}
    path = write_subnet_table(tmp_path / "subnets.csv", [row])
    (back,) = read_subnet_table(path)
    assert {k: back[k] for k in row} == row and isinstance(back["memory_bytes"], int)
    assert isinstance(back["blocks_on"], int) and np.isnan(back["standalone_val_accuracy"])  # not verified
    text = path.read_text()
    damaged = {
        "non-numeric": text.replace("90.5", "ninety"),
        "truncated": text.rsplit(",", 3)[0] + "\n",
        "missing column": text.replace("val_accuracy,", "", 1).replace("90.5,", "", 1),
    }
    for name, content in damaged.items():
        path.write_text(content)
        with pytest.raises(GennasError, match=r"subnets\.csv.*delete or move"):
            read_subnet_table(path)


# ------------------------------------------------------------------ the timing probe
def test_the_timing_probe_changes_nothing_the_run_computes() -> None:
    digits = load_dataset("digits")
    cells = [Cell.from_string("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|")]
    network = NetworkConfig.for_data(digits, channels=4, cells_per_stage=1)
    torch.manual_seed(0)
    supernet = Supernet(SubnetSpace.from_cells(cells), network)
    model = with_normalization(supernet, digits)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    step = time_training_step(model, digits, SupernetTrainConfig(epochs=1, device="cpu"))
    measurer = SubnetMeasurer(supernet, model, digits, RobustnessConfig(pgd_steps=2), 256)
    forward, attacks = measurer.time_per_image(cells[0], images=32)
    assert step > 0 and 0 < forward < attacks  # the attacks cost several forwards and backwards
    assert torch.equal(torch.get_rng_state(), rng)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# ------------------------------------------------------------------ a run on derived data
def _run_argv(npz: Path, out: Path, **overrides) -> list[str]:
    options = {**TINY_RUN, **overrides}
    return (["run", "--dataset", f"npz:{npz}", "--objectives", "accuracy:max,flops:min,robustness:max",
             "--out", str(out), "--device", "cpu"] + [f"--{k.replace('_', '-')}={v}" for k, v in options.items()])


def _console_of_run(argv: list[str]) -> str:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv) == 0
    return err.getvalue()


#: Every file the derived run opened (an audit hook's "open" events), for the test that none is a benchmark's.
OPENED_BY_DERIVED_RUN: list[str] = []


@pytest.fixture(scope="module")
def derived_run(derived_npz: Path, tmp_path_factory) -> tuple[Path, str]:
    """`gennas run` on the README's derived dataset: probes, two rounds, robustness guided by the probes."""
    import sys

    out = tmp_path_factory.mktemp("derived") / "run"
    recording = [True]

    def record(event: str, args: tuple) -> None:  # audit hooks stay for the process: this one goes quiet after
        if recording[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            OPENED_BY_DERIVED_RUN.append(os.path.abspath(os.fsdecode(args[0])))

    sys.addaudithook(record)
    try:
        return out, _console_of_run(_run_argv(derived_npz, out))
    finally:
        recording[0] = False


def test_the_run_says_what_it_plans_and_what_it_carved(derived_run) -> None:
    out, console = derived_run
    assert "no test split" in console and "held out as the test split" in console
    assert "round 0: training 4 probe cells standalone" in console
    plan = re.search(r"round 2 of 2: plan: train the supernet (\d+) more epoch\(s\) x (\d+) steps", console)
    assert plan and plan.group(1) == "1" and "estimate: about" in console
    results = json.loads((out / "results.json").read_text())
    assert results["plan"]["estimated"]["total_seconds"] > 0 and results["skeleton"].startswith("C=4, N=1")
    assert "pgd_accuracy:max" in results["generation"]["guided_objectives"]  # taught by the probes' PGD
    assert [r["round"] for r in results["rounds"]] == [1, 2] and (out / "round_1" / "supernet.pt").is_file()
    assert len(results["probes"]) == 4 and "standalone_val_pgd_accuracy" in results["probes"][0]
    report = (out / "report.md").read_text()
    assert "## Rounds" in report and "Network skeleton: C=4, N=1" in report and (out / "rounds.png").is_file()


def test_each_round_keeps_the_predictor_it_generated_with(derived_run) -> None:
    from gennas.supernet.adapt import held_out_tau
    from gennas.supernet.table import read_subnet_table
    from predictors.checkpoint import load_predictor

    out, _ = derived_run
    results = json.loads((out / "results.json").read_text())
    dataset = load_dataset(results["dataset"]).name
    first, last = load_predictor(out / "round_1" / "predictor.pt"), load_predictor(out / "predictor.pt")
    for predictor in (first, last):  # the probes taught both metrics on the run's own data
        assert {f"accuracy@{dataset}", f"pgd_accuracy@{dataset}"} <= set(predictor.tasks)
    rows = read_subnet_table(out / "subnets.csv")
    for metric in ("accuracy", "pgd_accuracy"):  # the file is the predictor the report scored
        tau, cells = held_out_tau(last, f"{metric}@{dataset}", rows, f"standalone_val_{metric}")
        recorded = results["rounds"][-1]["held_out"][metric]
        assert cells == recorded["cells"] and (tau == pytest.approx(recorded["kendall_tau"])
                                               or np.isnan(tau) and np.isnan(recorded["kendall_tau"]))
    cells = [last.space.parse(r["arch"]) for r in rows]
    task = f"pgd_accuracy@{dataset}"  # round 2 also learnt round 1's subnets: another predictor
    assert not np.allclose(first.predict(cells, [task])[task].mean, last.predict(cells, [task])[task].mean)


def test_a_run_opens_nothing_under_experiments(derived_run) -> None:
    """The run learns the dataset from its own measurements: no benchmark file is read (issue 15)."""
    experiments = str(Path(__file__).resolve().parent.parent / "experiments")
    assert len(OPENED_BY_DERIVED_RUN) > 10  # the hook saw the run's files (data, weights, its own outputs)
    assert any("nb201_prior" in p for p in OPENED_BY_DERIVED_RUN)  # torch.load's opens are seen too
    assert not [p for p in OPENED_BY_DERIVED_RUN if p.startswith(experiments + os.sep)]


def test_the_console_names_an_objective_it_cannot_guide(derived_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "zero_shot"
    console = _console_of_run(_run_argv(derived_npz, out, probe_cells=0, rounds=1, finalists=0, max_subnets=2))
    assert "warning: pgd_accuracy:max is not guided" in console and "zero-shot" in console
    assert "**pgd_accuracy:max is not guided**" in (out / "report.md").read_text()


def test_a_run_interrupted_mid_round_resumes_to_the_same_result(derived_run, derived_npz: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    import gennas.supernet.rounds as rounds

    reference, _ = derived_run
    out = tmp_path / "interrupted"
    real, calls = rounds.measure_all, []

    def measure_then_stop(measurer, subnets, progress=True, done=None, on_row=None):
        calls.append(1)

        def keep(row):
            on_row(row)
            if len(calls) == 2:  # the last round's measurement, after its first subnet: as a Ctrl-C there would
                raise KeyboardInterrupt
        return real(measurer, subnets, progress, done, keep)

    monkeypatch.setattr(rounds, "measure_all", measure_then_stop)
    assert main(_run_argv(derived_npz, out) + ["--json"]) == 130  # interrupted
    assert len(read_subnet_table(out / "subnets.csv")) == 1 and (out / "round_1" / "subnets.csv").is_file()
    monkeypatch.undo()
    # Both rounds had adapted their predictor before the interrupt: the resume reads round 2's back, and
    # adapts round 1's again, its kept weights being damaged (as a disk filling up mid-write leaves them).
    damaged = out / "round_1" / "predictor.pt"
    damaged.write_bytes(damaged.read_bytes()[:100])
    console = _console_of_run(_run_argv(derived_npz, out))
    assert "round 1: guidance read back" not in console and "round 2: guidance read back" in console
    assert damaged.stat().st_size > 100  # rewritten by the new adaptation
    unstable = {"latency_ms", "latency_spread_ms"}  # wall-clock readings

    def stable(path: Path) -> list[dict]:
        return [{k: None if v != v else v for k, v in r.items() if k not in unstable}  # NaN: not verified
                for r in read_subnet_table(path)]
    for name in ("round_1/subnets.csv", "subnets.csv"):
        assert stable(out / name) == stable(reference / name), name
    first, again = (json.loads((d / "results.json").read_text())["example_prune"]["chosen"] for d in (reference, out))
    assert again["arch"] == first["arch"] and again["val_accuracy"] == first["val_accuracy"]


def test_a_resumed_run_names_only_the_settings_that_differ(derived_run, derived_npz: Path, capsys) -> None:
    out, _ = derived_run
    assert main([*_run_argv(derived_npz, out), "--epochs=3"]) == 2
    err = capsys.readouterr().err
    assert "--epochs 1 there, 3 now" in err and "--channels" not in err and "guidance" not in err


def test_prune_json_is_typed_and_cost_agrees_with_the_run(derived_run, derived_npz: Path, capsys) -> None:
    out, _ = derived_run
    rows = list(csv.DictReader((out / "subnets.csv").open()))
    for row in rows:
        assert main(["cost", row["arch"], "--dataset", f"npz:{derived_npz}", "--channels", "4",
                     "--cells-per-stage", "1", "--json"]) == 0
        cost = json.loads(capsys.readouterr().out)
        assert cost["flops"] == pytest.approx(float(row["flops"]), rel=1e-6)
        assert cost["memory_bytes"] == int(row["memory_bytes"])
    assert main(["prune", str(out), "--min-robustness", "0%", "--out", str(out / "mine"), "--device", "cpu",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    measured = result["measured_in_run"]
    assert isinstance(measured["memory_bytes"], int) and isinstance(measured["blocks_on"], int)
    assert all(isinstance(measured[k], float) for k in ("flops", "val_accuracy", "latency_ms"))
    assert result["thresholds"] == {"min_robustness": 0.0} and result["skeleton"].startswith("C=4, N=1")
    canonicals = [Cell.from_string(r["arch"]).canonical for r in rows]
    assert len(canonicals) == len(set(canonicals))


# ------------------------------------------------------------------ verified finalists
def test_the_run_verifies_its_finalists_and_prune_chooses_on_those_figures(derived_run, tmp_path: Path,
                                                                          capsys) -> None:
    from gennas.supernet.prune import is_verified

    out, console = derived_run
    rows = read_subnet_table(out / "subnets.csv")
    verified = [r for r in rows if is_verified(r)]
    assert len(verified) == 3 and "verifying 3 finalist(s)" in console
    from gennas.supernet.standalone import weights_path

    assert all(weights_path(out / "standalone", Cell.from_string(r["arch"])).is_file() for r in verified)
    assert "## Verified finalists" in (out / "report.md").read_text()
    import shutil

    only_verified = tmp_path / "verified_only"  # a copy whose table lists the finalists alone
    shutil.copytree(out, only_verified, ignore=shutil.ignore_patterns("export", "v", "w", "mine"))
    write_subnet_table(only_verified / "subnets.csv", verified)
    assert main(["prune", str(only_verified), "--minimize", "flops", "--out", str(tmp_path / "v"), "--device", "cpu",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    cheapest = min(verified, key=lambda r: (r["flops"], r["memory_bytes"]))
    assert result["cell"] == cheapest["arch"] and result["chosen_on"] == "standalone" and result["verified"]
    assert result["val_accuracy"] == pytest.approx(cheapest["standalone_val_accuracy"])  # the export is that training
    expected = select(verified_view(rows), make_thresholds({"min_accuracy": 0}), "accuracy")
    assert main(["prune", str(out), "--min-accuracy", "0", "--out", str(out / "w"), "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cell"] == expected["arch"] and result["chosen_on"] == expected["figures"]


def test_prune_verify_retrains_the_choice_and_fails_cleanly_when_it_misses(derived_run, tmp_path: Path,
                                                                           capsys) -> None:
    import shutil

    from gennas.supernet.prune import estimated_view, is_verified

    out, _ = derived_run
    run = tmp_path / "run"
    shutil.copytree(out, run, ignore=shutil.ignore_patterns("export", "v", "mine"))
    rows = read_subnet_table(run / "subnets.csv")
    claimed = next(r for r in rows if not is_verified(r))
    claimed.update(val_accuracy=100.0, val_pgd_accuracy=100.0)  # a supernet reading too good to be true
    write_subnet_table(run / "subnets.csv", rows)
    # --verify judges it on its reading calibrated by the verified finalists: ask for just that
    estimate = next(r for r in estimated_view(rows) if r["arch"] == claimed["arch"])
    assert estimate["figures"] == "calibrated"
    before = len(list((run / "standalone").glob("*.pt")))
    argv = ["prune", str(run), "--min-accuracy", f"{estimate['val_accuracy'] - 0.01:.2f}%", "--min-robustness",
            f"{estimate['val_pgd_accuracy'] - 0.01:.2f}%", "--out", str(run / "deploy"), "--device", "cpu", "--verify"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{claimed['arch']} retrained standalone misses" in err and "nothing was exported" in err
    assert ("min-accuracy" in err or "min-robustness" in err) and "Traceback" not in err  # it names what it missed
    assert not (run / "deploy" / "model.pt").exists()
    assert len(list((run / "standalone").glob("*.pt"))) == before + 1  # kept: a second --verify trains nothing


def test_the_example_thresholds_are_met_by_the_median_subnet() -> None:
    from gennas.supernet.pipeline import example_thresholds

    rows = [{"flops": 0.03115, "memory_bytes": 25_251, "val_pgd_accuracy": 10.86} for _ in range(3)]
    limits = make_thresholds(example_thresholds(rows))
    assert all(t.violation(rows[0]) == 0 for t in limits)  # rounding never excludes the median itself
