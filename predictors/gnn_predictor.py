"""`GNNPredictor`: a deep ensemble of multi-head cell GNNs with a differentiable soft path.

Design choices, each for a measured reason (the predictor benchmark compares them):
- one shared encoder, one head per task, and a loss that skips missing labels, so cheap
  metrics measured on every cell (FLOPs, params, memory are free) shape the encoder that
  the scarce accuracy labels then reuse;
- MSE on per-task standardised targets plus a pairwise gap-hinge ranking term, because a
  search needs the order of cells more than their exact values;
- batches drawn per task, so a task with 20 labels is not drowned by one with 15,625;
- part of every batch is noised with the diffusion process (hard draws and soft
  marginals at random t), so :meth:`predict_soft` is accurate on the noisy graphs that
  guided sampling differentiates through;
- an ensemble of independently initialised members: its spread is the uncertainty that
  acquisition functions use.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from gennas.config import DictConfig
from gennas.device import resolve_device
from gennas.errors import GennasError
from gennas.metrics.task import metric_of
from gennas.seeds import HOLDOUT_SALT, REFIT_SALT, derive_seed
from gennas.space.cell import Cell
from gennas.space.noise import OpNoiseSchedule
from gennas.space.protocol import ArchSpace
from predictors.base import Prediction, target_matrix
from predictors.encoding import in_features, line_graph, node_inputs, none_index, num_values, one_hot_ops, uniform_prior
from predictors.gnn import MultiHeadNet, TaskHeads, task_key


#: Up to this many measured cells, a new dataset is fitted as a mix of the known ones.
MIXTURE_MAX_CELLS = 50
MIXTURE_PRIOR = 0.05

#: Steps whose noised rows a frozen-encoder fit encodes in one call (their encodings held at once).
ENCODED_BLOCK = 100
#: Prefix of the encoder's weights in a member's state (the rest are heads and task embeddings).
ENCODER = "encoder."


@dataclass
class GNNConfig(DictConfig):
    """Size and training schedule of the ensemble (defaults fit a 2-core CPU in seconds)."""

    config_kind = "predictor"

    hidden: int = 64
    layers: int = 4
    ensemble: int = 5
    steps: int = 800
    batch_per_task: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    rank_weight: float = 1.0
    noise_fraction: float = 0.25
    seed: int = 0
    device: str = "auto"  # CUDA when available; "cpu" to force the CPU


def one_cycle(optimizer: torch.optim.Optimizer, lr: float, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """A one-cycle schedule (10 % warm-up) that also works for the short continuations of a warm refit.

    ``OneCycleLR`` divides by the warm-up's length in steps minus one, so under 20 steps
    (a warm refit of ours takes 30 or fewer) its 10 % warm-up is one step and it fails;
    the warm-up is stretched to two steps there, and under 4 steps the rate stays constant.

    Args:
        optimizer: the optimizer whose rate it sets.
        lr: the peak rate.
        steps: the steps the fit will take.

    Returns:
        The scheduler, stepped once per training step.
    """
    if steps < 4:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=max(0.1, 2.0 / steps))


class GNNPredictor:
    """Multi-task ensemble predictor over cells of one space."""

    def __init__(self, space: ArchSpace, tasks: Sequence[str], config: GNNConfig | None = None) -> None:
        if not tasks:
            raise GennasError("a predictor needs at least one task (metric) to predict")
        self.space = space
        self.tasks = list(dict.fromkeys(tasks))
        self.config = config or GNNConfig()
        self.device = resolve_device(self.config.device)
        self.schedule = OpNoiseSchedule(num_values(space), uniform_prior(space))
        self.none_index = none_index(space)
        self.positional = space.graph_positional
        self.adjacency = line_graph(space).to(self.device)
        self.normalization: dict[str, tuple[float, float]] = {}
        self.mixtures: dict[str, dict[str, float]] = {}  # few-shot tasks: weight of each known dataset
        self.members: list[MultiHeadNet] = [self._new_member(i) for i in range(self.config.ensemble)]

    # ------------------------------------------------------------------ model
    @property
    def in_features(self) -> int:
        return in_features(self.space)

    def _new_member(self, index: int) -> MultiHeadNet:
        torch.manual_seed(derive_seed(self.config.seed, index))
        return MultiHeadNet(self.in_features, self.tasks, self.config.hidden, self.config.layers).to(self.device)

    def _forward(self, member: MultiHeadNet, ops: torch.Tensor, t: torch.Tensor, tasks: list[str]) -> torch.Tensor:
        x, alive = node_inputs(ops, self.none_index, self.positional)
        return member(x, self.adjacency, alive, t, tasks)

    # -------------------------------------------------------------- training
    def fit(self, cells: Sequence[Cell], targets: dict[str, np.ndarray], progress: bool = False,
            warm_start: bool = False, steps: int | None = None, seed: int | None = None) -> "GNNPredictor":
        """Train every member on all tasks (NaN targets are skipped).

        From scratch by default. ``warm_start`` continues from the current members for
        ``steps`` steps: a search that refits after every few new cells keeps most of what
        the last fit learned, so a short continuation costs a fraction of a fresh fit.
        ``seed`` varies the batch order of a continuation (default: the config's seed).
        """
        y = target_matrix(cells, targets, self.tasks)
        self._set_normalization(y, self.tasks)
        if not warm_start:
            self.members = [self._new_member(i) for i in range(self.config.ensemble)]
        ops = one_hot_ops(self.space, cells).to(self.device)
        self._train(ops, y, self.tasks, trainable=lambda name: True,
                    seed=self.config.seed if seed is None else seed, steps=steps, progress=progress)
        return self

    def fit_task(self, task: str, cells: Sequence[Cell], values: np.ndarray | None, steps: int | None = None,
                 lr: float | None = None, progress: bool = False, own_head: bool = False) -> "GNNPredictor":
        """Add or retrain one task on the frozen encoder; every other task's predictions stay exactly as they were.

        A new metric gets a new head (and its dataset embedding). A new dataset of a known
        metric (``accuracy@digits`` next to ``accuracy@cifar10``) reuses the metric's head and
        starts from the mean of the known datasets' embeddings and normalisations; with
        ``values`` of a few cells only that embedding is fitted (few-shot transfer), and with
        no cells at all (``values=None``) the mean embedding is the zero-shot prediction.

        ``own_head`` fits the task a fresh head of the metric instead, as for a new metric: for
        a dataset whose ranking the known datasets do not share (an embedding mix of theirs
        cannot express it). The metric's other datasets then predict through that head too,
        so use it on a copy that serves this dataset alone.
        """
        metric = metric_of(task)
        siblings = [t for t in self.tasks if metric_of(t) == metric and t != task]
        if own_head:
            siblings = []
        new_head = task_key(metric) not in self.members[0].heads or not siblings
        for i, member in enumerate(self.members):
            torch.manual_seed(derive_seed(self.config.seed, HOLDOUT_SALT, i))
            if new_head and task_key(metric) in member.heads and task not in siblings:
                del member.heads[task_key(metric)]  # retraining a metric that only this task uses (or own_head)
            if task_key(task) in member.embeddings:
                del member.embeddings[task_key(task)]
            init = torch.stack([member.embeddings[task_key(s)] for s in siblings]).mean(0) if siblings and not new_head else None
            member.add_task(task, init)
        if task not in self.tasks:
            self.tasks.append(task)
        if new_head:
            if values is None:
                raise GennasError(f"metric {metric!r} is new to this predictor: give measured cells to fit it")
            self._set_normalization(target_matrix(cells, {task: values}, [task]), [task])
        else:
            means, stds = zip(*(self.normalization[s] for s in siblings))
            self.normalization[task] = (float(np.mean(means)), float(np.mean(stds)))
        if values is None or len(cells) < 2:
            return self
        y = target_matrix(cells, {task: values}, [task])
        ops = one_hot_ops(self.space, cells).to(self.device)
        if not new_head and len(cells) <= MIXTURE_MAX_CELLS:
            self._fit_mixture(task, siblings, ops, y, steps or 200)
            return self
        own = {f"heads.{task_key(metric)}."} if new_head else set()
        own.add(f"embeddings.{task_key(task)}")
        # An embedding alone is a handful of numbers: it needs a larger step than a network does.
        lr = lr if lr is not None else (self.config.lr if new_head else 0.05)
        self._train(ops, y, [task], trainable=lambda name: any(name.startswith(o) for o in own),
                    seed=derive_seed(self.config.seed, REFIT_SALT, stride=1), steps=steps, lr=lr, progress=progress)
        return self

    def _fit_mixture(self, task: str, siblings: list[str], ops: torch.Tensor, y: np.ndarray, steps: int) -> None:
        """Few-shot transfer: the new embedding is a softmax-weighted mix of the known datasets'.

        With a handful of cells only the mixing weights (one fewer than the known datasets)
        are fitted, under a Gaussian prior that pulls them to the uniform mix: enough freedom
        to lean towards the most similar dataset, too little to overfit five points.
        """
        stacked = self._stacked([task])
        params, buffers = stacked.params, stacked.buffers
        name = f"embeddings.{task_key(task)}"
        known = torch.stack([params[f"embeddings.{task_key(s)}"].detach() for s in siblings], dim=1)  # (M, S, D)
        for value in params.values():
            value.requires_grad_(False)
        mean, std = self.normalization[task]
        target = ((torch.from_numpy(y).float().to(self.device) - mean) / std).expand(len(self.members), -1, -1)
        t = torch.zeros(ops.shape[0], device=self.device)
        z = stacked.encode_all(ops, t)  # the encoder is frozen: each cell is encoded once, not every step
        logits = torch.zeros(len(siblings), device=self.device, requires_grad=True)
        optimizer = torch.optim.Adam([logits], lr=0.1)
        for _ in range(steps):
            params[name] = torch.einsum("s,msd->md", torch.softmax(logits, 0), known)
            # Ranking only: the new dataset's scale is unknown until calibrated below.
            loss = self._loss(stacked.decode(params, buffers, z), target, mse_weight=0.0) / len(self.members)
            loss = loss + MIXTURE_PRIOR * (logits ** 2).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        weights = torch.softmax(logits.detach(), 0)
        with torch.no_grad():
            for i, member in enumerate(self.members):
                member.embeddings[task_key(task)].copy_(weights @ known[i])
            standardised = torch.stack([self._forward(m, ops, t[0], [task]) for m in self.members]).mean(0)
        self.mixtures[task] = dict(zip(siblings, weights.tolist()))
        # Calibrate the scale: least squares of the measured values on the standardised predictions.
        x, values = standardised.view(-1).cpu().numpy(), y[:, 0]
        if len(values) >= 3 and x.std() > 1e-9:
            slope, intercept = np.polyfit(x, values, 1)
            if slope > 0:
                self.normalization[task] = (float(intercept), float(slope))

    def _set_normalization(self, y: np.ndarray, tasks: Sequence[str]) -> None:
        for j, task in enumerate(tasks):
            col = y[:, j][~np.isnan(y[:, j])]
            std = float(col.std()) if len(col) > 1 else 1.0
            self.normalization[task] = (float(col.mean()), std if std > 1e-12 else 1.0)

    def _stacked(self, tasks: list[str]) -> "StackedEnsemble":
        """The ensemble as functions of stacked weights, so a step trains all members at once."""
        params, buffers = stack_module_state(self.members)
        return StackedEnsemble(params, buffers, copy.deepcopy(self.members[0]).to("meta"), tasks,
                               self.adjacency, self.none_index, self.positional)

    def _train(self, ops: torch.Tensor, y: np.ndarray, tasks: list[str], trainable, seed: int,
               steps: int | None = None, lr: float | None = None, progress: bool = False) -> None:
        cfg = self.config
        steps = steps or cfg.steps
        lr = lr or cfg.lr
        gen = torch.Generator().manual_seed(seed)
        mean = torch.tensor([self.normalization[t][0] for t in tasks], device=self.device)
        std = torch.tensor([self.normalization[t][1] for t in tasks], device=self.device)
        target = (torch.from_numpy(y).float().to(self.device) - mean) / std
        labelled = [torch.from_numpy(np.flatnonzero(~np.isnan(y[:, j]))) for j in range(len(tasks))]
        stacked = self._stacked(tasks)
        params, buffers = stacked.params, stacked.buffers
        for name, value in params.items():
            value.requires_grad_(trainable(name))
        # A fit of heads or embeddings alone (the encoder frozen) encodes every clean cell once,
        # and the noised rows of a block of steps in one call; its steps then run the heads only.
        frozen = not any(v.requires_grad for n, v in params.items() if n.startswith(ENCODER))
        clean = stacked.encode_all(ops, torch.zeros(ops.shape[0], device=self.device)) if frozen else None
        leaves = [v for v in params.values() if v.requires_grad]
        optimizer = torch.optim.AdamW(leaves, lr=lr, weight_decay=cfg.weight_decay, foreach=True)
        scheduler = one_cycle(optimizer, lr, steps)
        m = len(self.members)
        bar = tqdm(total=steps, desc="training predictor", disable=not progress, leave=False)
        block = ENCODED_BLOCK if frozen else 1
        for start in range(0, steps, block):
            # Batches are drawn in step order whatever the block, so the stream is the same either way.
            drawn = [self._draw(ops, labelled, m, gen) for _ in range(min(block, steps - start))]
            if frozen:
                encoded = stacked.encode_rows(clean, *(torch.cat(parts, dim=1) for parts in zip(*drawn)))
                inputs = encoded.split(drawn[0][0].shape[1], dim=1)  # one (M, B, H) tensor per step
            for i, (rows, batch, t) in enumerate(drawn):
                pred = (stacked.decode(params, buffers, inputs[i]) if frozen
                        else stacked.forward(params, buffers, batch, t))
                loss = self._loss(pred, target[rows])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                bar.update()
        bar.close()
        with torch.no_grad():
            for i, member in enumerate(self.members):
                for name, value in params.items():
                    member.get_parameter(name).copy_(value[i])

    def _draw(self, ops: torch.Tensor, labelled: list[torch.Tensor], m: int,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One training step's batch: rows (M, B) drawn per task for each member, noised as :meth:`_noised` does.

        Each member draws its own rows: the ensemble's spread then reflects data order too.

        Returns:
            rows (M, B) into the cells, their noised one-hots (M, B, V, K), times (M, B).
        """
        rows = torch.stack([
            torch.cat([idx[torch.randint(len(idx), (min(self.config.batch_per_task, len(idx)),), generator=gen)]
                       for idx in labelled]) for _ in range(m)])
        batch, t = self._noised(ops[rows.flatten()], gen)
        return rows, batch.view(m, -1, *batch.shape[1:]), t.view(m, -1)

    def _noised(self, clean: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise a random ``noise_fraction`` of the batch: half hard draws, half soft marginals."""
        b = clean.shape[0]
        t = torch.zeros(b, device=self.device)
        # Every draw comes from the CPU generator (the same stream on every device), then moves.
        noisy = (torch.rand(b, generator=gen) < self.config.noise_fraction).to(self.device)
        if not noisy.any():
            return clean, t
        t_noisy = torch.rand(int(noisy.sum()), generator=gen).to(self.device)
        t[noisy] = t_noisy
        soft = self.schedule.marginal(clean[noisy], t_noisy)
        hard = self.schedule.sample(clean[noisy].cpu(), t_noisy.cpu(), generator=gen).to(self.device)
        use_soft = (torch.rand(len(t_noisy), generator=gen) < 0.5).view(-1, 1, 1).to(self.device)
        out = clean.clone()
        out[noisy] = torch.where(use_soft, soft, hard)
        return out, t

    def _loss(self, pred: torch.Tensor, target: torch.Tensor, mse_weight: float = 1.0) -> torch.Tensor:
        """Per-member loss summed over members (their weights are disjoint): (M, B, T) inputs."""
        m = pred.shape[0]
        mask = ~torch.isnan(target)
        safe = torch.where(mask, target, torch.zeros_like(target))
        mse = ((pred - safe) ** 2 * mask).sum() / mask.sum().clamp_min(1)
        mse = mse_weight * mse
        if self.config.rank_weight <= 0:
            return m * mse
        # Pairwise gap hinge within each task: a labelled pair costs only while its predicted
        # gap is smaller than the true gap (or reversed). Unlike a logistic pair loss it stops
        # pushing at the truth, so it sharpens ranking without inflating the scale: with the
        # logistic loss the best cells were predicted ~4 points too high and cost heads
        # stalled at R^2 0.982; with this one ~1.3 points and 0.991, at the same Kendall tau.
        diff_true = safe.unsqueeze(-2) - safe.unsqueeze(-3)  # (M, B, B, T): y_j - y_i
        diff_pred = pred.unsqueeze(-2) - pred.unsqueeze(-3)
        pair_mask = mask.unsqueeze(-2) & mask.unsqueeze(-3) & (diff_true.abs() > 1e-3)
        rank = torch.relu(diff_true.abs() - torch.sign(diff_true) * diff_pred)
        rank = (rank * pair_mask).sum() / pair_mask.sum().clamp_min(1)
        return m * (mse + self.config.rank_weight * rank)

    # ------------------------------------------------------------- inference
    def predict(self, cells: Sequence[Cell], tasks: Sequence[str] | None = None, batch_size: int = 2048) -> dict[str, Prediction]:
        """Ensemble mean and spread per task for clean cells, in the metric's own units."""
        tasks = self._check_tasks(tasks)
        ops = one_hot_ops(self.space, cells).to(self.device)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(cells), batch_size):
                part = ops[start:start + batch_size]
                t = torch.zeros(len(part), device=self.device)
                chunks.append(self._member_outputs(part, t, tasks))
        if not chunks:
            return {task: Prediction(np.empty(0), np.empty(0)) for task in tasks}
        stacked = torch.cat(chunks, dim=1)  # (M, N, T)
        mean, std = stacked.mean(0).cpu().numpy(), stacked.std(0, unbiased=False).cpu().numpy()
        return {task: Prediction(mean[:, j], std[:, j]) for j, task in enumerate(tasks)}

    def predict_soft(self, ops: torch.Tensor, t: torch.Tensor, tasks: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable (mean, std) of shape (B, T) for value distributions (B, V, K) at times t (B,)."""
        tasks = self._check_tasks(tasks)
        expected = (len(self.space.choices), num_values(self.space))
        if ops.dim() != 3 or tuple(ops.shape[1:]) != expected:
            raise GennasError(f"soft cells must have shape (B, {expected[0]}, {expected[1]}), got {tuple(ops.shape)}")
        stacked = self._member_outputs(ops.to(self.device), t.to(self.device), tasks)
        return stacked.mean(0), stacked.std(0, unbiased=False)

    def _member_outputs(self, ops: torch.Tensor, t: torch.Tensor, tasks: list[str]) -> torch.Tensor:
        """(M, B, T) predictions of every member, in original units."""
        scale = torch.tensor([self.normalization[task][1] for task in tasks], device=self.device)
        shift = torch.tensor([self.normalization[task][0] for task in tasks], device=self.device)
        return torch.stack([self._forward(m, ops, t, tasks) for m in self.members]) * scale + shift

    def _check_tasks(self, tasks: Sequence[str] | None) -> list[str]:
        tasks = list(tasks) if tasks is not None else list(self.tasks)
        missing = [t for t in tasks if t not in self.tasks or t not in self.normalization]
        if missing:
            raise GennasError(f"predictor has no trained head for {missing}; it predicts {self.tasks}")
        return tasks

    def copy(self) -> "GNNPredictor":
        return copy.deepcopy(self)


class StackedEnsemble:
    """An ensemble's weights stacked along a leading member axis (M), and the functions that use them.

    ``torch.func.vmap`` over one meta-device template runs every member in one call. The
    encoder and the heads are separate functions too, so a fit on a frozen encoder can
    encode its cells once and train the heads on the stored encodings: clean cells'
    encodings never change while only heads or embeddings learn.
    """

    def __init__(self, params: dict, buffers: dict, template: MultiHeadNet, tasks: list[str],
                 adjacency: torch.Tensor, none_index: int | None, positional: bool) -> None:
        self.params, self.buffers = params, buffers

        def whole(p, b, ops, t):
            x, alive = node_inputs(ops, none_index, positional)
            return functional_call(template, (p, b), (x, adjacency, alive, t, tasks))

        def encoder(p, b, ops, t):
            x, alive = node_inputs(ops, none_index, positional)
            return functional_call(template.encoder, (p, b), (x, adjacency, alive, t))

        decoder = TaskHeads(template)

        def heads(p, b, z):
            return functional_call(decoder, (p, b), (z, tasks))

        self._whole, self._encoder, self._heads = vmap(whole), vmap(encoder), vmap(heads)
        self._encoder_all = vmap(encoder, in_dims=(0, 0, None, None))
        # Each part is called with its own weights only: swapping the rest in costs more than a head's step.
        self._encoder_weights = tuple({k[len(ENCODER):]: v for k, v in d.items() if k.startswith(ENCODER)}
                                      for d in (params, buffers))

    def forward(self, params: dict, buffers: dict, ops: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Standardised outputs (M, B, T) of each member on its own rows.

        Shapes: ``ops`` (M, B, V, K) one-hot or soft op choices, ``t`` (M, B) diffusion times.
        """
        return self._whole(params, buffers, ops, t)

    def encode_all(self, ops: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Every member's encodings (M, N, H) of the same cells, without gradients.

        Shapes: ``ops`` (N, V, K), ``t`` (N,).
        """
        with torch.no_grad():
            return self._encoder_all(*self._encoder_weights, ops, t)

    def encode_rows(self, clean: torch.Tensor, rows: torch.Tensor, ops: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Encodings (M, B, H) of a batch: stored ones for clean rows, the frozen encoder's for noised rows.

        A row at ``t == 0`` is its clean cell (noising at time 0 changes nothing), so only rows
        with ``t > 0`` are encoded. Members noise different numbers of rows; each member's
        noised rows are moved to the front and the batch is cut at the largest count.

        Shapes: ``clean`` (M, N, H) from :meth:`encode_all`, ``rows`` (M, B) indices into its
        cells, ``ops`` (M, B, V, K) the batch as noised, ``t`` (M, B).
        """
        members = torch.arange(rows.shape[0], device=rows.device).unsqueeze(1)
        z = clean[members, rows]
        noisy = t > 0
        counts = noisy.sum(dim=1, keepdim=True)
        k = int(counts.max())
        if k == 0:
            return z
        front = torch.argsort((~noisy).to(torch.int8), dim=1, stable=True)[:, :k]  # noised rows first
        with torch.no_grad():
            encoded = self._encoder(*self._encoder_weights, ops[members, front], t[members, front])
        m, j = (torch.arange(k, device=rows.device) < counts).nonzero(as_tuple=True)
        z[m, front[m, j]] = encoded[m, j]
        return z

    def decode(self, params: dict, buffers: dict, z: torch.Tensor) -> torch.Tensor:
        """Standardised outputs (M, B, T) of each member's heads on encodings ``z`` (M, B, H)."""
        outside = [{k: v for k, v in d.items() if not k.startswith(ENCODER)} for d in (params, buffers)]
        return self._heads(*outside, z)
