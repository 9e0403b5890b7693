"""Expected hypervolume improvement (EHVI) for picking which cells to measure next.

Why EHVI and not a random scalarisation: a Chebyshev weight draw chases one trade-off per
query, and on NB201 most of the hypervolume sits in a few cost levels where one better
cell moves the front a lot; EHVI values a candidate by how much front it is expected to
add, wherever that is. Costs (FLOPs, params, memory) are exact, so the expectation is
only over the modelled metrics (usually accuracy); it is a Monte Carlo average over
shared normal draws (common random numbers keep candidates comparable), each draw scored
exactly with pymoo's hypervolume.
"""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV

from gennas.objectives import pareto_indices


def hv_improvements(front: np.ndarray, points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Exact hypervolume each point alone would add to ``front``: (K, J) -> (K,)."""
    hv = HV(ref_point=ref)
    base = float(hv(front)) if len(front) else 0.0
    out = np.zeros(len(points))
    # A point that some front point weakly dominates, or beyond the reference, adds nothing.
    dominated = (front[None, :, :] <= points[:, None, :]).all(-1).any(-1) if len(front) else np.zeros(len(points), bool)
    useful = ~dominated & (points < ref).all(-1)
    for i in np.flatnonzero(useful):
        out[i] = float(hv(np.vstack([front, points[i:i + 1]]))) - base
    return out


def expected_hv_improvement(front: np.ndarray, mean: np.ndarray, std: np.ndarray, ref: np.ndarray,
                            draws: np.ndarray) -> np.ndarray:
    """Monte Carlo EHVI of K candidates with independent normal objectives.

    ``mean``/``std``: (K, J) on the minimisation scale (std 0 for exact objectives);
    ``draws``: (S, J) standard normals shared by every candidate.
    """
    k, j = mean.shape
    samples = mean[:, None, :] + std[:, None, :] * draws[None, :, :]  # (K, S, J)
    return hv_improvements(front, samples.reshape(-1, j), ref).reshape(k, -1).mean(1)


def ehvi_batch(measured: np.ndarray, mean: np.ndarray, std: np.ndarray, ref: np.ndarray, n: int,
               draws: np.ndarray) -> list[int]:
    """Pick ``n`` candidates greedily by EHVI, each pick believed at its mean (Kriging believer).

    Believing the pick's mean adds it to the front for the next pick, so a batch spreads
    along the front instead of stacking where the first pick was.
    """
    front = measured[pareto_indices(measured)]
    picked: list[int] = []
    for _ in range(min(n, len(mean))):
        gain = expected_hv_improvement(front, mean, std, ref, draws)
        gain[picked] = -np.inf
        best = int(np.argmax(gain))
        if gain[best] <= 0:  # nothing expected to improve: the most promising by the mean point
            believed = hv_improvements(front, mean, ref)
            believed[picked] = -np.inf
            best = int(np.argmax(believed)) if believed.max() > 0 else _closest_to_front(front, mean, picked)
        picked.append(best)
        front = np.vstack([front, mean[best:best + 1]])
        front = front[pareto_indices(front)]
    return picked


def _closest_to_front(front: np.ndarray, points: np.ndarray, exclude: list[int]) -> int:
    """The candidate whose mean is least dominated (smallest additive gap to the front)."""
    span = np.where(np.ptp(front, 0) > 1e-12, np.ptp(front, 0), 1.0)
    gaps = ((points[:, None, :] - front[None, :, :]) / span).max(-1).min(-1)
    gaps[exclude] = np.inf
    return int(np.argmin(gaps))
