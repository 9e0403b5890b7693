"""Benchmark: the guided graph-diffusion generator (issue 4).

Parts (one run; the NB201 target table is used only to score samples):
  sampling     time for 1,000 cells, validity and uniqueness of raw draws, op-distribution
               match (total variation to the training marginals), novelty of a generator
               trained on a 20% subset.
  guidance     true CIFAR-10 accuracy of 100 accuracy-guided vs 100 unguided samples,
               guided by the transfer prior (never the target table).
  pareto       hypervolume ratio and IGD+ of 100 (accuracy, FLOPs)-guided samples against the
               true front (DESIGN.md protocol), unguided alongside.
  constraints  share of samples meeting flops<=X before and after filtering.
  large        dag6: FLOPs-guided vs unguided samples, and flops<=X satisfaction.

    python experiments/bench_generator.py [--target cifar10] [--seeds 3] [--scales 10,30]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from diffusion.commands import generator_path, run_generate
from diffusion.guidance import MetricModel, ParetoGuide, generate
from diffusion.model import CellDiffusion, DiffusionConfig, op_marginals
from gennas.objectives import parse_constraint, parse_objectives
from gennas.bench.nb201 import canonical_dataset, load_table
from gennas.io import write_json, write_text
from gennas.nn import NetworkConfig
from gennas.provenance import provenance, provenance_markdown
from gennas.search.indicators import nb201_reference
from gennas.space import Cell, get_space, nb201_space


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sampling(seeds: int) -> dict:
    space = nb201_space()
    model = CellDiffusion.load(generator_path("nb201"))
    train_marginals = op_marginals(space, list(space.enumerate()))
    rows = []
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        raw = model.sample_ops(1000, gen)
        seconds = time.perf_counter() - start
        cells = [Cell(tuple(space.ops[i] for i in r)) for r in raw.tolist()]
        valid = sum(space.contains(c) for c in cells) / len(cells)
        unique = len({c.canonical for c in cells}) / len(cells)
        unique_exact = len({c.to_string() for c in cells}) / len(cells)
        tv = 0.5 * float(np.abs(op_marginals(space, cells) - train_marginals).sum())
        rows.append({"seconds_1000": seconds, "validity": valid, "uniqueness_canonical": unique,
                     "uniqueness_exact": unique_exact, "op_tv_distance": tv})
    out = {k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))] for k in rows[0]}
    # Novelty: a generator trained on a fixed 20% subset; share of its samples outside that subset.
    cells = list(space.enumerate())
    subset = [cells[i] for i in np.random.default_rng(0).choice(len(cells), len(cells) // 5, replace=False)]
    sub_model = CellDiffusion(space, DiffusionConfig(steps=1500))
    sub_model.fit(subset)
    seen = {c.to_string() for c in subset}
    samples = [Cell(tuple(space.ops[i] for i in r)) for r in sub_model.sample_ops(1000, torch.Generator().manual_seed(0)).tolist()]
    out["novelty_subset20"] = sum(c.to_string() not in seen for c in samples) / len(samples)
    out["training_marginals"] = train_marginals.tolist()
    log(f"sampling: {out['seconds_1000'][0]:.2f}s/1000, valid {out['validity'][0]:.3f}, "
        f"unique {out['uniqueness_canonical'][0]:.3f}, tv {out['op_tv_distance'][0]:.3f}, novelty {out['novelty_subset20']:.3f}")
    return out


def truth_of(rows: list[dict], accuracy: np.ndarray, index: dict[str, int]) -> np.ndarray:
    return np.array([accuracy[index[r["arch"]]] for r in rows])


def guidance(target: str, seeds: int, scales: list[float], accuracy, index) -> dict:
    out = {}
    for scale in [0.0, *scales]:
        rows = []
        for seed in range(seeds):
            result = run_generate("nb201", "accuracy:max", 100, dataset=target, guidance=scale, seed=seed)
            acc = truth_of(result["cells"], accuracy, index)
            rows.append({"mean": float(acc.mean()), "best": float(acc.max()), "unique": len(result["cells"]),
                         "optimum_found": bool(np.isclose(acc.max(), accuracy.max()))})
        out[str(scale)] = {"mean_accuracy": [float(np.mean([r["mean"] for r in rows])), float(np.std([r["mean"] for r in rows]))],
                           "best_accuracy": [float(np.mean([r["best"] for r in rows])), float(np.std([r["best"] for r in rows]))],
                           "unique": float(np.mean([r["unique"] for r in rows])),
                           "optimum_hit_rate": float(np.mean([r["optimum_found"] for r in rows]))}
        log(f"guidance {scale}: mean {out[str(scale)]['mean_accuracy'][0]:.2f} best {out[str(scale)]['best_accuracy'][0]:.2f}")
    return out


def pareto(target: str, seeds: int, scales: list[float], accuracy, index) -> dict:
    objectives = parse_objectives("accuracy:max,flops:min")
    reference = nb201_reference(target, objectives)  # scoring only: the generator never sees it
    out = {"reference_point": [-reference.ref_point[0], reference.ref_point[1]], "true_front_size": len(reference.front)}
    for scale in [0.0, *scales]:
        ratios, igds = [], []
        for seed in range(seeds):
            result = run_generate("nb201", "accuracy:max,flops:min", 100, dataset=target, guidance=scale, seed=seed)
            rows = [{"accuracy": float(accuracy[index[r["arch"]]]), "flops": r["flops"]} for r in result["cells"]]
            ratios.append(reference.hv_ratio(rows))
            igds.append(reference.igd_plus(rows))
        out[str(scale)] = {"hv_ratio": [float(np.mean(ratios)), float(np.std(ratios))],
                           "igd_plus": [float(np.mean(igds)), float(np.std(igds))]}
        log(f"pareto {scale}: hv ratio {out[str(scale)]['hv_ratio'][0]:.4f}")
    return out


def constraints(target: str, seeds: int, scale: float) -> dict:
    out = {}
    for bound in (20, 50, 100):
        before, after = [], []
        for seed in range(seeds):
            result = run_generate("nb201", "accuracy:max,flops:min", 100, dataset=target,
                                  constraints=[f"flops<={bound}"], guidance=scale, seed=seed)
            before.append(result["satisfied_before_filter"])
            after.append(float(np.mean([r["flops"] <= bound for r in result["cells"]])) if result["cells"] else 0.0)
        out[f"flops<={bound}"] = {"before_filter": float(np.mean(before)), "after_filter": float(np.mean(after))}
        log(f"constraint flops<={bound}: before {np.mean(before):.3f} after {np.mean(after):.3f}")
    return out


def large(seeds: int, scale: float) -> dict:
    space = get_space("dag6")
    model = CellDiffusion.load(generator_path("dag6"))
    net = NetworkConfig()
    metric_model = MetricModel(None, net, None, space.ops, space.num_edges)
    guide = ParetoGuide(metric_model, parse_objectives("flops:min"), [])
    out = {}
    for label, g in (("unguided", None), ("guided", guide)):
        means = []
        for seed in range(seeds):
            result = generate(model, parse_objectives("flops:min"), [], 100, None, net, guidance=scale if g else 0.0, seed=seed)
            means.append(float(np.mean([r["flops"] for r in result["cells"]])))
        out[f"{label}_mean_flops"] = [float(np.mean(means)), float(np.std(means))]
    for bound in (60, 120):
        result = generate(model, parse_objectives("flops:min,params:min"), [parse_constraint(f"flops<={bound}")], 100,
                          None, net, guidance=scale, seed=0)
        out[f"flops<={bound}"] = {"before_filter": result["satisfied_before_filter"],
                                  "after_filter": float(np.mean([r["flops"] <= bound for r in result["cells"]])),
                                  "returned": len(result["cells"])}
    log(f"large: {json.dumps(out)}")
    return out


def markdown(results: dict) -> str:
    lines = [f"# Generator benchmark ({results['target']})", ""]
    for part, value in results.items():
        if part == "target":
            continue
        lines += [f"## {part}", "", provenance_markdown(value["provenance"]), "```json",
                  json.dumps(value["results"], indent=1), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cifar10")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scales", default="10,30", help="guidance scales compared with unguided")
    parser.add_argument("--parts", default="sampling,guidance,pareto,constraints,large")
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    target = canonical_dataset(args.target)
    scales = [float(s) for s in args.scales.split(",")]
    table = load_table()
    accuracy = table.accuracy[target]  # scoring only
    index = table.index_by_arch
    path = Path(args.out) / f"generator_{target}.json"
    results = json.loads(path.read_text()) if path.exists() else {"target": target}
    runners = {
        "sampling": lambda: sampling(args.seeds),
        "guidance": lambda: guidance(target, args.seeds, scales, accuracy, index),
        "pareto": lambda: pareto(target, args.seeds, scales, accuracy, index),
        "constraints": lambda: constraints(target, args.seeds, scales[0]),
        "large": lambda: large(args.seeds, scales[0]),
    }
    for part in args.parts.split(","):
        results[part] = {"provenance": provenance(), "seeds": args.seeds, "results": runners[part]()}
        write_json(path, results)
        write_text(path.with_suffix(".md"), markdown(results))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
