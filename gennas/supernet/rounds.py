"""The stages of one ``gennas run``: round 0's probes, then rounds of generate → supernet → measure → verify.

Each stage writes its output into the run directory and is read back when that output
exists (:class:`gennas.supernet.stages.Stage`, the one resume rule), so an interrupted
run resumes where it stopped: standalone trainings (probes and
finalists) under ``standalone/``, each round's ``generated.json``, ``supernet.ckpt``,
``supernet.pt`` and ``subnets.csv`` (the last round in the run directory itself, earlier
ones under ``round_<r>/``).
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from tqdm.auto import tqdm

from gennas.data import DatasetSplits
from gennas.search.backends import EvaluationBackend, SerialBackend
from gennas.errors import GennasError
from gennas.io import read_json_checked, write_json, write_json_checked
from gennas.metrics.task import task_name
from gennas.nn.network import NetworkConfig
from gennas.objectives import minimisation_matrix, parse_objectives
from gennas.seeds import derive_seed
from gennas.space.cell import Cell
from gennas.supernet.adapt import choose_probes
from gennas.supernet.family import SupernetFamily, run_family
from gennas.supernet.measure import SubnetMeasurer, choose_subnets, measure_all, remeasure_latency_outliers
from gennas.supernet.model import Supernet
from gennas.supernet.plan import RunPlan, plan_run
from gennas.supernet.prune import is_verified
from gennas.supernet.report import FRONT
from gennas.supernet.run_settings import RunSettings
from gennas.supernet.stages import Stage, timed
from gennas.supernet.standalone import (STANDALONE, choose_finalists, standalone_recipe, train_standalone,
                                        weights_path)
from gennas.supernet.store import load_supernet, save_supernet
from gennas.supernet.subnets import SubnetSpace
from gennas.supernet.table import read_subnet_table, write_subnet_table
from gennas.supernet.train import SupernetTrainConfig, rank_zero_first, train_supernet
from gennas.tracking import RunLogger
from gennas.train import RobustnessConfig, resolve_device, with_normalization
from gennas.train.trainer import CHECKPOINT

#: The prior a new dataset starts from: pretrained on the CIFAR-10 and CIFAR-100 tables.
PRIOR_FOR_NEW_DATASETS = "ImageNet16-120"


@dataclass
class RunContext:
    """What every stage of one run shares."""

    settings: RunSettings
    splits: DatasetSplits
    network: NetworkConfig
    out: Path
    device: str
    progress: bool
    say: Callable[[str], None]
    logger: RunLogger
    rank: int = 0
    world: int = 1
    data_root: str | None = None
    backend: EvaluationBackend = field(default_factory=SerialBackend)  # where standalone trainings run
    deadline: float | None = None  # time.monotonic() by which --budget-minutes wants the run done
    standalone_seconds: list[float] = field(default_factory=list)  # standalone trainings this call ran
    direct: bool = False  # rounds without a supernet (gennas.supernet.direct)

    @property
    def recipe(self) -> SupernetTrainConfig:
        return SupernetTrainConfig(**{"epochs": self.settings.epochs, "seed": self.settings.seed,
                                      "device": self.device, **self.settings.recipe})

    @property
    def family(self) -> SupernetFamily:
        """The run's search space, and what the main job needs of it."""
        return run_family(self.settings.space)

    @property
    def robustness(self) -> RobustnessConfig:
        return RobustnessConfig(seed=self.settings.seed)

    @property
    def standalone_dir(self) -> Path:
        return self.out / "standalone"

    def round_dir(self, index: int) -> Path:
        """The last round writes into the run directory (what ``gennas prune`` reads), earlier ones beside it."""
        return self.out if index == self.settings.rounds else self.out / f"round_{index}"

    def measurer(self, supernet: Supernet, model: torch.nn.Sequential) -> SubnetMeasurer:
        """How this run reads a subnet: BN recalibration, the run's fine-tune, its attack."""
        return SubnetMeasurer(supernet, model, self.splits, self.robustness, self.settings.recalibration_images,
                              self.settings.measurement_finetune, self.robustness.seed)

    def train_standalone(self, cell: Cell):
        """``cell`` trained standalone with the run's recipe (read back when the run trained it before)."""
        fresh = not weights_path(self.standalone_dir, cell).exists()
        tic = time.perf_counter()
        trained = train_standalone(cell, self.splits, self.network, standalone_recipe(self.recipe), self.robustness,
                                   self.standalone_dir)
        if fresh:
            self.standalone_seconds.append(time.perf_counter() - tic)
        return trained

    def another_training_fits(self, more_seconds: float = 0.0) -> bool:
        """Whether one more standalone training (plus ``more_seconds``) ends before the budget's deadline.

        A training is expected to take as long as the longest this call ran, with
        :data:`EXPORT_RESERVE_SECONDS` kept back for what follows; none ran (every one was
        read back) means no estimate, and the answer is no. Without a budget it is no too:
        only a budget's leftover time is spent on more trainings.
        """
        if self.deadline is None or not self.standalone_seconds:
            return False
        return time.monotonic() + max(self.standalone_seconds) + more_seconds + EXPORT_RESERVE_SECONDS \
            <= self.deadline

    def standalone_figures(self, cells: list[Cell], desc: str) -> list[dict[str, float]]:
        """The standalone figures of ``cells``: one after another with a progress bar, or spread over the
        backend's workers (``--backend ray``); each cell's training is seeded alone, so both give the same."""
        if isinstance(self.backend, SerialBackend):
            return [self.train_standalone(c).figures for c in tqdm(cells, desc=desc, unit="cell",
                                                                   disable=not self.progress)]
        self.say(f"{desc}: {len(cells)} standalone training(s) on the {type(self.backend).__name__}")
        train = functools.partial(_standalone_figures, splits=self.splits, network=self.network,
                                  recipe=standalone_recipe(self.recipe), robustness=self.robustness,
                                  directory=self.standalone_dir)
        return self.backend.map(train, cells)


def _standalone_figures(cell: Cell, **kwargs) -> dict[str, float]:
    """A backend worker's job: one standalone training (kept in the run directory), its figures returned."""
    return train_standalone(cell, **kwargs).figures


def zero_shot_prior(dataset: str):
    """The NB201 transfer prior with ``accuracy@dataset`` added zero-shot (the mean of the known datasets)."""
    from predictors.transfer import load_prior

    return load_prior(PRIOR_FOR_NEW_DATASETS).fit_task(task_name("accuracy", dataset), [], None)


#: Keys a round's ``generated.json`` must hold.
GENERATED_KEYS = ("objectives", "guided_objectives", "notes", "candidates", "chosen")


def check_stage_files(ctx: RunContext) -> None:
    """Read every stage file a resumed run would reuse before any work starts.

    A damaged or foreign file is an error naming it (with a step that rebuilds it) at
    once, not after minutes of probes or training, and never a silently wrong figure.
    """
    for path in sorted(ctx.standalone_dir.glob("*.pt")):
        STANDALONE.load(path, "rerun: the cell is trained again",
                        f"{path} is not a standalone training of gennas run; delete or move it, then rerun")
    for index in range(1, ctx.settings.rounds + 1):
        directory = ctx.round_dir(index)
        if (directory / "generated.json").exists():
            generated = read_json_checked(directory / "generated.json", "generated cells",
                                          "rerun: the cells are generated again")
            missing = [k for k in GENERATED_KEYS if k not in generated]
            if missing:
                raise GennasError(f"{directory / 'generated.json'} lacks {', '.join(missing)} (not written by this "
                                  "version of gennas run); delete or move it, then rerun: the cells are generated again")
        if (directory / "supernet.ckpt").exists():
            _trained_history(directory / "supernet.ckpt")
        if (directory / "supernet.pt").exists():
            load_supernet(directory / "supernet.pt")
        if (directory / "subnets.csv").exists():
            read_subnet_table(directory / "subnets.csv")


# ----------------------------------------------------------------------------- round 0
def measure_probes(ctx: RunContext, prior) -> list[dict]:
    """Round 0: train ``probe_cells`` informative cells standalone on the user's data.

    Returns:
        One row per probe: arch, exact costs and the standalone figures.
    """
    count = ctx.settings.probe_cells
    if count == 0:
        return []
    family = ctx.family
    cells = choose_probes(prior, task_name("accuracy", ctx.splits.name), ctx.network, count, ctx.settings.seed,
                          family.probe_candidates(ctx.settings.seed))
    spread = "the prior's ranking and the FLOPs range) to adapt the predictor" if prior is not None else \
        f"the FLOPs range; {family.name} has no transfer prior) to train the predictor from them alone"
    ctx.say(f"round 0: training {len(cells)} probe cells standalone on {ctx.splits.name} ({ctx.settings.epochs} "
            f"epochs each, spread over {spread}")
    rows = [{"arch": cell.to_string(), "selected_because": "probe", **family.costs(cell, ctx.network), **figures}
            for cell, figures in zip(cells, ctx.standalone_figures(cells, "round 0 probes"))]
    write_json(ctx.out / "probes.json", rows)
    return rows


# ----------------------------------------------------------------------------- a round
@dataclass
class RoundOutcome:
    """What one round produced; the last round's is what the run exports and reports."""

    index: int
    directory: Path
    generated: dict
    space: SubnetSpace  # or the run's family's subnet space (DartsSubnetSpace)
    model: torch.nn.Sequential | None  # None: a round without a supernet
    measurer: SubnetMeasurer | None
    rows: list[dict]
    history: list[dict]
    plan: RunPlan | None
    seconds: dict[str, float] = field(default_factory=dict)


def generate_cells(ctx: RunContext, predictor, notes: list[str], seed: int) -> dict:
    """Guided generation, then the ``n_cells`` most Pareto-near distinct cells (front by front)."""
    from diffusion.guidance import generate
    from diffusion.model import CellDiffusion

    settings, name, family = ctx.settings, ctx.splits.name, ctx.family
    goals = parse_objectives(settings.objectives)
    guided = [g for g in goals if family.guides(g.metric, predictor, ctx.network, name)]
    diffusion = CellDiffusion.load(family.generator_path())
    result = generate(diffusion, guided, [], settings.candidates, predictor, ctx.network, name, settings.guidance, seed)
    rows = [r for r in result["cells"] if family.parse(r["arch"]).is_connected()]
    if not rows:
        raise GennasError("the generator produced no connected cell; raise --candidates or change --seed")
    fronts = NonDominatedSorting().do(minimisation_matrix(rows, guided))
    order = [i for front in fronts for i in sorted(front, key=lambda i: rows[i]["arch"])]
    chosen = [rows[i]["arch"] for i in order[: settings.n_cells]]
    return {"objectives": [f"{g.metric}:{g.direction}" for g in goals],
            "guided_objectives": [f"{g.metric}:{g.direction}" for g in guided], "notes": notes,
            "candidates": rows, "chosen": chosen}


def run_round(ctx: RunContext, index: int, predictor, notes: list[str]) -> RoundOutcome | None:
    """Generate with ``predictor``, train one supernet, measure its subnets, verify the finalists
    (or, in a run without a supernet, train the generated cells: :mod:`gennas.supernet.direct`).

    Returns:
        The round's outcome on rank 0; None on the other ranks of a torchrun launch, once
        the supernet they help train is trained.
    """
    if ctx.direct:
        from gennas.supernet.direct import run_direct_round

        return run_direct_round(ctx, index, predictor, notes)
    directory, seconds = ctx.round_dir(index), {}
    generated = round_generation(ctx, directory, index, predictor, notes, seconds)
    space = ctx.family.subnet_space([ctx.family.parse(a) for a in generated["chosen"]])
    torch.manual_seed(ctx.settings.seed)
    supernet = ctx.family.supernet(space, ctx.network)
    model = with_normalization(supernet, ctx.splits).to(resolve_device(ctx.device))
    measurer = ctx.measurer(supernet, model)
    subnets = choose_subnets(space, ctx.network, ctx.settings.max_subnets, ctx.settings.seed)
    csv_path = directory / "subnets.csv"
    done = {r["arch"]: r for r in read_subnet_table(csv_path)} if csv_path.exists() else {}
    training = _training_stage(ctx, directory, supernet, model)
    plan = _announce_plan(ctx, index, model, measurer, space, subnets, done, training) if ctx.rank == 0 else None
    model, history = training.run(seconds)
    measurer.supernet, measurer.model = model[-1], model
    if ctx.world > 1:
        torch.distributed.barrier()
        if ctx.rank > 0:
            return None
    model.to(resolve_device(ctx.device))
    with timed(seconds, "measurement"):
        rows = _measure(ctx, measurer, subnets, csv_path, done)
    with timed(seconds, "verification"):
        _verify_finalists(ctx, rows)
        if ctx.deadline is not None and index == ctx.settings.rounds:
            write_subnet_table(csv_path, rows)
            _verify_while_time_lasts(ctx, rows, csv_path, seconds["measurement"] / max(len(subnets), 1),
                                     lambda: _more_subnets(ctx, measurer, space, rows))
        write_subnet_table(csv_path, rows)
        ctx.logger.table(f"subnets_round_{index}", rows)
    return RoundOutcome(index, directory, generated, space, model, measurer, rows, history, plan, seconds)


def _training_stage(ctx: RunContext, directory: Path, supernet: Supernet, model) -> Stage:
    """Train the round's supernet (resuming its checkpoint), or read the trained one back."""
    weights, checkpoint = directory / "supernet.pt", directory / "supernet.ckpt"

    def make():
        history = train_supernet(supernet, model, ctx.splits, ctx.recipe, checkpoint_path=checkpoint,
                                 progress=ctx.progress, on_epoch_end=ctx.logger.log)
        if ctx.rank == 0:
            save_supernet(weights, model, prune_meta(ctx))
        return model, history

    def read():
        return load_supernet(weights)[0], (_trained_history(checkpoint) if checkpoint.exists() else [])

    return Stage("training", weights, make, read)


def _announce_plan(ctx: RunContext, index: int, model, measurer: SubnetMeasurer, space: SubnetSpace, subnets,
                   done: dict, training: Stage) -> RunPlan:
    """Time this machine, estimate what is left of the round, and say it."""
    checkpoint = training.output.with_suffix(".ckpt")
    epochs_done = len(_trained_history(checkpoint)) if checkpoint.exists() else 0
    finalists_done = sum(is_verified(r) for r in done.values())
    plan = plan_run(model, ctx.splits, ctx.recipe, measurer, [space.smallest(ctx.network), space.largest()],
                    0 if training.done else max(ctx.settings.epochs - epochs_done, 0),
                    sum(c.cell.to_string() not in done for c in subnets),
                    max(ctx.settings.finalists - finalists_done, 0))
    rounds_left = ctx.settings.rounds - index
    ctx.say(f"round {index} of {ctx.settings.rounds}: " + plan.describe()
            + (f"\n  {rounds_left} more round(s) like this one follow" if rounds_left else ""))
    return plan


def round_generation(ctx: RunContext, directory: Path, index: int, predictor, notes: list[str],
               seconds: dict[str, float]) -> dict:
    """The round's generated cells: read back when they exist, else generated by rank 0 (others wait)."""
    path = directory / "generated.json"

    def make() -> dict:
        ctx.say(f"round {index}: generating {ctx.settings.candidates} cells with guided diffusion, keeping the "
                f"{ctx.settings.n_cells} most Pareto-near")
        generated = generate_cells(ctx, predictor, notes, derive_seed(ctx.settings.seed, index - 1, stride=1))
        write_json_checked(path, generated)
        return generated

    with rank_zero_first():  # the other ranks read what rank 0 generated
        generated = Stage("generation", path, make, lambda: read_json_checked(
            path, "generated cells", "rerun: the cells are generated again")).run(seconds)
    for note in generated["notes"]:
        ctx.say(f"guidance: {note}")
    for objective in generated["objectives"]:
        if objective not in generated["guided_objectives"]:
            ctx.say(f"warning: {objective} is not guided: generation ignores it; it is still measured on every "
                    "subnet and can be thresholded with gennas prune")
    return generated


def prune_meta(ctx: RunContext) -> dict:
    """What ``gennas prune`` needs to rebuild the data, the attack and the recipe."""
    return {"dataset": ctx.settings.dataset, "data_root": ctx.data_root, "robustness": asdict(ctx.robustness),
            "recalibration_images": ctx.settings.recalibration_images,
            "finetune_epochs": ctx.settings.measurement_finetune, "train": ctx.recipe.to_dict()}


def _measure(ctx: RunContext, measurer: SubnetMeasurer, subnets, csv_path: Path, done: dict) -> list[dict]:
    measured = list(done.values())

    def keep(row: dict) -> None:
        measured.append(row)
        write_subnet_table(csv_path, measured)
        ctx.logger.log({f"subnet/{k}": v for k, v in row.items() if isinstance(v, float)})

    rows = measure_all(measurer, subnets, progress=ctx.progress, done=done, on_row=keep)
    remeasured = remeasure_latency_outliers(measurer, rows)
    if remeasured:
        ctx.say(f"latency: {len(remeasured)} reading(s) far off the FLOPs trend measured again (the fastest kept)")
    write_subnet_table(csv_path, rows)
    return rows


def _verify_finalists(ctx: RunContext, rows: list[dict]) -> list[str]:
    """Retrain the front's finalists standalone and write their figures into their rows (in place)."""
    finalists = choose_finalists(rows, ctx.settings.finalists, FRONT)
    if finalists:
        ctx.say(f"verifying {len(finalists)} finalist(s) along the front by standalone training with the run's "
                f"recipe ({ctx.settings.epochs} epochs each, from scratch)")
    by_arch = {r["arch"]: r for r in rows}
    figures = ctx.standalone_figures([ctx.family.parse(a) for a in finalists], "standalone finalists")
    for arch, measured in zip(finalists, figures):
        by_arch[arch].update(measured)
    return finalists


#: Seconds kept back at the deadline for what follows verification (export, report, plots), beyond
#: one subnet's measurement (the export measures its model once more).
EXPORT_RESERVE_SECONDS = 10.0


def _verify_while_time_lasts(ctx: RunContext, rows: list[dict], csv_path: Path, subnet_seconds: float,
                             measure_more: Callable[[], list[dict]]) -> None:
    """With a budget, keep verifying the next subnets along the front while another training fits the time left.

    A budget's plan is an estimate; what it leaves at the end is spent on more verified
    points of the front (each one a model ``gennas prune`` can deploy on its own figures),
    not given back. When every measured subnet is verified, ``measure_more`` measures a few
    more (it returns [] when the supernet has none left). Whether a training fits is
    :meth:`RunContext.another_training_fits`.
    """
    extra, measured, count = 0, 0, ctx.settings.finalists
    while ctx.standalone_seconds:
        count += 1
        verified = {r["arch"] for r in rows if is_verified(r)}
        fresh = [a for a in choose_finalists(rows, count, FRONT) if a not in verified]
        needs_more = count > len(rows)
        if not fresh and not needs_more:
            continue
        if not ctx.another_training_fits(subnet_seconds * (1 + needs_more)):
            break
        if needs_more:
            more = measure_more()
            if not more:
                break
            rows.extend(more)
            measured += len(more)
            write_subnet_table(csv_path, rows)
            count -= 1  # choose again among the larger table
            continue
        arch = run_family(ctx.settings.space).parse(fresh[0])
        next(r for r in rows if r["arch"] == fresh[0]).update(ctx.train_standalone(arch).figures)
        extra += 1
        write_subnet_table(csv_path, rows)
    if extra:
        ctx.say(f"budget: time was left, so {extra} more subnet(s) along the front were verified standalone"
                + (f" ({measured} more subnet(s) measured for them)" if measured else ""))


#: Subnets measured at a time when a budget's time is left and every measured subnet is verified.
MORE_SUBNETS = 2


def _more_subnets(ctx: RunContext, measurer: SubnetMeasurer, space: SubnetSpace, rows: list[dict]) -> list[dict]:
    """Up to :data:`MORE_SUBNETS` subnets not yet in ``rows``, measured (FLOPs-stratified, as the round chose)."""
    known = {r["arch"] for r in rows}
    limit = len(rows) + MORE_SUBNETS
    fresh = [c for c in choose_subnets(space, ctx.network, limit, derive_seed(ctx.settings.seed, limit, stride=1))
             if c.cell.to_string() not in known]
    return measure_all(measurer, fresh[:MORE_SUBNETS], progress=False)


def _trained_history(checkpoint: Path) -> list[dict]:
    """The per-epoch history in a training checkpoint (its length is the epochs already trained)."""
    return CHECKPOINT.load(checkpoint, "rerun: training restarts from scratch",
                           f"{checkpoint} is not a training checkpoint of gennas; delete or move it, then rerun"
                           ).get("history", [])
