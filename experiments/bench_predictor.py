"""Benchmark: predictor ranking quality on NAS-Bench-201 (issue 3).

Parts (all by default, one run, same seeds for every method):
  zero-prior  GNN vs gradient boosting vs random forest trained on n target cells
              (n = 20, 50, 100, 1000); Kendall tau, Spearman and top-1% precision over
              every cell not used for training; fit wall-clock on this CPU.
  zero-prior-aux  the GNN on n = 100 target cells alone against the same GNN that also
              learns the free costs (FLOPs, params; computed, not looked up) of 1,000 more
              cells without accuracy labels: whether pretraining the shared encoder on
              unlabelled cells lifts the zero-prior ranking (issue 16's tau target).
  zero-prior-proxies  data-free zero-cost proxies (synflow, naswot on noise; no image, no label)
              alone, as forest features beside the one-hot ops, and the GNN mixed with that
              forest, on n = 20, 50, 100 target cells (issue 16's tau target).
  transfer    the committed prior (pretrained on the two non-target tables, never the
              target's) adapted with k = 0, 5, 10, 20 target cells.
  noisy       the prior's ranking of noised cells (hard draws of the diffusion process at
              time t) against the clean cells' truth: how useful guidance gradients are.
  costs       GNN cost heads (FLOPs, params, memory) trained on 1,000 cells, R^2 on the rest.

The target table is used only to score predictions on cells the method did not train on.

    python experiments/bench_predictor.py [--target cifar10] [--seeds 10] [--parts zero-prior,transfer,noisy,costs]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from gennas.space.noise import OpNoiseSchedule
from gennas.bench.nb201 import canonical_dataset, load_table
from gennas.bench.tabular import nb201_network
from gennas.io import write_json, write_text
from gennas.metrics import COST_METRICS, CostTable
from gennas.metrics.flops import FLOPS_CONVENTION
from gennas.metrics.proxies import PROXY_NETWORK, ProxyTable, proxy_features
from gennas.provenance import provenance, provenance_markdown
from gennas.space import Cell, nb201_space
from predictors import GNNConfig, GNNPredictor, SklearnPredictor
from predictors.encoding import one_hot_ops
from predictors.mixture import MixturePredictor
from predictors.transfer import load_prior

SIZES = (20, 50, 100, 1000)
SHOTS = (0, 5, 10, 20)


def ranking(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    k = max(1, int(round(0.01 * len(truth))))
    top_pred, top_true = set(np.argsort(-pred)[:k]), set(np.argsort(-truth)[:k])
    return {"kendall": float(kendalltau(pred, truth)[0]), "spearman": float(spearmanr(pred, truth)[0]),
            "top1_precision": len(top_pred & top_true) / k}


def summarise(rows: list[dict], keys=("kendall", "spearman", "top1_precision", "seconds")) -> dict:
    return {k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))] for k in keys if k in rows[0]}


def split(seed: int, n: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed's ``n`` training rows and every other row (the test rows), the same for every method."""
    train = np.random.default_rng(seed).choice(total, n, replace=False)
    return train, np.setdiff1d(np.arange(total), train)


def zero_prior(cells, truth, task, seeds, log) -> dict:
    space, out = nb201_space(), {}
    methods = {
        "gnn": lambda s: GNNPredictor(space, [task], GNNConfig(seed=s)),
        "gbr": lambda s: SklearnPredictor(space, [task], "gbr", seed=s),
        "rf": lambda s: SklearnPredictor(space, [task], "rf", seed=s),
    }
    for n in SIZES:
        for name, make in methods.items():
            rows = []
            for seed in range(seeds):
                train, test = split(seed, n, len(cells))
                start = time.perf_counter()
                model = make(seed).fit([cells[i] for i in train], {task: truth[train]})
                seconds = time.perf_counter() - start
                pred = model.predict([cells[i] for i in test], [task])[task].mean
                rows.append({**ranking(pred, truth[test]), "seconds": seconds})
            out.setdefault(str(n), {})[name] = summarise(rows)
            log(f"zero-prior n={n} {name}: tau {out[str(n)][name]['kendall'][0]:.3f}")
    return out


AUX_TRAIN, AUX_UNLABELLED = 100, 1000


def zero_prior_aux(cells, truth, target, task, seeds, log) -> dict:
    """The GNN on ``AUX_TRAIN`` labelled cells, alone and with free-cost tasks on ``AUX_UNLABELLED`` more.

    The unlabelled cells are drawn from the test rows (they carry no accuracy label, and
    every cell's costs are free), so both variants are scored on the same rows.
    """
    space = nb201_space()
    table = CostTable.load_or_build(space, nb201_network(target))
    free = {m: np.log(table.values[m][[space.ordinal(c) for c in cells]]) for m in ("flops", "params")}
    variants = {"gnn": False, f"gnn + log FLOPs/params tasks on {AUX_UNLABELLED} unlabelled cells": True}
    out = {}
    for name, auxiliary in variants.items():
        rows = []
        for seed in range(seeds):
            train, test = split(seed, AUX_TRAIN, len(cells))
            rows_fit = train
            if auxiliary:
                extra = np.random.default_rng([seed, 1]).choice(test, AUX_UNLABELLED, replace=False)
                rows_fit = np.concatenate([train, extra])
            labels = np.full(len(rows_fit), np.nan)
            labels[:AUX_TRAIN] = truth[train]
            targets = {task: labels, **({m: v[rows_fit] for m, v in free.items()} if auxiliary else {})}
            start = time.perf_counter()
            model = GNNPredictor(space, list(targets), GNNConfig(seed=seed)).fit([cells[i] for i in rows_fit], targets)
            seconds = time.perf_counter() - start
            pred = model.predict([cells[i] for i in test], [task])[task].mean
            rows.append({**ranking(pred, truth[test]), "seconds": seconds})
        out[name] = summarise(rows)
        log(f"zero-prior-aux {name}: tau {out[name]['kendall'][0]:.3f}")
    return out


PROXY_SIZES = (20, 50, 100)


def zero_prior_proxies(cells, truth, task, seeds, log) -> dict:
    """Zero-cost proxies as rankers, as forest features, and the GNN mixed with that forest.

    Every method of a seed trains on the same cells and is scored on the same rows; the
    mixture averages the two fitted members' predictions (no third fit). The proxies come
    from :class:`ProxyTable` (built once per machine and cached: they need no table).
    """
    space = nb201_space()
    ProxyTable.load_or_build(space, progress=True)  # every cell's proxies known to proxy_features
    features = proxy_features(cells)
    out: dict = {"proxy alone": {}}
    for j, name in enumerate(("synflow", "naswot", "log FLOPs")):
        out["proxy alone"][name] = ranking(features[:, j], truth)
        log(f"proxy {name}: tau {out['proxy alone'][name]['kendall']:.3f}")
    for n in PROXY_SIZES:
        rows: dict[str, list] = {}
        for seed in range(seeds):
            train, test = split(seed, n, len(cells))
            fit_cells, test_cells, targets = [cells[i] for i in train], [cells[i] for i in test], {task: truth[train]}
            fitted = {}
            for name, make in {"rf": lambda: SklearnPredictor(space, [task], "rf", seed=seed),
                               "rf + proxies": lambda: SklearnPredictor(space, [task], "rf", seed=seed,
                                                                        features="one-hot+proxies"),
                               "gnn": lambda: GNNPredictor(space, [task], GNNConfig(seed=seed))}.items():
                start = time.perf_counter()
                fitted[name] = make().fit(fit_cells, targets)
                seconds = time.perf_counter() - start
                rows.setdefault(name, []).append({**ranking(fitted[name].predict(test_cells, [task])[task].mean,
                                                            truth[test]), "seconds": seconds})
            mixture = MixturePredictor([fitted["gnn"], fitted["rf + proxies"]])
            rows.setdefault("gnn + (rf + proxies) mixture", []).append(
                {**ranking(mixture.predict(test_cells, [task])[task].mean, truth[test]),
                 "seconds": rows["gnn"][-1]["seconds"] + rows["rf + proxies"][-1]["seconds"]})
        out[str(n)] = {name: summarise(r) for name, r in rows.items()}
        log(f"zero-prior-proxies n={n}: " + ", ".join(f"{k} {v['kendall'][0]:.3f}" for k, v in out[str(n)].items()))
    return out


def transfer(cells, truth, target, task, seeds, log) -> dict:
    prior, out = load_prior(target), {}
    for k in SHOTS:
        rows, mixtures = [], []
        for seed in range(seeds if k else 1):
            train = np.random.default_rng(seed).choice(len(cells), k, replace=False) if k else np.array([], int)
            test = np.setdiff1d(np.arange(len(cells)), train)
            start = time.perf_counter()
            model = prior.copy().fit_task(task, [cells[i] for i in train], truth[train] if k else None)
            seconds = time.perf_counter() - start
            pred = model.predict([cells[i] for i in test], [task])[task].mean
            rows.append({**ranking(pred, truth[test]), "seconds": seconds,
                         "mae": float(np.mean(np.abs(pred - truth[test])))})
            mixtures.append(model.mixtures.get(task))
        out[str(k)] = {**summarise(rows, ("kendall", "spearman", "top1_precision", "seconds", "mae")),
                       "seeds": len(rows), "mixture_example": mixtures[0]}
        log(f"transfer k={k}: tau {out[str(k)]['kendall'][0]:.3f}")
    return out


def noisy(cells, truth, target, task, log) -> dict:
    prior = load_prior(target).fit_task(task, [], None)
    space = nb201_space()
    schedule = OpNoiseSchedule(len(space.ops))
    clean = one_hot_ops(space, cells)
    out, gen = {}, torch.Generator().manual_seed(0)
    for t in (0.0, 0.1, 0.25, 0.5, 0.75):
        times = torch.full((len(cells),), t)
        x = clean if t == 0 else schedule.sample(clean, times, generator=gen)
        with torch.no_grad():
            mean = torch.cat([prior.predict_soft(x[i:i + 4096], times[i:i + 4096], [task])[0]
                              for i in range(0, len(cells), 4096)])[:, 0].numpy()
        out[str(t)] = ranking(mean, truth)
        log(f"noisy t={t}: tau {out[str(t)]['kendall']:.3f}")
    return out


def costs(cells, target, seeds, log) -> dict:
    space = nb201_space()
    table = CostTable.load_or_build(space, nb201_network(target))
    values = {m: table.values[m][[space.ordinal(c) for c in cells]] for m in COST_METRICS}
    rows = []
    for seed in range(seeds):
        train, test = split(seed, 1000, len(cells))
        start = time.perf_counter()
        model = GNNPredictor(space, list(COST_METRICS), GNNConfig(seed=seed)).fit(
            [cells[i] for i in train], {m: v[train] for m, v in values.items()})
        seconds = time.perf_counter() - start
        pred = model.predict([cells[i] for i in test])
        rows.append({m: float(1 - np.mean((pred[m].mean - values[m][test]) ** 2) / np.var(values[m][test]))
                     for m in COST_METRICS} | {"seconds": seconds})
    out = {m: [float(np.mean([r[m] for r in rows])), float(np.std([r[m] for r in rows]))] for m in (*COST_METRICS, "seconds")}
    log("costs R2: " + ", ".join(f"{m} {out[m][0]:.4f}" for m in COST_METRICS))
    return out


def markdown(results: dict) -> str:
    target = results["target"]
    r = {part: value["results"] for part, value in results.items() if part != "target"}
    lines = [f"# Predictor benchmark on NAS-Bench-201 ({target})", "",
             "Scores are over every cell not used for training (the target table is used only for scoring). "
             "Mean ± std over seeds; `top-1%` = share of the predictor's top 1% that is truly top 1%.", ""]
    for part in r:
        lines += [f"Part `{part}` ({results[part]['seeds']} seeds):", "", provenance_markdown(results[part]["provenance"])]
        if results[part].get("shared"):  # fit seconds from shared cores run high
            lines.insert(len(lines) - 1, f"- the cores were shared with {results[part]['shared']}")
        if results[part].get("note"):  # what the run's record cannot say by itself
            lines.insert(len(lines) - 1, f"- note: {results[part]['note']}")
    if "zero-prior" in r:
        lines += ["## Zero prior (trained on n target cells)", "",
                  "| n | method | Kendall τ | Spearman ρ | top-1% precision | fit seconds |", "|---|---|---|---|---|---|"]
        for n, methods in r["zero-prior"].items():
            for name, s in methods.items():
                lines.append(f"| {n} | {name} | {s['kendall'][0]:.3f} ± {s['kendall'][1]:.3f} | "
                             f"{s['spearman'][0]:.3f} ± {s['spearman'][1]:.3f} | {s['top1_precision'][0]:.3f} ± "
                             f"{s['top1_precision'][1]:.3f} | {s['seconds'][0]:.1f} |")
        lines += ["", "Target: GNN τ ≥ 0.65 at n = 100.", ""]
    if "zero-prior-aux" in r:
        lines += [f"## Zero prior with free costs on unlabelled cells (n = {AUX_TRAIN} labelled cells)", "",
                  "Both rows share the seeds' training cells and test rows; the second also learns log FLOPs and "
                  f"log params of {AUX_UNLABELLED} cells that have no accuracy label (costs are computed, free for "
                  "every cell), so its shared encoder is pretrained on them.", "",
                  "| variant | Kendall τ | Spearman ρ | top-1% precision | fit seconds |", "|---|---|---|---|---|"]
        for name, s in r["zero-prior-aux"].items():
            lines.append(f"| {name} | {s['kendall'][0]:.3f} ± {s['kendall'][1]:.3f} | "
                         f"{s['spearman'][0]:.3f} ± {s['spearman'][1]:.3f} | {s['top1_precision'][0]:.3f} ± "
                         f"{s['top1_precision'][1]:.3f} | {s['seconds'][0]:.1f} |")
        lines += ["", "Issue 16's target: τ ≥ 0.80 at n = 100.", ""]
    if "zero-prior-proxies" in r:
        p = r["zero-prior-proxies"]
        net = PROXY_NETWORK
        lines += ["## Zero-cost proxies (data-free) as predictor inputs", "",
                  f"synflow and naswot are computed on each cell's untrained network (C={net.channels}, "
                  f"N={net.cells_per_stage}, {net.image_size} px, seeded weights; naswot on a batch of Gaussian "
                  "noise), so they use no image and no label of any dataset (`gennas/metrics/proxies.py`). "
                  "`rf + proxies`: the forest on the one-hot ops plus synflow, naswot, log FLOPs and log params. "
                  "The mixture averages the fitted GNN's and that forest's predictions (`predictors/mixture.py`).", "",
                  "| proxy alone (no training) | Kendall τ | Spearman ρ | top-1% precision |", "|---|---|---|---|"]
        lines += [f"| {name} | {s['kendall']:.3f} | {s['spearman']:.3f} | {s['top1_precision']:.3f} |"
                  for name, s in p["proxy alone"].items()]
        lines += ["", "| n | method | Kendall τ | Spearman ρ | top-1% precision | fit seconds |",
                  "|---|---|---|---|---|---|"]
        for n in (k for k in p if k != "proxy alone"):
            for name, s in p[n].items():
                lines.append(f"| {n} | {name} | {s['kendall'][0]:.3f} ± {s['kendall'][1]:.3f} | "
                             f"{s['spearman'][0]:.3f} ± {s['spearman'][1]:.3f} | {s['top1_precision'][0]:.3f} ± "
                             f"{s['top1_precision'][1]:.3f} | {s['seconds'][0]:.1f} |")
        lines += ["", "Issue 16's target: τ ≥ 0.80 at n = 100.", ""]
    if "transfer" in r:
        lines += ["## Transfer (prior pretrained on the two other tables, adapted with k target cells)", "",
                  "| k | Kendall τ | Spearman ρ | top-1% precision | MAE (points) | adapt seconds | seeds | mixture (first seed) |",
                  "|---|---|---|---|---|---|---|---|"]
        for k, s in r["transfer"].items():
            mix = ", ".join(f"{t.split('@')[1]} {w:.2f}" for t, w in (s["mixture_example"] or {}).items()) or "uniform (zero-shot)"
            lines.append(f"| {k} | {s['kendall'][0]:.3f} ± {s['kendall'][1]:.3f} | {s['spearman'][0]:.3f} ± {s['spearman'][1]:.3f} | "
                         f"{s['top1_precision'][0]:.3f} ± {s['top1_precision'][1]:.3f} | {s['mae'][0]:.2f} | "
                         f"{s['seconds'][0]:.1f} | {s['seeds']} | {mix} |")
        lines += ["", "Target: τ ≥ 0.85 with k = 10. The prior is the committed checkpoint "
                  "(`gennas predictor pretrain --dataset <target>`, seed 0); seeds vary the k target cells.", ""]
    if "noisy" in r:
        lines += ["## Noise-aware path (zero-shot prior on noised cells vs the clean cells' truth)", "",
                  "| diffusion time t | Kendall τ | Spearman ρ |", "|---|---|---|"]
        lines += [f"| {t} | {s['kendall']:.3f} | {s['spearman']:.3f} |" for t, s in r["noisy"].items()]
        lines.append("")
    if "costs" in r:
        c = r["costs"]
        lines += ["## Cost heads (GNN trained on 1,000 cells, R² on the other 14,625)", "",
                  "| FLOPs R² | params R² | memory R² | fit seconds |", "|---|---|---|---|",
                  f"| {c['flops'][0]:.4f} ± {c['flops'][1]:.4f} | {c['params'][0]:.4f} ± {c['params'][1]:.4f} | "
                  f"{c['memory_bytes'][0]:.4f} ± {c['memory_bytes'][1]:.4f} | {c['seconds'][0]:.1f} |", "",
                  "Target: R² ≥ 0.99.", ""]
        if results["costs"].get("flops_convention") != FLOPS_CONVENTION:
            lines += ["> FLOPs in this file were counted before the NAS-Bench-201 API convention of issue 21: conv and "
                      "linear layers only, pooling free. Current counts add kernel h×w per output element of every "
                      "fixed-window pooling (`gennas cost --help`), so pooled cells read higher now; the figures here "
                      "are kept as they were measured.", ""]
    return "\n".join(lines)


def main() -> None:
    from gennas.threads import one_thread_per_worker

    one_thread_per_worker()  # benchmarks time processes side by side: one core each
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cifar10")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--parts", default="zero-prior,transfer,noisy,costs")
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    target = canonical_dataset(args.target)
    table = load_table()
    cells = [Cell.from_string(a) for a in table.archs]
    truth = table.accuracy[target]  # scoring only
    task = f"accuracy@{target}"
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.out)
    path = out / f"predictor_{target}.json"
    # Parts can be run separately; each keeps its own provenance and the file collects them.
    results: dict = json.loads(path.read_text()) if path.exists() else {"target": target}
    runners = {
        "zero-prior": lambda: zero_prior(cells, truth, task, args.seeds, log),
        "zero-prior-aux": lambda: zero_prior_aux(cells, truth, target, task, args.seeds, log),
        "zero-prior-proxies": lambda: zero_prior_proxies(cells, truth, task, args.seeds, log),
        "transfer": lambda: transfer(cells, truth, target, task, args.seeds, log),
        "noisy": lambda: noisy(cells, truth, target, task, log),
        "costs": lambda: costs(cells, target, min(args.seeds, 3), log),
    }
    for part in args.parts.split(","):
        if part not in runners:
            raise SystemExit(f"unknown part {part!r}; choose from {', '.join(runners)}")
        results[part] = {"provenance": provenance(), "seeds": args.seeds, "flops_convention": FLOPS_CONVENTION,
                         "results": runners[part]()}
        write_json(path, results)
    write_text(path.with_suffix(".md"), markdown(results))
    stem = path.stem
    log(f"wrote {out / (stem + '.json')} and {out / (stem + '.md')}")


if __name__ == "__main__":
    main()
