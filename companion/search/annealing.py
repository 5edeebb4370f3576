r"""Simulated annealing (Kirkpatrick, Gelatt & Vecchi, 1983), with a geometric cooling schedule.

From the current point :math:`x`, propose :math:`x' = x + \sigma_{k}\, z\, e_j` (one coordinate
:math:`j` drawn at random, a Cauchy step :math:`z` as in Szu & Hartley's fast annealing, 1987, whose
heavy tail now and then jumps to another basin; reflected back into the box) and accept it with the
Metropolis probability

.. math:: P(\text{accept}) = \min\bigl(1,\ e^{-(f(x') - f(x)) / T_k}\bigr),

so a better point is always taken and a worse one sometimes, more rarely as the temperature falls.
The cooling schedule is geometric over the budget,

.. math:: T_k = T_0 \, r^{k / (B - 1)}, \qquad \sigma_k = s \,(u - l) \sqrt{T_k / T_0},

from :math:`T_0` to :math:`r\,T_0` (``final_ratio`` :math:`r`), with steps that shrink with the
temperature. When ``initial_temperature`` is not given, :math:`T_0` is the standard deviation of
:math:`f` over a few random points of the box (counted in the budget), so that early uphill moves of a
typical size are accepted with probability about :math:`e^{-1}`.

Checked in ``tests/test_search.py`` against ``scipy.optimize.dual_annealing`` (without its local
search) at the same budget, and on the Metropolis rule itself.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_in_range, check_positive, check_positive_int
from .base import Evaluations, SearchResult, check_seed, check_stop, should_stop

__all__ = ["metropolis_accept", "reflect_into_box", "simulated_annealing"]


def metropolis_accept(delta: float, temperature: float, u: float) -> bool:
    """The Metropolis rule: accept a change of ``delta`` in ``f`` at ``temperature``, given ``u ~ U(0, 1)``."""
    temperature = check_positive("temperature", temperature)
    return delta <= 0.0 or u < math.exp(-delta / temperature)


def reflect_into_box(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Mirror the coordinates of ``x`` that left ``[lower, upper]`` back inside (a step, not a clamp)."""
    width = upper - lower
    y = np.mod(x - lower, 2.0 * width)
    return lower + np.where(y > width, 2.0 * width - y, y)


def simulated_annealing(objective, bounds, budget: int, seed: int | None = 0, *, initial_temperature: float | None = None,
                        final_ratio: float = 1e-4, step_size: float = 0.3, coordinates: int = 1,
                        stop=None) -> SearchResult:
    """Minimize ``objective`` over ``bounds`` with at most ``budget`` evaluations.

    ``step_size`` is :math:`s`, the initial scale of a step as a fraction of the box's width;
    ``coordinates`` is how many coordinates each proposal moves (one by default: a step on all 30
    coordinates of a 30-dimensional point at once is almost never accepted). ``stop`` as in
    :func:`~companion.search.random_search`, checked after every evaluation.
    """
    seed, stop = check_seed(seed), check_stop(stop)
    evaluations = Evaluations(objective, bounds, budget)
    final_ratio = check_in_range("final_ratio", final_ratio, 0.0, 1.0, high_inclusive=True)
    if final_ratio == 0.0:
        raise ValueError("Invalid final_ratio: 0.0 (must be > 0: the temperature falls to final_ratio * T0)")
    step_size = check_positive("step_size", step_size)
    d = evaluations.dim
    moved = check_positive_int("coordinates", coordinates)
    if moved > d:
        raise ValueError(f"Invalid coordinates: {moved} (the search space has {d} dimensions)")
    rng = np.random.default_rng(seed)

    if initial_temperature is None:
        probes = max(1, min(10 * d, evaluations.budget // 10))
        values = evaluations.evaluate_many(evaluations.random_points(probes, rng))
        t0 = float(np.std(values)) or 1.0
        x, fx = evaluations.best()
        x = x.copy()
    else:
        t0 = check_positive("initial_temperature", initial_temperature)
        x = evaluations.random_points(1, rng)[0]
        fx = evaluations.evaluate(x)
    if should_stop(stop, evaluations):
        return evaluations.result("simulated_annealing", seed, stopped_early=True)

    moves = evaluations.remaining
    for k in range(moves):
        temperature = t0 * final_ratio ** (k / max(moves - 1, 1))
        sigma = step_size * evaluations.width * math.sqrt(temperature / t0)
        candidate = x.copy()
        which = rng.integers(d, size=1) if moved == 1 else rng.choice(d, size=moved, replace=False)
        candidate[which] += sigma[which] * rng.standard_cauchy(moved)
        candidate = reflect_into_box(candidate, evaluations.lower, evaluations.upper)
        f_candidate = evaluations.evaluate(candidate)
        if metropolis_accept(f_candidate - fx, temperature, rng.random()):
            x, fx = candidate, f_candidate
        if should_stop(stop, evaluations):
            return evaluations.result("simulated_annealing", seed, stopped_early=True)
    return evaluations.result("simulated_annealing", seed)
