"""The CLI contract forms, run through the real entry point."""

import json
import subprocess
import sys

import pytest

from gennas.cli import main

RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cost_contract(capsys):
    out = _json(capsys, ["cost", "nb201", RESNET, "--json"])
    assert round(out["params"], 6) == 0.559386
    # conv + linear 78.56193 M plus the reductions' shortcut pooling (the API's convention, issue 21)
    assert out["flops"] == pytest.approx(78.586506)
    assert isinstance(out["memory_bytes"], int) and out["memory_bytes"] > 0


def test_cost_on_large_space_with_latency(capsys):
    arch = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|+|skip_connect~0|none~1|none~2|nor_conv_3x3~3|"
    out = _json(capsys, ["cost", "dag5", arch, "--channels", "4", "--cells-per-stage", "1", "--image-size", "8",
                         "--latency", "--device", "cpu", "--json"])
    assert out["space"] == "dag5" and out["latency_ms"] > 0 and out["device"] == "cpu"


def test_query_contract(capsys):
    out = _json(capsys, ["query", "nb201", BEST, "--dataset", "cifar10", "--json"])
    assert out["accuracy"] == pytest.approx(94.3733, abs=1e-4)
    assert _json(capsys, ["query", "nb201", BEST, "--dataset", "ImageNet16-120", "--json"])["accuracy"] < 50


def test_train_contract(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GENNAS_CACHE_DIR", str(tmp_path))
    out = _json(capsys, ["train", BEST, "--dataset", "digits", "--epochs", "1", "--channels", "4",
                         "--cells-per-stage", "1", "--pgd-steps", "2", "--device", "cpu", "--json"])
    for key in ("accuracy", "fgsm_accuracy", "pgd_accuracy", "flops", "params", "memory_bytes", "latency_ms", "seconds"):
        assert isinstance(out[key], (int, float)), key
    assert 0 <= out["pgd_accuracy"] <= 100


@pytest.mark.parametrize("argv, fragment", [
    (["cost", "nb201", "|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown op 'nor_conv_5x5'"),
    (["cost", "nb999", RESNET], "unknown search space"),
    (["query", "nb201", "|nor_conv_3x3~0|", "--dataset", "cifar10"], "has 2 nodes but space 'nb201' has 4"),
    (["query", "nb201", RESNET, "--dataset", "svhn"], "no dataset 'svhn'"),
    (["train", RESNET, "--dataset", "cifar10", "--data-root", "/nonexistent"], "cifar-10-batches-py"),
    (["train", RESNET, "--dataset", "imagenet"], "unknown dataset"),
])
def test_bad_input_gets_one_clear_error(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "gennas.cli", "cost", "nb201", RESNET, "--json"],
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["arch"] == RESNET


def test_python_dash_m_gennas_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "gennas", "cost", "nb201", RESNET, "--json"],
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["arch"] == RESNET


def test_method_help_names_every_query_budget_method():
    from gennas.search.methods import QUERY_KINDS, REGISTRY
    from gennas.subcommands.search import METHOD_HELP

    named = {word.strip(" ;:,()") for word in METHOD_HELP.split()}
    assert {name for name, m in REGISTRY.items() if m.kind in QUERY_KINDS} <= named
