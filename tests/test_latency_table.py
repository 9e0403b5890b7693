"""Latency tables (issue 21): `latency` read off a measured table is a free cost like FLOPs.

Free: no query is charged and no network is built; exact for the table: the value every
consumer sees is the sum of the file's entries for the network's blocks.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from gennas.cli import main
from gennas.metrics.costs import cell_costs, cost_metrics, linear_costs
from gennas.metrics.lut import latency_table_in_use, load_table, save_table
from gennas.metrics.lut_measure import Reading, measure_table
from gennas.metrics.registry import get_metric
from gennas.nn import NetworkConfig
from gennas.space import get_space, nb201_space

QUICK = Reading(warmup=1, repeats=2, rounds=1)


@pytest.fixture(scope="module")
def nb201_lut(tmp_path_factory):
    """A table of the NAS-Bench-201 skeleton, measured quickly, and the file it was saved to."""
    path = tmp_path_factory.mktemp("lut") / "lut.csv"
    save_table(measure_table(nb201_space(), NetworkConfig(), torch.device("cpu"), QUICK), path)
    return path


def _sum_of_entries(path, cell, config: NetworkConfig) -> float:
    """The file's own arithmetic: fixed blocks once, each cell slot N times a stage, each edge's op N times a stage."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    ms = {(r["block"], r["op"], int(r["stage"])): float(r["median_ms"]) for r in csv.DictReader(lines)}
    n = config.cells_per_stage
    total = ms[("stem", "", 0)] + ms[("reduction", "", 1)] + ms[("reduction", "", 2)] + ms[("head", "", 3)]
    for stage in (1, 2, 3):
        total += n * ms[("cell", "", stage)] + n * sum(ms[("edge", op, stage)] for op in cell.ops if op != "none")
    return total


def test_round_trip_keeps_every_entry_and_leaves_no_temp_file(nb201_lut):
    table = load_table(nb201_lut)
    again = nb201_lut.parent / "again.csv"
    save_table(table, again)
    reread = load_table(again)
    assert reread == table and len(table.entries) == 19 and table.space == "nb201"
    assert reread.network == NetworkConfig() and all(v[0] > 0 and v[1] >= 0 for v in table.entries.values())
    assert sorted(p.name for p in nb201_lut.parent.iterdir()) == ["again.csv", "lut.csv"]


def test_table_latency_is_a_free_cost_exact_for_the_table(nb201_lut, rng):
    table = load_table(nb201_lut)
    assert get_metric("latency").name == "latency_ms" and "lut_latency_ms" not in cost_metrics()
    with latency_table_in_use(table):
        assert get_metric("latency").name == "lut_latency_ms" and get_metric("latency").source == "cost"
        assert "lut_latency_ms" in cost_metrics()
        space = nb201_space()
        base, per_op = linear_costs(space.ops, space.num_edges, NetworkConfig())["lut_latency_ms"]
        for cell in space.sample(rng, 20):
            value = cell_costs(cell)["lut_latency_ms"]
            assert value == pytest.approx(_sum_of_entries(nb201_lut, cell, NetworkConfig()), rel=1e-12)
            assert value == pytest.approx(base + sum(per_op[space.ops.index(op)] for op in cell.ops), rel=1e-12)
    assert get_metric("latency").name == "latency_ms" and "lut_latency_ms" not in cell_costs(cell)


def test_search_gets_table_latency_free_and_exact(nb201_lut, capsys):
    argv = ["search", "--method", "random", "--budget", "6", "--objectives", "accuracy:max,latency:min",
            "--latency-table", str(nb201_lut), "--json"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    history = payload["runs"][0]["history"]
    assert len(history) == 6 and payload["settings"]["latency_table"] == load_table(nb201_lut).digest
    space = nb201_space()
    for row in history:
        assert row["lut_latency_ms"] == pytest.approx(_sum_of_entries(nb201_lut, space.parse(row["arch"]),
                                                                      NetworkConfig()), rel=1e-12)


def test_generate_meets_a_latency_constraint_from_the_table(nb201_lut, capsys):
    table = load_table(nb201_lut)
    with latency_table_in_use(table):
        values = [cell_costs(c)["lut_latency_ms"] for c in nb201_space().sample(np.random.default_rng(1), 200)]
    bound = float(np.quantile(values, 0.3))
    argv = ["generate", "--n", "4", "--objectives", "accuracy:max,latency:min", "--constraint", f"latency<={bound}",
            "--latency-table", str(nb201_lut), "--json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["lut_latency_ms"] <= bound for r in rows)
    space = nb201_space()
    for row in rows:
        assert row["lut_latency_ms"] == pytest.approx(_sum_of_entries(nb201_lut, space.parse(row["arch"]),
                                                                      NetworkConfig()), rel=1e-12)


def test_latency_table_command_measures_the_skeleton_it_is_given(tmp_path, capsys):
    out = tmp_path / "dag5.csv"
    argv = ["latency-table", "--space", "dag5", "--channels", "4", "--cells-per-stage", "1", "--image-size", "8",
            "--warmup", "0", "--repeats", "1", "--rounds", "1", "--out", str(out), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    table = load_table(out)
    config = NetworkConfig(channels=4, cells_per_stage=1, image_size=8)
    assert table.space == "dag5" and table.network == config and report["blocks"] == len(table.entries)
    cell = get_space("dag5").sample(np.random.default_rng(0))
    assert table.cell_latency(cell, config) == pytest.approx(_sum_of_entries(out, cell, config), rel=1e-12)


def test_run_guides_by_the_tables_latency_and_refuses_another_skeletons_table(tmp_path, capsys):
    """`gennas run --latency-table`: generation minimises the table's latency of the run's own skeleton."""
    skeleton = ["--channels", "4", "--cells-per-stage", "1"]
    lut = tmp_path / "digits_lut.csv"
    assert main(["latency-table", *skeleton, "--in-channels", "1", "--image-size", "8", "--warmup", "0",
                 "--repeats", "1", "--rounds", "1", "--out", str(lut)]) == 0
    out = tmp_path / "run"
    argv = ["run", "--out", str(out), "--latency-table", str(lut), "--objectives", "accuracy:max,latency:min",
            "--n-cells", "2", "--candidates", "8", "--epochs", "1", "--max-subnets", "3", "--probe-cells", "0",
            "--finalists", "0", "--json"]
    assert main([*argv, "--channels", "8", "--cells-per-stage", "1"]) == 2  # not the table's skeleton
    assert "--channels 8 --cells-per-stage 1 --in-channels 1 --image-size 8" in capsys.readouterr().err
    assert not (out / "run.json").exists()
    assert main([*argv, *skeleton]) == 0
    generated = json.loads((out / "generated.json").read_text())
    assert generated["guided_objectives"] == ["accuracy:max", "lut_latency_ms:min"]
    config = NetworkConfig(channels=4, cells_per_stage=1, in_channels=1, image_size=8)
    space = nb201_space()
    for row in generated["candidates"]:
        assert row["lut_latency_ms"] == pytest.approx(_sum_of_entries(lut, space.parse(row["arch"]), config), rel=1e-12)
    assert json.loads((out / "run.json").read_text())["latency_table_digest"] == load_table(lut).digest
    with (out / "subnets.csv").open(newline="") as handle:
        subnets = list(csv.DictReader(handle))
    assert subnets and all(float(r["lut_latency_ms"]) == pytest.approx(
        _sum_of_entries(lut, space.parse(r["arch"]), config), rel=1e-12) for r in subnets)


def test_python_api_takes_the_table_as_the_commands_do(nb201_lut):
    import gennas

    space = nb201_space()
    cell = space.sample(np.random.default_rng(3))
    costs = gennas.cost(cell.to_string(), latency_table=nb201_lut)
    assert costs["lut_latency_ms"] == pytest.approx(_sum_of_entries(nb201_lut, cell, NetworkConfig()), rel=1e-12)
    assert "lut_latency_ms" not in gennas.cost(cell.to_string())  # the table is in use only inside the call
    rows = gennas.generate("accuracy:max,latency:min", n=3, dataset="cifar10", latency_table=nb201_lut)
    assert rows and all(r["lut_latency_ms"] == pytest.approx(
        _sum_of_entries(nb201_lut, space.parse(r["arch"]), NetworkConfig()), rel=1e-12) for r in rows)
