"""companion.optim.lbfgs against torch.optim.LBFGS (step for step, float64) and the explicit BFGS matrix."""

import importlib

import numpy as np
import pytest
import torch

from companion.optim import apply_updates
from companion.optim.lbfgs import LBFGSState, lbfgs, lbfgs_direction


def _problem(seed=0):
    """A smooth non-quadratic loss: logistic regression with an L2 term plus a quartic, on two parameter arrays."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(60, 7, generator=gen, dtype=torch.float64)
    y = (torch.rand(60, generator=gen, dtype=torch.float64) < 0.5).double()

    def loss(w, b):
        z = X @ w + b
        return torch.nn.functional.binary_cross_entropy_with_logits(z, y) + 0.01 * (w**2).sum() + 0.001 * (w**4).sum()

    start = [torch.randn(7, generator=gen, dtype=torch.float64), torch.randn(1, generator=gen, dtype=torch.float64)]
    return loss, start


def _torch_run(lr, history_size, steps, seed=0, **tolerances):
    loss, start = _problem(seed)
    params = [p.clone().requires_grad_(True) for p in start]
    opt = torch.optim.LBFGS(params, lr=lr, history_size=history_size, max_iter=1, line_search_fn=None, **tolerances)

    def closure():
        opt.zero_grad()
        value = loss(*params)
        value.backward()
        return value

    path = []
    for _ in range(steps):
        opt.step(closure)
        path.append(torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy())
    return np.array(path)


def _reference_run(transformation, steps, seed=0, as_numpy=True):
    loss, start = _problem(seed)
    params = [p.numpy().copy() for p in start] if as_numpy else [p.clone() for p in start]
    state = transformation.init(params)
    path = []
    for _ in range(steps):
        tensors = [torch.as_tensor(p).clone().requires_grad_(True) for p in params]
        loss(*tensors).backward()
        grads = [t.grad.numpy() if as_numpy else t.grad for t in tensors]
        updates, state = transformation.update(grads, state, params)
        params = apply_updates(params, updates)
        path.append(np.concatenate([np.asarray(p).reshape(-1) for p in params]))
    return np.array(path), state


@pytest.mark.parametrize("lr, history_size", [(1.0, 10), (0.5, 3), (0.8, 1)])
def test_lbfgs_matches_torch_step_for_step(lr, history_size):
    steps = 150
    expected = _torch_run(lr, history_size, steps)
    got, state = _reference_run(lbfgs(lr, history_size), steps)
    assert np.abs(got - expected).max() < 1e-10
    assert len(state.s_history) == history_size  # the history filled up and was trimmed
    assert np.abs(expected[-1] - expected[-2]).max() < 1e-6  # it converged: the test covers the whole run


@pytest.mark.parametrize("tolerances", [dict(tolerance_grad=1e-3), dict(tolerance_change=1e-4)])
def test_lbfgs_tolerances_match_torch(tolerances):
    """Large tolerances make torch stop moving early (no step at a small gradient or a flat direction): same here."""
    expected = _torch_run(1.0, 10, 80, **tolerances)
    got, _ = _reference_run(lbfgs(1.0, 10, **tolerances), 80)
    assert np.abs(got - expected).max() < 1e-10
    assert np.all(expected[-1] == expected[-2])  # torch did stop moving: the checks were exercised
    assert not np.allclose(expected[-1], _torch_run(1.0, 10, 80)[-1], atol=1e-8, rtol=0)


def test_lbfgs_on_torch_tensors_matches_torch():
    expected = _torch_run(1.0, 5, 60)
    got, _ = _reference_run(lbfgs(1.0, 5), 60, as_numpy=False)
    assert np.abs(got - expected).max() < 1e-10


def test_wrong_first_step_scaling_fails():
    """Without torch's min(1, 1/||g||_1) scaling of the first step, the paths part."""
    expected = _torch_run(1.0, 10, 30)
    right = lbfgs(1.0, 10)

    def update(grads, state, params=None):
        updates, new_state = right.update(grads, state, params)
        if new_state.count == 1:
            updates = [-g for g in grads]
            new_state = new_state._replace(step_size=1.0)
        return updates, new_state

    got, _ = _reference_run(right._replace(update=update), 30)
    assert np.abs(got - expected).max() > 1e-3


def test_wrong_initial_hessian_scaling_fails():
    """Forgetting the initial scaling gamma = s^T y / y^T y (a direction 1/gamma times too long) gives another path."""
    expected = _torch_run(1.0, 10, 30)
    module = importlib.import_module("companion.optim.lbfgs")  # the module: companion.optim.lbfgs is the function

    original = module.lbfgs_direction

    def unscaled(grad, s_history, y_history):
        if not s_history:
            return -grad
        gamma = float(s_history[-1] @ y_history[-1]) / float(y_history[-1] @ y_history[-1])
        return original(grad, s_history, y_history) / gamma  # a wrong overall scale

    module.lbfgs_direction = unscaled
    try:
        got, _ = _reference_run(lbfgs(1.0, 10), 30)
    finally:
        module.lbfgs_direction = original
    assert np.abs(got - expected).max() > 1e-3


def _bfgs_inverse(s_history, y_history, n):
    y_last, s_last = y_history[-1], s_history[-1]
    H = (s_last @ y_last) / (y_last @ y_last) * np.eye(n)
    for s, y in zip(s_history, y_history):
        rho = 1.0 / (y @ s)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


def test_two_loop_equals_explicit_bfgs_on_a_quadratic():
    rng = np.random.default_rng(0)
    n = 6
    A = rng.normal(size=(n, n))
    hessian = A @ A.T + n * np.eye(n)
    s_history = [rng.normal(size=n) for _ in range(4)]
    y_history = [hessian @ s for s in s_history]  # on a quadratic, y = H s exactly
    g = rng.normal(size=n)
    expected = -_bfgs_inverse(s_history, y_history, n) @ g
    assert np.allclose(lbfgs_direction(g, s_history, y_history), expected, rtol=1e-12, atol=1e-12)
    assert np.allclose(lbfgs_direction(torch.from_numpy(g), [torch.from_numpy(s) for s in s_history],
                                       [torch.from_numpy(y) for y in y_history]).numpy(), expected, atol=1e-12)
    # with n independent pairs BFGS recovers the exact inverse Hessian on the span: H y_i = s_i for the newest pair
    H = _bfgs_inverse(s_history, y_history, n)
    assert np.allclose(H @ y_history[-1], s_history[-1], atol=1e-12)
    # a plausible wrong variant: the two loops in the same order
    assert not np.allclose(_same_order_loops(g, s_history, y_history), expected, atol=1e-6)
    assert np.allclose(lbfgs_direction(g, [], []), -g)


def _same_order_loops(g, s_history, y_history):
    rho = [1.0 / (y @ s) for s, y in zip(s_history, y_history)]
    q, alpha = g.copy(), []
    for s, y, r in zip(s_history, y_history, rho):  # wrong: should run newest to oldest
        alpha.append(r * (s @ q))
        q = q - alpha[-1] * y
    r_vec = (s_history[-1] @ y_history[-1]) / (y_history[-1] @ y_history[-1]) * q
    for s, y, r, a in zip(s_history, y_history, rho, alpha):
        r_vec = r_vec + (a - r * (y @ r_vec)) * s
    return -r_vec


def test_lbfgs_converges_on_a_quadratic():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(20, 20))
    hessian = A @ A.T / 20 + 0.1 * np.eye(20)
    params = [rng.normal(size=20)]
    t = lbfgs(1.0, history_size=20)
    state = t.init(params)
    for _ in range(60):
        updates, state = t.update([hessian @ params[0]], state, params)
        params = apply_updates(params, updates)
    assert np.linalg.norm(params[0]) < 1e-3  # from about 4.5, with no line search


def test_no_step_at_an_optimum_and_state_unchanged():
    t = lbfgs()
    state = t.init([np.zeros(3)])
    updates, new_state = t.update([np.full(3, 1e-8)], state, [np.zeros(3)])
    assert np.all(updates[0] == 0) and new_state == state


def test_bad_input():
    with pytest.raises(ValueError, match="learning_rate"):
        lbfgs(-1.0)
    with pytest.raises(ValueError, match="history_size"):
        lbfgs(1.0, history_size=0)
    with pytest.raises(TypeError, match="history_size"):
        lbfgs(1.0, history_size=2.5)
    with pytest.raises(ValueError, match="tolerance_grad"):
        lbfgs(1.0, tolerance_grad=-1.0)
    g = np.ones(3)
    with pytest.raises(ValueError, match="grad"):
        lbfgs_direction(np.ones((3, 1)), [], [])
    with pytest.raises(TypeError, match="grad"):
        lbfgs_direction([1.0, 2.0], [], [])
    with pytest.raises(ValueError, match="equally long"):
        lbfgs_direction(g, [g], [])
    with pytest.raises(ValueError, match="s_history"):
        lbfgs_direction(g, [np.ones(2)], [np.ones(2)])
    with pytest.raises(ValueError, match="curvature"):
        lbfgs_direction(g, [g], [-g])
    with pytest.raises(ValueError, match="NaN"):
        t = lbfgs()
        t.update([np.array([np.nan, 1.0])], t.init([np.zeros(2)]), [np.zeros(2)])
    with pytest.raises(TypeError, match="state"):
        lbfgs().update([g], None, [g])
    assert isinstance(lbfgs().init([g]), LBFGSState)
