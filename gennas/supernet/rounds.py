"""The stages of one ``gennas run``: round 0's probes, then rounds of generate → supernet → measure → verify.

Each stage writes its output into the run directory and is skipped when that output
exists, so an interrupted run resumes where it stopped: standalone trainings (probes and
finalists) under ``standalone/``, each round's ``generated.json``, ``supernet.ckpt``,
``supernet.pt`` and ``subnets.csv`` (the last round in the run directory itself, earlier
ones under ``round_<r>/``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from tqdm.auto import tqdm

from gennas.data import DatasetSplits
from gennas.errors import GennasError
from gennas.io import load_checked, read_json_checked, write_json, write_json_checked
from gennas.metrics.costs import cell_costs
from gennas.nn.network import NetworkConfig
from gennas.objectives import minimisation_matrix, parse_objectives
from gennas.space.cell import Cell
from gennas.supernet.adapt import choose_probes
from gennas.supernet.measure import SubnetMeasurer, choose_subnets, measure_all, remeasure_latency_outliers
from gennas.supernet.model import Supernet
from gennas.supernet.plan import RunPlan, plan_run
from gennas.supernet.prune import is_verified
from gennas.supernet.report import FRONT
from gennas.supernet.run_settings import RunSettings
from gennas.supernet.standalone import choose_finalists, standalone_recipe, train_standalone
from gennas.supernet.store import load_supernet, save_supernet
from gennas.supernet.subnets import SubnetSpace
from gennas.supernet.table import read_subnet_table, write_subnet_table
from gennas.supernet.train import SupernetTrainConfig, train_supernet
from gennas.tracking import RunLogger
from gennas.train import RobustnessConfig, resolve_device, with_normalization

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

    @property
    def recipe(self) -> SupernetTrainConfig:
        return SupernetTrainConfig(**{"epochs": self.settings.epochs, "seed": self.settings.seed,
                                      "device": self.device, **self.settings.recipe})

    @property
    def robustness(self) -> RobustnessConfig:
        return RobustnessConfig(seed=self.settings.seed)

    @property
    def standalone_dir(self) -> Path:
        return self.out / "standalone"

    def round_dir(self, index: int) -> Path:
        """The last round writes into the run directory (what ``gennas prune`` reads), earlier ones beside it."""
        return self.out if index == self.settings.rounds else self.out / f"round_{index}"

    def train_standalone(self, cell: Cell):
        return train_standalone(cell, self.splits, self.network, standalone_recipe(self.recipe), self.robustness,
                                self.standalone_dir)


def zero_shot_prior(dataset: str):
    """The NB201 transfer prior with ``accuracy@dataset`` added zero-shot (the mean of the known datasets)."""
    from predictors.transfer import load_prior

    return load_prior(PRIOR_FOR_NEW_DATASETS).fit_task(f"accuracy@{dataset}", [], None)


#: Keys a round's ``generated.json`` must hold.
GENERATED_KEYS = ("objectives", "guided_objectives", "notes", "candidates", "chosen")


def check_stage_files(ctx: RunContext) -> None:
    """Read every stage file a resumed run would reuse before any work starts.

    A damaged or foreign file is an error naming it (with a step that rebuilds it) at
    once, not after minutes of probes or training, and never a silently wrong figure.
    """
    for path in sorted(ctx.standalone_dir.glob("*.pt")):
        load_checked(path, "standalone training", "rerun: the cell is trained again")
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
    cells = choose_probes(prior, f"accuracy@{ctx.splits.name}", ctx.network, count, ctx.settings.seed)
    ctx.say(f"round 0: training {len(cells)} probe cells standalone on {ctx.splits.name} ({ctx.settings.epochs} "
            "epochs each, spread over the prior's ranking and the FLOPs range) to adapt the predictor")
    rows = []
    for cell in tqdm(cells, desc="round 0 probes", unit="cell", disable=not ctx.progress):
        trained = ctx.train_standalone(cell)
        rows.append({"arch": cell.to_string(), "selected_because": "probe", **cell_costs(cell, ctx.network),
                     **trained.figures})
    write_json(ctx.out / "probes.json", rows)
    return rows


# ----------------------------------------------------------------------------- a round
@dataclass
class RoundOutcome:
    """What one round produced; the last round's is what the run exports and reports."""

    index: int
    directory: Path
    generated: dict
    space: SubnetSpace
    model: torch.nn.Sequential
    measurer: SubnetMeasurer
    rows: list[dict]
    history: list[dict]
    plan: RunPlan | None
    seconds: dict[str, float] = field(default_factory=dict)


def generate_cells(ctx: RunContext, predictor, notes: list[str], seed: int) -> dict:
    """Guided generation, then the ``n_cells`` most Pareto-near distinct cells (front by front)."""
    from diffusion.commands import generator_path
    from diffusion.guidance import generate
    from diffusion.model import CellDiffusion

    settings, name = ctx.settings, ctx.splits.name
    goals = parse_objectives(settings.objectives)
    guided = [g for g in goals if g.metric != "pgd_accuracy" or f"pgd_accuracy@{name}" in predictor.tasks]
    diffusion = CellDiffusion.load(generator_path("nb201"))
    result = generate(diffusion, guided, [], settings.candidates, predictor, ctx.network, name, settings.guidance, seed)
    rows = [r for r in result["cells"] if Cell.from_string(r["arch"]).is_connected()]
    if not rows:
        raise GennasError("the generator produced no connected cell; raise --candidates or change --seed")
    fronts = NonDominatedSorting().do(minimisation_matrix(rows, guided))
    order = [i for front in fronts for i in sorted(front, key=lambda i: rows[i]["arch"])]
    chosen = [rows[i]["arch"] for i in order[: settings.n_cells]]
    return {"objectives": [f"{g.metric}:{g.direction}" for g in goals],
            "guided_objectives": [f"{g.metric}:{g.direction}" for g in guided], "notes": notes,
            "candidates": rows, "chosen": chosen}


def run_round(ctx: RunContext, index: int, predictor, notes: list[str]) -> RoundOutcome | None:
    """Generate with ``predictor``, train one supernet, measure its subnets, verify the finalists.

    Returns:
        The round's outcome on rank 0; None on the other ranks of a torchrun launch, once
        the supernet they help train is trained.
    """
    directory, seconds = ctx.round_dir(index), {}
    tic = time.perf_counter()
    generated = _generated(ctx, directory, index, predictor, notes)
    seconds["generation"] = time.perf_counter() - tic
    space = SubnetSpace.from_cells([Cell.from_string(a) for a in generated["chosen"]])
    torch.manual_seed(ctx.settings.seed)
    supernet = Supernet(space, ctx.network)
    model = with_normalization(supernet, ctx.splits).to(resolve_device(ctx.device))
    measurer = SubnetMeasurer(supernet, model, ctx.splits, ctx.robustness, ctx.settings.recalibration_images)
    subnets = choose_subnets(space, ctx.network, ctx.settings.max_subnets, ctx.settings.seed)
    csv_path = directory / "subnets.csv"
    done = {r["arch"]: r for r in read_subnet_table(csv_path)} if csv_path.exists() else {}
    weights, checkpoint = directory / "supernet.pt", directory / "supernet.ckpt"
    plan = None
    if ctx.rank == 0:
        epochs_done = len(_trained_history(checkpoint)) if checkpoint.exists() else 0
        finalists_done = sum(is_verified(r) for r in done.values())
        plan = plan_run(model, ctx.splits, ctx.recipe, measurer, [space.smallest(ctx.network), space.largest()],
                        0 if weights.exists() else max(ctx.settings.epochs - epochs_done, 0),
                        sum(c.cell.to_string() not in done for c in subnets),
                        max(ctx.settings.finalists - finalists_done, 0))
        rounds_left = ctx.settings.rounds - index
        ctx.say(f"round {index} of {ctx.settings.rounds}: " + plan.describe()
                + (f"\n  {rounds_left} more round(s) like this one follow" if rounds_left else ""))

    tic = time.perf_counter()
    if weights.exists():
        model, _ = load_supernet(weights)
        measurer.supernet, measurer.model = model[-1], model
        history = _trained_history(checkpoint) if checkpoint.exists() else []
    else:
        history = train_supernet(supernet, model, ctx.splits, ctx.recipe, checkpoint_path=checkpoint,
                                 progress=ctx.progress, on_epoch_end=ctx.logger.log)
        if ctx.rank == 0:
            save_supernet(weights, model, _supernet_meta(ctx))
    seconds["training"] = time.perf_counter() - tic
    if ctx.world > 1:
        torch.distributed.barrier()
        if ctx.rank > 0:
            return None
    model.to(resolve_device(ctx.device))

    tic = time.perf_counter()
    rows = _measure(ctx, measurer, subnets, csv_path, done)
    seconds["measurement"] = time.perf_counter() - tic
    tic = time.perf_counter()
    _verify_finalists(ctx, rows)
    write_subnet_table(csv_path, rows)
    ctx.logger.table(f"subnets_round_{index}", rows)
    seconds["verification"] = time.perf_counter() - tic
    return RoundOutcome(index, directory, generated, space, model, measurer, rows, history, plan, seconds)


def _generated(ctx: RunContext, directory: Path, index: int, predictor, notes: list[str]) -> dict:
    """The round's generated cells: read back when they exist, else generated by rank 0 (others wait)."""
    path = directory / "generated.json"
    if ctx.world > 1 and ctx.rank > 0:
        torch.distributed.barrier()  # wait for rank 0's generation
    if path.exists():
        generated = read_json_checked(path, "generated cells", "rerun: the cells are generated again")
    else:
        ctx.say(f"round {index}: generating {ctx.settings.candidates} cells with guided diffusion, keeping the "
                f"{ctx.settings.n_cells} most Pareto-near")
        generated = generate_cells(ctx, predictor, notes, ctx.settings.seed + index - 1)
        write_json_checked(path, generated)
    if ctx.world > 1 and ctx.rank == 0:
        torch.distributed.barrier()
    for note in generated["notes"]:
        ctx.say(f"guidance: {note}")
    for objective in generated["objectives"]:
        if objective not in generated["guided_objectives"]:
            ctx.say(f"warning: {objective} is not guided: generation ignores it; it is still measured on every "
                    "subnet and can be thresholded with gennas prune")
    return generated


def _supernet_meta(ctx: RunContext) -> dict:
    """What ``gennas prune`` needs to rebuild the data, the attack and the recipe."""
    return {"dataset": ctx.settings.dataset, "data_root": ctx.data_root, "robustness": asdict(ctx.robustness),
            "recalibration_images": ctx.settings.recalibration_images, "train": ctx.recipe.to_dict()}


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
    for arch in tqdm(finalists, desc="standalone finalists", unit="cell", disable=not ctx.progress):
        by_arch[arch].update(ctx.train_standalone(Cell.from_string(arch)).figures)
    return finalists


def _trained_history(checkpoint: Path) -> list[dict]:
    """The per-epoch history in a training checkpoint (its length is the epochs already trained)."""
    return load_checked(checkpoint, "training checkpoint", "rerun: training restarts from scratch").get("history", [])
