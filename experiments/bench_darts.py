"""Benchmark of the DARTS space on digits (issue 20): search methods on the clock, the generator, the supernet.

Three parts, one JSON and one Markdown file under ``experiments/results/``:

1. wall-clock comparison (``gennas.search.wallclock``): ours, REA, random, DARTS and GDAS
   each get the same minutes of search per seed on digits in the DARTS space, every found or
   derived genotype is retrained standalone with one recipe (the DARTS skeleton scaled down:
   C=8, 5 layers, 8x8 inputs) and measured on the test split (accuracy, PGD, FLOPs);
2. the committed generator: validity, uniqueness and speed of 1,000 samples (validity is
   counted on the raw draws: nothing is filtered);
3. the DARTS supernet after a short training: each subnet's output against its extracted
   standalone network's (``torch.equal``), on the digits test split.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/bench_darts.py [--minutes 0.75 --seeds 3]``.
Finished (method, seed) rows are kept under ``experiments/results/darts_digits_compare/`` and
reused by a rerun with the same settings.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from diffusion.commands import generator_path
from diffusion.model import CellDiffusion
from gennas.data import load_dataset
from gennas.io import write_json, write_text
from gennas.provenance import provenance, provenance_markdown
from gennas.search.wallclock import WallClockSpec, markdown_rows, markdown_summary, run_wallclock
from gennas.space import get_space
from gennas.space.genotype import DARTS_V1, DARTS_V2
from gennas.supernet.darts_model import DartsSupernet
from gennas.train.trainer import dataset_tensors

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ["ours", "rea", "random", "darts", "gdas"]


def generator_part(n: int = 1000, seed: int = 0) -> dict:
    """Validity, uniqueness and speed of ``n`` samples of the committed DARTS generator."""
    space = get_space("darts")
    model = CellDiffusion.load(generator_path("darts"))
    start = time.perf_counter()
    raw = model.sample_ops(n, torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - start
    valid = 0
    canonical = set()
    for row in raw.tolist():
        try:
            genotype = space.decode(row)
            space.validate(genotype)
        except Exception:  # noqa: BLE001 - counted, not raised: this is the measurement
            continue
        valid += 1
        canonical.add(genotype.canonical)
    return {"samples": n, "valid": valid, "validity": valid / n, "unique_canonical": len(canonical),
            "uniqueness": len(canonical) / n, "seconds": seconds, "samples_per_second": n / seconds,
            "checkpoint": str(generator_path("darts").relative_to(Path.cwd())) if generator_path("darts").is_relative_to(
                Path.cwd()) else str(generator_path("darts"))}


def supernet_part(n_subnets: int = 8, steps: int = 300, seed: int = 0) -> dict:
    """Train the DARTS supernet briefly on digits over random subnets, then compare subnets with standalone nets."""
    space = get_space("darts")
    splits = load_dataset("digits")
    config = space.network_for_data(splits)
    torch.manual_seed(seed)
    supernet = DartsSupernet(space, config)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.05, momentum=0.9)
    mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
    std = torch.tensor(splits.std).view(1, -1, 1, 1)
    x_train, y_train = dataset_tensors(splits.train)
    x_test, y_test = dataset_tensors(splits.test)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std  # normalised once, for both networks
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    supernet.train()
    start = time.perf_counter()
    for _ in range(steps):
        supernet.activate(space.sample(rng))
        rows = torch.randint(len(y_train), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(supernet(x_train[rows]), y_train[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_seconds = time.perf_counter() - start
    genotypes = [DARTS_V1, DARTS_V2] + space.sample(rng, n_subnets - 2)
    rows = []
    with torch.no_grad():
        for genotype in genotypes:
            with supernet.subnet(genotype):
                recalibrate(supernet, x_train)
                standalone = supernet.extract(genotype).eval()  # weights and the recalibrated statistics
                a = supernet.eval()(x_test)
            b = standalone(x_test)
            rows.append({"arch": genotype.to_string(), "equal": bool(torch.equal(a, b)),
                         "max_abs_difference": float((a - b).abs().max()),
                         "subnet_accuracy": float((a.argmax(1) == y_test).float().mean() * 100),
                         "standalone_accuracy": float((b.argmax(1) == y_test).float().mean() * 100)})
    return {"skeleton": config.describe(), "train_steps": steps, "train_seconds": train_seconds,
            "test_images": len(y_test), "subnets": rows, "all_equal": all(r["equal"] for r in rows)}


def recalibrate(model: torch.nn.Module, x: torch.Tensor, batches: int = 8, batch_size: int = 128) -> None:
    """BN statistics of the active subnet: reset, then a cumulative average over a few training batches.

    Shared BN statistics belong to no subnet in particular (every subnet trained them), so a
    subnet is read after recalibrating them, as one-shot evaluation does.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    for i in range(batches):
        model(x[i * batch_size:(i + 1) * batch_size])
    for bn in norms:
        bn.momentum = 0.1


#: Initial samples before a method is guided (REA's population, ours' unguided draws): their defaults.
UNGUIDED_QUERIES = {"rea": 10, "ours": 10}


def reading(rows: list[dict], minutes: float) -> str:
    """What the rows say about how much each method searched (computed, so it stays true on a rerun)."""
    by = {m: [r for r in rows if r["method"] == m] for m in dict.fromkeys(r["method"] for r in rows)}
    queries = sorted({r["queries"] for m in ("ours", "rea", "random") for r in by.get(m, []) if "queries" in r})
    same = sum(a["arch"] == b["arch"] for a, b in zip(by.get("rea", []), by.get("random", [])))
    epochs = {m: sorted({r["epochs"] for r in by.get(m, [])}) for m in ("darts", "gdas")}

    def past_initial(method: str) -> str:
        runs = by.get(method, [])
        past = sum(r["queries"] > UNGUIDED_QUERIES[method] for r in runs)
        return (f"{method} went past its {UNGUIDED_QUERIES[method]} initial (unguided) queries in {past} of "
                f"{len(runs)} seeds (queries {', '.join(str(r['queries']) for r in runs)})")

    over = [f"{r['method']} seed {r['seed']} {r['search_seconds']:.0f} s" for r in rows
            if r["search_seconds"] > minutes * 60 * 1.1]
    return (f"Reading: at this budget a black-box method trains {queries[0]}-{queries[-1]} genotypes per run; "
            f"{past_initial('rea')}, and found the same genotype as random search with the same seed in {same} of "
            f"{len(by.get('rea', []))}; {past_initial('ours')}. DARTS' timed pilot planned {epochs['darts']} epochs "
            f"(it under-uses its minutes), GDAS ran {epochs['gdas']}."
            + (f" Runs past the budget by more than 10 % (a query in flight at the deadline finishes): "
               f"{'; '.join(over)}." if over else "")
            + " Differences within the seed spread are not a ranking of the methods.\n")


def markdown(payload: dict) -> str:
    cmp, gen, sup = payload["compare"], payload["generator"], payload["supernet"]
    s = cmp["settings"]
    lines = [
        "# The DARTS space on digits (issue 20)\n\n", provenance_markdown(payload["provenance"]), "\n",
        *([f"Note: {payload['note']}\n\n"] if payload.get("note") else []),
        f"Command: `{payload['command']}`. One CPU core (`OMP_NUM_THREADS=1`) on a machine shared with other "
        "jobs, so wall-clock budgets are only approximately equal in compute.\n\n",
        f"## 1. Search at equal wall-clock ({s['minutes']:g} min per method and seed, {s['seeds']} seeds)\n\n",
        f"Space `darts` (normal + reduction cell, ~1.08e18 genotypes). Every found or derived genotype is retrained "
        f"standalone on digits with one recipe: {s['epochs']} epochs, train seed 0, the DARTS skeleton scaled down "
        f"to C={s['channels']}, {s['cells_per_stage']} layers (reductions at cells 1 and 3), 1x8x8 input, 10 "
        "classes. Accuracy and PGD (L-inf eps 0.1, 10 steps) on the test split; FLOPs in M (the NAS-Bench-201 API "
        "convention), memory = analytic batch-1 peak bytes. Black-box methods select on validation accuracy; "
        "DARTS/GDAS derive the genotype from alpha after as many epochs as a 3-step pilot says fit.\n\n",
        "### Mean ± std over seeds\n\n", markdown_summary(cmp["rows"]), "\n", reading(cmp["rows"], s["minutes"]),
        "\n### Every run\n\n",
        markdown_rows(cmp["rows"]), "\n",
        "## 2. Generator: 1,000 samples of the committed checkpoint\n\n",
        f"`{gen['checkpoint']}` (trained on 20,000 uniform genotypes, 3000 steps). Validity counted on the raw "
        "draws of the reverse chain (values a variable lacks are masked in the prior and the denoiser's logits; "
        "nothing is filtered).\n\n| samples | valid | validity | unique (canonical) | seconds | samples/s |\n"
        "|---|---|---|---|---|---|\n"
        f"| {gen['samples']} | {gen['valid']} | {gen['validity']:.3f} | {gen['unique_canonical']} "
        f"({gen['uniqueness']:.3f}) | {gen['seconds']:.2f} | {gen['samples_per_second']:.0f} |\n\n",
        f"## 3. Supernet vs standalone ({len(sup['subnets'])} subnets)\n\n",
        f"DARTS supernet on {sup['skeleton']}, trained {sup['train_steps']} SGD steps over random subnets "
        f"({sup['train_seconds']:.1f} s); per subnet its BN statistics are recalibrated on 8 training batches, then "
        f"its logits on the {sup['test_images']} test images are compared with those of the standalone network "
        "extracted from it (eval mode).\n\n| genotype | torch.equal | max abs diff | subnet acc | "
        "standalone acc |\n|---|---|---|---|---|\n",
    ]
    for r in sup["subnets"]:
        lines.append(f"| `{r['arch']}` | {r['equal']} | {r['max_abs_difference']:.3g} | {r['subnet_accuracy']:.2f} "
                     f"| {r['standalone_accuracy']:.2f} |\n")
    lines.append("\nNo GPU was lent to this task, so the GPU part of the issue (one search on the DARTS space, "
                 "the derived genotype retrained at full size) was not run.\n")
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=0.75)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--note", default="", help="what shared the machine, written under the provenance")
    args = parser.parse_args()
    command = f"python experiments/bench_darts.py --minutes {args.minutes:g} --seeds {args.seeds} --epochs {args.epochs}"
    start = time.perf_counter()
    spec = WallClockSpec(dataset="digits", space="darts", minutes=args.minutes, seeds=args.seeds, epochs=args.epochs,
                         device="cpu")
    compare = run_wallclock(spec, METHODS, RESULTS / "darts_digits_compare", progress=True, command=command.split())
    payload = {"command": command, "provenance": provenance(command.split()), "compare": compare,
               "generator": generator_part(), "supernet": supernet_part(), "note": args.note}
    payload["total_seconds"] = time.perf_counter() - start
    write_json(RESULTS / "darts_digits.json", payload)
    write_text(RESULTS / "darts_digits.md", markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
