"""Derived seeds: the one home of every "seed plus offset" stream, so no two streams collide by accident.

A run with seed ``s`` draws several independent streams (one per search round, per ensemble
member, per refit, ...). Each stream's seed is :func:`derive_seed` of the run's seed and the
stream's salts. The strides and salts below are the values every committed benchmark and
journal was produced with: changing one changes those results, so they are fixed here.
"""

from __future__ import annotations

#: Streams within a run: ``seed * STRIDE + k`` (search rounds, ensemble members, guided chains).
STRIDE = 1000
#: A training run resumed on another device type: ``seed * RESUME_STRIDE + epoch`` (a prime, far from STRIDE).
RESUME_STRIDE = 1_000_003
#: Ensemble members refitted for a held-out estimate start at this stream (members use 0..ensemble-1).
HOLDOUT_SALT = 500
#: The head refitted on a new task: ``seed + REFIT_SALT`` (stride 1; a prime, away from the members' streams).
REFIT_SALT = 7919
#: The EHVI Monte-Carlo draws of the generative search: ``numpy.random.default_rng([seed, EHVI_DRAWS_SALT])``.
EHVI_DRAWS_SALT = 0xE4F1


def derive_seed(seed: int, *salts: int, stride: int = STRIDE) -> int:
    """The seed of the stream ``salts`` within the run seeded ``seed``: ``seed * stride + sum(salts)``.

    Args:
        seed: the run's seed.
        salts: which stream (a round, a member index, a named salt above).
        stride: streams per run; :data:`STRIDE` unless a named stride above says otherwise.

    Returns:
        The stream's seed.
    """
    return seed * stride + sum(salts)
