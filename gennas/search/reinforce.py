"""REINFORCE (Williams, 1992) with a factorised op policy and a moving-average baseline.

The policy is one categorical distribution per search variable of the space (an edge's op
on NB201; a node's input pair or an input's op on DARTS, values beyond a variable's range masked); each sampled cell's reward is its
fitness minus an exponential moving average of past rewards, and the logits follow the
policy gradient with Adam. Rewards are in the metric's own units divided by a fixed
scale so the step size does not depend on the dataset.
"""

from __future__ import annotations

from typing import Sequence

import torch

from gennas.search.searcher import Result, SearchContext, Searcher
from gennas.space.cell import Cell
from gennas.space.protocol import cardinalities, decode_valid


class Reinforce(Searcher):
    def __init__(self, context: SearchContext, lr: float = 0.1, momentum: float = 0.9, reward_scale: float = 1.0) -> None:
        super().__init__(context)
        cards = cardinalities(self.space)
        self.logits = torch.zeros(len(cards), max(cards), requires_grad=True)
        # -inf past each variable's last value: no probability, no gradient
        self.mask = torch.arange(max(cards)).view(1, -1) >= torch.tensor(cards).view(-1, 1)
        self.optimizer = torch.optim.Adam([self.logits], lr=float(context.options.get("lr", lr)))
        self.momentum = momentum
        self.reward_scale = reward_scale
        self.baseline: float | None = None
        self.generator = torch.Generator().manual_seed(context.seed)

    def ask(self, n: int) -> list[Cell]:
        probs = torch.softmax(self._masked(self.logits.detach()), dim=-1)
        for _ in range(1000):  # rejection only matters in spaces that forbid some cells
            values = torch.multinomial(probs, 1, generator=self.generator).view(-1)
            cell = decode_valid(self.space, values.numpy())
            if cell is not None:
                return [cell]
        return self.random_unseen(1)

    def _masked(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.masked_fill(self.mask, float("-inf"))

    def tell(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        super().tell(cells, results)
        for cell, reward in zip(cells, self.fitness(results) / self.reward_scale):
            baseline = reward if self.baseline is None else self.baseline
            index = torch.as_tensor(self.space.encode(cell))
            log_prob = torch.log_softmax(self._masked(self.logits), dim=-1).gather(1, index.view(-1, 1)).sum()
            loss = -(float(reward) - baseline) * log_prob
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.baseline = self.momentum * baseline + (1 - self.momentum) * float(reward)
