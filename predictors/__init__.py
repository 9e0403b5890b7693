"""Multi-objective performance predictors (GNN over cell graphs, scikit-learn baselines).

Filled by the predictor work (issue 3); the package exists now because the design card
fixes the top-level layout and the distribution ships it.
"""
