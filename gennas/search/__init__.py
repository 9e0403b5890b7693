"""Every search method behind one interface: black-box searchers through one ask/tell loop, and weight-sharing."""

from gennas.search.journal import Journal, SearchRun
from gennas.search.loop import run_search
from gennas.search.methods import (METHODS, REGISTRY, BlackBox, Method, MultiFidelity, Problem, SearchResult,
                                   WeightSharing, get_method, make_searcher, parse_methods)
from gennas.search.searcher import SearchContext, Searcher
from gennas.search.stopping import Budget, Deadline, EpochBudget, Idle, Stopping, Target

__all__ = ["METHODS", "REGISTRY", "BlackBox", "Budget", "Deadline", "EpochBudget", "Idle", "Journal", "Method",
           "MultiFidelity", "Problem",
           "SearchContext", "SearchResult", "SearchRun", "Searcher", "Stopping", "Target", "WeightSharing",
           "get_method", "make_searcher", "parse_methods", "run_search"]
