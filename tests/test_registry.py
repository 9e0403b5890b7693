"""One registry for every method: a new one is an entry plus its class, and every command sees it."""

import json

from gennas.cli import main
from gennas.search import REGISTRY, BlackBox, MultiFidelity, WeightSharing, parse_methods
from gennas.search.options import whole
from gennas.search.random_search import RandomSearch


class FirstCells(RandomSearch):
    """Random search under another name: enough to show the wiring."""


def test_every_method_is_one_entry_with_one_interface():
    kinds = {name: type(m) for name, m in REGISTRY.items()}
    assert {n for n, k in kinds.items() if k is WeightSharing} == {"darts", "darts2", "gdas", "snas", "pcdarts", "drnas", "sdarts-rs", "sdarts-adv", "rsps", "setn", "enas", "pdarts", "dartspt", "proxyless"}
    assert {n for n, k in kinds.items() if k is MultiFidelity} == {"hyperband", "bohb"}
    assert all(k in (BlackBox, WeightSharing, MultiFidelity) for k in kinds.values())
    assert parse_methods("rea,random,rea") == ["rea", "random"]
    assert "gdas" in parse_methods("gdas,rea", wallclock=True)


def test_a_new_method_is_one_registry_entry(monkeypatch, capsys):
    monkeypatch.setitem(REGISTRY, "first", BlackBox("first", {"batch": whole()}, searcher=FirstCells))
    code = main(["compare", "--methods", "first,random", "--budget", "5", "--dataset", "cifar10", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["summary"]) == {"first", "random"}
    assert main(["search", "--method", "first", "--option", "pool=3", "--budget", "5"]) == 2
    assert "unknown option" in capsys.readouterr().err
