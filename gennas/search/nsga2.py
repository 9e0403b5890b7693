"""NSGA-II through pymoo: the cell space as a pymoo `Problem`, pymoo's own operators.

The genome is one integer per search variable of the space (``space.choices``: an edge's op
on NB201, a node's input pair or an input's op on DARTS). Variation is pymoo's: uniform
crossover (the ops are categories, not ordered numbers, so per-edge swapping is the
meaningful recombination) and polynomial mutation with rounding; pymoo removes duplicate
genomes, sorts fronts and computes crowding. `CellProblem` also works on its own with
``pymoo.optimize.minimize`` when given an evaluation function (e.g. ``oracle.query``);
inside gennas' loop the searcher drives the algorithm through pymoo's ask/tell so the
loop keeps the budget.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.operators.mutation.pm import PM
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from gennas.objectives import Objective, minimisation_matrix
from gennas.search.searcher import Result, SearchContext, Searcher
from gennas.space.cell import Cell
from gennas.space.protocol import ArchSpace, cardinalities, decode_valid


class CellProblem(Problem):
    """Minimise the objectives (maximised ones negated) over the space's variable indices."""

    def __init__(self, space: ArchSpace, objectives: list[Objective],
                 evaluate: Callable[[Cell], Result] | None = None) -> None:
        super().__init__(n_var=len(space.choices), n_obj=len(objectives), xl=0,
                         xu=np.array(cardinalities(space)) - 1, vtype=int)
        self.space, self.objectives, self.measure = space, objectives, evaluate

    def decode(self, x: np.ndarray) -> Cell:
        return self.space.decode(np.asarray(np.around(x), dtype=int))

    def decode_valid(self, x: np.ndarray) -> Cell | None:
        """The genome's architecture, or None where the space forbids it."""
        return decode_valid(self.space, np.asarray(np.around(x), dtype=int))

    def _evaluate(self, x, out, *args, **kwargs):
        if self.measure is None:
            raise RuntimeError("CellProblem was built without an evaluation function; give one to use pymoo.minimize")
        out["F"] = minimisation_matrix([self.measure(self.decode(row)) for row in x], self.objectives)


class ValidCellRepair(Repair):
    """Rounds to op indices and replaces genomes the space forbids (e.g. a cut-off output)."""

    def _do(self, problem, X, random_state=None, **kwargs):
        X = np.clip(np.around(X), problem.xl, problem.xu).astype(int)
        rng = random_state if random_state is not None else np.random.default_rng()
        for i, row in enumerate(X):
            if problem.decode_valid(row) is None:
                X[i] = problem.space.encode(problem.space.sample(rng))
        return X


def make_nsga2(pop_size: int) -> NSGA2:
    repair = ValidCellRepair()
    return NSGA2(pop_size=pop_size, sampling=IntegerRandomSampling(), crossover=UniformCrossover(repair=repair),
                 mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=repair), repair=repair, eliminate_duplicates=True)


class NSGA2Searcher(Searcher):
    """Feeds pymoo's NSGA-II one generation at a time, answering its infills from the loop."""

    def __init__(self, context: SearchContext, pop_size: int = 20) -> None:
        super().__init__(context)
        self.problem = CellProblem(self.space, self.objectives)
        self.algorithm = make_nsga2(int(context.options.get("pop_size", pop_size)))
        self.algorithm.setup(self.problem, termination=NoTermination(), seed=context.seed)
        self.generation = None
        self.pending: list[int] = []  # indices of the generation not handed out yet
        self.answers: dict[int, Result] = {}
        self._handed: list[int] = []  # indices handed out by the last ask, answered by the next tell

    def ask(self, n: int) -> list[Cell]:
        if self.generation is None:
            self.generation = self.algorithm.ask()
            self.pending, self.answers = list(range(len(self.generation))), {}
        handed, self.pending = self.pending[:n], self.pending[n:]
        self._handed = handed
        return [self.problem.decode(self.generation[i].X) for i in handed]

    def tell(self, cells: Sequence[Cell], results: Sequence[Result]) -> None:
        super().tell(cells, results)
        for i, result in zip(self._handed, results):
            self.answers[i] = result
        if self.generation is not None and len(self.answers) == len(self.generation):
            rows = [self.answers[i] for i in range(len(self.generation))]
            self.generation.set("F", minimisation_matrix(rows, self.objectives))
            self.algorithm.tell(infills=self.generation)
            self.generation = None
