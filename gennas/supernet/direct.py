"""A round without a supernet: generate with the adapted predictor, then train the generated cells
standalone, spread along the predicted front, and keep them as the round's subnets.

A supernet pays when reading a subnet off shared weights costs far less than training the
cell: then one training buys many readings. On small data it does not: a standalone
training of a few hundred images takes seconds, the supernet's training and measurement
cost several of them, and each reading ranks cells worse than the training it stands in
for. There the same minutes are better spent training generated cells directly.
``gennas run --supernet never`` asks for such rounds; under ``--budget-minutes`` with
``--supernet auto`` the planner chooses them when the direct plan verifies more than the
supernet plan is worth (:func:`gennas.supernet.budget.choose_mode`).

Every row of a direct round is verified: its readings *are* its standalone figures (test
FGSM and noise accuracy are not read), so ``gennas prune`` chooses on, and exports, the
standalone trainings themselves. ``direct.json`` holds what prune needs to rebuild the
data and the skeleton, the role ``supernet.pt`` plays for a supernet round.
"""

from __future__ import annotations

import math

from gennas.errors import GennasError
from gennas.io import FileFormat
from gennas.metrics.latency import read_latency
from gennas.supernet.family import run_family
from gennas.objectives import parse_objectives
from gennas.supernet.model import blocks_used
from gennas.supernet.standalone import STANDALONE_COLUMNS, choose_finalists, load_standalone
from gennas.supernet.table import read_subnet_table, write_subnet_table
from gennas.train import resolve_device

DIRECT_FILE = "direct.json"
FORMAT = "gennas-direct/1"
DIRECT = FileFormat(FORMAT, "direct round", json=True)
#: ``selected_because`` of a generated cell a direct round trained.
REASON = "generated, trained directly"


def run_direct_round(ctx, index: int, predictor, notes: list[str]):
    """Generate with ``predictor``, then train the most Pareto-near generated cells standalone.

    The cells are taken front by front of the predicted objectives, evenly spread in FLOPs
    within a front (:func:`gennas.supernet.standalone.choose_finalists`): ``finalists`` of
    them, and under ``--budget-minutes`` (last round) more while another training fits. The
    cells trained before (probes, earlier rounds) join the table: every one is a deployable,
    verified model.

    Args:
        ctx: the run's :class:`gennas.supernet.rounds.RunContext`.
        index: the round (1-based).
        predictor: the predictor the generation is guided by.
        notes: what the person watching should know of the guidance.

    Returns:
        The round's :class:`gennas.supernet.rounds.RoundOutcome` (no supernet: ``model`` and
        ``measurer`` are None, ``space`` is the run's family's subnet space of the trained cells).
    """
    from gennas.supernet.rounds import RoundOutcome, prune_meta, round_generation
    from gennas.supernet.stages import timed

    directory, seconds = ctx.round_dir(index), {}
    generated = round_generation(ctx, directory, index, predictor, notes, seconds)
    family = ctx.family
    candidates = [{**r, "flops": family.costs(family.parse(r["arch"]), ctx.network)["flops"]}
                  for r in generated["candidates"]]  # spread in FLOPs even when FLOPs is no objective
    front = parse_objectives(",".join(generated["guided_objectives"]))
    csv_path = directory / "subnets.csv"
    rows = read_subnet_table(csv_path) if csv_path.exists() else []
    rows += _trained_before(ctx, index, {r["arch"] for r in rows})
    DIRECT.save(directory / DIRECT_FILE, {"family": family.name, "network": ctx.network.to_dict(),
                                          "meta": prune_meta(ctx)})
    with timed(seconds, "verification"):
        planned = choose_finalists(candidates, ctx.settings.finalists, front)
        ctx.say(f"round {index}: no supernet: training {len(planned)} generated cell(s) along the predicted front "
                f"standalone ({ctx.settings.epochs} epochs each)"
                + (" and more while the budget lasts" if ctx.deadline is not None else ""))
        _train_into(ctx, [a for a in planned if a not in {r["arch"] for r in rows}], rows, csv_path)
        if ctx.deadline is not None and index == ctx.settings.rounds:
            _train_while_time_lasts(ctx, candidates, front, rows, csv_path)
    if not rows:
        raise GennasError("the direct round trained no cell: pass --finalists 1 or more")
    ctx.logger.table(f"subnets_round_{index}", rows)
    space = family.subnet_space([family.parse(r["arch"]) for r in rows])
    return RoundOutcome(index, directory, generated, space, None, None, rows, [], None, seconds)


def _trained_before(ctx, index: int, listed: set[str]) -> list[dict]:
    """The cells the run trained standalone before this round (round 0's probes, earlier direct rounds) and
    not ``listed`` yet: they are verified models too, so they join the round's table (``selected_because``
    says where they come from). A resumed round lists them already, and nothing is read again."""
    import json

    rows: dict[str, dict] = {}
    probes = ctx.out / "probes.json"
    for probe in json.loads(probes.read_text()) if probes.exists() else []:
        if probe["arch"] in listed:
            continue
        cell = ctx.family.parse(probe["arch"])
        rows[probe["arch"]] = {**direct_row(ctx, cell, {c: probe[c] for c in STANDALONE_COLUMNS}),
                               "selected_because": "probe"}
    for earlier in range(1, index):
        table = ctx.round_dir(earlier) / "subnets.csv"
        for row in read_subnet_table(table) if table.exists() else []:
            if row["arch"] not in rows and row["arch"] not in listed:
                rows[row["arch"]] = {**row, "selected_because": row["selected_because"] if row["selected_because"] ==
                                     "probe" else f"round {earlier}"}
    return list(rows.values())


def _train_into(ctx, archs: list[str], rows: list[dict], csv_path) -> None:
    """Train ``archs`` standalone (on the run's backend) and append their rows, saving the table."""
    if not archs:
        return
    cells = [ctx.family.parse(a) for a in archs]
    for cell, figures in zip(cells, ctx.standalone_figures(cells, "direct cells")):
        rows.append(direct_row(ctx, cell, figures))
    write_subnet_table(csv_path, rows)


def _train_while_time_lasts(ctx, candidates: list[dict], front, rows: list[dict], csv_path) -> None:
    """Keep training the next generated cell along the predicted front while one more training fits the budget.

    Whether a training fits is :meth:`gennas.supernet.rounds.RunContext.another_training_fits`.
    """
    extra, count = 0, len(rows)
    while ctx.standalone_seconds and count < len(candidates):
        count += 1
        trained = {r["arch"] for r in rows}
        fresh = [a for a in choose_finalists(candidates, count, front) if a not in trained]
        if not fresh:
            continue
        if not ctx.another_training_fits():
            break
        _train_into(ctx, fresh[:1], rows, csv_path)
        extra += 1
    if extra:
        ctx.say(f"budget: time was left, so {extra} more generated cell(s) were trained directly")


def direct_row(ctx, cell, figures: dict[str, float]) -> dict:
    """A ``subnets.csv`` row of ``cell`` trained standalone: its readings are its standalone figures.

    Latency is read on the trained model (batch 1, the run's device); test FGSM and noise
    accuracy are not read (NaN).
    """
    device = resolve_device(ctx.device)
    model = load_standalone(ctx.standalone_dir, cell, ctx.splits, ctx.network).model.to(device)
    net = ctx.network
    latency = read_latency(model, (net.in_channels, net.image_size, net.image_size), device)
    return {"arch": cell.to_string(), "selected_because": REASON, "equivalent": "", "blocks_on": blocks_used(cell),
            **ctx.family.costs(cell, net), "latency_ms": latency.median_ms, "latency_spread_ms": latency.spread_ms,
            "val_accuracy": figures["standalone_val_accuracy"], "val_pgd_accuracy": figures["standalone_val_pgd_accuracy"],
            "accuracy": figures["standalone_accuracy"], "pgd_accuracy": figures["standalone_pgd_accuracy"],
            "fgsm_accuracy": math.nan, "noise_accuracy": math.nan, **figures}


def load_direct(path) -> tuple[object, dict]:
    """The skeleton and the settings ``gennas prune`` needs of a direct round (its ``direct.json``)."""
    payload = DIRECT.load(path, f"rerun `gennas run --out {path.parent}` with its settings",
                          f"{path} is not a gennas direct round ({FORMAT}); delete or move it and rerun gennas run")
    try:
        return run_family(payload.get("family", "nb201")).network_from_dict(payload["network"]), payload["meta"]
    except (KeyError, TypeError) as exc:
        raise GennasError(f"{path} is inconsistent ({type(exc).__name__}: {exc}); delete or move it and rerun "
                          "gennas run") from None
