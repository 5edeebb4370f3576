r"""A real-coded genetic algorithm (Holland, 1975; Goldberg, 1989), every piece a function of its own.

One generation turns a population of :math:`N` points into the next:

1. **fitness**: the objective value of each member (lower is fitter: we minimize);
2. **selection**: *tournament selection* draws :math:`k` members at random (with replacement) and
   keeps the fittest; a larger :math:`k` means more selection pressure. The best of :math:`N`
   members wins a tournament with probability :math:`1 - (1 - 1/N)^k`;
3. **crossover** (with probability :math:`p_c`): *blend crossover* BLX-:math:`\alpha` (Eshelman &
   Schaffer, 1993) draws each gene of the child uniformly in the parents' interval widened by
   :math:`\alpha` on each side,
   :math:`c_j \sim \mathcal{U}\bigl[\min(a_j, b_j) - \alpha I_j,\ \max(a_j, b_j) + \alpha I_j\bigr]`,
   :math:`I_j = |a_j - b_j|`; otherwise the child is a copy of its first parent;
4. **mutation**: each gene, with probability :math:`p_m` (default :math:`1/d`, one gene per child
   on average), gets a Gaussian kick :math:`\mathcal{N}(0, (s\,(u_j - l_j))^2)`; children are
   reflected back into the box;
5. **replacement** with *elitism*: the :math:`e` best members survive unchanged, the children fill
   the rest;
6. **termination**: when the budget of evaluations is spent (or a ``stop`` rule says so).

Checked in ``tests/test_search.py``: each operator on its own (selection pressure against the formula
above, crossover's interval, the mutation rate realised), and the whole algorithm on the test functions.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_in_range, check_non_negative, check_non_negative_int, check_positive, check_positive_int
from .annealing import reflect_into_box
from .base import Evaluations, SearchResult, check_seed, check_stop, should_stop

__all__ = ["blend_crossover", "gaussian_mutation", "genetic_algorithm", "tournament_selection"]


def tournament_selection(values: np.ndarray, n: int, tournament_size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` winners: each the fittest (lowest value) of ``tournament_size`` members drawn at random."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"Invalid values: expected a non-empty 1-D array of fitness values, got shape {values.shape}")
    n = check_positive_int("n", n)
    tournament_size = check_positive_int("tournament_size", tournament_size)
    if tournament_size > values.size:
        raise ValueError(f"Invalid tournament_size: {tournament_size} (larger than the population of {values.size})")
    entrants = rng.integers(values.size, size=(n, tournament_size))
    return entrants[np.arange(n), np.argmin(values[entrants], axis=1)]


def blend_crossover(parent_a: np.ndarray, parent_b: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """BLX-alpha: each gene uniform in the parents' interval, widened by ``alpha`` times its length each side."""
    alpha = check_non_negative("alpha", alpha)
    low, high = np.minimum(parent_a, parent_b), np.maximum(parent_a, parent_b)
    spread = alpha * (high - low)
    return low - spread + rng.random(np.shape(parent_a)) * (high - low + 2.0 * spread)


def gaussian_mutation(x: np.ndarray, rate: float, scale, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``x`` in which each gene, with probability ``rate``, gets a kick ``N(0, scale**2)``."""
    rate = check_in_range("rate", rate, 0.0, 1.0, high_inclusive=True)
    mutate = rng.random(np.shape(x)) < rate
    return np.where(mutate, x + np.asarray(scale) * rng.standard_normal(np.shape(x)), x)


def genetic_algorithm(objective, bounds, budget: int, seed: int | None = 0, *, population_size: int = 50,
                      tournament_size: int = 3, crossover_rate: float = 0.9, alpha: float = 0.5,
                      mutation_rate: float | None = None, mutation_scale: float = 0.1, elite: int = 2,
                      stop=None) -> SearchResult:
    """Minimize ``objective`` over ``bounds`` with at most ``budget`` evaluations.

    ``mutation_scale`` :math:`s` is the kick's standard deviation as a fraction of the box's width;
    ``mutation_rate`` defaults to :math:`1/d`. ``stop`` as in :func:`~companion.search.random_search`,
    checked after every generation.
    """
    seed, stop = check_seed(seed), check_stop(stop)
    evaluations = Evaluations(objective, bounds, budget)
    d = evaluations.dim
    n = check_positive_int("population_size", population_size)
    if n < 2:
        raise ValueError(f"Invalid population_size: {n} (crossover needs two parents: at least 2)")
    if n > evaluations.budget:
        raise ValueError(f"Invalid population_size: {n} (larger than the budget of {evaluations.budget} evaluations)")
    tournament_size = check_positive_int("tournament_size", tournament_size)
    if tournament_size > n:
        raise ValueError(f"Invalid tournament_size: {tournament_size} (larger than population_size={n})")
    crossover_rate = check_in_range("crossover_rate", crossover_rate, 0.0, 1.0, high_inclusive=True)
    alpha = check_non_negative("alpha", alpha)
    mutation_rate = 1.0 / d if mutation_rate is None else check_in_range("mutation_rate", mutation_rate, 0.0, 1.0,
                                                                          high_inclusive=True)
    scale = check_positive("mutation_scale", mutation_scale) * evaluations.width
    elite = check_non_negative_int("elite", elite)
    if elite >= n:
        raise ValueError(f"Invalid elite: {elite} (must be smaller than population_size={n})")
    rng = np.random.default_rng(seed)

    population = evaluations.random_points(n, rng)
    values = evaluations.evaluate_many(population)
    while evaluations.remaining and not should_stop(stop, evaluations):
        n_children = min(n - elite, evaluations.remaining)
        parents = tournament_selection(values, 2 * n_children, tournament_size, rng).reshape(n_children, 2)
        children = population[parents[:, 0]].copy()
        crossed = rng.random(n_children) < crossover_rate
        if crossed.any():
            children[crossed] = blend_crossover(population[parents[crossed, 0]], population[parents[crossed, 1]], alpha, rng)
        children = gaussian_mutation(children, mutation_rate, scale, rng)
        children = reflect_into_box(children, evaluations.lower, evaluations.upper)
        child_values = evaluations.evaluate_many(children)
        keep = np.argsort(values)[:elite]
        population = np.concatenate([population[keep], children])
        values = np.concatenate([values[keep], child_values])
    return evaluations.result("genetic_algorithm", seed, stopped_early=evaluations.remaining > 0)
