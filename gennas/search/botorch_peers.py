"""BoTorch as gennas searchers: a GP over the cell's categorical encoding, acquisition over a finite set.

The cell is its per-edge op indices, every dimension categorical: each measured metric is
modelled by BoTorch's ``MixedSingleTaskGP`` (with only categorical dimensions it is a
scaled ``CategoricalKernel`` GP, hyperparameters fitted by ``fit_gpytorch_mll``); free
cost objectives (FLOPs, memory) enter exactly, as a ``GenericDeterministicModel`` beside
the GP in a ``ModelList``, as they do for every gennas method. Each round the acquisition
is maximised by ``optimize_acqf_discrete`` (sequential greedy for a batch) over a pool of
unmeasured cells drawn uniformly from the space, measured cells excluded:

- ``botorch-qlogei`` (one objective): ``qLogExpectedImprovement`` over the best measured value;
- ``botorch-qnehvi`` (several): ``qLogNoisyExpectedHypervolumeImprovement``, the log form
  of qNEHVI BoTorch recommends over the legacy ``qNoisyExpectedHypervolumeImprovement``,
  with the reference point BoTorch infers from the measured front (the true front is
  the scorer's, never the searcher's).

The first ``n_init`` cells are uniform random, or the transfer prior's best cells when
there is a prior. Every round runs under its own torch seed, so the same seed gives the
same history.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from gennas.errors import GennasError
from gennas.objectives import minimisation_matrix
from gennas.search.peers import prior_cells, require
from gennas.search.searcher import SearchContext, Searcher
from gennas.seeds import derive_seed
from gennas.space.cell import Cell
from gennas.space.protocol import mixed_radix


class BoTorchSearcher(Searcher):
    """GP-based BO with BoTorch; subclasses choose the acquisition function."""

    batch_size = 5
    method: ClassVar[str] = "botorch"
    #: How many objectives the acquisition handles: "one" or "several".
    arity: ClassVar[str] = "one"

    def __init__(self, context: SearchContext) -> None:
        super().__init__(context)
        self._check_arity()
        require("botorch", self.method)  # here, with the extra named, rather than at the first fit
        options = context.options
        self.n_init = int(options.get("n_init", 10))
        self.n_candidates = int(options.get("candidates", 1000))
        self.warm = prior_cells(context, self.n_init)
        self.rounds = 0
        self._costs: dict[str, dict[str, float]] = {}  # free costs by cell string

    def _check_arity(self) -> None:
        several = len(self.objectives) > 1
        if several != (self.arity == "several"):
            other = "botorch-qnehvi" if several else "botorch-qlogei"
            raise GennasError(f"--method {self.method} takes {self.arity} objective(s), got "
                              f"{len(self.objectives)}; use --method {other}")

    def ask(self, n: int) -> list[Cell]:
        if len(self.seen) < self.n_init:
            warm = [c for c in self.warm if self.unseen(c)][:min(n, self.n_init - len(self.seen))]
            return warm or self.random_unseen(min(n, self.n_init - len(self.seen)))
        pool = self.random_unseen(self.n_candidates)
        if len(pool) <= n:
            return pool or self.random_unseen(n)
        from botorch.optim import optimize_acqf_discrete

        self.rounds += 1
        with torch.random.fork_rng(), warnings.catch_warnings():
            torch.manual_seed(derive_seed(self.context.seed, self.rounds))
            warnings.simplefilter("ignore")  # fitting and numerics warnings of small data; the fit still stands
            acquisition = self.acquisition(self._train_x(), self._train_y(), self.order + pool)
            choices = self._encode(pool)
            chosen, _ = optimize_acqf_discrete(acquisition, q=n, choices=choices, unique=True)
        return [self.space.decode(row) for row in chosen.round().long().tolist()]

    @abstractmethod
    def acquisition(self, train_x: Any, train_y: Any, cells: list[Cell]) -> Any:
        """The acquisition function on the model of every measured cell (``train_y`` maximised).

        Args:
            train_x, train_y: encodings and signed objective values of the measured cells.
            cells: every cell the acquisition will be evaluated on (measured and candidates).
        """

    # ---------------------------------------------------------------- the model
    def model(self, train_x: Any, train_y: Any, cells: list[Cell]) -> Any:
        """A ``ModelList``: a fitted categorical GP per measured objective, the exact value per free one."""
        from botorch.models import ModelList

        parts = []
        for j, objective in enumerate(self.objectives):
            if objective.metric in self.modelled:
                parts.append(self._fit_gp(train_x, train_y[:, j:j + 1]))
            else:
                parts.append(self._cost_model(objective.metric, 1.0 if objective.direction == "max" else -1.0, cells))
        return parts[0] if len(parts) == 1 else ModelList(*parts)

    def _fit_gp(self, train_x: Any, train_y: Any) -> Any:
        from botorch.exceptions import ModelFittingError
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import MixedSingleTaskGP
        from gpytorch.mlls import ExactMarginalLogLikelihood

        gp = MixedSingleTaskGP(train_x, train_y, cat_dims=list(range(train_x.shape[-1])))
        try:
            fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
        except ModelFittingError:  # every restart failed: the GP keeps its prior hyperparameters, still a model
            pass
        return gp

    def _cost_model(self, metric: str, sign: float, cells: list[Cell]) -> Any:
        """The free cost ``metric`` of ``cells`` (signed to maximise) as a deterministic model of the encoding.

        The acquisition evaluates the model on many batches of the same cells, so their
        costs are computed once and looked up by the cell's mixed-radix ordinal.
        """
        from botorch.models.deterministic import GenericDeterministicModel

        known = {self.space.ordinal(c): sign * self._cost_of(c)[metric] for c in cells}
        keys = torch.tensor(sorted(known), dtype=torch.long)
        table = torch.tensor([known[int(k)] for k in keys], dtype=torch.float64)
        radix = torch.tensor(mixed_radix(self.space))

        def values(x: Any) -> Any:
            ordinals = (x.round().long() * radix).sum(-1)
            where = torch.searchsorted(keys, ordinals).clamp(max=len(keys) - 1)
            if not bool((keys[where] == ordinals).all()):
                raise GennasError(f"{self.method}: the cost model was asked about a cell outside its candidates")
            return table[where].to(x.dtype).unsqueeze(-1)

        return GenericDeterministicModel(values, num_outputs=1)

    def _cost_of(self, cell: Cell) -> dict[str, float]:
        key = cell.to_string()
        if key not in self._costs:
            self._costs[key] = dict(self.context.costs(cell))
        return self._costs[key]

    # ---------------------------------------------------------------- tensors
    def _encode(self, cells: list[Cell]) -> Any:
        return torch.tensor(np.array([self.space.encode(c) for c in cells]), dtype=torch.float64)

    def _train_x(self) -> Any:
        return self._encode(self.order)

    def _train_y(self) -> Any:
        """(N, J) objective values of every measured cell, each signed so that higher is better."""
        return torch.tensor(-minimisation_matrix([self.seen[c.to_string()] for c in self.order],
                                                      self.objectives), dtype=torch.float64)


class BoTorchQLogEI(BoTorchSearcher):
    """One objective: batch log expected improvement (``qLogExpectedImprovement``)."""

    method = "botorch-qlogei"
    arity = "one"

    def acquisition(self, train_x: Any, train_y: Any, cells: list[Cell]) -> Any:
        from botorch.acquisition.logei import qLogExpectedImprovement

        return qLogExpectedImprovement(self.model(train_x, train_y, cells), best_f=train_y.max())


class BoTorchQNEHVI(BoTorchSearcher):
    """Several objectives: noisy expected hypervolume improvement in its log form (``qLogNEHVI``)."""

    method = "botorch-qnehvi"
    arity = "several"

    def acquisition(self, train_x: Any, train_y: Any, cells: list[Cell]) -> Any:
        from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
        from botorch.utils.multi_objective.hypervolume import infer_reference_point
        from botorch.utils.multi_objective.pareto import is_non_dominated

        front = train_y[is_non_dominated(train_y)]
        return qLogNoisyExpectedHypervolumeImprovement(self.model(train_x, train_y, cells),
                                                       ref_point=infer_reference_point(front).tolist(),
                                                       X_baseline=train_x, prune_baseline=True, cache_root=False)
