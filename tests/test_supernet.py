"""The supernet: reachability and exactness, block costs, training + resume, DDP, prune and export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gennas.data import DatasetSplits, load_dataset
from gennas.errors import GennasError
from gennas.metrics.costs import cell_costs
from gennas.metrics.flops import count_flops, count_params
from gennas.metrics.memory import measure_peak_memory
from gennas.nn.network import NetworkConfig, build_network
from gennas.space.cell import Cell
from gennas.supernet import SubnetSpace, Supernet, SupernetTrainConfig, train_supernet, well_formed
from gennas.supernet.measure import choose_subnets, recalibrate_bn
from gennas.train import with_normalization

SOURCES = [Cell.from_string(a) for a in (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",
    "|none~0|+|avg_pool_3x3~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|",
)]
TINY = NetworkConfig(channels=4, cells_per_stage=1, in_channels=1, image_size=8, num_classes=10)


class _Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def space() -> SubnetSpace:
    return SubnetSpace.from_cells(SOURCES)


def _randomise(net: nn.Module, seed: int) -> None:
    """Non-trivial weights and BN statistics, so equality tests compare real computations."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)


def test_space_blocks_reachability_and_errors(space: SubnetSpace) -> None:
    assert space.choices[0] == ("skip_connect", "nor_conv_3x3")  # ops used on edge 0->1, in KNOWN_OPS order
    assert len(space.blocks) == sum(len(c) for c in space.choices)
    reachable = list(space.enumerate())
    assert all(space.contains(c) for c in reachable) and set(SOURCES) <= set(reachable)
    assert len(reachable) == len(set(reachable)) == space.count() < space.configurations
    assert all(well_formed(c) or c in SOURCES for c in reachable)
    assert space.largest().ops[1] == "nor_conv_3x3" and space.largest().ops[3] == "nor_conv_1x1"
    with pytest.raises(GennasError, match="no block for 0->2: skip_connect"):
        space.check(Cell.from_string("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|"))
    assert SubnetSpace.from_dict(space.to_dict()) == space
    assert not well_formed(Cell.from_string("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"))


def test_every_source_cell_is_a_subnet_with_the_standalone_output(space: SubnetSpace) -> None:
    supernet = Supernet(space, TINY).eval()
    x = torch.rand(5, 1, 8, 8)
    for i, cell in enumerate(SOURCES):
        standalone = build_network(cell, TINY)
        _randomise(standalone, seed=i)
        standalone.eval()
        supernet.load_standalone(standalone)
        with supernet.subnet(cell), torch.no_grad():
            assert torch.equal(supernet(x), standalone(x))
        extracted = supernet.extract(cell).eval()
        with torch.no_grad():
            assert torch.equal(extracted(x), standalone(x))
    # Loading one cell's weights never touched another cell's own blocks: the first still matches
    # in the blocks it does not share with the others.
    assert supernet.active == space.largest()


def test_only_active_blocks_run_and_disabling_a_block_removes_its_cost(space: SubnetSpace) -> None:
    supernet = Supernet(space, TINY).eval()
    called: set[str] = set()
    for name, module in supernet.named_modules():
        if ".blocks." in name and name.count(".") == 4:  # layers.i.blocks.edge.op
            module.register_forward_hook(lambda m, i, o, name=name: called.add(name.split(".", 3)[3]))
    cell = SOURCES[1]
    with supernet.subnet(cell), torch.no_grad():
        supernet(torch.rand(1, 1, 8, 8))
    on = {f"{s}_{d}.{op}" for (s, d), op in zip(cell.edges, cell.ops) if op not in ("none",)}
    assert called == on
    # Costs: switching any block off never raises FLOPs, params or memory (every reachable
    # subnet, every block), and a conv block's FLOPs disappear with it.
    reachable = set(space.enumerate())
    for subnet in reachable:
        costs = cell_costs(subnet, TINY)
        for e, op in enumerate(subnet.ops):
            if op == "none":
                continue
            off = Cell(subnet.ops[:e] + ("none",) + subnet.ops[e + 1:])
            if off not in reachable:
                continue
            smaller = cell_costs(off, TINY)
            assert all(smaller[m] <= costs[m] for m in ("flops", "params", "memory_bytes")), (subnet, e)
            if op.startswith("nor_conv"):
                assert smaller["flops"] < costs["flops"]
    extracted = Supernet(space, TINY).extract(cell)  # what export ships: its own costs are the subnet's
    shape = (1, 8, 8)
    assert count_flops(extracted, shape) == pytest.approx(cell_costs(cell, TINY)["flops"])
    assert count_params(extracted) == pytest.approx(cell_costs(cell, TINY)["params"])
    assert measure_peak_memory(extracted, shape) == cell_costs(cell, TINY)["memory_bytes"]


def _model(space: SubnetSpace, digits: DatasetSplits, seed: int = 0) -> tuple[Supernet, nn.Sequential]:
    torch.manual_seed(seed)
    supernet = Supernet(space, NetworkConfig(channels=4, cells_per_stage=1, in_channels=1, image_size=8,
                                             num_classes=digits.num_classes))
    return supernet, with_normalization(supernet, digits)


def test_training_learns_and_resumes_exactly(space: SubnetSpace, digits: DatasetSplits, tmp_path: Path) -> None:
    config = SupernetTrainConfig(epochs=3, batch_size=128, device="cpu", seed=3)
    supernet, model = _model(space, digits)
    history = train_supernet(supernet, model, digits, config, progress=False)
    assert len(history) == 3 and all(np.isfinite(r["train_loss"]) for r in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    supernet.activate(SOURCES[0])
    recalibrate_bn(model, digits)
    from gennas.train import evaluate_accuracy

    assert evaluate_accuracy(model, digits.val) > 40.0  # 10 classes: chance is 10 %

    def stop_after_one(record: dict) -> None:
        if record["epoch"] == 1:
            raise _Interrupted

    checkpoint = tmp_path / "supernet.ckpt"
    with pytest.raises(_Interrupted):
        train_supernet(*_model(space, digits), digits, config, checkpoint_path=checkpoint, progress=False,
                       on_epoch_end=stop_after_one)
    resumed_supernet, resumed = _model(space, digits, seed=99)  # other init: all must come from the checkpoint
    again = train_supernet(resumed_supernet, resumed, digits, config, checkpoint_path=checkpoint, progress=False)
    assert [r["train_loss"] for r in again] == [r["train_loss"] for r in history]
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, trained[key]), key


def test_sandwich_recipe_and_config_errors(space: SubnetSpace, digits: DatasetSplits) -> None:
    config = SupernetTrainConfig(epochs=1, batch_size=256, device="cpu", largest=True, smallest=True, random_subnets=1)
    history = train_supernet(*_model(space, digits), digits, config, progress=False)
    assert np.isfinite(history[0]["train_loss"])
    with pytest.raises(GennasError, match="at least one subnet"):
        SupernetTrainConfig(largest=False, smallest=False, random_subnets=0)
    with pytest.raises(GennasError, match="source_prob"):
        SupernetTrainConfig(source_prob=1.5)


def _ddp_worker(rank: int, world: int, store: str, out: str) -> None:
    import torch.distributed as dist

    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world)})
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        digits = load_dataset("digits")
        space = SubnetSpace.from_cells(SOURCES)
        supernet, model = _model(space, digits)
        config = SupernetTrainConfig(epochs=1, batch_size=128, device="cpu")
        history = train_supernet(supernet, model, digits, config, progress=False,
                                 checkpoint_path=Path(out) / "ddp.ckpt")
        torch.save({"state": model.state_dict(), "loss": history[0]["train_loss"]}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_distributed_data_parallel_on_cpu_gloo(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in a["state"]:
        assert torch.allclose(a["state"][key].float(), b["state"][key].float(), atol=1e-6), key
    assert (tmp_path / "ddp.ckpt").is_file()  # written by rank 0 only, once per epoch


def test_choose_subnets_lists_all_or_a_stratified_subset(space: SubnetSpace) -> None:
    everything = choose_subnets(space, TINY, limit=10_000)
    functions = {c.canonical for c in space.enumerate()}
    assert len(everything) == len(functions) and {c.cell.canonical for c in everything} == functions
    assert sum(1 + len(c.equivalent) for c in everything) == space.count()  # every configuration is named once
    subset = choose_subnets(space, TINY, limit=12)
    reasons = {c.cell: c.reason for c in subset}
    assert all(reasons[c] == "source cell" for c in SOURCES)
    assert len(subset) == 12 and "FLOPs stratum sample" in reasons.values()


# ----------------------------------------------------------------- the main job + prune
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from gennas.supernet.pipeline import RunSettings, run_pipeline

    out = tmp_path_factory.mktemp("run") / "digits"
    settings = RunSettings(objectives="accuracy:max,flops:min", n_cells=3, candidates=8, epochs=2, channels=4,
                           cells_per_stage=1, max_subnets=6)
    first = run_pipeline(settings, out, device="cpu", progress=False)
    again = run_pipeline(settings, out, device="cpu", progress=False)  # every stage resumes from its file
    assert again["chosen"]["arch"] == first["chosen"]["arch"]
    assert again["chosen"]["val_accuracy"] == first["chosen"]["val_accuracy"]
    with pytest.raises(GennasError, match="other settings"):
        run_pipeline(RunSettings(n_cells=2, candidates=8, epochs=1, channels=4, cells_per_stage=1), out,
                     device="cpu", progress=False)
    return out


def test_main_job_writes_the_run_directory(run_dir: Path) -> None:
    import csv

    for name in ("subnets.csv", "pareto.png", "report.md", "results.json", "supernet.pt", "export/model.pt"):
        assert (run_dir / name).stat().st_size > 0
    rows = list(csv.DictReader((run_dir / "subnets.csv").open()))
    assert len(rows) == 6 and {"flops", "params", "memory_bytes", "accuracy", "pgd_accuracy", "latency_ms"} <= set(rows[0])
    results = json.loads((run_dir / "results.json").read_text())
    assert results["supernet"]["measured_subnets"] == 6 and results["provenance"]["commit"]
    chosen = results["example_prune"]["chosen"]
    assert chosen["flops"] <= results["example_prune"]["thresholds"]["max_flops"]


def test_prune_respects_thresholds_and_exports_a_working_model(run_dir: Path, digits: DatasetSplits,
                                                               tmp_path: Path) -> None:
    import csv

    from gennas.supernet.commands import prune_run

    rows = list(csv.DictReader((run_dir / "subnets.csv").open()))
    flops = sorted(float(r["flops"]) for r in rows)
    limit = flops[len(flops) // 2]
    result = prune_run(run_dir, {"max_flops": limit, "min_robustness": 0.0}, "accuracy", out=tmp_path / "exp",
                       device="cpu")
    feasible = [r for r in rows if float(r["flops"]) <= limit]
    assert result["flops"] <= limit and result["violated_after_export"] == []

    def judged(r):  # the finalists retrained standalone are judged on those figures (unverified: "" or "nan")
        standalone = float(r["standalone_val_accuracy"] or "nan")
        return standalone if standalone == standalone else float(r["val_accuracy"])
    assert result["val_accuracy"] == pytest.approx(max(judged(r) for r in feasible))
    assert result["val_accuracy"] == pytest.approx(float(result["measured_in_run"]["val_accuracy"]))
    scripted = torch.jit.load(result["model"])
    x = digits.test.tensors[0][:16]
    state = torch.load(result["state_dict"], weights_only=True)
    arch = json.loads(Path(result["arch"]).read_text())
    assert arch["arch"] == result["cell"] and result["model"].endswith("model.pt")
    net = with_normalization(build_network(Cell.from_string(arch["arch"]), NetworkConfig(**arch["network"])), digits)
    net.load_state_dict(state)
    with torch.no_grad():
        assert torch.allclose(scripted(x), net.eval()(x), atol=1e-5)
    cheapest = prune_run(run_dir, {}, "flops", out=tmp_path / "cheap", device="cpu")
    assert cheapest["flops"] == pytest.approx(flops[0])
    with pytest.raises(GennasError, match=r"(?s)no measured subnet meets every threshold.*Nearest:.*max-flops: "):
        prune_run(run_dir, {"max_flops": flops[0] / 2}, out=tmp_path / "none", device="cpu")
    with pytest.raises(GennasError, match="fraction"):
        prune_run(run_dir, {"min_robustness": 50}, out=tmp_path / "none", device="cpu")
    with pytest.raises(GennasError, match="written by `gennas run`"):
        prune_run(tmp_path, {})


def test_prune_exports_every_format_asked_for_and_lists_each_path(run_dir: Path, tmp_path: Path, capsys) -> None:
    from gennas.cli import main

    out = tmp_path / "formats"
    assert main(["prune", str(run_dir), "--minimize", "flops", "--format", "pt2,onnx,torchscript", "--out", str(out),
                 "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["exports"] == {"pt2": str(out / "model.pt2"), "onnx": str(out / "model.onnx"),
                                 "torchscript": str(out / "model.pt")}
    assert result["model"] == result["pt2"] and all(Path(p).stat().st_size > 0 for p in result["exports"].values())
    assert set(result["parity"]) == {"onnx", "pt2"} and max(result["parity"].values()) <= 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_supernet_trains_on_cuda_with_amp(space: SubnetSpace, digits: DatasetSplits) -> None:
    supernet, model = _model(space, digits)
    history = train_supernet(supernet, model, digits, SupernetTrainConfig(epochs=2, device="cuda", amp=True),
                             progress=False)
    assert np.isfinite(history[-1]["train_loss"]) and next(model.parameters()).is_cuda
    x = digits.test.tensors[0][:32].cuda()
    with supernet.subnet(SOURCES[0]), torch.no_grad():
        extracted = nn.Sequential(model[0], supernet.extract(SOURCES[0])).eval()
        assert torch.allclose(model.eval()(x), extracted(x), atol=1e-5)


def test_prune_judges_latency_on_a_latency_table_of_the_runs_skeleton(run_dir: Path, tmp_path: Path) -> None:
    from gennas.metrics.lut import load_table, save_table
    from gennas.metrics.lut_measure import Reading, measure_table
    from gennas.space import nb201_space
    from gennas.supernet.commands import prune_run
    from gennas.supernet.store import load_supernet
    from gennas.supernet.table import read_subnet_table

    network = load_supernet(run_dir / "supernet.pt")[0][-1].config
    path = save_table(measure_table(nb201_space(), network, torch.device("cpu"), Reading(warmup=1, repeats=2, rounds=1)),
                      tmp_path / "lut.csv")
    table = load_table(path)
    rows = read_subnet_table(run_dir / "subnets.csv")
    by_table = {r["arch"]: table.cell_latency(Cell.from_string(r["arch"]), network) for r in rows}
    fastest = min(by_table, key=by_table.get)
    result = prune_run(run_dir, {}, "latency", out=tmp_path / "fast", device="cpu", latency_table=path)
    assert result["cell"] == fastest and result["latency_ms"] == pytest.approx(by_table[fastest])
    assert result["measured_latency_ms"] > 0  # the export's own reading is kept beside the table's
    limit = sorted(by_table.values())[len(by_table) // 2]
    capped = prune_run(run_dir, {"max_latency_ms": limit}, "accuracy", out=tmp_path / "cap", device="cpu",
                       latency_table=path)
    assert capped["latency_ms"] <= limit + 1e-9 and capped["violated_after_export"] == []
    other = save_table(measure_table(nb201_space(), NetworkConfig(channels=8, cells_per_stage=1), torch.device("cpu"),
                                     Reading(warmup=1, repeats=1, rounds=1)), tmp_path / "other.csv")
    with pytest.raises(GennasError, match="was measured on the skeleton"):
        prune_run(run_dir, {}, "latency", out=tmp_path / "no", device="cpu", latency_table=other)
