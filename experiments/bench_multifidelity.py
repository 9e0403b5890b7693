"""Benchmark (issue 19): the seeds' remaining classics on real training at equal wall-clock.

Part ``race``: random, REA, hyperband, bohb, pnas and REA with Net2Net warm starts each
search for the same wall-clock seconds per seed against an uncached
:class:`~gennas.bench.training.TrainingOracle` (every epoch charged is really trained).
Each full-fidelity measurement is stamped with the seconds since its run started, so the
report gives the best validated accuracy found by time t (mean ± std over seeds), the
test accuracy of the cell each run ends with (chosen on validation), and the epochs and
cells each method trained in that time.

Part ``net2net``: time-to-accuracy of a child against training it from scratch. For each
seed a random parent cell is trained with the recipe; its child (a ``none`` edge made a
3x3 conv: function-preserving; or a random one-edge mutation as REA draws it) is trained
with the same recipe once from scratch and once from the parent's weights morphed by
:func:`gennas.nn.net2net.change_ops`. Reported: the child's validation accuracy before
any training (the warm child starts at its parent's), after each epoch, and the epochs
and seconds each needs to reach the scratch child's final accuracy.

Datasets: ``digits-low`` (150 train, 300 val, 300 test digits; derived as in
bench_main_job.py, clean digits saturates) by default; any gennas dataset spec works.

    python experiments/bench_multifidelity.py --seeds 5 --seconds 40 --epochs 9
    python experiments/bench_multifidelity.py --render-only --note "..." --discussion "..."
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_main_job import dataset_spec  # noqa: E402  (the derived digits sets, written once)

from gennas.bench.training import TrainingOracle  # noqa: E402
from gennas.data import DatasetSplits, load_dataset  # noqa: E402
from gennas.io import write_json, write_text  # noqa: E402
from gennas.nn.net2net import change_ops  # noqa: E402
from gennas.nn.network import NetworkConfig, build_network  # noqa: E402
from gennas.objectives import parse_objectives  # noqa: E402
from gennas.provenance import provenance, provenance_markdown  # noqa: E402
from gennas.search.methods import Problem, check_options, get_method  # noqa: E402
from gennas.search.searcher import SearchContext  # noqa: E402
from gennas.search.stopping import Stopping  # noqa: E402
from gennas.space.cell import Cell  # noqa: E402
from gennas.space.space import get_space  # noqa: E402
from gennas.train import RobustnessConfig, TrainConfig, evaluate_accuracy, train_model, with_normalization  # noqa: E402

#: Every entry: (registered method, its options). REA's population is sized for a short race.
ENTRIES: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "rea": ("rea", {"population_size": 5}),
    "hyperband": ("hyperband", {}),
    "hyperband min3": ("hyperband", {"min_epochs": 3}),  # its lowest rung at 3 epochs, where cells separate
    "bohb": ("bohb", {}),
    "pnas": ("pnas", {}),
    "rea+net2net": ("rea", {"population_size": 5, "warm_start": "net2net", "warm_epochs": 3}),
}
QUERY_CAP = 100_000


class StampedOracle(TrainingOracle):
    """A training oracle that stamps each full-fidelity measurement with the seconds since ``start``."""

    start = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[dict[str, Any]] = []

    def _measure(self, cell: Cell) -> dict[str, float]:
        metrics = super()._measure(cell)
        self.events.append({"t": time.monotonic() - self.start, "arch": cell.to_string(),
                            "val_accuracy": metrics["val_accuracy"], "accuracy": metrics["accuracy"],
                            "epochs_spent": self.epochs_spent})
        return metrics


def race_one(entry: str, seed: int, splits: DatasetSplits, args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    """One (method, seed) for ``args.seconds`` of search: its stamped measurements and what it ends with."""
    method, options = ENTRIES[entry]
    space = get_space(args.space)
    # One PGD step: the race selects on accuracy alone, so the oracle's robustness figures are kept cheap
    # (with the default 10 steps they take as long as the training itself on digits-low).
    oracle = StampedOracle(splits, space=space, train=TrainConfig(epochs=args.epochs, seed=0, device="cpu"),
                           robustness=RobustnessConfig(pgd_steps=1), use_cache=False, progress=False,
                           cache=cache / entry / str(seed))
    context = SearchContext(space=space, objectives=parse_objectives("accuracy:max"), seed=seed, costs=oracle.cost,
                            network=oracle.network, dataset=splits.name, options=dict(options))
    oracle.start = time.monotonic()
    found = get_method(method).search(Problem(context, oracle=oracle, select="val_accuracy"),
                                      Stopping.of(QUERY_CAP, deadline=oracle.start + args.seconds))
    seconds = time.monotonic() - oracle.start
    best = max(oracle.events, key=lambda e: e["val_accuracy"]) if oracle.events else None
    return {"entry": entry, "method": method, "options": options, "seed": seed, "seconds": seconds,
            "stopped": found.stopped, "events": oracle.events, "epochs_spent": oracle.epochs_spent,
            "cells_tried": len(found.run.history) if found.run else 0, "full_measurements": len(oracle.events),
            "warm_started": sum("warm_from" in r for r in found.run.history) if found.run else 0,
            "best_arch": best["arch"] if best else None, "best_val": best["val_accuracy"] if best else None,
            "test_of_best": best["accuracy"] if best else None}


def best_by(run: dict[str, Any], t: float) -> float:
    """Best validated accuracy among the run's full measurements stamped by ``t`` (NaN before the first)."""
    values = [e["val_accuracy"] for e in run["events"] if e["t"] <= t]
    return max(values) if values else float("nan")


# -------------------------------------------------------------- net2net part
def _curve(model: torch.nn.Module, splits: DatasetSplits, config: TrainConfig) -> dict[str, Any]:
    trained = train_model(model, splits, config, progress=False)
    return {"val": [r["val_accuracy"] for r in trained.history],
            "seconds": list(np.cumsum([r["seconds"] for r in trained.history]))}


def _reach(curve: dict[str, Any], target: float) -> tuple[int | None, float | None]:
    """(epochs, seconds) until the validation accuracy first reaches ``target``."""
    for i, value in enumerate(curve["val"]):
        if value >= target - 1e-9:
            return i + 1, float(curve["seconds"][i])
    return None, None


def child_of(parent: Cell, kind: str, rng: np.random.Generator, space) -> Cell:
    """A ``none`` edge made a 3x3 conv (function-preserving), or a random one-edge mutation as REA draws it."""
    if kind == "mutation":
        return space.mutate(parent, rng)
    edges = [i for i, op in enumerate(parent.ops) if op == "none"]
    i = edges[int(rng.integers(len(edges)))]
    return Cell(parent.ops[:i] + ("nor_conv_3x3",) + parent.ops[i + 1:])


def net2net_pair(seed: int, kind: str, splits: DatasetSplits, args: argparse.Namespace) -> dict[str, Any]:
    """Parent trained with the recipe; its child from scratch and warm from the parent, the same recipe each."""
    space = get_space(args.space)
    rng = np.random.default_rng(1000 + seed)
    parent = space.sample(rng)
    while kind == "preserving" and "none" not in parent.ops:
        parent = space.sample(rng)
    child = child_of(parent, kind, rng, space)
    config = TrainConfig(epochs=args.epochs, seed=0, device="cpu")
    network = NetworkConfig.for_data(splits)
    torch.manual_seed(0)
    parent_net = build_network(parent, network)
    parent_curve = _curve(with_normalization(parent_net, splits), splits, config)
    torch.manual_seed(0)
    scratch = _curve(with_normalization(build_network(child, network), splits), splits, config)
    morph = change_ops(parent_net.eval(), child)
    warm_model = with_normalization(morph.network, splits)
    start_val = evaluate_accuracy(warm_model.eval(), splits.val, torch.device("cpu"))
    warm = _curve(warm_model, splits, config)
    target = scratch["val"][-1]
    return {"seed": seed, "kind": kind, "parent": parent.to_string(), "child": child.to_string(),
            "exact": morph.exact, "parent_val": parent_curve["val"][-1], "warm_start_val": start_val,
            "scratch": scratch, "warm": warm, "target": target,
            "scratch_reach": _reach(scratch, target), "warm_reach": _reach(warm, target)}


# -------------------------------------------------------------- report
def _ms(values: list[float]) -> str:
    values = [v for v in values if v is not None and not np.isnan(v)]
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}" if values else "–"


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    checkpoints = result["checkpoints"]
    lines = [f"# Multi-fidelity, PNAS and Net2Net on {s['dataset']} ({s['space']}): {s['seconds']:g} s of search "
             f"per method and seed", "", provenance_markdown(result["provenance"]),
             *([f"Note: {result['note']}", ""] if result.get("note") else []),
             f"Seeds {s['seeds']}; recipe {s['epochs']} epochs (the full fidelity; hyperband/bohb rungs at "
             f"η=3 from 1 epoch), uncached TrainingOracle (C=16, N=2; its robustness figures with one PGD step, "
             "as the race selects on accuracy only), one torch thread. Best validated accuracy "
             "found by time t is over full-fidelity measurements only (a pruned trial's partial accuracy does not "
             "count); '–' before a seed's first full measurement (n = seeds with one). Test accuracy is of the cell "
             "each run ends with, chosen on validation.", "",
             "## Best validated accuracy (%) found by time t (mean ± std over seeds)", "",
             "| method | " + " | ".join(f"t={t:g}s" for t in checkpoints) + " | test acc. of final pick | "
             "cells tried | full measurements | epochs trained |",
             "|" + "---|" * (len(checkpoints) + 5)]
    for entry in ENTRIES:
        runs = [r for r in result["runs"] if r["entry"] == entry]
        if not runs:
            continue
        cells = [_ms([best_by(r, t) for r in runs]) + f" (n={sum(not np.isnan(best_by(r, t)) for r in runs)})"
                 for t in checkpoints]
        lines.append(f"| {entry} | " + " | ".join(cells) + f" | {_ms([r['test_of_best'] for r in runs])} | "
                     f"{_ms([r['cells_tried'] for r in runs])} | {_ms([r['full_measurements'] for r in runs])} | "
                     f"{_ms([r['epochs_spent'] for r in runs])} |")
    lines += ["", "## Net2Net: a child from its parent's weights vs from scratch (same recipe)", "",
              "| kind | seeds | exact morph | parent val | warm child val before training | scratch child final "
              "val (target) | warm child final val | epochs to target: scratch / warm | seconds to target: "
              "scratch / warm |", "|---|---|---|---|---|---|---|---|---|"]
    for kind in ("preserving", "mutation"):
        pairs = [p for p in result["net2net"] if p["kind"] == kind]
        if not pairs:
            continue
        epochs = lambda key: [p[key][0] for p in pairs]  # noqa: E731
        seconds = lambda key: [p[key][1] for p in pairs]  # noqa: E731
        lines.append(f"| {kind} | {len(pairs)} | {sum(p['exact'] for p in pairs)}/{len(pairs)} | "
                     f"{_ms([p['parent_val'] for p in pairs])} | {_ms([p['warm_start_val'] for p in pairs])} | "
                     f"{_ms([p['target'] for p in pairs])} | {_ms([p['warm']['val'][-1] for p in pairs])} | "
                     f"{_ms(epochs('scratch_reach'))} / {_ms(epochs('warm_reach'))} "
                     f"(warm reached it in {sum(e is not None for e in epochs('warm_reach'))}/{len(pairs)}) | "
                     f"{_ms(seconds('scratch_reach'))} / {_ms(seconds('warm_reach'))} |")
    if result.get("discussion"):
        lines += ["", "## Reading", "", result["discussion"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="digits-low")
    p.add_argument("--space", default="nb201")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=30.0, help="search seconds per method and seed")
    p.add_argument("--epochs", type=int, default=9, help="the recipe: epochs of a full-fidelity measurement")
    p.add_argument("--methods", default=",".join(ENTRIES))
    p.add_argument("--work", default="runs/bench_multifidelity", help="finished runs (a rerun reuses them)")
    p.add_argument("--out", default="experiments/results/multifidelity_digits-low")
    p.add_argument("--note", default="", help="what else loaded the machine")
    p.add_argument("--discussion", default="", help="the Markdown's reading of the figures")
    p.add_argument("--render-only", action="store_true",
                   help="rewrite the Markdown from the committed JSON with this --note and --discussion (no runs)")
    args = p.parse_args()
    if args.render_only:
        result = json.loads(Path(args.out + ".json").read_text())
        result.update(note=args.note or result.get("note", ""),
                      discussion=args.discussion or result.get("discussion", ""))
        write_json(Path(args.out + ".json"), result)
        write_text(Path(args.out + ".md"), markdown(result))
        return
    torch.set_num_threads(1)
    work = Path(args.work)
    splits = load_dataset(dataset_spec(args.dataset, work))
    entries = [m for m in args.methods.split(",") if m]
    for entry in entries:
        check_options(ENTRIES[entry][1], [ENTRIES[entry][0]])
    settings = {"dataset": args.dataset, "space": args.space, "seeds": args.seeds, "seconds": args.seconds,
                "epochs": args.epochs, "methods": entries}
    runs = []
    for seed in range(args.seeds):  # seed-major: machine load drifts over every method alike
        for entry in entries:
            path = work / "runs" / f"{entry.replace(' ', '_')}_seed{seed}.json"
            saved = json.loads(path.read_text()) if path.exists() else None
            same = saved is not None and {**saved["settings"], "methods": None} == {**settings, "methods": None}
            if not same:  # a run is reused under the same settings, whichever other methods ran beside it
                print(f"[race] {entry} seed {seed}: {args.seconds:g} s", flush=True)
                saved = {"settings": settings, "run": race_one(entry, seed, splits, args, work / "cache")}
                write_json(path, saved)
            runs.append(saved["run"])
    pairs = []
    for seed in range(args.seeds):
        for kind in ("preserving", "mutation"):
            print(f"[net2net] {kind} seed {seed}", flush=True)
            pairs.append(net2net_pair(seed, kind, splits, args))
    result = {"settings": settings, "checkpoints": [round(args.seconds * f, 1) for f in (1 / 6, 1 / 3, 1 / 2, 2 / 3,
                                                                                          5 / 6, 1)],
              "runs": runs, "net2net": pairs, "provenance": provenance(), "note": args.note,
              "discussion": args.discussion}
    write_json(Path(args.out + ".json"), result)
    write_text(Path(args.out + ".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
