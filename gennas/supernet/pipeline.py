"""The main job: learn the user's dataset, generate Pareto-near cells, merge them into a supernet,
train it once, measure every subnet, verify the finalists standalone, prune to example thresholds,
export, report. `gennas run` calls :func:`run_pipeline`.

Round 0 trains a few probe cells on the user's data and adapts the NB201 prior to it (on a
space without a prior, ``--space darts``, it trains the predictor from them alone; the run's
space is :mod:`gennas.supernet.family`'s business); each
of ``rounds`` rounds then generates with the adapted predictor, trains one supernet from
the chosen cells, measures its subnets and retrains the finalists standalone; what a round
measured (the supernet's readings calibrated on the finalists) teaches the next round's
predictor. Everything lands in one run directory (``RUN_DIR``), which ``gennas prune``
reads later: ``run.json`` (settings), ``probes.json``, ``standalone/`` (every standalone
training), ``generated.json`` (the candidates and chosen cells), ``supernet.ckpt`` and
``supernet.pt``, ``subnets.csv`` (one row per measured subnet), ``pareto.png``,
``rounds.png``, ``report.md``, ``results.json``, ``export/`` (the example pruned model) and
``predictor.pt`` with ``guidance.json`` (the adapted predictor the round generated with);
earlier rounds keep theirs under ``round_<r>/``. See :mod:`gennas.supernet.rounds` for resume.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from gennas.data import load_dataset
from gennas.errors import GennasError
from gennas.io import content_digest, read_json_checked, write_json, write_json_checked
from gennas.metrics.lut import LatencyTable, latency_table_scope, table_in_use
from gennas.metrics.task import task_name
from gennas.nn.network import NetworkConfig
from gennas.objectives import parse_objectives
from gennas.provenance import provenance
from gennas.search.backends import SerialBackend
from gennas.supernet.adapt import adapt_predictor, fit_own_predictor, held_out_tau
from gennas.supernet.calibration import fitted_calibrations
from gennas.supernet.direct import REASON
from gennas.supernet.export import computed_metrics, deployable, export_subnet
from gennas.supernet.family import run_family
from gennas.supernet.prune import make_thresholds, select, verified_view
from gennas.supernet.report import write_report
from gennas.supernet.rounds import RoundOutcome, RunContext, check_stage_files, measure_probes, run_round
from gennas.supernet.budget import settle_budget
from gennas.supernet.run_settings import RunSettings, adopt_planned, check_resumable
from gennas.supernet.stages import timed
from gennas.supernet.train import rank_and_world
from gennas.tracking import RunLogger

__all__ = ["RunSettings", "check_resumable", "example_thresholds", "run_pipeline"]


def _network(settings: RunSettings, splits) -> NetworkConfig:
    return run_family(settings.space).network(splits, settings)


def example_thresholds(rows: list[dict]) -> dict[str, float]:
    """Thresholds a user might set: at most the median FLOPs and memory, at least the median robustness.

    Rounded outward (limits up, floors down) so that the median subnet itself always meets them.
    """
    def up(value: float, digits: int) -> float:
        return math.ceil(value * 10 ** digits) / 10 ** digits

    def down(value: float, digits: int) -> float:
        return math.floor(value * 10 ** digits) / 10 ** digits

    return {"max_flops": up(float(np.median([r["flops"] for r in rows])), 3),
            "max_memory_mb": up(float(np.median([r["memory_bytes"] for r in rows])) / 1e6, 4),
            "min_robustness": down(float(np.median([r["val_pgd_accuracy"] for r in rows])) / 100, 3)}


def _say(progress: bool, text: str) -> None:
    """A line for the person watching, between progress bars (stderr, so --json output stays clean)."""
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)


#: Each round keeps the predictor it generated with: the run's dataset learnt, for `gennas predictor
#: predict` and for measuring it on cells the run never trained.
GUIDING_PREDICTOR = "predictor.pt"


def guidance(prior, dataset: str, measured: list[dict], goals, space=None) -> tuple[object, list[str]]:
    """The predictor a round generates with: the prior adapted on everything measured so far, and why.

    Without a prior (``prior`` None: a space with no accuracy table, e.g. darts) the predictor is
    trained from the run's own measurements only (None until two cells are measured).
    """
    metrics = {g.metric for g in goals}
    if prior is None:
        return fit_own_predictor(space, dataset, measured, sorted(metrics & {"accuracy", "pgd_accuracy"}))
    predictor, notes = adapt_predictor(prior, dataset, measured, sorted(metrics & {"accuracy", "pgd_accuracy"}))
    if task_name("accuracy", dataset) in predictor.tasks and not any(n.startswith("accuracy") for n in notes):
        notes.insert(0, f"accuracy is guided by the NB201 transfer prior (pretrained on the CIFAR-10/100 tables) "
                        f"zero-shot on {dataset}: its ranking transfers, its scale does not (--probe-cells 0)")
    if "pgd_accuracy" in metrics and task_name("pgd_accuracy", dataset) not in predictor.tasks:
        notes.append("no PGD measurements for this dataset (--probe-cells 0 and no --robustness-data): robustness "
                     "is not guided during generation, only measured on every subnet")
    return predictor, notes


def _user_measurements(settings: RunSettings) -> list[dict]:
    """``--robustness-data``: PGD accuracies the user measured on this dataset, as standalone figures."""
    if settings.robustness_data is None:
        return []
    from predictors.measurements import read_measurements

    cells, values = read_measurements(settings.robustness_data, run_family(settings.space).space)
    return [{"arch": c.to_string(), "standalone_val_pgd_accuracy": float(v)} for c, v in zip(cells, values)]


def run_pipeline(settings: RunSettings, out: str | Path, *, device: str = "auto", data_root: str | None = None,
                 progress: bool = True, wandb: bool = False, backend=None) -> dict:
    """Run the main job into ``out`` (resuming what an earlier call left there).

    Args:
        settings: everything that decides the results (kept in ``run.json``).
        out: the run directory.
        device: auto (CUDA with AMP when present), cpu or cuda.
        data_root: where datasets that are read from disk live.
        progress: progress bars and plan lines on stderr.
        wandb: log to Weights & Biases (offline unless WANDB_MODE says otherwise).
        backend: where standalone trainings (probes, finalists) run: None in this process, or a
            :class:`gennas.search.backends.RayBackend`; the results are the same either way.

    Returns:
        Paths of the report, the subnet table and the exported model, the example pick and a summary text.
    """
    started = time.perf_counter()
    settings.check()
    space = run_family(settings.space).space.name
    with latency_table_scope(settings.latency_table, space):  # a bad table fails before any work
        return _run_pipeline(settings, Path(out), started, device=device, data_root=data_root, progress=progress,
                             wandb=wandb, backend=backend)


def _run_pipeline(settings: RunSettings, out: Path, started: float, *, device: str, data_root: str | None,
                  progress: bool, wandb: bool, backend) -> dict:
    """:func:`run_pipeline`'s work, with the run's latency table (if any) answering ``latency``."""
    rank, world = rank_and_world()  # under torchrun: rank 0 generates and measures, every rank trains
    _check_launch(settings, world)
    say = functools.partial(_say, progress and rank == 0)
    saved = out / "run.json"
    settings = adopt_planned(saved, settings)
    check_resumable(saved, settings)
    goals = parse_objectives(settings.objectives)  # bad input fails before anything is written
    splits, network = _data_and_network(settings, data_root, say)
    table = _check_latency_table(saved, network)
    context = functools.partial(RunContext, splits=splits, network=network, out=out, device=device,
                                progress=progress, say=say, rank=rank, world=world, data_root=data_root,
                                backend=backend or SerialBackend())
    family = run_family(settings.space)
    prior = family.prior(splits.name)
    if not family.has_prior:
        say(f"predictor: space {family.name} has no accuracy table, so no transfer prior: the predictor is trained "
            "from this run's own measured probes only")
    settings, budget = settle_budget(saved, settings, context(settings, logger=RunLogger(False)), prior, started)
    if rank == 0:
        write_json_checked(saved, {"settings": asdict(settings), "budget": budget, "provenance": provenance(),
                                   "latency_table_digest": table and table.digest})
    logger = RunLogger(wandb and rank == 0, name=out.name, directory=out, config=asdict(settings))
    direct = budget["mode"] == "direct" if budget and "mode" in budget else settings.supernet == "never"
    if direct:
        say("no supernet: each round trains its generated cells standalone (--supernet "
            + (f"{settings.supernet}, planned for the budget)" if settings.supernet == "auto" else "never)"))
    ctx = context(settings, logger=logger, direct=direct, deadline=None if settings.budget_minutes is None else
                  time.monotonic() - (time.perf_counter() - started) + settings.budget_minutes * 60)
    check_stage_files(ctx)
    seconds: dict[str, float] = {}
    try:
        with timed(seconds, "probes"):
            measured = (measure_probes(ctx, prior) if rank == 0 else []) + _user_measurements(settings)
        rounds, final = _run_rounds(ctx, prior, measured, goals)
        if final is None:
            return {"rank": rank, "out": str(out), "text": f"rank {rank}: training done"}
        with timed(seconds, "export"):
            thresholds, metrics, paths = _example_export(ctx, final)
    finally:
        logger.finish()
    payload = _results(settings, splits, network, final, rounds, measured, thresholds, metrics, paths, seconds,
                       budget)
    payload["plan"]["wall_seconds_this_call"] = time.perf_counter() - started
    write_json(out / "results.json", payload)
    write_report(out, payload, final.rows)
    return {"out": str(out), "report": str(out / "report.md"), "subnets": str(out / "subnets.csv"),
            "model": paths["model"], "chosen": metrics, "text": _summary_text(out, payload, final, thresholds, metrics,
                                                                              paths, network)}


def _run_rounds(ctx: RunContext, prior, measured: list[dict], goals) -> tuple[list[dict], RoundOutcome | None]:
    """Every round, each guided by the prior adapted on all measured so far (``measured`` grows in place).

    Returns:
        (each round's record, the last round's outcome); the outcome is None on the other
        ranks of a torchrun launch once training is done.
    """
    rounds: list[dict] = []
    outcome = None
    for index in range(1, ctx.settings.rounds + 1):
        predictor, notes = _round_guidance(ctx, index, prior, measured, goals) if ctx.rank == 0 else (prior, [])
        outcome = run_round(ctx, index, predictor, notes)
        if outcome is None:
            return rounds, None
        rounds.append(_round_record(outcome, predictor, prior, ctx.splits.name))
        measured += outcome.rows
    return rounds, outcome


#: Beside a round's predictor: what it was adapted from (a digest) and the notes saying how.
GUIDANCE_RECORD = "guidance.json"


def _round_guidance(ctx: RunContext, index: int, prior, measured: list[dict], goals) -> tuple[object, list[str]]:
    """:func:`guidance` for round ``index``, read back when the round kept it for the same inputs.

    Adapting the prior (its cross-validated choice of how accuracy transfers) is the one
    stage of a round without an output file of its own: a resumed run would redo it. The
    round's ``predictor.pt`` is reused when ``guidance.json`` beside it records the same
    prior, dataset, goals and measurements; anything else adapts again.
    """
    from predictors.checkpoint import load_predictor, save_predictor  # importing the pipeline needs no predictor

    directory = ctx.round_dir(index)
    weights, record = directory / GUIDING_PREDICTOR, directory / GUIDANCE_RECORD
    members = [m.state_dict() for m in prior.members] if prior is not None else None
    key = content_digest({"prior": members, "normalization": getattr(prior, "normalization", None),
                          "dataset": ctx.splits.name, "space": ctx.family.space.name,
                          "goals": sorted(g.metric for g in goals), "measured": [_comparable(r) for r in measured]})
    if weights.is_file() and record.is_file():
        try:
            saved = read_json_checked(record, "round guidance")
            if saved.get("key") == key:
                predictor = load_predictor(weights)  # before saying so: a damaged file adapts again
                ctx.say(f"round {index}: guidance read back from {weights} (adapted on the same measurements)")
                return predictor, list(saved["notes"])
        except GennasError:
            pass  # unreadable: adapt again and overwrite it
    predictor, notes = guidance(prior, ctx.splits.name, measured, goals, ctx.family.space)
    if predictor is not None:
        save_predictor(predictor, weights)
        write_json_checked(record, {"key": key, "notes": notes})
    return predictor, notes


def _comparable(row: dict) -> dict:
    """A measured row as a resumed run reads it back from its tables: numbers as floats, no missing figures.

    A table lists every column for every row (NaN where a figure is missing); a row measured
    in this process holds only the figures it has.
    """
    def number(v) -> bool:
        return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)

    return {k: float(v) if number(v) else v for k, v in row.items()
            if v is not None and not (number(v) and math.isnan(float(v)))}


def _check_launch(settings: RunSettings, world: int) -> None:
    """What a torchrun launch (``world`` > 1 processes) cannot do."""
    if world > 1 and settings.supernet == "never":
        raise GennasError("--supernet never trains no supernet: run it in one process (--backend ray spreads its "
                          "standalone trainings)")
    if world > 1 and settings.rounds > 1:
        raise GennasError("under torchrun gennas run trains one supernet: use --rounds 1")
    if world > 1 and settings.budget_minutes is not None:
        raise GennasError("--budget-minutes plans a run of one process; under torchrun set --epochs, --probe-cells, "
                          "--max-subnets and --finalists yourself")


def _check_latency_table(saved: Path, network: NetworkConfig) -> LatencyTable | None:
    """The run's latency table, checked against its skeleton and, on resume, against the table it started with."""
    table = table_in_use()
    if table is None:
        return None
    table.check_network(network)
    if saved.exists():
        started_with = read_json_checked(saved, "run settings").get("latency_table_digest")
        if started_with is not None and started_with != table.digest:
            raise GennasError(f"latency table {table.path} differs from the one this run started with (digest "
                              f"{started_with}, now {table.digest}); resume with that table, or use another --out")
    return table


def _data_and_network(settings: RunSettings, data_root: str | None, say) -> tuple:
    """The run's data and skeleton, and what the person watching should know of them."""
    splits = load_dataset(settings.dataset, data_root)
    network = _network(settings, splits)
    for note in splits.notes:
        say(f"data: {note}")
    say(f"network: {network.describe()} (FLOPs, params and memory are counted on it)")
    return splits, network


def _example_export(ctx: RunContext, final: RoundOutcome) -> tuple[dict, dict, dict]:
    """The example prune: the most accurate subnet under the median thresholds, exported and re-measured.

    Returns:
        (thresholds used, metrics computed on the exported model, exported files).
    """
    thresholds = example_thresholds(final.rows)
    try:
        pick = select(verified_view(final.rows), make_thresholds(thresholds), "accuracy")
    except GennasError:  # the medians come from different subnets: none may meet all three
        ctx.say(f"the example thresholds {thresholds} fit no measured subnet: the example exports the most "
                "accurate one instead")
        thresholds = {}
        pick = select(verified_view(final.rows), [], "accuracy")
    exported = deployable(final.model, pick, ctx.splits, ctx.out, ctx.settings.recalibration_images,
                          ctx.settings.measurement_finetune, ctx.robustness.seed, network=ctx.network)
    metrics = computed_metrics(exported, ctx.splits, ctx.robustness)
    paths = export_subnet(exported, ctx.out / "export", metrics,
                          {"dataset": ctx.splits.name, "thresholds": thresholds, "maximize": "accuracy",
                           "figures": pick["figures"]})
    return thresholds, metrics, paths


def _round_record(outcome: RoundOutcome, predictor, prior, dataset: str) -> dict:
    """One round for the report: what it generated and measured, and how well its predictor ranked the
    finalists it had not seen (their standalone figures), beside the zero-shot prior's ranking of them."""
    taus = {}
    # a round without a supernet also lists the cells trained before it, which taught its predictor
    unseen = outcome.rows if outcome.model is not None else [r for r in outcome.rows if r["selected_because"] == REASON]
    for metric, column in (("accuracy", "standalone_val_accuracy"), ("pgd_accuracy", "standalone_val_pgd_accuracy")):
        task = task_name(metric, dataset)
        tau, n = held_out_tau(predictor, task, unseen, column)
        zero_shot, _ = held_out_tau(prior, task, unseen, column)  # NaN where the prior lacks the task
        taus[metric] = {"kendall_tau": tau, "zero_shot_kendall_tau": zero_shot, "cells": n}
    verified = verified_view(outcome.rows)
    return {"round": outcome.index, "directory": str(outcome.directory), "chosen": outcome.generated["chosen"],
            "guided_objectives": outcome.generated["guided_objectives"], "notes": outcome.generated["notes"],
            "measured_subnets": len(outcome.rows), "held_out": taus, "seconds": outcome.seconds,
            "plan": outcome.plan.to_dict() if outcome.plan else None,
            "front": [{k: r[k] for k in ("arch", "flops", "val_accuracy", "val_pgd_accuracy", "figures")}
                      for r in verified]}


def _results(settings, splits, network, final: RoundOutcome, rounds, measured, thresholds, metrics, paths,
             seconds, budget: dict | None) -> dict:
    space = final.space
    family = run_family(settings.space)
    return {"provenance": provenance(), "settings": asdict(settings), "dataset": splits.name, "space": family.name,
            "transfer_prior": family.has_prior,
            "data_notes": list(splits.notes), "network": network.to_dict(), "skeleton": network.describe(),
            "generation": {k: v for k, v in final.generated.items() if k != "candidates"},
            "probes": [r for r in measured if r.get("selected_because") == "probe"],
            "rounds": rounds, "mode": "supernet" if final.model is not None else "direct",
            "supernet": None if final.model is None else
            {"blocks": len(space.blocks), "choices": [list(c) for c in space.choices],
             "configurations": space.configurations, "reachable_subnets": space.count(),
             "measured_subnets": len(final.rows), "history": final.history,
             "finetune_epochs": settings.measurement_finetune,
             "calibration": {k: asdict(c) for k, c in fitted_calibrations(final.rows).items()}},
            "plan": {"estimated": final.plan.to_dict() if final.plan else None, "budget": budget,
                     "seconds_this_call": {**seconds, **{f"round_{r['round']}_{k}": v for r in rounds
                                                         for k, v in r["seconds"].items()}}},
            "example_prune": {"thresholds": thresholds, "maximize": "accuracy", "chosen": metrics, "files": paths}}


def _summary_text(out: Path, payload: dict, final: RoundOutcome, thresholds, metrics, paths, network) -> str:
    rows, space = final.rows, final.space
    equivalent = sum(1 for r in rows if r["equivalent"])
    verified = sum(1 for r in verified_view(rows) if r["figures"] == "standalone")
    probes = len(payload["probes"])
    taught = "adapted the predictor" if payload["transfer_prior"] else \
        f"trained the predictor on them (space {payload['space']} has no transfer prior)"
    adapted = f"trained {probes} probe cells standalone, {taught}; " if probes else ""
    if final.model is None:
        work = (f"{adapted}generated {len(final.generated['candidates'])} cells and, without a supernet, trained "
                f"{len(rows)} of them along the predicted front standalone on {payload['dataset']}")
    else:
        work = (f"{adapted}generated {len(final.generated['candidates'])} cells, merged the "
                f"{len(final.generated['chosen'])} most Pareto-near into a supernet with {len(space.blocks)} blocks "
                f"({payload['supernet']['reachable_subnets']} reachable subnets); trained once, measured {len(rows)} "
                f"subnets on {payload['dataset']}"
                + (f" ({equivalent} of them stand for configurations computing the same function, listed in "
                   "subnets.csv's equivalent column)" if equivalent else "")
                + f"; {verified} finalist(s) verified by standalone training")
    return (work + (f" (round {final.index} of {len(payload['rounds'])})" if len(payload["rounds"]) > 1 else "") + ".\n"
            f"example prune {thresholds}: {metrics['arch']}\n"
            f"  val accuracy {metrics['val_accuracy']:.2f}%  test {metrics['accuracy']:.2f}%  "
            f"PGD {metrics['pgd_accuracy']:.2f}%  FLOPs {metrics['flops']:.3f}M  memory {metrics['memory_bytes'] / 1e6:.3f} MB\n"
            f"  costs on the {network.describe()} skeleton\n"
            f"report: {out / 'report.md'}\nexported model: {paths['model']}\n"
            f"prune again with other thresholds: gennas prune {out} --max-flops F --min-robustness R --json")
