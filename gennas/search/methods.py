"""Every searcher by its CLI name: one place to add a method."""

from __future__ import annotations

from gennas.errors import GennasError
from gennas.search.bo import BayesianOptimisation
from gennas.search.evolution import RegularizedEvolution
from gennas.search.generative import GenerativeSearch
from gennas.search.local_search import LocalSearch
from gennas.search.nsga2 import NSGA2Searcher
from gennas.search.random_search import RandomSearch
from gennas.search.reinforce import Reinforce
from gennas.search.searcher import SearchContext, Searcher

METHODS: dict[str, type[Searcher]] = {
    "ours": GenerativeSearch,
    "random": RandomSearch,
    "rea": RegularizedEvolution,
    "reinforce": Reinforce,
    "bo": BayesianOptimisation,
    "ls": LocalSearch,
    "nsga2": NSGA2Searcher,
}


def make_searcher(method: str, context: SearchContext) -> Searcher:
    if method not in METHODS:
        raise GennasError(f"unknown search method {method!r}; choose from {', '.join(METHODS)}")
    return METHODS[method](context)
