"""Regularized evolution (Real et al., 2019): aging population, tournament, one mutation.

The oldest member dies each step rather than the worst, which keeps the population
moving and is what makes REA robust to noisy evaluations. With several objectives each
tournament is judged under a fresh random preference vector (ParEGO-style).
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

from gennas.search.searcher import Result, SearchContext, Searcher
from gennas.space.cell import Cell


class RegularizedEvolution(Searcher):
    derives_children = True  # each child from its tournament winner (warm_start=net2net)

    def __init__(self, context: SearchContext, population_size: int = 10, tournament_size: int = 3) -> None:
        super().__init__(context)
        self.population_size = int(context.options.get("population_size", population_size))
        self.tournament_size = int(context.options.get("tournament_size", tournament_size))
        self.population: deque[Cell] = deque()

    def ask(self, n: int) -> list[Cell]:
        if len(self.population) < self.population_size:
            return self.random_unseen(1)
        members = [self.population[i] for i in self.rng.choice(len(self.population), self.tournament_size, replace=False)]
        weights = self.random_weights()
        scores = self.fitness([self.seen[m.to_string()] for m in members], weights)
        parent = members[int(scores.argmax())]
        child = self.space.mutate(parent, self.rng)
        for _ in range(100):  # prefer an unmeasured child; a measured one is free but wastes a step
            if self.unseen(child):
                break
            child = self.space.mutate(parent, self.rng)
        self.derived_from[child.to_string()] = parent
        return [child]

    def tell(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        super().tell(cells, results)
        for cell in cells:
            self.population.append(cell)
            if len(self.population) > self.population_size:
                self.population.popleft()
