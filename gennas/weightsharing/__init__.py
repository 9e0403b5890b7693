"""Weight-sharing NAS baselines (DARTS first/second order, GDAS) over the gennas cell spaces."""

from gennas.weightsharing.derive import alpha_probabilities, derive_cell
from gennas.weightsharing.search import WeightSharingConfig, WeightSharingResult, search_cell

__all__ = ["WeightSharingConfig", "WeightSharingResult", "alpha_probabilities", "derive_cell", "search_cell"]
