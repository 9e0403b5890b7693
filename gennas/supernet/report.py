"""``report.md`` and ``pareto.png`` of a supernet run."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from gennas.io import atomic_write, write_text
from gennas.markdown import code_cell
from gennas.objectives import Objective, pareto_indices, minimisation_matrix
from gennas.provenance import provenance_markdown
from gennas.supernet.calibration import Calibration
from gennas.supernet.prune import is_verified

#: The front drawn and marked in the report: accuracy up, FLOPs down, robustness up.
FRONT = [Objective("val_accuracy", "max"), Objective("flops", "min"), Objective("val_pgd_accuracy", "max")]


@contextmanager
def _accuracy_flops_axes(path: Path, title: str) -> Iterator:
    """A validation-accuracy-against-FLOPs figure, written atomically to ``path`` as PNG when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    try:
        yield fig, ax
        ax.set_xlabel("FLOPs (M)")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(title)
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def _front_order(rows: list[dict]) -> np.ndarray:
    """Indices of the (accuracy, FLOPs) front of ``rows``, by FLOPs."""
    front = pareto_indices(minimisation_matrix(rows, FRONT[:2]))
    return front[np.argsort([rows[i]["flops"] for i in front])]


def plot_subnets(path: Path, rows: list[dict], chosen: str | None, title: str) -> None:
    """Every measured subnet (colour: PGD accuracy), the front, and the exported one."""
    flops = np.array([r["flops"] for r in rows])
    acc = np.array([r["val_accuracy"] for r in rows])
    with _accuracy_flops_axes(path, title) as (fig, ax):
        points = ax.scatter(flops, acc, c=[r["val_pgd_accuracy"] for r in rows], cmap="viridis", s=22,
                            label="measured subnets")
        fig.colorbar(points, ax=ax, label="validation PGD accuracy (%)")
        order = _front_order(rows)
        ax.plot(flops[order], acc[order], "-", c="tab:red", lw=1, label="front (accuracy, FLOPs)")
        if chosen is not None:
            i = next(i for i, r in enumerate(rows) if r["arch"] == chosen)
            ax.scatter([flops[i]], [acc[i]], marker="*", s=160, c="tab:red", label="exported")


def plot_rounds(path: Path, rounds: list[dict], title: str) -> None:
    """Each round's measured front (validation accuracy against FLOPs; verified figures where they exist)."""
    with _accuracy_flops_axes(path, title) as (_, ax):
        for record in rounds:
            rows, order = record["front"], _front_order(record["front"])
            ax.plot([rows[i]["flops"] for i in order], [rows[i]["val_accuracy"] for i in order], "o-", ms=3,
                    label=f"round {record['round']}")


def _round_lines(payload: dict) -> list[str]:
    """Round 0's probes, then one row per round: what taught its predictor and how well it ranked unseen cells."""
    probes = payload["probes"]
    lines = ["## Rounds", ""]
    if payload.get("transfer_prior", True):
        lines.append(f"Round 0 trained {len(probes)} probe cells standalone on {payload['dataset']} (spread over the "
                     "prior's ranking and the FLOPs range) and adapted the predictor to them." if probes else
                     "Round 0 trained no probe cell (`--probe-cells 0`): the first round's predictor is the prior.")
    else:
        lines.append(f"Space {payload['space']} has no accuracy table, so no transfer prior: the predictor is trained "
                     f"from this run's own measurements only. Round 0 trained {len(probes)} probe cells standalone on "
                     f"{payload['dataset']} (spread over the FLOPs range) to train it"
                     + ("." if len(probes) >= 2 else "; with fewer than two, accuracy is not guided."))
    lines += ["", "Held-out τ: the Kendall τ of the predictor the round generated with against the standalone "
                  "figures of that round's finalists, which it had not seen (the zero-shot prior's τ on the same "
                  "cells beside it). That predictor is kept as `predictor.pt` in the round's directory "
                  "(`gennas predictor predict predictor.pt --cells FILE`).", "",
              "| round | guided | subnets measured | held-out τ accuracy (zero-shot) | held-out τ PGD | cells |",
              "|---|---|---|---|---|---|"]
    for r in payload["rounds"]:
        acc, pgd = r["held_out"]["accuracy"], r["held_out"]["pgd_accuracy"]
        lines.append(f"| {r['round']} | {', '.join(r['guided_objectives'])} | {r['measured_subnets']} | "
                     f"{acc['kendall_tau']:.2f} ({acc['zero_shot_kendall_tau']:.2f}) | {pgd['kendall_tau']:.2f} | "
                     f"{acc['cells']} |")
    return lines + ["", "![rounds](rounds.png)", ""]


def write_report(out: Path, payload: dict, rows: list[dict]) -> None:
    chosen = payload["example_prune"]["chosen"]
    plot_subnets(out / "pareto.png", rows, chosen["arch"], f"supernet subnets on {payload['dataset']}")
    plot_rounds(out / "rounds.png", payload["rounds"], f"measured front per round on {payload['dataset']}")
    front = set(pareto_indices(minimisation_matrix(rows, FRONT)).tolist())
    sn, gen = payload["supernet"], payload["generation"]
    lines = [f"# gennas run on {payload['dataset']}", "", provenance_markdown(payload["provenance"]),
             f"Network skeleton: {payload['skeleton']}; FLOPs, params and memory are counted on it."
             + "".join(f" Data: {note}." for note in payload["data_notes"]), "",
             f"Generated cells guided for {', '.join(gen['guided_objectives'])}; "
             + " ".join(n.rstrip('.') + "." for n in gen["notes"])
             + "".join(f" **{o} is not guided** (no data to predict it): it is measured on every subnet only."
                       for o in gen["objectives"] if o not in gen["guided_objectives"]), "",
             *_supernet_lines(sn, gen, len(rows)),
             "## Example prune", "",
             f"Thresholds {payload['example_prune']['thresholds']}, maximise validation accuracy → "
             f"`{chosen['arch']}`: test accuracy {chosen['accuracy']:.2f} %, PGD {chosen['pgd_accuracy']:.2f} %, "
             f"FLOPs {chosen['flops']:.3f} M, memory {chosen['memory_bytes'] / 1e6:.3f} MB "
             f"(computed on the exported model). Files: `{payload['example_prune']['files']['model']}`.", "",
             "Prune again with your own thresholds: `gennas prune RUN_DIR --max-flops F --max-memory-mb M "
             "--min-robustness R --maximize accuracy --json` (add `--verify` to retrain the choice standalone and "
             "check every threshold on that model).", "",
             *(_verification_lines(rows, sn.get("calibration")) if sn else []), "", *_round_lines(payload), *_time_lines(payload["plan"]),
             "![subnets](pareto.png)", "", "## Measured subnets", "",
             "| arch | why measured | FLOPs M | params M | memory MB | latency ms (± IQR) | val acc % | val PGD % | "
             "standalone val acc / PGD % | standalone test acc / PGD % | front |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for i in sorted(range(len(rows)), key=lambda i: rows[i]["flops"]):
        r = rows[i]
        lines.append(f"| {code_cell(r['arch'])} | {r['selected_because']} | {r['flops']:.3f} | {r['params']:.4f} | "
                     f"{r['memory_bytes'] / 1e6:.3f} | {r['latency_ms']:.2f} ± {r['latency_spread_ms']:.2f} | "
                     f"{r['val_accuracy']:.2f} | "
                     f"{r['val_pgd_accuracy']:.2f} | "
                     + (f"{r['standalone_val_accuracy']:.2f} / {r['standalone_val_pgd_accuracy']:.2f} | "
                        f"{r['standalone_accuracy']:.2f} / {r['standalone_pgd_accuracy']:.2f}"
                        if is_verified(r) else " | ") + f" | {'yes' if i in front else ''} |")
    write_text(out / "report.md", "\n".join(lines) + "\n")


def _supernet_lines(sn: dict | None, gen: dict, trained: int) -> list[str]:
    """What the cells were read on: the supernet (its size, how subnets were measured), or standalone training."""
    if sn is None:
        return [f"No supernet: the run trained {trained} generated cells standalone from scratch with its recipe, "
                "front by front of the predicted objectives and spread in FLOPs (`--supernet never`, or "
                "`--budget-minutes` found this worth more than a supernet: see Time). Every figure below is a "
                "standalone training's; `gennas prune` chooses among and exports these trainings.", ""]
    return [f"Supernet from {len(gen['chosen'])} cells: {sn['blocks']} blocks, {sn['configurations']} on/off "
            f"configurations, {sn['reachable_subnets']} reachable (well-formed) subnets, {sn['measured_subnets']} "
            "measured. Each subnet's BN statistics are recalibrated before measurement"
            + (f", then it is fine-tuned {sn['finetune_epochs']} epoch(s) on its own from the shared weights (what "
               "prune exports is that network)" if sn.get("finetune_epochs") else "")
            + "; accuracy and PGD are measured on the validation split (what every choice rests on); test figures "
            "are read only of the exported model and of the cells trained standalone. Configurations that compute "
            "the same function are measured once, as the cheapest of them; the others are listed in "
            "`subnets.csv`'s `equivalent` column.", ""]


def _time_lines(plan: dict) -> list[str]:
    """What the run took, stage by stage, beside the ``--budget-minutes`` plan when there was one."""
    took = plan["seconds_this_call"]
    lines = ["## Time", ""]
    budget = plan.get("budget")
    if budget:
        chosen = ", ".join(f"`--{k.replace('_', '-')} {v}`" for k, v in budget["chosen"].items())
        mode = f" {'without' if budget.get('mode') == 'direct' else 'with'} a supernet" + \
            (f" ({budget['why']})" if budget.get("why") else "")
        lines += [f"`--budget-minutes {budget['minutes']:g}` planned {chosen or 'nothing (all given)'}{mode} from a "
                  f"timing probe on this machine, estimating {budget['estimate']['total'] + budget['spent_seconds']:.0f}"
                  " s in all.", ""]
    wall = plan.get("wall_seconds_this_call")
    lines += [(f"This call took {wall:.0f} s" if wall is not None else "This call") + " (stages: "
              + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in took.items()) + ").", ""]
    return lines


def _verification_lines(rows: list[dict], calibration: dict | None) -> list[str]:
    """The finalists retrained standalone, beside the supernet's readings of them, and the calibration they give."""
    verified = [r for r in rows if is_verified(r)]
    if not verified:
        return ["No subnet was retrained standalone (`--finalists 0`): every figure is the supernet's reading."]
    gap = {k: float(np.mean([r[f"standalone_{k}"] - r[k] for r in verified])) for k in ("val_accuracy", "val_pgd_accuracy")}
    return ["## Verified finalists", "",
            f"{len(verified)} subnets along the front were retrained standalone from scratch with the run's recipe; "
            "`gennas prune` chooses on these figures where they exist and exports that trained model. On them the "
            f"standalone figures exceed the supernet's by {gap['val_accuracy']:+.2f} points of validation accuracy and "
            f"{gap['val_pgd_accuracy']:+.2f} points of validation PGD accuracy on average."
            + (" `gennas prune --verify` judges unverified subnets on their readings calibrated by these pairs "
               f"(validation accuracy: {Calibration(**calibration['val_accuracy']).describe()}; validation PGD: "
               f"{Calibration(**calibration['val_pgd_accuracy']).describe()})." if calibration else ""), "",
            "| arch | FLOPs M | supernet val acc / PGD % | standalone val acc / PGD % | standalone test acc / PGD % |",
            "|---|---|---|---|---|",
            *(f"| {code_cell(r['arch'])} | {r['flops']:.3f} | {r['val_accuracy']:.2f} / {r['val_pgd_accuracy']:.2f} | "
              f"{r['standalone_val_accuracy']:.2f} / {r['standalone_val_pgd_accuracy']:.2f} | "
              f"{r['standalone_accuracy']:.2f} / {r['standalone_pgd_accuracy']:.2f} |" for r in verified)]
