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
default, by its first-order estimate ``∇_{x_t} score``.
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
from gennas.space.cell import Cell
from gennas.space.space import CellSpace
from predictors.encoding import line_graph, node_inputs, one_hot_ops
from predictors.gnn import GraphTrunk

#: score(x_t one-hot (B, E, K), t (B,)) -> (B,) differentiable; higher is better.
Guide = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FORMAT, VERSION = "gennas-generator", 1
CHECKPOINT = FileFormat(FORMAT, "generator checkpoint", version=VERSION)
#: Guidance acts once the chain is below this noise level; above it a state says little
#: about the final cell, so the predictor's opinion of it is mostly noise (and costs as much).
GUIDANCE_T_MAX = 0.6
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
    def __init__(self, num_ops: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.trunk = GraphTrunk(2 + num_ops, hidden, layers)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, num_ops))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, adjacency: torch.Tensor, none_index: int | None) -> torch.Tensor:
        x, alive = node_inputs(x_t, none_index)
        return self.out(self.trunk.node_states(x, adjacency, alive, t)[:, 1:-1])  # (B, E, K) logits of x_0


class CellDiffusion:
    """A generator for one space: ``fit`` on cells, ``sample`` (optionally guided) valid, distinct cells."""

    def __init__(self, space: CellSpace, config: DiffusionConfig | None = None, prior: torch.Tensor | None = None) -> None:
        self.space = space
        self.config = config or DiffusionConfig()
        k = len(space.ops)
        self.schedule = OpNoiseSchedule(k, prior)
        self.none_index = space.ops.index("none") if "none" in space.ops else None
        self.adjacency = line_graph(space)
        torch.manual_seed(self.config.seed)
        self.denoiser = Denoiser(k, self.config.hidden, self.config.layers)

    # ---------------------------------------------------------------- training
    def fit(self, cells: Sequence[Cell], progress: bool = False) -> list[float]:
        """Train the denoiser on ``cells``; the noise prior becomes their op marginals. Returns the loss curve."""
        if len(cells) < 2:
            raise GennasError("the generator needs at least 2 training cells")
        x0 = one_hot_ops(self.space, cells)
        self.schedule = OpNoiseSchedule(len(self.space.ops), x0.mean(dim=(0, 1)).clamp_min(1e-4) / x0.mean(dim=(0, 1)).clamp_min(1e-4).sum())
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.denoiser = Denoiser(len(self.space.ops), cfg.hidden, cfg.layers)
        optimizer = torch.optim.AdamW(self.denoiser.parameters(), lr=cfg.lr, weight_decay=1e-4, foreach=True)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.05)
        losses = []
        self.denoiser.train()
        for _ in tqdm(range(cfg.steps), desc="training generator", disable=not progress):
            rows = torch.randint(len(x0), (min(cfg.batch_size, len(x0)),), generator=gen)
            clean = x0[rows]
            t = torch.rand(len(rows), generator=gen)
            noisy = self.schedule.sample(clean, t, generator=gen)
            logits = self.denoiser(noisy, t, self.adjacency, self.none_index)
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
        """Run the reverse chain for ``n`` samples; returns (n, E) op indices."""
        k, e = len(self.space.ops), self.space.num_edges
        prior = self.schedule.prior
        x = torch.nn.functional.one_hot(torch.multinomial(prior.expand(n * e, k), 1, generator=generator).view(n, e), k).float()
        times = torch.linspace(1.0, 0.0, self.config.sample_steps + 1)
        if guide is not None and hasattr(guide, "start_chain"):
            guide.start_chain(n, generator)  # e.g. one preference vector per sample for this chain
        for t_now, t_next in zip(times[:-1], times[1:]):
            t = torch.full((n,), float(t_now))
            with torch.no_grad():
                x0_probs = torch.softmax(self.denoiser(x, t, self.adjacency, self.none_index), dim=-1)
            a_t, a_s = self.schedule.alpha_bar(t_now), self.schedule.alpha_bar(t_next)
            a_ts = (a_t / a_s.clamp_min(1e-8)).clamp(0, 1)
            # q(x_t | x_s = j) as a function of j, for the observed x_t; then times q(x_s = j | x̂_0).
            forward = a_ts * x + (1 - a_ts) * (x * prior).sum(-1, keepdim=True)
            marginal = a_s * x0_probs + (1 - a_s) * prior
            log_post = torch.log((forward * marginal).clamp_min(1e-20))
            if guide is not None and scale > 0 and t_now <= GUIDANCE_T_MAX:
                if hasattr(guide, "lookahead"):  # exact per-edge score changes when the guide offers them
                    tilt = guide.lookahead(x, t)
                else:
                    x_in = x.clone().requires_grad_(True)
                    with torch.enable_grad():
                        tilt, = torch.autograd.grad(guide(x_in, t).sum(), x_in)
                log_post = log_post + scale * tilt
            x = torch.nn.functional.one_hot(
                torch.multinomial(torch.softmax(log_post, -1).view(-1, k), 1, generator=generator).view(n, e), k).float()
        return x.argmax(-1)

    def sample(self, n: int, seed: int = 0, guide: Guide | None = None, scale: float = 0.0,
               max_rounds: int = 20) -> list[Cell]:
        """``n`` distinct (by canonical form) valid cells of the space.

        Invalid draws (cut-off output where the space forbids it) and duplicates are
        dropped and the shortfall is sampled again, so what comes back always meets the
        space's rules. Fewer than ``n`` come back when the space cannot supply them, or
        when a chain's draws are mostly repeats (``MIN_NEW_FRACTION``): the distribution,
        guided or not, has no more distinct cells worth their cost.
        """
        generator = torch.Generator().manual_seed(seed)
        found: dict[str, Cell] = {}
        for _ in range(max_rounds):
            need = n - len(found)
            if need <= 0:
                break
            ops = self.sample_ops(max(need + need // 4, 8), generator, guide, scale)
            before = len(found)
            for row in ops.tolist():
                cell = Cell(tuple(self.space.ops[i] for i in row))
                if self.space.contains(cell) and cell.canonical not in found:
                    found[cell.canonical] = cell
                    if len(found) == n:
                        break
            if len(found) < n and mostly_repeats(len(found) - before, len(ops)):
                break
        return list(found.values())

    # ------------------------------------------------------------- checkpoints
    def save(self, path: str | Path) -> Path:
        payload = {"config": self.config.to_dict(),
                   "space": {"name": self.space.name, "n_nodes": self.space.n_nodes, "ops": list(self.space.ops),
                             "require_connected": self.space.require_connected},
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
            s = payload["space"]
            space = CellSpace(s["n_nodes"], tuple(s["ops"]), s["require_connected"], s["name"])
            model = cls(space, DiffusionConfig.from_dict(payload["config"]), payload["prior"])
            model.denoiser.load_state_dict(payload["denoiser"])
        except GennasError:
            raise
        except Exception as exc:
            raise GennasError(f"generator checkpoint {path} is unreadable or corrupt ({type(exc).__name__}); "
                              "retrain it with `gennas generator train`") from exc
        model.denoiser.eval()
        return model


def op_marginals(space: CellSpace, cells: Sequence[Cell]) -> np.ndarray:
    """Share of each op over all edges of ``cells`` (to compare samples with training data)."""
    return one_hot_ops(space, cells).mean(dim=(0, 1)).numpy()
