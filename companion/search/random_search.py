r"""Random search: the baseline every other method has to beat.

.. math:: x_k \sim \mathcal{U}([l, u]), \quad k = 1, \dots, B, \qquad \hat x = \arg\min_k f(x_k).

It has no state and no hyperparameters, never gets stuck, and ignores everything it has learned.
Bergstra & Bengio (2012) showed why it beats a grid when few of the dimensions matter: B random points
try B distinct values of every coordinate, a grid of the same size only :math:`B^{1/d}`.
Checked in ``tests/test_search.py`` (uniform in the box, budget respected, reproducible).
"""

from __future__ import annotations

import numpy as np

from .base import Evaluations, SearchResult, check_seed, check_stop, should_stop

__all__ = ["random_search"]


def random_search(objective, bounds, budget: int, seed: int | None = 0, *, stop=None) -> SearchResult:
    """Evaluate ``budget`` points drawn uniformly in ``bounds``; return the best.

    ``stop(best_x, best_value, n_evaluations) -> bool``, checked after every evaluation, ends the run early.
    """
    seed, stop = check_seed(seed), check_stop(stop)
    evaluations = Evaluations(objective, bounds, budget)
    rng = np.random.default_rng(seed)
    while evaluations.remaining:
        evaluations.evaluate(evaluations.random_points(1, rng)[0])
        if should_stop(stop, evaluations):
            return evaluations.result("random_search", seed, stopped_early=True)
    return evaluations.result("random_search", seed)
