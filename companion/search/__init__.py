r"""Optimization without gradients: the course's reference metaheuristics, behind one interface.

Every method is a function ``method(objective, bounds, budget, seed=0, **options) -> SearchResult``
that minimizes a black-box ``objective`` (a 1-D array -> a real number) over a box given as scipy gives
it, a sequence of ``(low, high)`` pairs, with at most ``budget`` evaluations. The result holds the best
point and value and every evaluation in order (``result.best_so_far()`` is the convergence curve).

=================================  ==========================================================
``random_search``                  uniform samples, the baseline (Bergstra & Bengio, 2012)
``simulated_annealing``            Metropolis moves with geometric cooling (Kirkpatrick et al., 1983)
``genetic_algorithm``              tournament selection, blend crossover, Gaussian mutation, elitism
``differential_evolution``         DE/rand/1/bin (Storn & Price, 1997)
``tabu_search``                    best non-tabu neighbour on a lattice (Glover, 1989)
``iterated_local_search``          descent and kicks on a lattice (Lourenço et al., 2003)
``cma_es``                         CMA-ES from the ``cma`` package (Hansen & Ostermeier, 2001)
=================================  ==========================================================

``minimize(objective, bounds, method=..., budget=..., seed=...)`` calls one by name, and
:mod:`companion.search.functions` holds the test functions (Rastrigin, Ackley, Rosenbrock, sphere).
A hyperparameter search over a neural network is the same call with a training run as the objective.
"""

from __future__ import annotations

from .._checks import check_choice
from .annealing import metropolis_accept, simulated_annealing
from .base import SearchResult, check_bounds
from .cmaes import cma_es
from .differential_evolution import differential_evolution
from .functions import TEST_FUNCTIONS, ackley, rastrigin, rosenbrock, sphere
from .genetic import blend_crossover, gaussian_mutation, genetic_algorithm, tournament_selection
from .local import iterated_local_search, tabu_search
from .random_search import random_search

#: name -> method, in the order the chapter introduces them.
METHODS = {
    "random_search": random_search,
    "simulated_annealing": simulated_annealing,
    "genetic_algorithm": genetic_algorithm,
    "differential_evolution": differential_evolution,
    "tabu_search": tabu_search,
    "iterated_local_search": iterated_local_search,
    "cma_es": cma_es,
}


def minimize(objective, bounds, *, method: str = "differential_evolution", budget: int = 1_000, seed: int | None = 0,
             **options) -> SearchResult:
    """Minimize ``objective`` over ``bounds`` with the method named ``method`` (a key of :data:`METHODS`)."""
    if not isinstance(method, str):
        raise TypeError(f"method must be the name of a method (one of {', '.join(METHODS)}), got {method!r}")
    check_choice("method", method, tuple(METHODS))
    return METHODS[method](objective, bounds, budget, seed, **options)


__all__ = [
    "METHODS", "TEST_FUNCTIONS", "SearchResult", "ackley", "blend_crossover", "check_bounds", "cma_es",
    "differential_evolution", "gaussian_mutation", "genetic_algorithm", "iterated_local_search", "metropolis_accept",
    "minimize", "random_search", "rastrigin", "rosenbrock", "simulated_annealing", "sphere", "tabu_search",
    "tournament_selection",
]
