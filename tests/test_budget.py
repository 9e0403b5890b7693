"""``gennas run --budget-minutes``: the plan fills the budget, honours what the user set, refuses what it cannot do."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from gennas.cli import main
from gennas.errors import GennasError
from gennas.supernet.budget import KNOBS, TARGET_FRACTION, estimate_seconds, plan_budget
from gennas.supernet.plan import UnitCosts
from gennas.supernet.run_settings import RunSettings, adopt_planned
from gennas.supernet.standalone import STANDALONE_COLUMNS

#: Unit costs of a mid-sized dataset on a slow CPU (one supernet epoch 30 s, one subnet 20 s).
COSTS = UnitCosts(steps_per_epoch=50, subnets_per_step=4, step_seconds=0.5, epoch_check_seconds=5.0,
                  subnet_seconds=20.0, standalone_epoch_seconds=7.0, standalone_eval_seconds=15.0,
                  predictor_fit_seconds=3.0)
FREE = set(KNOBS)


def _planned(minutes: float, free=FREE, settings: RunSettings | None = None) -> tuple[RunSettings, dict]:
    settings = settings or RunSettings(budget_minutes=minutes, planned=tuple(sorted(free)))
    planned, plan = plan_budget(minutes, settings, set(free), COSTS, candidate_seconds=10.0 / 64, spent_seconds=15.0)
    return planned, plan.to_dict()


def test_each_knob_runs_from_its_smallest_value_through_the_default_to_its_cap() -> None:
    for name, knob in KNOBS.items():
        values = [knob.at(s) for s in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 1000.0)]
        assert values == sorted(values), name
        assert values[0] == knob.smallest and knob.at(1.0) == getattr(RunSettings, name) and values[-1] == knob.cap


def test_the_estimate_is_the_sum_of_counts_times_unit_costs() -> None:
    settings = RunSettings(epochs=4, probe_cells=2, max_subnets=10, finalists=3, rounds=2, n_cells=6, candidates=32,
                           finetune_epochs=2)
    standalone = 4 * 7.0 + 15.0
    # Adaptation: round 1 fits accuracy and robustness once each on the 2 probes; round 2 has the probes and
    # round 1's 10 measured subnets, enough to cross-validate accuracy (2 fits a fold, 4 folds, then the fit).
    fits = 2 + (2 * 4 + 1) + 1
    expected = {"probes": 2 * standalone, "adaptation": fits * 3.0, "generation": 2 * 32 * 0.5,
                "training": 2 * 4 * (50 * 0.5 + 5.0),
                "measurement": 2 * 11 * (20.0 + 2 * 7.0),  # each subnet: its fine-tune, then its measurement
                "verification": 2 * 3 * standalone}
    estimate = estimate_seconds(settings, COSTS, 0.5)
    assert estimate == pytest.approx({**expected, "total": sum(expected.values())})


def test_adaptation_counts_the_predictor_fits_each_round_makes() -> None:
    from gennas.supernet.budget import predictor_fits

    accuracy_only = RunSettings(objectives="accuracy:max,flops:min", probe_cells=8, rounds=1)
    assert predictor_fits(accuracy_only) == 2 * 4 + 1  # 8 probes: the cross-validated choice, then the fit
    assert predictor_fits(replace(accuracy_only, probe_cells=1)) == 0  # too few cells: the zero-shot prior
    assert predictor_fits(replace(accuracy_only, probe_cells=0, rounds=2)) == 2 * 4 + 1  # round 2 learns round 1
    assert predictor_fits(replace(accuracy_only, space="darts", rounds=3)) == 3  # no prior: one own fit a round
    assert predictor_fits(replace(accuracy_only, objectives="flops:min,memory:min")) == 0  # nothing learned


def test_the_plan_fills_the_budget_without_passing_it_and_grows_with_it() -> None:
    previous = None
    for minutes in (15, 30, 60, 240):
        planned, plan = _planned(minutes)
        total = plan["estimate"]["total"] + plan["spent_seconds"]
        assert total <= minutes * 60 * TARGET_FRACTION + 1e-6
        assert total >= minutes * 60 * TARGET_FRACTION * 0.75  # not a timid plan
        assert planned.finalists >= 3 and planned.max_subnets >= planned.finalists
        if previous is not None:
            assert all(getattr(planned, k) >= getattr(previous, k) for k in KNOBS)
        previous = planned
    assert previous.epochs > RunSettings.epochs  # a generous budget trains longer than the default


def test_settings_the_user_gave_are_kept_and_the_rest_planned_around_them() -> None:
    settings = RunSettings(budget_minutes=30, planned=("epochs", "max_subnets"), probe_cells=0, finalists=5)
    planned, plan = _planned(30, {"epochs", "max_subnets"}, settings)
    assert planned.probe_cells == 0 and planned.finalists == 5 and set(plan["chosen"]) == {"epochs", "max_subnets"}


def test_a_budget_below_the_smallest_plan_is_refused_with_what_it_needs() -> None:
    with pytest.raises(GennasError, match=r"--budget-minutes 2 is below the smallest run .* about \d+ min"):
        _planned(2)


def test_a_tight_budget_still_trains_enough_steps() -> None:
    from gennas.supernet.budget import MIN_TRAINING_STEPS

    planned, _ = _planned(11)
    assert planned.epochs * COSTS.steps_per_epoch >= MIN_TRAINING_STEPS and planned.probe_cells <= 2


def test_a_resumed_run_keeps_its_plan_and_a_different_budget_does_not(tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    planned, _ = _planned(30)
    from dataclasses import asdict

    from gennas.io import write_json_checked

    write_json_checked(saved, {"settings": json.loads(json.dumps(asdict(planned)))})
    fresh = RunSettings(budget_minutes=30, planned=tuple(sorted(FREE)))
    assert adopt_planned(saved, fresh) == planned
    assert adopt_planned(saved, replace(fresh, budget_minutes=31)) == replace(fresh, budget_minutes=31)


def _tiny_argv(npz: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--dataset", f"npz:{npz}", "--objectives", "accuracy:max,flops:min", "--out", str(out),
            "--device", "cpu", "--n-cells", "2", "--candidates", "8", "--channels", "4", "--cells-per-stage", "1",
            *extra]


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory) -> Path:
    """Digits 0..3 at 8x8: a dataset small enough to run the whole job in seconds."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = digits.target < 4
    path = tmp_path_factory.mktemp("npz") / "digits4.npz"
    np.savez(path, x_train=(digits.images[keep] * 255 / 16).astype(np.uint8), y_train=digits.target[keep])
    return path


def test_a_budget_too_small_for_the_data_exits_2_and_writes_no_run(small_npz: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_tiny_argv(small_npz, out, "--budget-minutes", "0.01", "--json")) == 2
    err = capsys.readouterr().err
    assert "--budget-minutes 0.01 is below the smallest run" in err and "Traceback" not in err
    assert not (out / "run.json").exists()


def test_a_budgeted_run_plans_says_so_keeps_the_plan_and_resumes_it(small_npz: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = _tiny_argv(small_npz, out, "--budget-minutes", "1", "--max-subnets", "4", "--epochs", "1", "--supernet", "always")
    assert main(argv) == 0
    first = capsys.readouterr()
    planned_line = next(line for line in first.err.splitlines() if line.startswith("budget 1 min: planned"))
    assert "--probe-cells" in planned_line and "--max-subnets" not in planned_line and "--epochs" not in planned_line
    results = json.loads((out / "results.json").read_text())
    budget = results["plan"]["budget"]
    settings = results["settings"]
    assert set(budget["chosen"]) == {"finalists", "probe_cells"} and settings["max_subnets"] == 4
    assert all(settings[k] == v for k, v in budget["chosen"].items())
    assert budget["estimate"]["total"] + budget["spent_seconds"] <= 1.0 * 60  # may pass the 90 % target, not M
    from gennas.supernet.prune import is_verified
    from gennas.supernet.table import read_subnet_table

    table = read_subnet_table(out / "subnets.csv")
    verified = sum(is_verified(r) for r in table)
    # every planned finalist is verified; a subnet measured with the time left may lack the time for its training
    assert verified >= min(settings["finalists"], settings["max_subnets"], len(table))
    assert (verified > settings["finalists"]) == ("more subnet(s) along the front were verified" in first.err)
    assert main(argv) == 0  # every stage's output exists: the rerun resumes the same plan
    second = capsys.readouterr()
    assert "resuming the plan for --budget-minutes 1" in second.err and "round 1: guidance read back" in second.err
    assert json.loads((out / "results.json").read_text())["settings"] == settings


class _Trained:
    def __init__(self, figures: dict) -> None:
        self.figures = figures


_OPS = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none", "nor_conv_3x3")


def _subnet_row(i: int, verified: bool) -> dict:
    value = float("nan") if not verified else 50.0 + i
    arch = f"|{_OPS[i]}~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|nor_conv_1x1~2|".replace(
        "none~1|+", "skip_connect~1|+" if i == 5 else "none~1|+")
    return {"arch": arch, "flops": 1.0 + i, "memory_bytes": 1000 + i, "val_accuracy": 90.0 - i,
            "val_pgd_accuracy": 40.0 - i, "accuracy": 90.0 - i, "pgd_accuracy": 40.0 - i,
            **{c: value for c in STANDALONE_COLUMNS}}


def test_time_left_after_every_subnet_is_verified_measures_more_and_verifies_them(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from gennas.supernet.rounds import RunContext, _verify_while_time_lasts

    class Context(SimpleNamespace):  # what the loop reads of a run, with the run's own deadline rule
        another_training_fits = RunContext.another_training_fits

    rows = [_subnet_row(i, verified=True) for i in range(3)]
    batches = [[_subnet_row(3, False), _subnet_row(4, False)], []]
    trained = []

    def train(cell):
        trained.append(cell.to_string())
        return _Trained({c: 60.0 for c in STANDALONE_COLUMNS})

    ctx = Context(settings=RunSettings(finalists=3), standalone_seconds=[1.0], deadline=time.monotonic() + 3600,
                  train_standalone=train, say=lambda text: None)
    _verify_while_time_lasts(ctx, rows, tmp_path / "subnets.csv", 0.1, lambda: batches.pop(0))
    assert len(rows) == 5 and not batches  # one batch measured, then none left
    assert sorted(trained) == sorted(r["arch"] for r in rows[3:])
    soon = Context(**{**vars(ctx), "deadline": time.monotonic() + 5})  # another training would not fit
    more = [[_subnet_row(5, False)]]
    _verify_while_time_lasts(soon, rows, tmp_path / "subnets.csv", 0.1, lambda: more.pop(0))
    assert more and len(rows) == 5


#: Unit costs of a few hundred 8x8 images (measured on digits-low): a standalone training costs about as
#: much as four subnet readings, and the supernet's training as two standalone trainings.
SMALL_DATA = UnitCosts(steps_per_epoch=3, subnets_per_step=4, step_seconds=0.4, epoch_check_seconds=0.6,
                       subnet_seconds=6.0, standalone_epoch_seconds=0.5, standalone_eval_seconds=10.0)


def test_auto_plans_without_a_supernet_only_where_training_the_cells_is_worth_more() -> None:
    from gennas.supernet.budget import READING_WORTH, choose_mode, measured_subnets

    def choose(minutes: float, costs: UnitCosts):
        settings = RunSettings(budget_minutes=minutes, planned=tuple(sorted(FREE)))
        return choose_mode(minutes, settings, set(FREE), costs, candidate_seconds=0.8, spent_seconds=40.0)

    planned, plan = choose(5, SMALL_DATA)
    assert plan.mode == "direct" and set(plan.chosen) == {"epochs", "probe_cells", "candidates", "finalists"}
    assert "estimate" in plan.describe() and "without a supernet" in plan.describe()
    supernet, _ = plan_budget(5, RunSettings(budget_minutes=5, planned=tuple(sorted(FREE))), set(FREE), SMALL_DATA,
                              0.8, 40.0)
    assert planned.finalists > supernet.finalists + READING_WORTH * (measured_subnets(supernet) - supernet.finalists)
    assert plan.estimate["total"] + plan.spent_seconds <= 5 * 60 * TARGET_FRACTION + 1e-6
    assert "training" not in plan.estimate and planned.candidates >= planned.finalists
    for minutes in (30, 240):  # a training costs many subnet readings: the supernet is worth it
        assert choose(minutes, COSTS)[1].mode == "supernet"


def test_a_budget_only_the_direct_plan_fits_is_planned_without_a_supernet() -> None:
    from gennas.supernet.budget import choose_mode

    settings = RunSettings(budget_minutes=3, planned=tuple(sorted(FREE)))
    with pytest.raises(GennasError, match="below the smallest run"):
        plan_budget(3, settings, set(FREE), SMALL_DATA, 0.8, 40.0)
    planned, plan = choose_mode(3, settings, set(FREE), SMALL_DATA, 0.8, 40.0)
    assert plan.mode == "direct" and "does not fit" in plan.why and planned.finalists >= 3
