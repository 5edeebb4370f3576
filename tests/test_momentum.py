"""companion.momentum: values and gradients (finite differences, scipy's Rosenbrock), trajectories, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from companion import optim
from companion.momentum import (
    Quadratic,
    Rosenbrock,
    Saddle,
    diverged_at,
    iterations_to_tolerance,
    plot_trajectories,
    trajectory,
)

LANDSCAPES = [
    Quadratic(10.0),
    Quadratic(100.0, largest_eigenvalue=3.0, angle=0.6, center=(1.0, -2.0)),
    Rosenbrock(),
    Rosenbrock(a=-0.5, b=7.0),
    Saddle(),
]
IDS = ["quadratic", "rotated-quadratic", "rosenbrock", "rosenbrock-custom", "saddle"]


def central_differences(fn, xy, h=1e-6):
    """Derivative of ``fn`` (points -> arrays) along each coordinate, stacked on a new last axis."""
    columns = []
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        columns.append((fn(xy + e) - fn(xy - e)) / (2 * h))
    return np.stack(columns, axis=-1)


def random_points(landscape, n=50, seed=0):
    (x0, x1), (y0, y1) = landscape.window
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)], axis=-1)


@pytest.mark.parametrize("landscape", LANDSCAPES, ids=IDS)
def test_gradient_matches_central_differences(landscape):
    xy = random_points(landscape)
    numeric = central_differences(landscape.value, xy)
    np.testing.assert_allclose(landscape.gradient(xy), numeric, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("landscape", LANDSCAPES, ids=IDS)
def test_hessian_matches_differences_of_the_gradient(landscape):
    xy = random_points(landscape, seed=1)
    numeric = central_differences(landscape.gradient, xy)  # [..., i, j] = d g_i / d x_j
    np.testing.assert_allclose(landscape.hessian(xy), numeric, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("landscape", LANDSCAPES, ids=IDS)
def test_minimum_is_a_stationary_point_with_the_stated_value(landscape):
    assert landscape.minimum.shape == (2,)
    np.testing.assert_allclose(landscape.gradient(landscape.minimum), 0.0, atol=1e-12)
    assert landscape.value(landscape.minimum) == pytest.approx(landscape.minimum_value, abs=1e-12)
    # and nothing in the window lies lower
    X, Y, Z = landscape.grid(101)
    assert Z.min() >= landscape.minimum_value - 1e-12
    assert Z.shape == X.shape == Y.shape == (101, 101)


@pytest.mark.parametrize("landscape", LANDSCAPES, ids=IDS)
def test_vectorised_evaluation_matches_pointwise(landscape):
    xy = random_points(landscape, n=12).reshape(3, 4, 2)
    values, grads = landscape.value(xy), landscape.gradient(xy)
    assert values.shape == (3, 4) and grads.shape == (3, 4, 2) and landscape.hessian(xy).shape == (3, 4, 2, 2)
    for idx in np.ndindex(3, 4):
        assert values[idx] == pytest.approx(float(landscape.value(xy[idx])))
        np.testing.assert_allclose(grads[idx], landscape.gradient(xy[idx]))


def test_rosenbrock_against_scipy():
    from scipy.optimize import rosen, rosen_der, rosen_hess

    f = Rosenbrock()
    for xy in random_points(f, n=30, seed=2):
        assert f.value(xy) == pytest.approx(rosen(xy), rel=1e-14)
        np.testing.assert_allclose(f.gradient(xy), rosen_der(xy), rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(f.hessian(xy), rosen_hess(xy), rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(f.minimum, [1.0, 1.0])


def test_quadratic_eigenvalues_and_optimum():
    q = Quadratic(condition_number=50.0, largest_eigenvalue=2.0, angle=0.3, center=(1.5, -0.5))
    np.testing.assert_allclose(q.eigenvalues, [2.0 / 50.0, 2.0])
    np.testing.assert_allclose(np.linalg.eigvalsh(q.matrix), q.eigenvalues, rtol=1e-12)
    assert q.condition_number == 50.0
    assert q.smallest_eigenvalue == pytest.approx(0.04) and q.largest_eigenvalue == 2.0
    np.testing.assert_array_equal(q.minimum, [1.5, -0.5])
    assert q.value(q.minimum) == 0.0
    # the exact minimiser of a quadratic is theta* = minimum: solve A (theta - c) = 0 from any point
    theta = np.array([3.0, 4.0])
    np.testing.assert_allclose(theta - np.linalg.solve(q.matrix, q.gradient(theta)), q.minimum, atol=1e-12)


def test_saddle_point_and_minima():
    s = Saddle()
    np.testing.assert_allclose(s.gradient(s.saddle_point), 0.0)
    np.testing.assert_allclose(np.linalg.eigvalsh(s.hessian(s.saddle_point)), [-1.0, 2.0])
    for m in s.minima:
        np.testing.assert_allclose(s.gradient(m), 0.0)
        assert s.value(m) == -0.25


def test_trajectory_shape_and_first_row():
    q = Quadratic(10.0)
    path = trajectory(optim.sgd(0.5), q, (-9.0, 3.0), 25)
    assert path.shape == (26, 2)
    np.testing.assert_array_equal(path[0], [-9.0, 3.0])
    assert diverged_at(path) is None
    # one hand-computed step: theta_1 = theta_0 - lr * A theta_0
    np.testing.assert_allclose(path[1], np.array([-9.0, 3.0]) - 0.5 * q.matrix @ np.array([-9.0, 3.0]))


def test_trajectory_matches_a_hand_written_momentum_loop():
    f = Rosenbrock()
    path = trajectory(optim.sgd(1e-3, momentum=0.9), f, (-1.2, 1.0), 200)
    theta, buf = np.array([-1.2, 1.0]), np.zeros(2)
    for t in range(1, 201):
        buf = 0.9 * buf + f.gradient(theta)
        theta = theta - 1e-3 * buf
        np.testing.assert_allclose(path[t], theta, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kappa", [1.0, 10.0, 100.0])
def test_gradient_descent_converges_below_two_over_L_and_diverges_above(kappa):
    q = Quadratic(kappa, largest_eigenvalue=4.0)
    two_over_L = 2.0 / q.largest_eigenvalue
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # divergence must not spam overflow warnings
        stable = trajectory(optim.sgd(0.95 * two_over_L), q, (-9.0, 3.0), int(20 * kappa) + 300)
        unstable = trajectory(optim.sgd(1.05 * two_over_L), q, (-9.0, 3.0), 5000)
    assert diverged_at(stable) is None
    assert q.value(stable[-1]) < 1e-8 * q.value(stable[0])
    stop = diverged_at(unstable)
    assert stop is not None and 1 < stop < 5000
    assert np.all(np.isnan(unstable[stop:]))
    assert np.all(np.isfinite(unstable[:stop]))
    assert iterations_to_tolerance(unstable, q, 1e-3) is None


def test_divergence_by_overflow_is_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = trajectory(optim.sgd(0.5), Rosenbrock(), (3.0, -3.0), 100, max_norm=1e300)
    stop = diverged_at(path)
    assert stop is not None and stop < 100


def test_iterations_to_tolerance_requires_staying_below():
    q = Quadratic(1.0)  # f = |theta|^2 / 2
    path = np.array([[2.0, 0.0], [0.0, 0.1], [1.0, 0.0], [0.1, 0.0], [0.01, 0.0]])
    # f: 2, 0.005, 0.5, 0.005, 0.00005: dips below 0.01 at step 1, but stays below only from step 3
    assert iterations_to_tolerance(path, q, 0.01) == 3
    assert iterations_to_tolerance(path, q, 10.0) == 0
    assert iterations_to_tolerance(path, q, 1e-6) is None


def test_momentum_needs_far_fewer_iterations_than_gradient_descent():
    q = Quadratic(100.0)
    f0 = q.value((-9.0, 3.0))
    gd = trajectory(optim.sgd(2 / (1 + 0.01)), q, (-9.0, 3.0), 2000)
    hb = trajectory(optim.sgd(4 / (1 + 0.1) ** 2, momentum=(9 / 11) ** 2), q, (-9.0, 3.0), 2000)
    assert 3 * iterations_to_tolerance(hb, q, 1e-8 * f0) < iterations_to_tolerance(gd, q, 1e-8 * f0)


def test_plot_trajectories_draws_paths_and_marks_divergence():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = Quadratic(10.0)
    good = trajectory(optim.sgd(1.0), q, (-9.0, 3.0), 20)
    bad = trajectory(optim.sgd(2.5), q, (-9.0, 3.0), 200)
    ax = plot_trajectories(q, {"GD": good, "too large": bad}, title="test")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "GD" in labels and "too large (diverged)" in labels and "minimum" in labels
    assert ax.get_title() == "test" and ax.get_xlabel() and ax.get_ylabel()
    plot_trajectories(Saddle(), {"GD": trajectory(optim.sgd(0.1), Saddle(), (1.5, 1e-3), 10)})
    plt.close("all")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kappa", [0.5, 0.0, -3.0, float("inf"), float("nan")])
def test_condition_number_below_one_is_rejected(kappa):
    with pytest.raises(ValueError, match="condition_number"):
        Quadratic(kappa)


def test_other_bad_landscape_arguments():
    with pytest.raises(TypeError, match="condition_number"):
        Quadratic("10")
    with pytest.raises(ValueError, match="largest_eigenvalue"):
        Quadratic(10.0, largest_eigenvalue=0.0)
    with pytest.raises(ValueError, match="center"):
        Quadratic(10.0, center=(0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="window"):
        Quadratic(10.0, window=((1.0, -1.0), (0.0, 1.0)))
    with pytest.raises(ValueError, match="b"):
        Rosenbrock(b=-1.0)
    with pytest.raises(ValueError, match="xy"):
        Rosenbrock().value([1.0, 2.0, 3.0])


@pytest.mark.parametrize("start", [(1.0,), (1.0, 2.0, 3.0), [[1.0, 2.0]], 1.0])
def test_trajectory_rejects_a_start_of_the_wrong_shape(start):
    with pytest.raises(ValueError, match="start"):
        trajectory(optim.sgd(0.1), Quadratic(), start, 10)


@pytest.mark.parametrize("start", [(np.nan, 1.0), (1.0, np.inf)])
def test_trajectory_rejects_a_non_finite_start(start):
    with pytest.raises(ValueError, match="start"):
        trajectory(optim.sgd(0.1), Quadratic(), start, 10)


@pytest.mark.parametrize("steps", [0, -5])
def test_trajectory_rejects_steps_below_one(steps):
    with pytest.raises(ValueError, match="steps"):
        trajectory(optim.sgd(0.1), Quadratic(), (1.0, 1.0), steps)


def test_trajectory_rejects_wrong_types():
    with pytest.raises(TypeError, match="steps"):
        trajectory(optim.sgd(0.1), Quadratic(), (1.0, 1.0), 2.5)
    with pytest.raises(TypeError, match="transformation"):
        trajectory(lambda g: g, Quadratic(), (1.0, 1.0), 10)
    with pytest.raises(TypeError, match="landscape"):
        trajectory(optim.sgd(0.1), lambda xy: xy, (1.0, 1.0), 10)
    with pytest.raises(TypeError, match="start"):
        trajectory(optim.sgd(0.1), Quadratic(), ("a", "b"), 10)
    with pytest.raises(ValueError, match="tol"):
        iterations_to_tolerance(np.zeros((3, 2)), Quadratic(), 0.0)
