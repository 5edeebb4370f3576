r"""The standard test functions of global optimization, each with its usual box and its minimum.

* Rastrigin (Rastrigin, 1974; Mühlenbein et al., 1991): a bowl covered in a regular egg-box of local minima,

  .. math:: f(x) = 10 d + \sum_{i=1}^{d} \bigl(x_i^2 - 10 \cos(2\pi x_i)\bigr), \quad x \in [-5.12, 5.12]^d;

* Ackley (Ackley, 1987): a nearly flat plateau with a narrow funnel at the origin,

  .. math:: f(x) = -20\, e^{-0.2 \sqrt{\frac{1}{d}\sum x_i^2}} - e^{\frac{1}{d}\sum \cos(2\pi x_i)} + 20 + e,
            \quad x \in [-32.768, 32.768]^d;

* Rosenbrock (Rosenbrock, 1960): one minimum at the end of a long, curved, flat valley,

  .. math:: f(x) = \sum_{i=1}^{d-1} 100\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2, \quad x \in [-5, 10]^d;

* the sphere :math:`f(x) = \sum x_i^2`, the easy control.

All minima are 0: at the origin, except Rosenbrock's at :math:`(1, \dots, 1)`. Checked in
``tests/test_search.py`` (values at the minima and at known points; Rosenbrock against
``scipy.optimize.rosen``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["TEST_FUNCTIONS", "TestFunction", "ackley", "rastrigin", "rosenbrock", "sphere"]


def _as_point(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"Invalid x: expected a 1-D array of coordinates, got shape {x.shape}")
    return x


def rastrigin(x) -> float:
    x = _as_point(x)
    return float(10.0 * x.size + np.sum(x * x - 10.0 * np.cos(2.0 * np.pi * x)))


def ackley(x) -> float:
    x = _as_point(x)
    return float(-20.0 * np.exp(-0.2 * np.sqrt(np.mean(x * x))) - np.exp(np.mean(np.cos(2.0 * np.pi * x))) + 20.0 + np.e)


def rosenbrock(x) -> float:
    x = _as_point(x)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def sphere(x) -> float:
    x = _as_point(x)
    return float(np.sum(x * x))


class TestFunction(NamedTuple):
    """A test function, the half-open box it is usually searched in, and where its minimum 0 lies."""

    function: object
    low: float
    high: float
    minimizer: float  # every coordinate of the minimizer

    def bounds(self, dim: int) -> list[tuple[float, float]]:
        """The box in ``dim`` dimensions, as ``(low, high)`` pairs."""
        return [(self.low, self.high)] * dim


TestFunction.__test__ = False  # a named tuple, not a pytest test class

#: name -> (function, box, minimizer coordinate); the minimum value is 0 for each.
TEST_FUNCTIONS = {
    "rastrigin": TestFunction(rastrigin, -5.12, 5.12, 0.0),
    "ackley": TestFunction(ackley, -32.768, 32.768, 0.0),
    "rosenbrock": TestFunction(rosenbrock, -5.0, 10.0, 1.0),
    "sphere": TestFunction(sphere, -5.12, 5.12, 0.0),
}
