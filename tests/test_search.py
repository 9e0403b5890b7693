"""The search loop: budgets, honesty, determinism, resume, pymoo wiring, Ray, CLI."""

import json

import numpy as np
import pytest
import torch

import gennas.bench.nb201 as nb201
from gennas.bench.tabular import TabularOracle
from gennas.cli import main
from gennas.errors import GennasError
from gennas.objectives import parse_objectives
from gennas.search import METHODS, SearchContext, make_searcher, run_search
from gennas.search.loop import Target
from gennas.search.indicators import nb201_reference
from gennas.search.nsga2 import CellProblem, make_nsga2
from gennas.search.report import summarise
from gennas.space import Cell, nb201_space

#: Small settings so every method, ours included, runs in seconds.
FAST = {"pool": 12, "n_init": 4, "fit_steps": 60, "guidance": 10, "candidates": 100}
BASELINES = [m for m in METHODS if m != "ours"]


class CountingOracle(TabularOracle):
    """A tabular oracle that records every look-up of the target column."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.measured = []

    def _measure(self, cell):
        self.measured.append(cell.to_string())
        return super()._measure(cell)


def _run(method, budget, seed=0, objectives=None, journal=None, oracle=None, prior=False, target=None):
    """One run on CIFAR-10; the goal defaults to accuracy, or (accuracy, FLOPs) for a multi-objective-only method."""
    several = getattr(METHODS[method], "arity", "one") == "several"  # botorch-qnehvi: hypervolume needs two
    objectives = objectives or ("accuracy:max,flops:min" if several else "accuracy:max")
    oracle = oracle or CountingOracle("cifar10")
    context = SearchContext(nb201_space(), parse_objectives(objectives), seed=seed, costs=oracle.cost,
                            network=oracle.network, dataset="cifar10",
                            prior=oracle.prior() if prior else None, options=dict(FAST))
    searcher = make_searcher(method, context)
    return run_search(searcher, oracle, budget, method=method, seed=seed, journal=journal, target=target), oracle


@pytest.fixture
def lock_table(monkeypatch):
    """Call it once the oracle holds its copy: any later read of the table fails loudly."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a searcher tried to read the benchmark table")

    return lambda: monkeypatch.setattr(nb201, "_load_table_cached", forbidden)


@pytest.mark.parametrize("method", list(METHODS))
def test_budget_is_exact_and_table_only_reached_through_counted_queries(method, lock_table):
    oracle = CountingOracle("cifar10")
    lock_table()
    # BoTorch refits its GP on every query: 15 queries are 11 past the 4 initial cells FAST gives it.
    budget = 12 if method == "ours" else 15 if method.startswith("botorch") else 30
    run, oracle = _run(method, budget, oracle=oracle)
    archs = [row["arch"] for row in run.history]
    assert len(archs) == budget == len(set(archs)) == oracle.queries
    assert oracle.measured == archs  # every look-up was a counted query, in history order
    assert all(row["accuracy"] == oracle.query(Cell.from_string(row["arch"]))["accuracy"] for row in run.history)


@pytest.mark.parametrize("method", list(METHODS))
def test_same_seed_same_history_other_seed_other_history(method):
    budget = 8 if method == "ours" else 14 if method.startswith("botorch") else 25
    first, _ = _run(method, budget, seed=3)
    again, _ = _run(method, budget, seed=3)
    other, _ = _run(method, budget, seed=4)
    assert first.history == again.history
    assert [r["arch"] for r in other.history] != [r["arch"] for r in first.history]


def test_transfer_prior_hides_the_target_and_ours_uses_it():
    oracle = TabularOracle("cifar10")
    prior = oracle.prior()
    assert set(prior.accuracy) == {"cifar100", "ImageNet16-120"}
    with pytest.raises(GennasError, match="counted queries"):
        oracle.prior(["cifar10"])
    run, _ = _run("ours", 4, prior=True)
    # The prior (never trained on CIFAR-10) already points at strong cells: within four
    # queries ours measures a top-1% cell, where random search would need ~70 on average.
    accuracy = np.sort(oracle._table.accuracy["cifar10"])
    assert max(r["accuracy"] for r in run.history) >= accuracy[int(0.99 * len(accuracy))]


def test_source_portfolio_opens_with_each_source_tables_leaders_in_turn():
    oracle = CountingOracle("cifar10")
    prior = oracle.prior()
    context = SearchContext(nb201_space(), parse_objectives("accuracy:max"), seed=0, costs=oracle.cost,
                            network=oracle.network, dataset="cifar10", prior=prior,
                            options={**FAST, "source_portfolio": 4})
    run = run_search(make_searcher("ours", context), oracle, 5, method="ours", seed=0)
    sources = list(prior.accuracy)  # the order SourceScores keeps
    expected, taken = [], set()
    for query in range(4):
        column = np.asarray(prior.accuracy[sources[query % 2]])
        expected.append(next(prior.archs[i] for i in np.argsort(-column, kind="stable") if prior.archs[i] not in taken))
        taken.add(expected[-1])
    assert [r["arch"] for r in run.history[:4]] == expected
    assert run.history[4]["arch"] not in taken and len(oracle.measured) == 5  # then the model picks, counted as ever


def test_front_portfolio_opens_a_transfer_front_search_with_the_same_leaders():
    """With several objectives the portfolio is ``front_portfolio`` long (0, the default, keeps none)."""
    prior = CountingOracle("cifar10").prior()
    goal = parse_objectives("accuracy:max,flops:min")

    def first_queries(options: dict) -> list[str]:
        oracle = CountingOracle("cifar10")  # each run its own count
        context = SearchContext(nb201_space(), goal, seed=0, costs=oracle.cost, network=oracle.network,
                                dataset="cifar10", prior=prior, options={**FAST, **options})
        return [r["arch"] for r in run_search(make_searcher("ours", context), oracle, 2, method="ours", seed=0).history]

    sources = list(prior.accuracy)
    leaders = [prior.archs[int(np.argmax(np.asarray(prior.accuracy[sources[q]])))] for q in range(2)]
    assert first_queries({"front_portfolio": 2})[:2] == leaders
    assert first_queries({})[:2] != leaders  # the default: expected hypervolume improvement picks from the start


class Interrupt(Exception):
    pass


def test_resume_after_interruption_continues_the_same_run(tmp_path):
    reference, _ = _run("rea", 30, seed=1)

    class Flaky(CountingOracle):
        def _measure(self, cell):
            if len(self.measured) == 17:
                raise Interrupt
            return super()._measure(cell)

    journal = tmp_path / "seed_1.json"
    with pytest.raises(Interrupt):
        _run("rea", 30, seed=1, journal=journal, oracle=Flaky("cifar10"))
    saved = json.loads(journal.read_text())["run"]["history"]
    assert [r["arch"] for r in saved] == [r["arch"] for r in reference.history[:17]]
    resumed, oracle = _run("rea", 30, seed=1, journal=journal)
    assert resumed.history == reference.history
    assert len(oracle.measured) == 13  # only the queries the interrupted run had not made


def test_resume_refuses_a_journal_of_another_run(tmp_path):
    journal = tmp_path / "seed_0.json"
    _run("random", 10, seed=0, journal=journal)
    with pytest.raises(GennasError, match=r"other settings \(method\)"):
        _run("rea", 10, seed=0, journal=journal)
    payload = json.loads(journal.read_text())
    finished, oracle = _run("random", 10, seed=0, journal=journal)  # a finished journal is the result: no replay
    assert [r["arch"] for r in finished.history] == [r["arch"] for r in payload["run"]["history"]]
    assert oracle.queries == 0
    payload.pop("sha256")  # hand-edited below: without its hash it loads unchecked, like a journal from before hashes
    payload["run"]["history"] = payload["run"]["history"][:6]  # unfinished: resuming replays it
    payload["run"]["history"][3]["arch"] = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    journal.write_text(json.dumps(payload))
    with pytest.raises(GennasError, match="query 4 was .* other code or settings"):
        _run("random", 10, seed=0, journal=journal)
    journal.write_text("{not json")
    with pytest.raises(GennasError, match="cannot read search journal"):
        _run("random", 10, seed=0, journal=journal)


def test_cell_problem_runs_under_pymoo_minimize_with_the_oracle():
    from pymoo.optimize import minimize

    oracle = TabularOracle("cifar10")
    objectives = parse_objectives("accuracy:max,flops:min")
    problem = CellProblem(nb201_space(), objectives, evaluate=oracle.query)
    cell = Cell.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert problem.decode(nb201_space().encode(cell)) == cell
    result = minimize(problem, make_nsga2(10), ("n_gen", 3), seed=0)
    assert result.F.shape[1] == 2 and oracle.queries <= 30
    for x, f in zip(np.atleast_2d(result.X), np.atleast_2d(result.F)):
        truth = oracle.query(problem.decode(x))
        assert f[0] == -truth["accuracy"] and f[1] == truth["flops"]


def test_multi_objective_report_scores_against_the_true_front():
    objectives = parse_objectives("accuracy:max,flops:min")
    reference = nb201_reference("cifar10", objectives)
    runs = [_run("nsga2", 40, seed=s, objectives="accuracy:max,flops:min")[0] for s in range(2)]
    summary = summarise(runs, objectives, reference)
    ratios = [summary["hv_ratio"][k][0] for k in ("10", "20", "40")]
    assert 0 < ratios[0] <= ratios[1] <= ratios[2] <= 1.0  # more queries never shrink the front
    front_rows = [{"accuracy": -f[0], "flops": f[1]} for f in reference.front]
    assert reference.hv_ratio(front_rows) == pytest.approx(1.0)
    assert reference.igd_plus(front_rows) == pytest.approx(0.0)


def test_ray_backend_gives_the_serial_results_on_a_training_oracle(tmp_path, ray_backend):
    from gennas.bench.training import TrainingOracle
    from gennas.search.backends import SerialBackend
    from gennas.train import TrainConfig

    def oracle(cache):
        return TrainingOracle("digits", train=TrainConfig(epochs=1, seed=0, device="cpu"), channels=4,
                              cells_per_stage=1, max_train=300, cache=cache, progress=False)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Ray workers run single-threaded; match them for bitwise-equal training
    try:
        runs = {}
        for name, backend in (("serial", SerialBackend()), ("ray", ray_backend)):
            o = oracle(tmp_path / name)
            context = SearchContext(o.space, parse_objectives("accuracy:max"), seed=0, costs=o.cost, network=o.network)
            runs[name] = run_search(make_searcher("random", context), o, 3, method="random", seed=0, backend=backend)
    finally:
        torch.set_num_threads(threads)
    timing = {"seconds", "latency_ms"}
    strip = lambda h: [{k: v for k, v in row.items() if k not in timing} for row in h]  # noqa: E731
    assert strip(runs["ray"].history) == strip(runs["serial"].history)
    assert len(runs["ray"].history) == 3


def test_a_target_ends_the_run_at_the_round_that_reaches_it_and_changes_nothing_before(tmp_path):
    full, _ = _run("rea", 60, seed=2)
    values = [r["accuracy"] for r in full.history]
    target = Target("accuracy", max(values[:40]))  # the best of the first 40 queries
    first = next(i for i, v in enumerate(values) if v >= target.value)
    journal = tmp_path / "seed_2.json"
    stopped, oracle = _run("rea", 200, seed=2, journal=journal, target=target)
    assert stopped.history == full.history[: first + 1]  # the same run, cut after the query that reached it
    assert stopped.stopped == target.stop_reason(first + 1) and oracle.queries == len(stopped.history)
    # The journal of a run cut by a target is continued by a run without one.
    more, oracle = _run("rea", 60, seed=2, journal=journal)
    assert more.history == full.history and len(oracle.measured) == 60 - len(stopped.history)
    # A journal that already reaches the target is finished at any budget: nothing is asked or measured.
    again, oracle = _run("rea", 500, seed=2, journal=journal, target=target)
    assert again.history == full.history and not oracle.measured and again.stopped == target.stop_reason(first + 1)
    assert json.loads(journal.read_text())["run"]["budget"] == 60  # left as written, so it serves budget 60 still
    minimum = Target("flops", 1e9, "min")  # any cell has at most 1e9 FLOPs: the first round ends it
    cheap, _ = _run("rea", 50, seed=2, objectives="accuracy:max,flops:min", target=minimum)
    assert 0 < len(cheap.history) <= 20 and cheap.stopped.startswith("target reached: flops <=")


def test_cli_search_json_contract(capsys, tmp_path):
    code = main(["search", "--space", "nb201", "--dataset", "cifar10", "--method", "rea", "--budget", "15",
                 "--seeds", "2", "--seed", "5", "--prior", "none", "--objectives", "accuracy:max,flops:min",
                 "--out", str(tmp_path), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in payload["runs"]] == [5, 6]
    for run in payload["runs"]:
        assert len(run["history"]) == 15
        assert set(run["history"][0]) >= {"arch", "accuracy", "flops"}
        assert Cell.from_string(run["history"][0]["arch"])
    assert "hv_ratio" in payload["summary"] and payload["summary"]["seeds"] == 2
    assert (tmp_path / "rea" / "seed_6.json").exists() and (tmp_path / "summary.md").exists()
    assert (tmp_path / "pareto.png").exists() and (tmp_path / "best_vs_queries.png").exists()


def test_cli_stop_at_ends_each_run_at_its_target(capsys, tmp_path):
    assert main(["search", "--method", "random", "--budget", "50", "--seeds", "2", "--stop-at", "accuracy:0",
                 "--out", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["settings"]["stop_at"] == "accuracy:0"
    for run in payload["runs"]:  # every cell beats 0 %: each run ends with its first round (a batch of at most 10)
        assert 1 <= len(run["history"]) <= 10 and run["stopped"] == "target reached: accuracy >= 0 at query 1"


def test_cli_compare_one_table(capsys, tmp_path):
    assert main(["compare", "--methods", "random,rea,ls", "--budget", "20", "--seeds", "2", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    for method in ("random", "rea", "ls"):
        assert f"| {method} |" in table
    assert "optimum hit" in table


@pytest.mark.parametrize("argv, message", [
    (["search", "--method", "annealing"], "unknown method"),
    (["search", "--method", "rea", "--objectives", "accuracy:up"], "direction"),
    (["search", "--method", "rea", "--objectives", "pgd_accuracy:max"], "not in the NB201 benchmark"),
    (["search", "--method", "rea", "--budget", "0"], "at least 1"),
    (["search", "--method", "rea", "--prior", "transfer", "--dataset", "digits"], "needs --space nb201"),
    (["search", "--method", "rea", "--option", "oops"], "KEY=VALUE"),
    (["search", "--method", "rea", "--stop-at", "flops:3"], "METRIC:VALUE with METRIC one of the objectives"),
    (["search", "--method", "rea", "--stop-at", "accuracy"], "METRIC:VALUE"),
])
def test_cli_bad_search_input_gets_a_clear_error(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_ours_with_several_objectives_is_exact_and_repeatable():
    goal = "accuracy:max,flops:min"
    first, oracle = _run("ours", 10, seed=2, objectives=goal)
    again, _ = _run("ours", 10, seed=2, objectives=goal)
    assert len({r["arch"] for r in first.history}) == 10 == oracle.queries
    assert first.history == again.history
    assert all(r["flops"] == oracle.cost(Cell.from_string(r["arch"]))["flops"] for r in first.history)


@pytest.mark.parametrize("goal, prior", [("accuracy:max,flops:min", True),
                                         ("accuracy:max,flops:min,memory_bytes:min", False)])
def test_ours_several_objectives_with_a_prior_or_a_non_additive_cost(goal, prior):
    # Transfer: the first pick comes before any measurement; memory cannot guide generation
    # (not additive over edges) but is still an exact objective when candidates are picked.
    run, oracle = _run("ours", 6, objectives=goal, prior=prior)
    assert len({r["arch"] for r in run.history}) == 6 == oracle.queries
    assert all(set(o.metric for o in parse_objectives(goal)) <= set(r) for r in run.history)
