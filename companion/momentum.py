r"""Two-dimensional test functions ("loss landscapes") on which optimizers can be watched at work.

Each landscape is a small object with ``value(xy)`` and ``gradient(xy)`` (NumPy, vectorised over
leading axes: ``xy`` has shape ``(..., 2)``, so a whole contour grid is evaluated at once), its known
minimum and a plotting window. :func:`trajectory` runs any companion
:class:`~companion.optim.GradientTransformation` on a landscape and returns the iterates;
:func:`plot_trajectories` draws them over log-spaced contours.

* :class:`Quadratic`: :math:`f(\theta) = \tfrac12 (\theta-\theta^\star)^\top A (\theta-\theta^\star)`
  with eigenvalues :math:`\mu = L/\kappa` and :math:`L`: the model problem of convergence theory.
* :class:`Rosenbrock`: :math:`f(x, y) = (a-x)^2 + b\,(y-x^2)^2` (Rosenbrock, 1960), a curved valley.
* :class:`Saddle`: :math:`f(x, y) = x^2 + \tfrac14 y^4 - \tfrac12 y^2`, a saddle point at the origin
  between two minima at :math:`(0, \pm 1)`.

The gradients are tested against central finite differences, and the Rosenbrock function against
``scipy.optimize.rosen``, ``rosen_der`` and ``rosen_hess``.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ._checks import _as_real, check_positive, check_positive_int
from .optim.base import GradientTransformation, apply_updates

__all__ = [
    "Landscape",
    "Quadratic",
    "Rosenbrock",
    "Saddle",
    "diverged_at",
    "iterations_to_tolerance",
    "plot_trajectories",
    "trajectory",
]


def _points(xy) -> np.ndarray:
    """``xy`` as a float array whose last axis holds the two coordinates."""
    xy = np.asarray(xy, dtype=float)
    if xy.ndim == 0 or xy.shape[-1] != 2:
        raise ValueError(f"xy must have shape (..., 2), got {xy.shape}")
    return xy


def _check_window(window):
    try:
        (x0, x1), (y0, y1) = window
        x0, x1, y0, y1 = (float(v) for v in (x0, x1, y0, y1))
    except (TypeError, ValueError):
        raise ValueError(f"window must be ((xmin, xmax), (ymin, ymax)), got {window!r}") from None
    if not (x0 < x1 and y0 < y1 and all(math.isfinite(v) for v in (x0, x1, y0, y1))):
        raise ValueError(f"window must be ((xmin, xmax), (ymin, ymax)) with min < max, got {window!r}")
    return (x0, x1), (y0, y1)


class Landscape:
    """A function of two parameters with a known minimum.

    Subclasses set ``name``, ``minimum`` (a point of shape ``(2,)``), ``minimum_value`` and
    ``window`` (``((xmin, xmax), (ymin, ymax))``), and implement ``value``, ``gradient`` and ``hessian``.
    """

    name: str = "landscape"
    minimum: np.ndarray
    minimum_value: float = 0.0
    window: tuple

    def value(self, xy) -> np.ndarray:
        """:math:`f(\\theta)` for points of shape ``(..., 2)``; returns shape ``(...)``."""
        raise NotImplementedError

    def gradient(self, xy) -> np.ndarray:
        """:math:`\\nabla f(\\theta)` for points of shape ``(..., 2)``; returns shape ``(..., 2)``."""
        raise NotImplementedError

    def hessian(self, xy) -> np.ndarray:
        """:math:`\\nabla^2 f(\\theta)` for points of shape ``(..., 2)``; returns shape ``(..., 2, 2)``."""
        raise NotImplementedError

    def grid(self, n: int = 200, window=None):
        """``X, Y, Z`` arrays of shape ``(n, n)`` over the window, ready for ``ax.contour``."""
        n = check_positive_int("n", n)
        (x0, x1), (y0, y1) = _check_window(self.window if window is None else window)
        X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        return X, Y, self.value(np.stack([X, Y], axis=-1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Quadratic(Landscape):
    r"""An ill-conditioned quadratic bowl, the model problem of first-order convergence theory.

    .. math::
        f(\theta) = \tfrac12\,(\theta-\theta^\star)^\top A\,(\theta-\theta^\star), \qquad
        A = R(\varphi)\,\operatorname{diag}(\mu, L)\,R(\varphi)^\top, \qquad \mu = L/\kappa .

    ``condition_number`` is :math:`\kappa = L/\mu \ge 1`, ``largest_eigenvalue`` is :math:`L` (the
    smoothness constant), ``angle`` :math:`\varphi` rotates the axes of the ellipses (radians). Without
    rotation the long, flat valley runs along :math:`x` and the steep walls along :math:`y`.
    Gradient descent converges on it iff :math:`0 < \eta < 2/L`.
    """

    def __init__(
        self,
        condition_number: float = 10.0,
        largest_eigenvalue: float = 1.0,
        angle: float = 0.0,
        center=(0.0, 0.0),
        window=None,
    ):
        kappa = _as_real("condition_number", condition_number)
        if not (1.0 <= kappa < math.inf):
            raise ValueError(f"Invalid condition_number: {condition_number} (must be a finite number >= 1)")
        L = check_positive("largest_eigenvalue", largest_eigenvalue)
        if not math.isfinite(L):
            raise ValueError(f"Invalid largest_eigenvalue: {largest_eigenvalue} (must be finite)")
        angle = _as_real("angle", angle)
        center = np.asarray(center, dtype=float)
        if center.shape != (2,) or not np.all(np.isfinite(center)):
            raise ValueError(f"center must be two finite numbers, got {center!r}")
        self.condition_number = kappa
        self.eigenvalues = np.array([L / kappa, L])  # ascending: mu, L
        self.smallest_eigenvalue, self.largest_eigenvalue = float(L / kappa), L
        c, s = math.cos(angle), math.sin(angle)
        rotation = np.array([[c, -s], [s, c]])
        self.matrix = rotation @ np.diag(self.eigenvalues) @ rotation.T
        self.angle = angle
        self.minimum = center
        self.minimum_value = 0.0
        if window is None:
            half = (10.0, 4.0) if angle == 0.0 else (10.0, 10.0)
            window = ((center[0] - half[0], center[0] + half[0]), (center[1] - half[1], center[1] + half[1]))
        self.window = _check_window(window)
        self.name = f"quadratic, κ = {kappa:g}"

    def value(self, xy):
        d = _points(xy) - self.minimum
        return 0.5 * np.einsum("...i,ij,...j->...", d, self.matrix, d)

    def gradient(self, xy):
        return (_points(xy) - self.minimum) @ self.matrix.T

    def hessian(self, xy):
        xy = _points(xy)
        return np.broadcast_to(self.matrix, xy.shape[:-1] + (2, 2)).copy()


class Rosenbrock(Landscape):
    r"""Rosenbrock's "banana" function (Rosenbrock, 1960): a narrow, curved valley.

    .. math::
        f(x, y) = (a - x)^2 + b\,(y - x^2)^2, \qquad
        \nabla f = \bigl(-2(a-x) - 4bx(y-x^2),\; 2b(y-x^2)\bigr),

    minimum :math:`f = 0` at :math:`(a, a^2)`. With :math:`a=1, b=100` it is ``scipy.optimize.rosen``
    in two dimensions (the tests compare value, gradient and Hessian with it).
    """

    def __init__(self, a: float = 1.0, b: float = 100.0, window=None):
        self.a = _as_real("a", a)
        self.b = check_positive("b", b)
        if not (math.isfinite(self.a) and math.isfinite(self.b)):
            raise ValueError(f"a and b must be finite, got a={a}, b={b}")
        self.minimum = np.array([self.a, self.a**2])
        self.minimum_value = 0.0
        if window is None:
            r = 2.0 * max(1.0, abs(self.a))
            window = ((-r, r), (-r / 2, self.a**2 + r))
        self.window = _check_window(window)
        self.name = f"Rosenbrock, a = {self.a:g}, b = {self.b:g}"

    def value(self, xy):
        xy = _points(xy)
        x, y = xy[..., 0], xy[..., 1]
        return (self.a - x) ** 2 + self.b * (y - x**2) ** 2

    def gradient(self, xy):
        xy = _points(xy)
        x, y = xy[..., 0], xy[..., 1]
        valley = y - x**2
        return np.stack([-2.0 * (self.a - x) - 4.0 * self.b * x * valley, 2.0 * self.b * valley], axis=-1)

    def hessian(self, xy):
        xy = _points(xy)
        x, y = xy[..., 0], xy[..., 1]
        hxx = 2.0 - 4.0 * self.b * (y - x**2) + 8.0 * self.b * x**2
        hxy = -4.0 * self.b * x
        hyy = np.full_like(x, 2.0 * self.b)
        return np.stack([np.stack([hxx, hxy], -1), np.stack([hxy, hyy], -1)], -2)


class Saddle(Landscape):
    r"""A saddle point between two valleys.

    .. math::
        f(x, y) = x^2 + \tfrac14 y^4 - \tfrac12 y^2, \qquad \nabla f = (2x,\; y^3 - y).

    The origin is a saddle point (Hessian :math:`\operatorname{diag}(2, -1)`: curving up along :math:`x`,
    down along :math:`y`); the minima :math:`f = -\tfrac14` lie at :math:`(0, \pm 1)`. ``minimum`` is the
    one at :math:`(0, 1)`, ``minima`` holds both, ``saddle_point`` the origin. Unlike
    :math:`x^2 - y^2` it is bounded below, so an optimizer that escapes the saddle has somewhere to go.
    """

    def __init__(self, window=((-2.0, 2.0), (-1.6, 1.6))):
        self.saddle_point = np.zeros(2)
        self.minima = (np.array([0.0, 1.0]), np.array([0.0, -1.0]))
        self.minimum = self.minima[0]
        self.minimum_value = -0.25
        self.window = _check_window(window)
        self.name = "saddle"

    def value(self, xy):
        xy = _points(xy)
        x, y = xy[..., 0], xy[..., 1]
        return x**2 + 0.25 * y**4 - 0.5 * y**2

    def gradient(self, xy):
        xy = _points(xy)
        x, y = xy[..., 0], xy[..., 1]
        return np.stack([2.0 * x, y**3 - y], axis=-1)

    def hessian(self, xy):
        xy = _points(xy)
        x, y = xy[..., 0], xy[..., 1]
        zero = np.zeros_like(x)
        return np.stack([np.stack([np.full_like(x, 2.0), zero], -1), np.stack([zero, 3.0 * y**2 - 1.0], -1)], -2)


# --------------------------------------------------------------------------- running an optimizer


def trajectory(
    transformation: GradientTransformation, landscape: Landscape, start, steps: int, max_norm: float = 1e10
) -> np.ndarray:
    r"""Run an optimizer on a landscape: :math:`\theta_{t+1} = \theta_t + u_t`, ``steps`` times.

    ``transformation`` is any :class:`~companion.optim.GradientTransformation` (``optim.sgd(0.1,
    momentum=0.9)``, a chain of your own); it receives :math:`\nabla f(\theta_t)` and the parameters
    as one NumPy array of shape ``(2,)``. Returns the iterates :math:`\theta_0, \dots, \theta_{\text{steps}}`
    as an array of shape ``(steps + 1, 2)``.

    Divergence: as soon as an iterate leaves the ball of radius ``max_norm`` or the value or gradient
    overflows, the run stops quietly and the remaining rows are NaN (see :func:`diverged_at`).
    """
    if not isinstance(transformation, GradientTransformation):
        raise TypeError(f"transformation must be a GradientTransformation, got {type(transformation).__name__}")
    if not isinstance(landscape, Landscape):
        raise TypeError(f"landscape must be a Landscape, got {type(landscape).__name__}")
    steps = check_positive_int("steps", steps)
    max_norm = check_positive("max_norm", max_norm)
    try:
        theta = np.array(start, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"start must be two numbers, got {start!r}") from None
    if theta.shape != (2,):
        raise ValueError(f"start must have shape (2,), got {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"start must be finite, got {theta}")

    path = np.full((steps + 1, 2), np.nan)
    path[0] = theta
    state = transformation.init(theta)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            grad = landscape.gradient(theta)
            if not np.all(np.isfinite(grad)):
                break
            updates, state = transformation.update(grad, state, theta)
            theta = apply_updates(theta, updates)
            if not (np.all(np.isfinite(theta)) and np.hypot(*theta) <= max_norm and np.isfinite(landscape.value(theta))):
                break
            path[t] = theta
    return path


def diverged_at(path) -> int | None:
    """The index of the first NaN row of a :func:`trajectory` (the step that diverged), or ``None``."""
    path = np.asarray(path, dtype=float)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"path must have shape (steps + 1, 2), got {path.shape}")
    bad = np.flatnonzero(~np.all(np.isfinite(path), axis=1))
    return int(bad[0]) if bad.size else None


def iterations_to_tolerance(path, landscape: Landscape, tol: float) -> int | None:
    r"""The first step :math:`k` from which :math:`f(\theta_t) - f^\star \le` ``tol`` for every later :math:`t` of the path.

    "Stays below" rather than "first touches": momentum methods oscillate, and a path that dips under
    the tolerance and bounces out has not converged. ``None`` when the path ends above ``tol`` or diverged.
    """
    if not isinstance(landscape, Landscape):
        raise TypeError(f"landscape must be a Landscape, got {type(landscape).__name__}")
    tol = check_positive("tol", tol)
    if diverged_at(path) is not None:
        return None
    gap = landscape.value(np.asarray(path, dtype=float)) - landscape.minimum_value
    above = np.flatnonzero(gap > tol)
    if above.size == 0:
        return 0
    return None if above[-1] == len(gap) - 1 else int(above[-1] + 1)


# --------------------------------------------------------------------------- plotting


def plot_trajectories(
    landscape: Landscape,
    paths: Mapping[str, np.ndarray],
    ax=None,
    title: str | None = None,
    levels: int = 18,
    window=None,
    markers: bool = True,
):
    """Draw log-spaced contours of :math:`f - f^\\star` over the window and each path on top.

    ``paths`` maps a legend label to a :func:`trajectory`. A path starts at a circle and ends at a
    square; a diverged one ends at a cross and gets "(diverged)" in its label. Minima are stars.
    Returns the axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if not isinstance(landscape, Landscape):
        raise TypeError(f"landscape must be a Landscape, got {type(landscape).__name__}")
    if not isinstance(paths, Mapping):
        raise TypeError(f"paths must be a mapping {{label: path}}, got {type(paths).__name__}")
    levels = check_positive_int("levels", levels)
    window = _check_window(landscape.window if window is None else window)
    if ax is None:
        _, ax = plt.subplots()
    X, Y, Z = landscape.grid(300, window)
    gap = Z - landscape.minimum_value
    positive = gap[gap > 0]
    low = max(positive.min(), positive.max() * 1e-8) if positive.size else 1e-8
    contour_levels = np.geomspace(low, max(gap.max(), low * 10), levels)
    ax.contour(X, Y, np.maximum(gap, low), levels=contour_levels, norm=LogNorm(), cmap="Greys_r", linewidths=0.7)
    for label, path in paths.items():
        path = np.asarray(path, dtype=float)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"path {label!r} must have shape (steps + 1, 2), got {path.shape}")
        stop = diverged_at(path)
        finite = path if stop is None else path[:stop]
        (line,) = ax.plot(
            finite[:, 0], finite[:, 1], marker="o" if markers else None, markersize=2.5, lw=1.3,
            label=label if stop is None else f"{label} (diverged)",
        )
        ax.plot(*finite[0], "o", color=line.get_color(), markersize=6, markeredgecolor="k", zorder=5)
        if stop is None:
            ax.plot(*finite[-1], "s", color=line.get_color(), markersize=6, markeredgecolor="k", zorder=5)
        else:
            ax.plot(*finite[-1], "x", color=line.get_color(), markersize=10, mew=2, zorder=5)
    minima = getattr(landscape, "minima", (landscape.minimum,))
    for i, m in enumerate(minima):
        ax.plot(*m, "*", color="gold", markersize=15, markeredgecolor="k", label="minimum" if i == 0 else None)
    if hasattr(landscape, "saddle_point"):
        ax.plot(*landscape.saddle_point, "X", color="tab:red", markersize=10, markeredgecolor="k", label="saddle point")
    (x0, x1), (y0, y1) = window
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(r"parameter $\theta_1$")
    ax.set_ylabel(r"parameter $\theta_2$")
    ax.set_title(title or landscape.name)
    ax.legend(loc="best", fontsize=9)
    return ax
