"""What each weight-sharing method changes in the one bi-level loop (:mod:`gennas.weightsharing.search`).

The loop alternates an α step on a validation batch and a weight step on a train batch.
An :class:`Algorithm` says how α becomes edge weights in each of the two steps, what the α
loss adds, how the supernet is read out for evaluation and logging, and how the cell is
derived; DARTS is the base class and every other method overrides only what it changes.
Adding a method here is one subclass plus one :data:`ALGORITHMS` entry (and its CLI
registry entry in :mod:`gennas.search.methods`).

Edge weights are ``(weights, chosen)``: ``weights`` of shape (E, |ops|) and, for one-path
methods, the chosen op index per edge (None: every op runs, the dense mixture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol

import torch

from gennas.space.cell import Cell, edge_list
from gennas.space.space import CellSpace
from gennas.weightsharing import dartspt, drnas, oneshot, pdarts, proxyless, sdarts, snas
from gennas.weightsharing.darts import softmax_weights
from gennas.weightsharing.derive import derive_cell
from gennas.weightsharing.gdas import argmax_weights, gumbel_hard_weights, gumbel_softmax, temperature
from gennas.weightsharing.mixed import SuperNetwork
from gennas.weightsharing.enas import ControlledSuperNetwork
from gennas.weightsharing.partial import PartialSuperNetwork

Weights = tuple[torch.Tensor, "list[int] | None"]
Batch = tuple[torch.Tensor, torch.Tensor]


class StepContext(Protocol):
    """What an algorithm may read while one step runs (the loop's per-epoch step object)."""

    model: SuperNetwork
    generator: torch.Generator
    schedule: dict[str, float]
    options: dict[str, Any]
    epoch: int
    config: Any
    arch_optimizer: torch.optim.Optimizer
    memo: dict[str, Any]  # what an α step leaves for after_arch_step

    def loss(self, weights: torch.Tensor, chosen: list[int] | None, batch: Batch) -> torch.Tensor:
        """Cross-entropy of ``batch`` under the given edge weights (autocast as configured)."""


@dataclass(frozen=True)
class Knob:
    """One method option: its default and lower limit (inclusive); ``integer`` for counts."""

    default: float
    low: float
    integer: bool = False
    help: str = ""


class Algorithm:
    """DARTS (first order; the loop handles second order): dense softmax(α) in both steps."""

    name: ClassVar[str] = "darts"
    knobs: ClassVar[dict[str, Knob]] = {}
    #: False for methods that never take a gradient step on α (RSPS).
    arch_step: ClassVar[bool] = True

    def network(self, options: dict[str, Any]) -> Callable[..., SuperNetwork]:
        return SuperNetwork

    def steps_alpha(self, step: StepContext) -> bool:
        """Whether this step takes an α step (``arch_step``; DARTS-PT freezes α while it selects)."""
        return self.arch_step

    def check(self, options: dict[str, Any], channels: int | None) -> list[str]:
        """Problems beyond each knob's own limit (rules across options; ``channels`` None: not known yet)."""
        return []

    def schedule(self, epoch: int, epochs: int, config: Any) -> dict[str, float]:
        """Per-epoch schedule values (τ, ε, ...), logged in the epoch record."""
        return {}

    def arch_optimizer(self, params: list[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
        """DARTS's α optimiser: Adam, lr ``arch_lr``, β = (0.5, 0.999), weight decay ``arch_weight_decay``."""
        return torch.optim.Adam(params, lr=config.arch_lr, betas=(0.5, 0.999), weight_decay=config.arch_weight_decay)

    def arch_loss(self, step: StepContext, val: Batch) -> tuple[torch.Tensor, float]:
        """The α step's objective on the validation batch (what is differentiated) and the loss it reports."""
        weights, chosen = self.arch_weights(step)
        val_loss = step.loss(weights, chosen, val)
        penalty = self.penalty(step, weights)
        return (val_loss if penalty is None else val_loss + penalty), float(val_loss.detach())

    def after_arch_step(self, step: StepContext) -> None:
        """Work right after the α optimiser's step (ProxylessNAS rescales the sampled pair)."""

    def arch_weights(self, step: StepContext) -> Weights:
        return softmax_weights(step.model.alpha)

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        return softmax_weights(step.model.alpha.detach())

    def penalty(self, step: StepContext, weights: torch.Tensor) -> torch.Tensor | None:
        """A term added to the α loss (None: none)."""
        return None

    def eval_weights(self, model: SuperNetwork) -> Weights:
        return softmax_weights(model.alpha.detach())

    def distribution(self, model: SuperNetwork) -> torch.Tensor:
        """The op distribution per edge that is logged, shape (E, |ops|)."""
        return torch.softmax(model.alpha.detach(), dim=-1)

    def derive(self, model: SuperNetwork, space: CellSpace, options: dict[str, Any]) -> Cell:
        return derive_cell(model.alpha.detach().float().cpu(), space)

    def end_epoch(self, step: StepContext, val: Batch, space: CellSpace) -> dict[str, Any]:
        """Work after an epoch's steps (RSPS scores its candidates here); extra record fields."""
        return {}


class GDAS(Algorithm):
    """GDAS: hard Gumbel-max one-hot forward (one op per edge), straight-through gradient; linear τ."""

    name = "gdas"

    def schedule(self, epoch: int, epochs: int, config: Any) -> dict[str, float]:
        return {"tau": temperature(epoch, epochs, config.tau_max, config.tau_min)}

    def arch_weights(self, step: StepContext) -> Weights:
        return gumbel_hard_weights(step.model.alpha, step.schedule["tau"], step.generator)

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        return gumbel_hard_weights(step.model.alpha.detach(), step.schedule["tau"], step.generator)

    def eval_weights(self, model: SuperNetwork) -> Weights:
        return argmax_weights(model.alpha.detach())


class SNAS(Algorithm):
    """SNAS: soft Gumbel-softmax sample in both steps, exponential τ, optional resource penalty."""

    name = "snas"
    knobs = {"tau_start": Knob(1.0, 1e-3, help="τ of the first epoch"),
             "tau_end": Knob(0.03, 1e-3, help="τ of the last epoch"),
             "resource_penalty": Knob(0.0, 0.0, help="λ of the parameter-count penalty")}

    def check(self, options: dict[str, Any], channels: int | None) -> list[str]:
        if options["tau_start"] < options["tau_end"]:
            return [f"tau_start must be >= tau_end (got {options['tau_start']!r} < {options['tau_end']!r})"]
        return []

    def schedule(self, epoch: int, epochs: int, config: Any) -> dict[str, float]:
        return {"tau": snas.exponential_temperature(epoch, epochs, config.options["tau_start"],
                                                    config.options["tau_end"])}

    def arch_weights(self, step: StepContext) -> Weights:
        return gumbel_softmax_weights(step.model.alpha, step)

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        return gumbel_softmax_weights(step.model.alpha.detach(), step)

    def penalty(self, step: StepContext, weights: torch.Tensor) -> torch.Tensor | None:
        scale = step.options["resource_penalty"]
        if not scale:
            return None
        return snas.resource_penalty(weights, snas.op_costs(step.model, step.model.space.ops), scale)

    def eval_weights(self, model: SuperNetwork) -> Weights:
        return argmax_weights(model.alpha.detach())


def gumbel_softmax_weights(alpha: torch.Tensor, step: StepContext) -> Weights:
    """SNAS's dense relaxed sample at the epoch's τ."""
    return gumbel_softmax(alpha, step.schedule["tau"], step.generator), None


class PCDARTS(Algorithm):
    """PC-DARTS: DARTS's softmax on a supernet of partial-channel edges with edge normalisation β."""

    name = "pcdarts"
    knobs = {"partial_k": Knob(4, 1, integer=True, help="1/K of the channels go through the mixed op")}

    def network(self, options: dict[str, Any]) -> Callable[..., SuperNetwork]:
        k = options["partial_k"]
        return lambda *args: PartialSuperNetwork(*args, k=k)

    def check(self, options: dict[str, Any], channels: int | None) -> list[str]:
        k = options["partial_k"]
        return [] if channels is None or channels % k == 0 else [f"partial_k={k} must divide channels={channels}"]


class DrNAS(Algorithm):
    """DrNAS: Dirichlet(ELU(α) + 1) samples in both steps, KL to Dir(1) added to the α loss."""

    name = "drnas"
    knobs = {"dirichlet_reg": Knob(1e-3, 0.0, help="λ of KL(Dir(β) ‖ Dir(1))")}

    def arch_weights(self, step: StepContext) -> Weights:
        return drnas.dirichlet_weights(step.model.alpha)

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        with torch.no_grad():
            return drnas.dirichlet_weights(step.model.alpha.detach())

    def penalty(self, step: StepContext, weights: torch.Tensor) -> torch.Tensor | None:
        scale = step.options["dirichlet_reg"]
        return scale * drnas.anchor_kl(step.model.alpha) if scale else None

    def eval_weights(self, model: SuperNetwork) -> Weights:
        return drnas.dirichlet_mean(model.alpha.detach()), None

    def distribution(self, model: SuperNetwork) -> torch.Tensor:
        return drnas.dirichlet_mean(model.alpha.detach())


class SDARTSRandom(Algorithm):
    """SDARTS-RS: the weight step sees softmax(α) + U[−ε, ε] (projected to the simplex)."""

    name = "sdarts-rs"
    knobs = {"epsilon": Knob(0.3, 0.0, help="final L∞ radius of the perturbation of softmax(α)")}

    def schedule(self, epoch: int, epochs: int, config: Any) -> dict[str, float]:
        return {"epsilon": sdarts.smoothing_radius(epoch, epochs, config.options["epsilon"])}

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        weights, _ = softmax_weights(step.model.alpha.detach())
        return sdarts.random_smoothing(weights, step.schedule["epsilon"], step.generator), None


class SDARTSAdversarial(SDARTSRandom):
    """SDARTS-ADV: the weight step sees the PGD-worst op weights within ε of softmax(α)."""

    name = "sdarts-adv"
    knobs = {**SDARTSRandom.knobs, "adv_steps": Knob(7, 1, integer=True, help="PGD steps on the op weights")}

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        weights, _ = softmax_weights(step.model.alpha.detach())
        model = step.model
        model.eval()  # the attack must not move BatchNorm's running statistics (as the paper's code)
        try:
            worst = sdarts.adversarial_weights(lambda w: step.loss(w, None, batch), weights,
                                               step.schedule["epsilon"], int(step.options["adv_steps"]),
                                               step.generator)
        finally:
            model.train()
        return worst, None


class RSPS(Algorithm):
    """RSPS: uniform single-path weight training, no α step; uniformly drawn cells scored with the shared weights."""

    name = "rsps"
    arch_step = False
    knobs = {"candidates": Knob(20, 1, integer=True, help="sampled cells scored after each epoch")}

    def network(self, options: dict[str, Any]) -> Callable[..., SuperNetwork]:
        return oneshot.SelectingSuperNetwork

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        return oneshot.uniform_path(step.model.alpha, step.generator)

    def eval_weights(self, model: SuperNetwork) -> Weights:
        return oneshot.selected_path(model)

    def distribution(self, model: SuperNetwork) -> torch.Tensor:
        return oneshot.selected_one_hot(model)

    def derive(self, model: SuperNetwork, space: CellSpace, options: dict[str, Any]) -> Cell:
        return oneshot.selected_cell(model)

    def candidates(self, step: StepContext, space: CellSpace) -> list[Cell]:
        return oneshot.sample_cells(space, int(step.options["candidates"]), oneshot.uniform_draw(space, step.generator))

    def end_epoch(self, step: StepContext, val: Batch, space: CellSpace) -> dict[str, Any]:
        return oneshot.select_best(step.model, self.candidates(step, space), val)


class SETN(RSPS):
    """SETN: uniform single-path weights, α by DARTS's softmax step; candidates drawn from softmax(α), best by shared weights."""

    name = "setn"
    arch_step = True

    def arch_weights(self, step: StepContext) -> Weights:
        return softmax_weights(step.model.alpha)

    def distribution(self, model: SuperNetwork) -> torch.Tensor:
        return torch.softmax(model.alpha.detach(), dim=-1)

    def candidates(self, step: StepContext, space: CellSpace) -> list[Cell]:
        probabilities = torch.softmax(step.model.alpha.detach(), dim=-1)
        return oneshot.sample_cells(space, int(step.options["candidates"]),
                                    oneshot.edgewise_draw(probabilities, step.generator))


class ENAS(RSPS):
    """ENAS: an LSTM controller samples the paths; REINFORCE on the sampled cell's shared-weight accuracy."""

    name = "enas"
    arch_step = True
    knobs = {**RSPS.knobs, "controller_lr": Knob(1e-3, 1e-12, help="Adam lr of the controller"),
             "entropy_weight": Knob(1e-4, 0.0, help="weight of the policy's entropy bonus")}

    def network(self, options: dict[str, Any]) -> Callable[..., SuperNetwork]:
        return ControlledSuperNetwork

    def arch_optimizer(self, params: list[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
        """NAS-Bench-201's ENAS controller optimiser: Adam, β = (0.5, 0.999), ε = 1e-3, no weight decay."""
        return torch.optim.Adam(params, lr=config.options["controller_lr"], betas=(0.5, 0.999), eps=1e-3)

    def arch_loss(self, step: StepContext, val: Batch) -> tuple[torch.Tensor, float]:
        controller = step.model.controller
        ops, log_p, entropy, _ = controller.sample(step.generator)
        reward = oneshot.path_accuracy(step.model, [ops], *val)[0] / 100.0
        loss = controller.reinforce_loss(log_p, entropy, reward, step.options["entropy_weight"])
        return loss, float(loss.detach())

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        with torch.no_grad():
            ops = step.model.controller.sample(step.generator)[0]
        return oneshot.one_hot_path(ops, len(step.model.space.ops))

    def distribution(self, model: SuperNetwork) -> torch.Tensor:
        """The controller's conditional op probabilities along its greedy decoding, per edge."""
        with torch.no_grad():
            return model.controller.sample(greedy=True)[3]

    def candidates(self, step: StepContext, space: CellSpace) -> list[Cell]:
        controller = step.model.controller

        def draw() -> torch.Tensor:
            with torch.no_grad():
                return controller.sample(step.generator)[0]

        return oneshot.sample_cells(space, int(step.options["candidates"]), draw)


class PDARTS(Algorithm):
    """P-DARTS: DARTS's softmax over each edge's remaining ops; stages deepen the supernet and prune ops."""

    name = "pdarts"
    knobs = {"stages": Knob(3, 1, integer=True, help="search stages (depth grows, ops are pruned between them)"),
             "ops_dropped": Knob(1, 0, integer=True, help="ops each edge loses at the end of a stage"),
             "skip_dropout": Knob(0.3, 0.0, help="skip_connect dropout of the last stage (0 in the first)"),
             "skip_cap": Knob(2, 0, integer=True, help="most skip_connect edges in the derived cell")}

    def network(self, options: dict[str, Any]) -> Callable[..., SuperNetwork]:
        return pdarts.ProgressiveSuperNetwork

    def check(self, options: dict[str, Any], channels: int | None) -> list[str]:
        return [] if options["skip_dropout"] < 1 else [f"skip_dropout must be < 1 (got {options['skip_dropout']!r})"]

    def schedule(self, epoch: int, epochs: int, config: Any) -> dict[str, float]:
        stages = min(config.options["stages"], epochs)  # a search shorter than its stages runs one per epoch
        stage, first, length = pdarts.stage_of(epoch, epochs, stages)
        rate = config.options["skip_dropout"] * (stage / (stages - 1) if stages > 1 else 1.0)
        return {"stage": stage, "depth": pdarts.stage_depth(stage, stages, config.cells_per_stage),
                "skip_dropout": rate * (1 - (epoch - first) / length)}

    def _weights(self, step: StepContext, alpha: torch.Tensor) -> Weights:
        step.model.configure(int(step.schedule["depth"]), step.schedule["skip_dropout"])
        return pdarts.masked_softmax(alpha, step.model.active()), None

    def arch_weights(self, step: StepContext) -> Weights:
        return self._weights(step, step.model.alpha)

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        return self._weights(step, step.model.alpha.detach())

    def eval_weights(self, model: SuperNetwork) -> Weights:
        return self.distribution(model), None

    def distribution(self, model: SuperNetwork) -> torch.Tensor:
        return pdarts.masked_softmax(model.alpha.detach(), model.active())

    def derive(self, model: SuperNetwork, space: CellSpace, options: dict[str, Any]) -> Cell:
        return pdarts.capped_cell(self.distribution(model), space, int(options["skip_cap"]))

    def end_epoch(self, step: StepContext, val: Batch, space: CellSpace) -> dict[str, Any]:
        """At a stage's last epoch (not the search's): prune, draw α anew, reset its Adam state."""
        model, epochs = step.model, step.config.epochs
        stage, first, length = pdarts.stage_of(step.epoch, epochs, step.options["stages"])
        if step.epoch != first + length - 1 or step.epoch == epochs - 1:
            return {}
        keep = max(2, int(model.active().sum(dim=-1).max()) - int(step.options["ops_dropped"]))
        model.prune(keep)
        with torch.no_grad():
            model.alpha.copy_(1e-3 * torch.randn(model.alpha.shape, generator=step.generator,
                                                 device=step.generator.device))
        step.arch_optimizer.state.clear()
        return {"pruned_to": keep}


class DARTSPT(Algorithm):
    """DARTS-PT: first-order DARTS, then edges fixed one by one by perturbation, with weight fine-tuning between."""

    name = "dartspt"
    knobs = {"pt_fraction": Knob(0.5, 0.0, help="share of the epochs spent deciding edges and fine-tuning")}

    def network(self, options: dict[str, Any]) -> Callable[..., SuperNetwork]:
        return oneshot.SelectingSuperNetwork

    def check(self, options: dict[str, Any], channels: int | None) -> list[str]:
        return [] if options["pt_fraction"] <= 1 else [f"pt_fraction must be <= 1 (got {options['pt_fraction']!r})"]

    def schedule(self, epoch: int, epochs: int, config: Any) -> dict[str, float]:
        return {"fine_tune": int(epoch >= dartspt.selection_start(epochs, config.options["pt_fraction"]))}

    def steps_alpha(self, step: StepContext) -> bool:
        return not step.schedule["fine_tune"]

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        return dartspt.fixed_weights(step.model.alpha.detach(), step.model.selected), None

    def eval_weights(self, model: SuperNetwork) -> Weights:
        return self.distribution(model), None

    def distribution(self, model: SuperNetwork) -> torch.Tensor:
        return dartspt.fixed_weights(model.alpha.detach(), model.selected)

    def derive(self, model: SuperNetwork, space: CellSpace, options: dict[str, Any]) -> Cell:
        return dartspt.derive(model, space)

    def end_epoch(self, step: StepContext, val: Batch, space: CellSpace) -> dict[str, Any]:
        model, epochs = step.model, step.config.epochs
        undecided = [e for e, k in enumerate(model.selected.tolist()) if k < 0]
        start = dartspt.selection_start(epochs, step.options["pt_fraction"])
        decided = {}
        for _ in range(dartspt.edges_to_decide(step.epoch, epochs, start, len(undecided))):
            edge = undecided.pop(int(torch.randint(len(undecided), (1,), generator=step.generator,
                                                   device=step.generator.device)))
            drops = dartspt.decide_edge(model, edge, val)
            decided["{}->{}".format(*edge_list(space.n_nodes)[edge])] = drops
        return {"decided": decided} if decided else {}


class ProxylessNAS(Algorithm):
    """ProxylessNAS: one sampled path per weight step, BinaryConnect α gradients over two sampled paths, latency loss."""

    name = "proxyless"
    knobs = {"latency_weight": Knob(0.1, 0.0, help="λ of the expected-latency loss (latency / the slowest op's)")}

    def network(self, options: dict[str, Any]) -> Callable[..., SuperNetwork]:
        return proxyless.GatedSuperNetwork

    def train_weights(self, step: StepContext, batch: Batch) -> Weights:
        return proxyless.sample_path(step.model.alpha, step.generator)

    def arch_loss(self, step: StepContext, val: Batch) -> tuple[torch.Tensor, float]:
        model = step.model
        pairs = proxyless.sample_pairs(model.alpha, step.generator)
        gates = torch.zeros_like(model.alpha).scatter_(-1, pairs[:, :1], 1.0).requires_grad_(True)
        loss = step.loss(gates, [tuple(p) for p in pairs.tolist()], val)
        gate_grad = torch.autograd.grad(loss, gates)[0]
        total = proxyless.pair_surrogate(model.alpha, pairs, gate_grad)
        if step.options["latency_weight"]:
            total = total + step.options["latency_weight"] * proxyless.expected_latency(model.alpha, model.op_latency)
        step.memo.update(pairs=pairs, before=model.alpha.detach().clone())
        return total, float(loss.detach())

    def after_arch_step(self, step: StepContext) -> None:
        proxyless.keep_pair_mass(step.model.alpha, step.memo.pop("before"), step.memo.pop("pairs"))

    def eval_weights(self, model: SuperNetwork) -> Weights:
        return argmax_weights(model.alpha.detach())


#: Every algorithm of the loop by its config name (``WeightSharingConfig.method``).
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm(), GDAS(), SNAS(), PCDARTS(), DrNAS(), SDARTSRandom(), SDARTSAdversarial(), RSPS(), SETN(), ENAS(), PDARTS(), DARTSPT(), ProxylessNAS())}


def resolve_options(method: str, options: dict[str, Any], channels: int | None) -> tuple[dict[str, Any], list[str]]:
    """The method's options with defaults filled in, and what is wrong with them (``channels`` None: not known yet).

    Returns:
        (every knob of ``method`` -> its value, problems: unknown names, values below a limit, non-integers).
    """
    algorithm = ALGORITHMS[method]
    problems = [f"{method} has no option {k!r} (its options: {', '.join(algorithm.knobs) or 'none'})"
                for k in options if k not in algorithm.knobs]
    resolved = {k: options.get(k, knob.default) for k, knob in algorithm.knobs.items()}
    for k, knob in algorithm.knobs.items():
        value = resolved[k]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (knob.integer and not isinstance(value, int)):
            problems.append(f"{k} must be {'an integer' if knob.integer else 'a number'} (got {value!r})")
        elif not math.isfinite(value) or value < knob.low:
            problems.append(f"{k} must be a finite number >= {knob.low:g} (got {value!r})")
    return resolved, problems or algorithm.check(resolved, channels)
