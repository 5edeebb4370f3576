r"""What every gradient-free method shares: bounds, a budget of evaluations, and the result.

A method minimizes a black-box objective :math:`f: \mathbb{R}^d \to \mathbb{R}` over a box
:math:`\{x : l \le x \le u\}` with at most ``budget`` evaluations of :math:`f`:

.. math:: x^\star = \arg\min_{l \le x \le u} f(x), \qquad \text{found with } \le B \text{ calls of } f.

Every call goes through :class:`Evaluations`, which counts it, refuses to exceed the budget, records
the point and its value, and refuses a value that is not a finite number (the offending point is named
in the error: a NaN would otherwise compare as "not worse" and could be kept as the best).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._checks import check_positive_int

__all__ = ["Evaluations", "SearchResult", "check_bounds", "check_seed"]


@dataclass
class SearchResult:
    """The best point found, its value, and every evaluation in the order it was made."""

    x: np.ndarray  # best point
    value: float  # f(x)
    points: np.ndarray = field(repr=False)  # (n_evaluations, d): every point evaluated
    values: np.ndarray = field(repr=False)  # (n_evaluations,): f at each of them
    method: str = ""
    seed: int | None = None
    stopped_early: bool = False  # True when a ``stop`` rule ended the run before the budget was spent

    @property
    def n_evaluations(self) -> int:
        return len(self.values)

    def best_so_far(self) -> np.ndarray:
        """The best value after each evaluation: the convergence curve against evaluations."""
        return np.minimum.accumulate(self.values)


def check_bounds(bounds) -> tuple[np.ndarray, np.ndarray]:
    """``bounds`` as scipy takes them, a sequence of ``(low, high)`` pairs, one per dimension.

    Returns the arrays of lower and upper bounds; raises unless every pair is finite with low < high.
    """
    try:
        box = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"bounds must be a sequence of (low, high) pairs, got {bounds!r}") from None
    if box.ndim != 2 or box.shape[1] != 2:
        raise ValueError(f"Invalid bounds: expected a sequence of (low, high) pairs, shape (d, 2), got shape {box.shape}")
    if box.shape[0] == 0:
        raise ValueError("Invalid bounds: empty (no dimension to search)")
    if not np.all(np.isfinite(box)):
        raise ValueError(f"Invalid bounds: every bound must be finite, got {box.tolist()}")
    inverted = np.flatnonzero(box[:, 0] >= box[:, 1])
    if inverted.size:
        i = int(inverted[0])
        raise ValueError(f"Invalid bounds: dimension {i} has low={box[i, 0]} >= high={box[i, 1]} (need low < high)")
    return box[:, 0].copy(), box[:, 1].copy()


def check_seed(seed) -> int | None:
    """A seed is a non-negative integer (or None for fresh entropy, which no chapter uses)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}: {seed!r}")
    if seed < 0:
        raise ValueError(f"Invalid seed: {seed} (must be >= 0)")
    return int(seed)


class Evaluations:
    """Counts, records and checks the calls of ``objective`` within ``budget``.

    ``evaluate(x)`` returns ``f(x)`` as a float; ``remaining`` says how many calls are left. A method
    loops while ``remaining > 0`` and never calls past the budget (``evaluate`` raises if it does).
    """

    def __init__(self, objective: Callable[[np.ndarray], float], bounds, budget: int):
        if not callable(objective):
            raise TypeError(f"objective must be a callable of a point (a 1-D array), got {type(objective).__name__}")
        self.objective = objective
        self.lower, self.upper = check_bounds(bounds)
        self.dim = self.lower.size
        self.budget = check_positive_int("budget", budget)
        self.points = np.empty((self.budget, self.dim))
        self.values = np.empty(self.budget)
        self.count = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.count

    @property
    def width(self) -> np.ndarray:
        return self.upper - self.lower

    def evaluate(self, x) -> float:
        if self.count >= self.budget:
            raise RuntimeError(f"budget of {self.budget} evaluations exhausted")
        x = np.asarray(x, dtype=float)
        value = self.objective(x.copy())
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"objective must return a real number, got {type(value).__name__} at x={x.tolist()}") from None
        if not np.isfinite(value):
            raise ValueError(f"objective returned {value} at x={x.tolist()} (evaluation {self.count + 1}); "
                             "a search needs a finite value at every point of the box")
        self.points[self.count] = x
        self.values[self.count] = value
        self.count += 1
        return value

    def evaluate_many(self, xs) -> np.ndarray:
        """``f`` at each row of ``xs`` (a population), in order."""
        return np.array([self.evaluate(x) for x in xs])

    def random_points(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points drawn uniformly in the box."""
        return self.lower + rng.random((n, self.dim)) * self.width

    def result(self, method: str, seed, *, stopped_early: bool = False) -> SearchResult:
        if self.count == 0:
            raise RuntimeError("no evaluation was made")
        x, value = self.best()
        return SearchResult(x=x.copy(), value=value,
                            points=self.points[: self.count].copy(), values=self.values[: self.count].copy(),
                            method=method, seed=seed, stopped_early=stopped_early)

    def best(self) -> tuple[np.ndarray, float]:
        best = int(np.argmin(self.values[: self.count]))
        return self.points[best], float(self.values[best])


def check_stop(stop):
    """``stop`` is None or a callable ``stop(best_x, best_value, n_evaluations) -> bool``."""
    if stop is not None and not callable(stop):
        raise TypeError(f"stop must be a callable (best_x, best_value, n_evaluations) -> bool, got {type(stop).__name__}")
    return stop


def should_stop(stop, evaluations: Evaluations) -> bool:
    if stop is None or evaluations.count == 0:
        return False
    x, value = evaluations.best()
    return bool(stop(x.copy(), value, evaluations.count))
