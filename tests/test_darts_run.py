"""`gennas run --space darts` (issue 20): the main job on DARTS genotypes, end to end on digits, then prune."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from gennas.cli import main
from gennas.space import get_space

#: The smallest darts run that still trains probes (2, so the predictor has data), a supernet, measures
#: subnets and verifies a finalist: C=4, 3 layers on 8x8 digits, one epoch.
TINY_DARTS_RUN = ["run", "--space", "darts", "--dataset", "digits", "--objectives", "accuracy:max,flops:min",
                  "--n-cells", "2", "--candidates", "4", "--epochs", "1", "--channels", "4", "--layers", "3",
                  "--max-subnets", "3", "--probe-cells", "2", "--finalists", "1", "--device", "cpu", "--json"]


def _judged(row: dict) -> float:
    """The validation accuracy prune judges a subnet on: standalone where it was verified, else the supernet's."""
    standalone = float(row["standalone_val_accuracy"] or "nan")
    return standalone if not math.isnan(standalone) else float(row["val_accuracy"])


@pytest.fixture(scope="module")
def darts_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("darts") / "run"
    assert main([*TINY_DARTS_RUN, "--out", str(out)]) == 0
    return out


def test_a_darts_run_measures_genotypes_and_verifies_finalists(darts_run: Path) -> None:
    space = get_space("darts")
    rows = list(csv.DictReader((darts_run / "subnets.csv").open()))
    assert len(rows) >= 3
    for row in rows:
        space.parse(row["arch"])  # every measured subnet is a valid DARTS genotype
    verified = [r for r in rows if r["standalone_val_accuracy"] and not math.isnan(float(r["standalone_val_accuracy"]))]
    assert len(verified) == 1 and verified[0]["standalone_accuracy"]
    assert json.loads((darts_run / "run.json").read_text())["settings"]["space"] == "darts"
    results = json.loads((darts_run / "results.json").read_text())
    assert results["space"] == "darts" and results["transfer_prior"] is False
    assert results["network"]["kind"] == "darts"
    report = (darts_run / "report.md").read_text()
    assert "no transfer prior" in report
    exported = json.loads((darts_run / "export" / "arch.json").read_text())
    space.parse(exported["arch"])


def test_prune_picks_a_genotype_meeting_the_threshold(darts_run: Path, tmp_path: Path, capsys) -> None:
    rows = list(csv.DictReader((darts_run / "subnets.csv").open()))
    threshold = sorted(_judged(r) for r in rows)[len(rows) // 2]
    capsys.readouterr()
    assert main(["prune", str(darts_run), "--min-accuracy", f"{threshold:.4f}", "--out", str(tmp_path / "pick"),
                 "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    get_space("darts").parse(result["cell"])
    feasible = [r for r in rows if _judged(r) >= float(f"{threshold:.4f}")]
    assert result["cell"] in {r["arch"] for r in feasible}
    assert float(result["measured_in_run"]["val_accuracy"]) == pytest.approx(max(_judged(r) for r in feasible))
    assert Path(result["model"]).stat().st_size > 0
    # --verify: the pick retrained standalone (or the finalist the run verified) and every threshold checked on it.
    assert main(["prune", str(darts_run), "--min-accuracy", "0", "--verify", "--out", str(tmp_path / "verified"),
                 "--device", "cpu", "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["verified"] and verified["violated_after_export"] == []


def test_a_darts_run_resumes_only_as_darts(darts_run: Path, capsys) -> None:
    layers = TINY_DARTS_RUN.index("--layers")
    nb201 = [*TINY_DARTS_RUN[:layers], *TINY_DARTS_RUN[layers + 2:]]
    nb201[nb201.index("darts")] = "nb201"
    assert main([*nb201, "--out", str(darts_run)]) == 2
    assert "--space 'darts' there, 'nb201' now" in capsys.readouterr().err


def test_an_unknown_space_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["run", "--space", "nosuch", "--out", str(tmp_path / "run")]) == 2
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == ["error: unknown --space 'nosuch' for gennas run; choose nb201 or darts"]
    assert not (tmp_path / "run").exists()


def test_the_darts_subnet_space_of_generated_genotypes() -> None:
    import numpy as np
    import torch

    from gennas.nn.darts_network import DartsNetworkConfig
    from gennas.space.genotype import DARTS_V1, DARTS_V2
    from gennas.supernet.family import run_family

    family, network = run_family("darts"), DartsNetworkConfig(channels=4, layers=3, in_channels=1, image_size=8)
    subnets = family.subnet_space([DARTS_V1, DARTS_V2, DARTS_V2])
    assert subnets.sources == (DARTS_V1, DARTS_V2)
    listed = list(subnets.enumerate())
    assert subnets.listable and len(listed) == subnets.configurations == subnets.count()
    assert {g.canonical for g in listed} >= {DARTS_V1.canonical, DARTS_V2.canonical}
    rng = np.random.default_rng(0)
    for genotype in [subnets.largest(), subnets.smallest(network), *(subnets.sample(rng) for _ in range(5))]:
        assert subnets.contains(genotype) and subnets.check(genotype) is genotype
    again = family.subnet_space_from_dict(subnets.to_dict())
    assert again.to_dict() == subnets.to_dict() and again.choices == subnets.choices
    torch.manual_seed(0)
    supernet = family.supernet(subnets, network).eval()
    assert supernet.subnets is subnets and len(subnets.blocks) < 2 * 14 * 7  # unused blocks are never built
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad(), supernet.subnet(DARTS_V1):
        assert torch.equal(supernet(x), supernet.extract(DARTS_V1).eval()(x))
