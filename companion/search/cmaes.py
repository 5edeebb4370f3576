r"""CMA-ES (Hansen & Ostermeier, 2001) through the ``cma`` package, behind the course's interface.

The covariance matrix adaptation evolution strategy samples a generation of :math:`\lambda` points
from a Gaussian, :math:`x_i = m + \sigma\, \mathcal{N}(0, C)`, and moves the mean :math:`m` to a weighted
average of the best :math:`\mu` of them; the covariance :math:`C` learns the directions that recently
paid off (a rank-one and a rank-:math:`\mu` update) and the step size :math:`\sigma` grows or shrinks with
the length of the path the mean travelled. On a quadratic it learns the inverse Hessian up to a
factor, which is why it handles Rosenbrock's curved valley that defeats coordinate-wise methods.

It is not re-implemented here: ``cma`` (Hansen's own package) is the reference practitioners use. The
search runs in the unit cube (each coordinate scaled to ``[0, 1]``, so one step size fits every
coordinate), starting at a random point with :math:`\sigma_0` = ``sigma0``, with ``cma``'s bound handling.
Checked in ``tests/test_search.py`` (budget, reproducibility, the sphere and Rosenbrock solved).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_positive, check_positive_int
from .base import Evaluations, SearchResult, check_seed, check_stop, should_stop

__all__ = ["cma_es"]


def cma_es(objective, bounds, budget: int, seed: int | None = 0, *, sigma0: float = 0.3,
           population_size: int | None = None, stop=None) -> SearchResult:
    """Minimize ``objective`` over ``bounds`` with at most ``budget`` evaluations, with ``cma.CMAEvolutionStrategy``.

    ``population_size`` :math:`\lambda` defaults to cma's :math:`4 + \lfloor 3 \ln d \rfloor`; a last
    generation that the remaining budget cannot fill is not started. ``stop`` as in
    :func:`~companion.search.random_search`, checked after every generation.
    """
    import cma

    seed, stop = check_seed(seed), check_stop(stop)
    evaluations = Evaluations(objective, bounds, budget)
    sigma0 = check_positive("sigma0", sigma0)
    d = evaluations.dim
    rng = np.random.default_rng(seed)
    options = {"bounds": [0.0, 1.0], "verbose": -9, "seed": int(rng.integers(1, 2**31 - 1)),  # cma reads 0 as "no seed"
               "maxfevals": evaluations.budget, "tolfun": 0.0, "tolx": 0.0, "tolfunhist": 0.0, "tolstagnation": 10**9}
    if population_size is not None:
        population_size = check_positive_int("population_size", population_size)
        if population_size < 2:
            raise ValueError(f"Invalid population_size: {population_size} (CMA-ES needs at least 2 points a generation)")
        options["popsize"] = population_size
    if d == 1:
        raise ValueError("Invalid bounds: CMA-ES (the cma package) needs at least 2 dimensions")
    global_state = np.random.get_state()  # cma seeds NumPy's global generator; leave the caller's as it was
    try:
        strategy = cma.CMAEvolutionStrategy(rng.random(d), sigma0, options)
        while evaluations.remaining >= strategy.popsize:
            unit_points = strategy.ask()
            values = [evaluations.evaluate(evaluations.lower + np.asarray(u) * evaluations.width) for u in unit_points]
            strategy.tell(unit_points, values)
            if should_stop(stop, evaluations):
                return evaluations.result("cma_es", seed, stopped_early=True)
    finally:
        np.random.set_state(global_state)
    if evaluations.count == 0:
        raise ValueError(f"Invalid budget: {evaluations.budget} (smaller than one CMA-ES generation of {strategy.popsize})")
    return evaluations.result("cma_es", seed)
