"""``gennas run --budget-minutes M``: choose how much work a run does so that it ends in about M minutes.

A run's time is a sum of counts times unit costs: ``probe_cells`` and ``finalists``
standalone trainings of ``epochs`` epochs each, ``epochs`` supernet epochs, ``max_subnets``
subnet measurements (each after its fine-tune), the predictor fits that adapt the prior
(:func:`predictor_fits`) and one guided generation of ``candidates`` cells per round. The
unit costs are timed on this machine before any work starts
(:func:`gennas.supernet.plan.measure_unit_costs` on a supernet of cells spread over the
cost range, two short predictor fits and a short generation), so the plan fits the data,
the skeleton and the hardware the run actually has.

The settings the user left free move together along one scale ``λ``: at 0 each takes its
smallest value that still delivers a verified front (epochs enough for
:data:`MIN_TRAINING_STEPS` optimiser steps, no probes, 16 candidates and four generated cells
kept, four subnets measured, three finalists), at 1 the defaults, above 1 more of
everything up to a cap. The planner takes the largest ``λ`` whose estimate fits the
budget, and refuses a budget below the smallest plan with an error that says what that
plan needs. Probes reach their default early on the scale: a predictor that has seen the
data matters more than the last epochs.

With ``--supernet auto`` the planner also plans the same minutes without a supernet (rounds
that train their generated cells standalone, :mod:`gennas.supernet.direct`) and takes that
plan when it verifies more cells than the supernet plan's verified cells plus half its
measured subnets (:func:`choose_mode`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from gennas.errors import GennasError
from gennas.io import read_json_checked
from gennas.metrics.task import task_name
from gennas.objectives import parse_objectives
from gennas.supernet.adapt import CV_FOLDS, HEAD_STEPS, MIN_CELLS_TO_CHOOSE, OWN_PREDICTOR
from gennas.supernet.family import run_family
from gennas.supernet.plan import UnitCosts, measure_unit_costs, minutes_text
from gennas.supernet.run_settings import RunSettings

#: The share of the budget the plan fills: estimates err and the report, plots and export come on top.
TARGET_FRACTION = 0.9


@dataclass(frozen=True)
class Knob:
    """One setting the budget decides: its smallest useful value, its default and its cap.

    ``reach`` is the point of the scale where the default is reached (below 1: early).
    """

    smallest: int
    default: int
    cap: int
    reach: float = 1.0

    def at(self, scale: float) -> int:
        if scale <= self.reach:
            value = self.smallest + (self.default - self.smallest) * scale / self.reach
        else:
            value = self.default * max(1.0, scale)
        return int(min(self.cap, round(value)))


#: The settings ``--budget-minutes`` plans, unless the user set them.
KNOBS = {"epochs": Knob(1, RunSettings.epochs, 200),
         "probe_cells": Knob(0, RunSettings.probe_cells, 32, reach=0.5),
         "n_cells": Knob(4, RunSettings.n_cells, 24),
         "candidates": Knob(16, RunSettings.candidates, 256),
         "max_subnets": Knob(4, RunSettings.max_subnets, 200),
         "finalists": Knob(3, RunSettings.finalists, 10)}
#: What a direct round (no supernet) plans: the generated cells it trains standalone are its ``finalists``.
DIRECT_KNOBS = {"epochs": KNOBS["epochs"], "probe_cells": KNOBS["probe_cells"], "candidates": KNOBS["candidates"],
                "finalists": Knob(3, 12, 64)}
#: What one subnet read off a supernet counts for against a standalone training of the cell, when
#: :func:`choose_mode` weighs the two plans: a shared-weight reading ranks cells worse than training them.
READING_WORTH = 0.5
#: The fewest optimiser steps a training gets under a budget. Epochs are a poor unit on small data (an
#: epoch of a few hundred images is a handful of steps): a few dozen steps leave cells far from what the
#: recipe reaches, and every verified figure of the run would be read on such half-trained cells.
MIN_TRAINING_STEPS = 300
#: The largest scale tried: beyond it every knob is at its cap or the budget is generous anyway.
MAX_SCALE = 50.0


def estimate_seconds(settings: RunSettings, costs: UnitCosts, candidate_seconds: float,
                     mode: str = "supernet") -> dict[str, float]:
    """Seconds each stage of a run with ``settings`` should take at ``costs``.

    Args:
        settings: the run's settings (epochs, probes, rounds, candidates, subnets, finalists).
        costs: unit costs timed on this machine.
        candidate_seconds: guided generation's seconds per generated cell.
        mode: ``supernet``, or ``direct`` (rounds without a supernet: no training or measurement stage,
            their ``finalists`` are the generated cells trained standalone).

    Returns:
        Seconds per stage (probes, adaptation, generation, training, measurement, verification) and ``total``.
    """
    rounds, epochs = settings.rounds, settings.epochs
    stages = {"probes": settings.probe_cells * costs.standalone_seconds(epochs),
              "adaptation": predictor_fits(settings, mode) * costs.predictor_fit_seconds,
              "generation": rounds * settings.candidates * candidate_seconds}
    if mode == "supernet":
        subnets = measured_subnets(settings)
        stages.update(training=rounds * costs.training_seconds(epochs),
                      measurement=rounds * (subnets + 1) * costs.measurement_seconds(settings.measurement_finetune))
    stages["verification"] = rounds * settings.finalists * costs.standalone_seconds(epochs)
    return {**stages, "total": sum(stages.values())}


def predictor_fits(settings: RunSettings, mode: str = "supernet") -> int:
    """Fits of the guiding predictor a run makes before its rounds generate (:func:`gennas.supernet.adapt.adapt_predictor`).

    Each round adapts on everything measured so far: the probes, then each round's measured
    subnets (a direct round's trained cells). Accuracy takes one fit, or, from
    ``MIN_CELLS_TO_CHOOSE`` cells on, two per cross-validation fold first (mix or own head);
    robustness takes one. Under two cells a metric is not fitted. A space without a prior
    (darts) trains one predictor of every metric a round instead.
    """
    metrics = {o.metric for o in parse_objectives(settings.objectives)} & {"accuracy", "pgd_accuracy"}
    per_round = measured_subnets(settings) if mode == "supernet" else settings.finalists
    fits = 0
    for round_index in range(settings.rounds):
        cells = settings.probe_cells + round_index * per_round
        if cells < 2 or not metrics:
            continue
        if not run_family(settings.space).has_prior:
            fits += 1
            continue
        if "accuracy" in metrics:
            fits += 2 * CV_FOLDS + 1 if cells >= MIN_CELLS_TO_CHOOSE else 1
        fits += "pgd_accuracy" in metrics
    return fits


def measured_subnets(settings: RunSettings) -> int:
    """Subnets a round measures: ``max_subnets``, but never fewer than its generated cells plus the two
    cost extremes (:func:`gennas.supernet.measure.choose_subnets` always measures those)."""
    return max(settings.max_subnets, settings.n_cells + 2, settings.finalists)


@dataclass(frozen=True)
class BudgetPlan:
    """What ``--budget-minutes`` chose, and the estimate it rests on (kept in ``results.json``)."""

    minutes: float
    chosen: dict[str, int]
    scale: float
    estimate: dict[str, float]
    spent_seconds: float  # before planning: data, prior, timing probe
    costs: UnitCosts
    candidate_seconds: float  # guided generation, per generated cell
    mode: str = "supernet"  # or "direct": rounds without a supernet
    why: str = ""  # how choose_mode weighed the two plans (empty when the mode was given)

    def describe(self) -> str:
        chosen = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.chosen.items())
        stages = ", ".join(f"{k} {minutes_text(v)}" for k, v in self.estimate.items() if k != "total")
        mode = "without a supernet (the generated cells trained standalone)" if self.mode == "direct" \
            else "with a supernet"
        return (f"budget {self.minutes:g} min: planned {chosen or 'nothing (every planned setting was given)'} "
                f"{mode}{' (' + self.why + ')' if self.why else ''}; "
                f"estimate {minutes_text(self.estimate['total'] + self.spent_seconds)} in all ({stages}, "
                f"{minutes_text(self.spent_seconds)} already spent loading and timing)")

    def to_dict(self) -> dict:
        return {"minutes": self.minutes, "chosen": self.chosen, "scale": self.scale, "estimate": self.estimate,
                "spent_seconds": self.spent_seconds, "candidate_seconds": self.candidate_seconds,
                "unit_costs": self.costs.__dict__, "mode": self.mode, "why": self.why}


def plan_budget(minutes: float, settings: RunSettings, free: set[str], costs: UnitCosts,
                candidate_seconds: float, spent_seconds: float, mode: str = "supernet") -> tuple[RunSettings, BudgetPlan]:
    """The settings that fill ``minutes`` (the ``free`` ones chosen, the rest as given).

    Args:
        minutes: the budget, wall clock, for the whole run.
        settings: the run's settings; those in ``free`` are replaced.
        free: names of :data:`KNOBS` the user did not set.
        costs: unit costs timed on this machine.
        candidate_seconds: guided generation's seconds per generated cell.
        spent_seconds: time the run has used before planning.
        mode: ``supernet`` (:data:`KNOBS`) or ``direct`` (:data:`DIRECT_KNOBS`; the other free settings
            keep their defaults, a direct round does not use them).

    Returns:
        The planned settings and the plan.

    Raises:
        GennasError: when even the smallest plan does not fit, naming what it needs.
    """
    available = minutes * 60 - spent_seconds
    table = KNOBS if mode == "supernet" else DIRECT_KNOBS
    free = free & set(table)
    knobs = {**table, "epochs": replace(table["epochs"], smallest=min(
        table["epochs"].default, math.ceil(MIN_TRAINING_STEPS / costs.steps_per_epoch)))}

    def at(scale: float) -> RunSettings:
        values = {name: knobs[name].at(scale) for name in free}
        planned = replace(settings, **values)
        if mode == "direct":  # the cells trained are chosen among the candidates
            if "candidates" in free:
                return replace(planned, candidates=max(planned.candidates, planned.finalists, planned.n_cells))
            return replace(planned, finalists=min(planned.finalists, planned.candidates)) if "finalists" in free \
                else planned
        # the supernet's cells are chosen among the candidates
        return replace(planned, n_cells=min(planned.n_cells, planned.candidates)) if "n_cells" in free else \
            replace(planned, candidates=max(planned.candidates, planned.n_cells))

    def total(scale: float) -> float:
        return estimate_seconds(at(scale), costs, candidate_seconds, mode)["total"]

    smallest = total(0.0)
    if smallest > available:
        need = math.ceil((smallest + spent_seconds) / 60)
        given = sorted(set(table) - free)
        raise GennasError(
            f"--budget-minutes {minutes:g} is below the smallest run gennas can plan for this data on this machine: "
            f"about {need} min ({_smallest_text(at(0.0), free)}"
            + (f", with {', '.join('--' + g.replace('_', '-') for g in given)} as given" if given else "")
            + f"; one supernet epoch takes {minutes_text(costs.training_seconds(1))} here). Pass --budget-minutes "
              f"{need} or more, or fewer/smaller images, or a smaller --channels")
    low, high = 0.0, MAX_SCALE
    if total(high) <= available * TARGET_FRACTION:
        low = high
    for _ in range(40):  # bisection on a monotone, stepwise function
        if high - low < 1e-3:
            break
        middle = (low + high) / 2
        low, high = (middle, high) if total(middle) <= available * TARGET_FRACTION else (low, middle)
    planned = at(low)
    return planned, BudgetPlan(minutes, {name: getattr(planned, name) for name in sorted(free)}, low,
                               estimate_seconds(planned, costs, candidate_seconds, mode), spent_seconds, costs,
                               candidate_seconds, mode)


def choose_mode(minutes: float, settings: RunSettings, free: set[str], costs: UnitCosts, candidate_seconds: float,
                spent_seconds: float) -> tuple[RunSettings, BudgetPlan]:
    """The better of the supernet plan and the direct plan for ``minutes`` (``--supernet auto``).

    The direct plan wins when the cells it trains standalone outnumber the supernet plan's
    verified finalists plus :data:`READING_WORTH` of each subnet it measures beyond them: the
    supernet pays where one training buys many readings, and not where its training and
    measurement cost about as much as training the cells themselves (small data). A plan
    that does not fit the budget loses; when neither fits, the supernet plan's error (which
    names the smallest budget) is raised.

    Args, Returns, Raises: as for :func:`plan_budget`.
    """
    try:
        direct = plan_budget(minutes, settings, free, costs, candidate_seconds, spent_seconds, "direct")
    except GennasError:
        return plan_budget(minutes, settings, free, costs, candidate_seconds, spent_seconds, "supernet")
    try:
        planned, plan = plan_budget(minutes, settings, free, costs, candidate_seconds, spent_seconds, "supernet")
    except GennasError:
        return direct[0], replace(direct[1], why="the smallest supernet plan does not fit the budget")
    subnets, verified, trained = measured_subnets(planned), planned.finalists, direct[0].finalists
    worth = verified + READING_WORTH * max(subnets - verified, 0)
    weighed = (f"{trained} cell(s) trained directly against {verified} verified + {READING_WORTH:g} x "
               f"{max(subnets - verified, 0)} more subnet reading(s)")
    if trained > worth:
        return direct[0], replace(direct[1], why=weighed)
    return planned, replace(plan, why=weighed)


def settle_budget(saved: Path, settings: RunSettings, ctx, prior, started: float) -> tuple[RunSettings, dict | None]:
    """The settings a run works with under ``--budget-minutes``, and the plan behind them.

    A fresh run is timed and planned here; a resumed one keeps the plan in its ``run.json``
    (its settings were adopted by :func:`gennas.supernet.run_settings.adopt_planned`).

    Args:
        saved: the run's ``run.json``.
        settings: the settings given (the planned ones at their defaults until planned).
        ctx: a :class:`gennas.supernet.rounds.RunContext` for the timing probe.
        prior: the zero-shot prior.
        started: ``time.perf_counter()`` when the run started.

    Returns:
        (settings, the plan as a dict, or None without a budget).
    """
    if settings.budget_minutes is None:
        return settings, None
    if saved.exists():
        budget = read_json_checked(saved, "run settings", "delete or move the run directory").get("budget")
        if budget:
            ctx.say(f"resuming the plan for --budget-minutes {settings.budget_minutes:g}: "
                    + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in budget["chosen"].items()))
            return settings, budget
    ctx.say(f"budget: timing this machine on {ctx.splits.name} to plan {settings.budget_minutes:g} minutes")
    costs, per_candidate = time_unit_costs(ctx, prior)
    args = (settings.budget_minutes, settings, set(settings.planned), costs, per_candidate,
            time.perf_counter() - started)
    if settings.supernet == "auto":
        planned, plan = choose_mode(*args)
    else:
        planned, plan = plan_budget(*args, mode="direct" if settings.supernet == "never" else "supernet")
    ctx.say(plan.describe())
    return planned, plan.to_dict()


def _smallest_text(settings: RunSettings, free: set[str]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {getattr(settings, name)}" for name in sorted(free)) \
        or "the settings given"


def time_unit_costs(ctx, prior) -> tuple[UnitCosts, float]:
    """Time this machine on the run's data before any work: a supernet step, a subnet, a generation.

    The timing supernet is merged from ``n_cells`` cells spread over the prior's ranking
    and the FLOPs range (the cells round 0 would probe first); a subnet's measurement is
    timed on the cheapest and the dearest of them and costed, by the line between the two,
    at the FLOPs of an average cell of the space (the subnets a round measures spread over
    the whole cost range). Nothing the run computes afterwards changes:
    the probe's RNG is forked and its models are thrown away.

    Args:
        ctx: the run's :class:`gennas.supernet.rounds.RunContext`.
        prior: the zero-shot prior (guides the timed generation).

    Returns:
        (unit costs, seconds of guided generation per generated cell).
    """
    from gennas.supernet.adapt import choose_probes
    from gennas.train import resolve_device, with_normalization

    settings = ctx.settings
    device = resolve_device(ctx.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        cells = choose_probes(prior, task_name("accuracy", ctx.splits.name), ctx.network, max(settings.n_cells, 2),
                              settings.seed, ctx.family.probe_candidates(settings.seed))
        space = ctx.family.subnet_space(cells)
        supernet = ctx.family.supernet(space, ctx.network)
        model = with_normalization(supernet, ctx.splits).to(device)
        measurer = ctx.measurer(supernet, model)
        by_flops = sorted(cells, key=lambda c: ctx.family.flops(c, ctx.network))
        costs = measure_unit_costs(model, ctx.splits, ctx.recipe, measurer, [by_flops[0], by_flops[-1]],
                                   typical_flops=_mean_flops(ctx.network))
        costs = replace(costs, predictor_fit_seconds=_time_predictor_fit(ctx, prior))
        generation = _time_generation(ctx, prior)
    return costs, generation


def _mean_flops(network) -> float:
    """The mean FLOPs of the space's functions (its probe candidates) on the run's skeleton."""
    from gennas.supernet.family import family_of

    family = family_of(network)
    cells = family.probe_candidates(0)
    return float(sum(family.flops(c, network) for c in cells) / len(cells))


#: Steps of the shorter of the two timed predictor fits (the longer takes twice as many): a head's
#: steps are cheap and noisy to time, a whole predictor's dear.
TIMED_HEAD_STEPS, TIMED_FIT_STEPS = 25, 10


def _time_predictor_fit(ctx, prior) -> float:
    """Seconds of one fit of the guiding predictor, from two short fits.

    A fit costs a fixed part (copying the predictor, encoding its cells) plus its steps;
    two short fits, the second twice as long, separate the two, and a whole fit is the
    fixed part plus its steps. With a prior the fit timed is accuracy's own head on
    the frozen encoder (dearer than the embedding mix, so adaptations are not
    underestimated); without one, the run's own predictor. On a batch's worth of the probe
    candidates with made-up targets (a fit's cost does not depend on the values), on copies.
    """
    cells = ctx.family.probe_candidates(ctx.settings.seed)[:64]
    values = np.random.default_rng(0).normal(size=len(cells))
    if prior is not None:
        def fit(steps: int) -> None:
            prior.copy().fit_task(task_name("accuracy", ctx.splits.name), cells, values, own_head=True, steps=steps)
        whole, timed = HEAD_STEPS, TIMED_HEAD_STEPS
    else:
        from predictors.gnn_predictor import GNNConfig, GNNPredictor

        def fit(steps: int) -> None:
            config = GNNConfig(**{**OWN_PREDICTOR, "steps": steps}, seed=0)
            GNNPredictor(ctx.family.space, ["accuracy"], config).fit(cells, {"accuracy": values})
        whole, timed = OWN_PREDICTOR["steps"], TIMED_FIT_STEPS
    short, long = (_seconds_of(fit, steps) for steps in (timed, 2 * timed))
    per_step = max(long - short, 0.0) / timed
    return max(short - per_step * timed, 0.0) + per_step * whole


def _seconds_of(work, *args) -> float:
    tic = time.perf_counter()
    work(*args)
    return time.perf_counter() - tic


#: Candidates the timing probe generates; a round's generation is scaled from it.
TIMED_CANDIDATES = 8


def _time_generation(ctx, prior) -> float:
    from gennas.supernet.rounds import generate_cells

    timed = replace(ctx.settings, candidates=TIMED_CANDIDATES, n_cells=1)
    tic = time.perf_counter()
    generate_cells(replace(ctx, settings=timed), prior, [], ctx.settings.seed)
    return (time.perf_counter() - tic) / TIMED_CANDIDATES
