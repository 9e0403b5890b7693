"""Discrete graph diffusion over cell ops (D3PM with a marginal prior), with gradient guidance.

Why discrete: a cell *is* a choice of one op per edge, so noising replaces ops by draws
from the training marginals and every intermediate state is itself a cell; samples are
valid by construction instead of rounded from continuous noise. The denoiser is the
predictor's graph trunk (bidirectional dense GIN over the op-on-node graph) with a
per-edge head that predicts the clean op distribution.

Sampling runs the reverse chain in ``sample_steps`` steps; at each step the posterior
``p(x_s | x_t) ∝ q(x_t | x_s) q(x_s | x̂_0)`` is formed from the denoiser's estimate x̂_0.
Guidance (DiGress-style classifier guidance) adds ``scale * Δ(x_t, t)`` to the
log-posterior, where Δ[e, k] is how much the noise-aware predictor's score changes when
edge e switches to op k. A guide may compute Δ exactly (``lookahead``: E*K evaluations,
cheap for cells, and a far better guide than the gradient on NB201) or, by
default and on spaces with more than ``LOOKAHEAD_MAX`` (variable, value) pairs (DARTS), by
its first-order estimate ``∇_{x_t} score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gennas.space.noise import OpNoiseSchedule
from gennas.config import DictConfig
from gennas.errors import GennasError
from gennas.io import FileFormat
from gennas.space.protocol import ArchSpace, decode_valid
from gennas.space.space import space_from_record
from predictors.encoding import (in_features, line_graph, node_inputs, none_index, num_values, one_hot_ops,
                                 uniform_prior, value_mask)
from predictors.gnn import GraphTrunk

#: score(x_t one-hot (B, E, K), t (B,)) -> (B,) differentiable; higher is better.
Guide = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FORMAT, VERSION = "gennas-generator", 1
CHECKPOINT = FileFormat(FORMAT, "generator checkpoint", version=VERSION)
#: Guidance acts once the chain is below this noise level; above it a state says little
#: about the final cell, so the predictor's opinion of it is mostly noise (and costs as much).
GUIDANCE_T_MAX = 0.6
#: The exact lookahead costs V*K guide evaluations per sample and step: worth it on cell spaces (NB201 30,
#: dag6 75), not on DARTS (240), where the first-order gradient is used instead.
LOOKAHEAD_MAX = 100
#: A chain whose draws are fewer than this fraction new has collapsed onto what is already
#: found (strong guidance does that): more chains would cost far more than they add.
MIN_NEW_FRACTION = 1 / 8


def mostly_repeats(new: int, drawn: int) -> bool:
    """True when fewer than ``MIN_NEW_FRACTION`` of ``drawn`` samples were new (always when none was)."""
    return new < max(1.0, MIN_NEW_FRACTION * drawn)


@dataclass
class DiffusionConfig(DictConfig):
    config_kind = "generator"

    hidden: int = 64
    layers: int = 4
    steps: int = 3000
    batch_size: int = 256
    lr: float = 2e-3
    sample_steps: int = 50
    seed: int = 0


class Denoiser(nn.Module):
    def __init__(self, num_ops: int, hidden: int, layers: int, in_features: int | None = None) -> None:
        super().__init__()
        self.trunk = GraphTrunk(in_features or 2 + num_ops, hidden, layers)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, num_ops))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, adjacency: torch.Tensor, none_index: int | None,
                positional: bool = False) -> torch.Tensor:
        x, alive = node_inputs(x_t, none_index, positional)
        return self.out(self.trunk.node_states(x, adjacency, alive, t)[:, 1:-1])  # (B, V, K) logits of x_0


class CellDiffusion:
    """A generator for one space: ``fit`` on architectures, ``sample`` (optionally guided) valid, distinct ones.

    Works on the space's search variables (``space.choices``): on cell spaces one per edge,
    on DARTS one per node's input pair and per input's op. Values a variable lacks are
    masked out of the prior and of the denoiser's logits, so every state of the chain, and
    every sample, decodes to an architecture (:attr:`invalid_draws` counts any that do not).
    """

    def __init__(self, space: ArchSpace, config: DiffusionConfig | None = None, prior: torch.Tensor | None = None) -> None:
        self.space = space
        self.config = config or DiffusionConfig()
        self.num_values = num_values(space)
        self.mask = value_mask(space)  # (V, K)
        self.schedule = OpNoiseSchedule(self.num_values, prior if prior is not None else uniform_prior(space))
        self.none_index = none_index(space)
        self.positional = space.graph_positional
        self.adjacency = line_graph(space)
        self.invalid_draws = 0
        torch.manual_seed(self.config.seed)
        self.denoiser = self._new_denoiser()

    def _new_denoiser(self) -> Denoiser:
        return Denoiser(self.num_values, self.config.hidden, self.config.layers, in_features(self.space))

    def _logits(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoiser's x_0 logits, (B, V, K), with values a variable lacks at -inf."""
        logits = self.denoiser(x, t, self.adjacency, self.none_index, self.positional)
        return logits.masked_fill(~self.mask, float("-inf"))

    # ---------------------------------------------------------------- training
    def fit(self, cells: Sequence, progress: bool = False) -> list[float]:
        """Train the denoiser on ``cells``; the noise prior becomes their value marginals. Returns the loss curve.

        Cell spaces share one op marginal over edges; spaces whose variables differ (DARTS) get
        one marginal per variable, zero on the values it lacks.
        """
        if len(cells) < 2:
            raise GennasError("the generator needs at least 2 training cells")
        x0 = one_hot_ops(self.space, cells)
        shared = uniform_prior(self.space).dim() == 1
        counts = x0.mean(dim=(0, 1)) if shared else x0.mean(dim=0)
        counts = counts.clamp_min(1e-4) * (1 if shared else self.mask.float())
        self.schedule = OpNoiseSchedule(self.num_values, counts / counts.sum(-1, keepdim=True))
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.denoiser = self._new_denoiser()
        optimizer = torch.optim.AdamW(self.denoiser.parameters(), lr=cfg.lr, weight_decay=1e-4, foreach=True)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.05)
        losses = []
        self.denoiser.train()
        for _ in tqdm(range(cfg.steps), desc="training generator", disable=not progress):
            rows = torch.randint(len(x0), (min(cfg.batch_size, len(x0)),), generator=gen)
            clean = x0[rows]
            t = torch.rand(len(rows), generator=gen)
            noisy = self.schedule.sample(clean, t, generator=gen)
            logits = self._logits(noisy, t)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), clean.argmax(-1).reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        self.denoiser.eval()
        return losses

    # ---------------------------------------------------------------- sampling
    def sample_ops(self, n: int, generator: torch.Generator, guide: Guide | None = None, scale: float = 0.0) -> torch.Tensor:
        """Run the reverse chain for ``n`` samples; returns (n, V) value indices."""
        k, e = self.num_values, len(self.space.choices)
        prior = self.schedule.prior
        x = torch.nn.functional.one_hot(torch.multinomial(prior.expand(n, e, k).reshape(n * e, k), 1,
                                                          generator=generator).view(n, e), k).float()
        times = torch.linspace(1.0, 0.0, self.config.sample_steps + 1)
        if guide is not None and hasattr(guide, "start_chain"):
            guide.start_chain(n, generator)  # e.g. one preference vector per sample for this chain
        for t_now, t_next in zip(times[:-1], times[1:]):
            t = torch.full((n,), float(t_now))
            with torch.no_grad():
                x0_probs = torch.softmax(self._logits(x, t), dim=-1)
            a_t, a_s = self.schedule.alpha_bar(t_now), self.schedule.alpha_bar(t_next)
            a_ts = (a_t / a_s.clamp_min(1e-8)).clamp(0, 1)
            # q(x_t | x_s = j) as a function of j, for the observed x_t; then times q(x_s = j | x̂_0).
            forward = a_ts * x + (1 - a_ts) * (x * prior).sum(-1, keepdim=True)
            marginal = a_s * x0_probs + (1 - a_s) * prior
            log_post = torch.log((forward * marginal).clamp_min(1e-20))
            if guide is not None and scale > 0 and t_now <= GUIDANCE_T_MAX:
                if hasattr(guide, "lookahead") and e * k <= LOOKAHEAD_MAX:  # exact per-variable score changes
                    tilt = guide.lookahead(x, t)
                else:
                    x_in = x.clone().requires_grad_(True)
                    with torch.enable_grad():
                        tilt, = torch.autograd.grad(guide(x_in, t).sum(), x_in)
                log_post = log_post + scale * tilt
            log_post = log_post.masked_fill(~self.mask, float("-inf"))  # a value a variable lacks: never drawn
            x = torch.nn.functional.one_hot(
                torch.multinomial(torch.softmax(log_post, -1).view(-1, k), 1, generator=generator).view(n, e), k).float()
        return x.argmax(-1)

    def sample(self, n: int, seed: int = 0, guide: Guide | None = None, scale: float = 0.0,
               max_rounds: int = 20) -> list:
        """``n`` distinct (by canonical form) valid cells of the space.

        Invalid draws (cut-off output where the space forbids it) and duplicates are
        dropped and the shortfall is sampled again, so what comes back always meets the
        space's rules. Fewer than ``n`` come back when the space cannot supply them, or
        when a chain's draws are mostly repeats (``MIN_NEW_FRACTION``): the distribution,
        guided or not, has no more distinct cells worth their cost.
        """
        generator = torch.Generator().manual_seed(seed)
        found: dict[str, object] = {}
        for _ in range(max_rounds):
            need = n - len(found)
            if need <= 0:
                break
            ops = self.sample_ops(max(need + need // 4, 8), generator, guide, scale)
            before = len(found)
            for row in ops.tolist():
                cell = decode_valid(self.space, row)
                if cell is None:
                    self.invalid_draws += 1  # a dagN cell cut off from its input; never on DARTS
                    continue
                if cell.canonical not in found:
                    found[cell.canonical] = cell
                    if len(found) == n:
                        break
            if len(found) < n and mostly_repeats(len(found) - before, len(ops)):
                break
        return list(found.values())

    # ------------------------------------------------------------- checkpoints
    def save(self, path: str | Path) -> Path:
        payload = {"config": self.config.to_dict(), "space": self.space.record(),
                   "prior": self.schedule.prior, "denoiser": self.denoiser.state_dict()}
        return CHECKPOINT.save(path, payload)

    @classmethod
    def load(cls, path: str | Path) -> "CellDiffusion":
        path = Path(path)
        if not path.is_file():
            raise GennasError(f"generator checkpoint {path} not found; train one with `gennas generator train`")
        # The committed weights predate the hash: they load unchecked.
        payload = CHECKPOINT.load(path, "retrain it with `gennas generator train`",
                                  f"{path} is not a version-{VERSION} gennas generator checkpoint")
        try:
            space = space_from_record(payload["space"])
            model = cls(space, DiffusionConfig.from_dict(payload["config"]), payload["prior"])
            model.denoiser.load_state_dict(payload["denoiser"])
        except GennasError:
            raise
        except Exception as exc:
            raise GennasError(f"generator checkpoint {path} is unreadable or corrupt ({type(exc).__name__}); "
                              "retrain it with `gennas generator train`") from exc
        model.denoiser.eval()
        return model


def op_marginals(space: ArchSpace, cells: Sequence) -> np.ndarray:
    """Share of each op over all edges of ``cells`` (to compare samples with training data)."""
    return one_hot_ops(space, cells).mean(dim=(0, 1)).numpy()
