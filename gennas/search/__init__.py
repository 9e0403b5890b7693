"""One ask/tell search loop for every method: baselines and gennas' generative search."""

from gennas.search.loop import SearchRun, run_search
from gennas.search.methods import METHODS, make_searcher
from gennas.search.searcher import SearchContext, Searcher

__all__ = ["METHODS", "SearchContext", "SearchRun", "Searcher", "make_searcher", "run_search"]
