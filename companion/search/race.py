"""The same budget for every method, on every test function, over several seeds: convergence curves.

``race(...)`` returns, for each ``(function, dim, method)``, the best value after each evaluation for each
seed (an array ``seeds x budget``), and the seconds each run took. The chapter draws medians and
quartiles of these curves; ``python -m companion.bench search`` prints their final values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_positive_int
from .functions import TEST_FUNCTIONS

__all__ = ["RaceResult", "race"]


@dataclass
class RaceResult:
    curves: dict = field(default_factory=dict)  # (function, dim, method) -> (seeds, budget) best-so-far values
    seconds: dict = field(default_factory=dict)  # (function, dim, method) -> (seeds,) seconds per run

    def final(self, function: str, dim: int, method: str) -> np.ndarray:
        """The best value each seed reached with the whole budget."""
        return self.curves[(function, dim, method)][:, -1]

    def median_final(self, function: str, dim: int, method: str) -> float:
        return float(np.median(self.final(function, dim, method)))


def race(methods, functions=("rastrigin", "ackley", "rosenbrock"), dims=(2, 10, 30), *, seeds=range(10),
         evaluations_per_dim: int = 200, options: dict | None = None) -> RaceResult:
    """Run every method of ``methods`` (name -> function) with ``evaluations_per_dim * dim`` evaluations.

    ``options`` maps a method name to keyword arguments for it. A run that stops short of the budget (a
    lattice method that has seen its whole lattice) keeps its last best value to the end of the curve.
    """
    evaluations_per_dim = check_positive_int("evaluations_per_dim", evaluations_per_dim)
    options = options or {}
    unknown = [name for name in functions if name not in TEST_FUNCTIONS]
    if unknown:
        raise ValueError(f"Unknown function: {unknown[0]!r} (expected one of {', '.join(TEST_FUNCTIONS)})")
    result = RaceResult()
    for name in functions:
        test_function = TEST_FUNCTIONS[name]
        for dim in dims:
            dim = check_positive_int("dims", dim)
            budget = evaluations_per_dim * dim
            for method_name, method in methods.items():
                curves, seconds = np.empty((len(seeds), budget)), np.empty(len(seeds))
                for i, seed in enumerate(seeds):
                    start = time.perf_counter()
                    run = method(test_function.function, test_function.bounds(dim), budget, seed,
                                 **options.get(method_name, {}))
                    seconds[i] = time.perf_counter() - start
                    curve = run.best_so_far()
                    curves[i, : curve.size] = curve
                    curves[i, curve.size:] = curve[-1]
                result.curves[(name, dim, method_name)] = curves
                result.seconds[(name, dim, method_name)] = seconds
    return result
