r"""Differential evolution, DE/rand/1/bin (Storn & Price, 1997).

A population :math:`x_1, \dots, x_N` spread over the box (Latin hypercube, as scipy starts) improves one
member at a time. For member :math:`i`, pick three other members :math:`r_1, r_2, r_3` at random, all
distinct, and build the *mutant* from a scaled difference, then *cross* it with :math:`x_i` gene by gene:

.. math::
    v = x_{r_1} + F\,(x_{r_2} - x_{r_3}), \qquad
    u_j = \begin{cases} v_j & \text{if } U_j < CR \text{ or } j = j_{\text{rand}} \\
                        x_{i,j} & \text{otherwise,} \end{cases}

(the index :math:`j_{\text{rand}}` makes sure at least one gene comes from the mutant). The trial
:math:`u` replaces :math:`x_i` when :math:`f(u) \le f(x_i)`. Differences between members shrink as the
population converges, so the step size adapts by itself. A trial coordinate outside the box is drawn
again uniformly inside it, and a replaced member is used at once by the next trials (scipy's
``updating="immediate"``).

Checked in ``tests/test_search.py`` against ``scipy.optimize.differential_evolution`` with
``strategy="rand1bin"`` at the same budget and population, and on the two operators.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_in_range, check_positive_int
from .base import Evaluations, SearchResult, check_seed, check_stop, should_stop

__all__ = ["binomial_crossover", "differential_evolution", "latin_hypercube", "rand1_mutant"]


def latin_hypercube(n: int, lower: np.ndarray, upper: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in the box, exactly one in each of the ``n`` equal slices of every coordinate."""
    d = lower.size
    strata = np.argsort(rng.random((n, d)), axis=0)  # an independent permutation of 0..n-1 per coordinate
    return lower + (strata + rng.random((n, d))) / n * (upper - lower)


def rand1_mutant(population: np.ndarray, i: int, mutation: float, rng: np.random.Generator) -> np.ndarray:
    """:math:`v = x_{r_1} + F (x_{r_2} - x_{r_3})` with three distinct members other than ``i``."""
    n = len(population)
    if n < 4:
        raise ValueError(f"Invalid population: {n} members (rand/1 needs the target and three others)")
    others = rng.integers(n - 1, size=3)
    while others[0] == others[1] or others[0] == others[2] or others[1] == others[2]:
        others = rng.integers(n - 1, size=3)
    r1, r2, r3 = others + (others >= i)  # indices among the n - 1 members other than i
    return population[r1] + mutation * (population[r2] - population[r3])


def binomial_crossover(target: np.ndarray, mutant: np.ndarray, crossover: float, rng: np.random.Generator) -> np.ndarray:
    """Take each gene from ``mutant`` with probability ``crossover`` (and gene ``j_rand`` always)."""
    d = target.size
    take = rng.random(d) < crossover
    take[rng.integers(d)] = True
    return np.where(take, mutant, target)


def differential_evolution(objective, bounds, budget: int, seed: int | None = 0, *, population_size: int | None = None,
                           mutation: float = 0.8, crossover: float = 0.7, stop=None) -> SearchResult:
    """Minimize ``objective`` over ``bounds`` with at most ``budget`` evaluations.

    ``population_size`` :math:`N` defaults to 15 per dimension (scipy's ``popsize=15``), at least 5;
    ``mutation`` is :math:`F \in (0, 2]`, ``crossover`` is :math:`CR \in [0, 1]`. ``stop`` as in
    :func:`~companion.search.random_search`, checked after every evaluation.
    """
    seed, stop = check_seed(seed), check_stop(stop)
    evaluations = Evaluations(objective, bounds, budget)
    d = evaluations.dim
    n = max(5, 15 * d) if population_size is None else check_positive_int("population_size", population_size)
    if n < 4:
        raise ValueError(f"Invalid population_size: {n} (rand/1 needs the target and three other members: at least 4)")
    if n > evaluations.budget:
        raise ValueError(f"Invalid population_size: {n} (larger than the budget of {evaluations.budget} evaluations)")
    mutation = check_in_range("mutation", mutation, 0.0, 2.0, high_inclusive=True)
    if mutation == 0.0:
        raise ValueError("Invalid mutation: 0.0 (must be in (0, 2]: F = 0 never moves)")
    crossover = check_in_range("crossover", crossover, 0.0, 1.0, high_inclusive=True)
    rng = np.random.default_rng(seed)

    population = latin_hypercube(n, evaluations.lower, evaluations.upper, rng)
    values = np.empty(n)
    for i in range(n):
        values[i] = evaluations.evaluate(population[i])
        if should_stop(stop, evaluations):
            return evaluations.result("differential_evolution", seed, stopped_early=True)
    while evaluations.remaining:
        for i in range(n):
            if not evaluations.remaining:
                break
            trial = binomial_crossover(population[i], rand1_mutant(population, i, mutation, rng), crossover, rng)
            outside = (trial < evaluations.lower) | (trial > evaluations.upper)
            if outside.any():
                trial[outside] = evaluations.lower[outside] + rng.random(outside.sum()) * evaluations.width[outside]
            f_trial = evaluations.evaluate(trial)
            if f_trial <= values[i]:
                population[i], values[i] = trial, f_trial
            if should_stop(stop, evaluations):
                return evaluations.result("differential_evolution", seed, stopped_early=True)
    return evaluations.result("differential_evolution", seed)
