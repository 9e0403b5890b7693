"""``--config FILE``: the file and the equivalent flags parse to the same command; typed flags win."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from gennas.cli import _subcommands, build_parser, main
from gennas.config_file import expand_config
from gennas.errors import GennasError


def _parse(argv: list[str]):
    parser = build_parser()
    return vars(parser.parse_args(expand_config(argv, _subcommands(parser))))


@pytest.mark.parametrize("command, text, flags", [
    ("run", "dataset: npz:data.npz\nn_cells: 8\nprobe-cells: 4\nbudget_minutes: 20\njson: true\nwandb: false\n",
     ["--dataset", "npz:data.npz", "--n-cells", "8", "--probe-cells", "4", "--budget-minutes", "20", "--json"]),
    ("search", "method: rea\nbudget: 30\nseeds: 3\nobjectives: [accuracy:max, flops:min]\n",
     ["--method", "rea", "--budget", "30", "--seeds", "3", "--objectives", "accuracy:max,flops:min"]),
    ("compare", '{"methods": "rea,random", "budget_minutes": 2, "dataset": "digits"}',
     ["--methods", "rea,random", "--budget-minutes", "2", "--dataset", "digits"]),
])
def test_a_config_file_parses_like_the_flags_it_stands_for(tmp_path: Path, command: str, text: str,
                                                          flags: list[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    assert _parse([command, "--config", str(config)]) == _parse([command, *flags])


def test_flags_typed_override_the_file(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("epochs: 8\nseed: 3\n")
    parsed = _parse(["run", "--epochs", "2", f"--config={config}"])
    assert parsed["epochs"] == 2 and parsed["seed"] == 3


def test_a_run_json_reruns_with_the_settings_it_resolved(tmp_path: Path) -> None:
    from gennas.supernet.run_settings import RunSettings

    settings = RunSettings(dataset="digits", n_cells=6, epochs=5, probe_cells=2, finalists=4, max_subnets=9,
                           budget_minutes=12.0, planned=("epochs",))
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps({"settings": asdict(settings), "provenance": {}}))
    parsed = _parse(["run", "--config", str(saved), "--out", str(tmp_path / "again")])
    for name in ("dataset", "n_cells", "epochs", "probe_cells", "finalists", "max_subnets", "budget_minutes"):
        assert parsed[name] == getattr(settings, name), name


@pytest.mark.parametrize("text, message", [
    ("n_cels: 8\n", "'n_cels' is no option of gennas run"),
    ("- 8\n- 9\n", "expected a mapping"),
    ("json: 3\n", "is a switch"),
    ("epochs: zero\n", "'zero' is not a whole number"),
])
def test_a_bad_config_is_one_clear_error(tmp_path: Path, capsys, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "out").exists()


def test_config_is_refused_where_it_does_not_apply_and_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GennasError, match="--config works with"):
        _parse(["cost", "--config", "x.yaml"])
    with pytest.raises(GennasError, match="no such file"):
        _parse(["run", "--config", str(tmp_path / "missing.yaml")])


def test_a_finished_search_keeps_its_options_and_reruns_from_them(tmp_path: Path, capsys) -> None:
    out = tmp_path / "search"
    argv = ["search", "--method", "random", "--budget", "3", "--space", "nb201", "--dataset", "cifar10", "--seeds", "1",
            "--out", str(out), "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    kept = out / "config.json"
    assert json.loads(kept.read_text())["method"] == "random"
    assert _parse(["search", "--config", str(kept)]) == _parse(argv)
    assert main(["search", "--config", str(kept)]) == 0  # the journals are finished: the same runs come back
    assert json.loads(capsys.readouterr().out)["runs"] == first["runs"]
