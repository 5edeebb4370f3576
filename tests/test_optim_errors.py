"""Bad input to companion.optim raises clear errors naming the argument; nothing is clamped."""

from __future__ import annotations

import numpy as np
import pytest

from companion import optim


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: optim.sgd(-0.1), "learning_rate"),
        (lambda: optim.sgd(float("nan")), "learning_rate"),
        (lambda: optim.sgd(0.1, momentum=-0.5), "momentum"),
        (lambda: optim.sgd(0.1, momentum=1.0), "momentum"),
        (lambda: optim.sgd(0.1, nesterov=True), "Nesterov"),
        (lambda: optim.sgd(0.1, weight_decay=-1e-4), "weight_decay"),
        (lambda: optim.adam(0.1, b1=1.0), "beta_1"),
        (lambda: optim.adam(0.1, b2=-0.1), "beta_2"),
        (lambda: optim.adam(0.1, eps=-1e-8), "eps"),
        (lambda: optim.adamw(weight_decay=-0.01), "weight_decay"),
        (lambda: optim.rmsprop(decay=1.5), "decay"),
        (lambda: optim.adadelta(rho=1.0), "rho"),
        (lambda: optim.adagrad(initial_accumulator_value=-0.1), "initial_accumulator_value"),
        (lambda: optim.nadam(momentum_decay=-1.0), "momentum_decay"),
        (lambda: optim.ftrl(0.0), "learning_rate"),
        (lambda: optim.ftrl(0.1, learning_rate_power=0.5), "learning_rate_power"),
        (lambda: optim.ftrl(0.1, l1=-1.0), "l1"),
        (lambda: optim.adam(convention="jax"), "convention"),
        (lambda: optim.adam(0.1, weight_decay=-0.01, convention="keras"), "weight_decay"),
        (lambda: optim.sgd(0.1, weight_decay=float("nan"), convention="keras"), "weight_decay"),
        (lambda: optim.nadam(0.1, weight_decay=0.1, decoupled_weight_decay=True, convention="keras"),
         "decoupled_weight_decay"),
        (lambda: optim.get_optimizer("adamm"), "optimizer name"),
    ],
)
def test_bad_hyperparameters_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("build", [lambda: optim.sgd("0.1"), lambda: optim.adam(0.1, b1=True), lambda: optim.scale("x")])
def test_wrong_types_raise_type_error(build):
    with pytest.raises(TypeError):
        build()


def test_nan_gradient_is_reported():
    params = [np.zeros(3), np.zeros((2, 2))]
    opt = optim.adam(0.1)
    state = opt.init(params)
    grads = [np.ones(3), np.array([[1.0, np.nan], [0.0, 0.0]])]
    with pytest.raises(ValueError, match=r"gradients \[1\] contain NaN or inf"):
        opt.update(grads, state, params)


def test_mismatched_trees_are_reported():
    params = {"w": np.zeros((2, 3)), "b": np.zeros(3)}
    opt = optim.sgd(0.1, momentum=0.9)
    state = opt.init(params)
    with pytest.raises(ValueError, match="keys"):
        opt.update({"w": np.zeros((2, 3))}, state, params)
    with pytest.raises(ValueError, match="shape mismatch"):
        opt.update({"w": np.zeros((3, 2)), "b": np.zeros(3)}, state, params)
    with pytest.raises(ValueError, match="sequence"):
        optim.apply_updates([np.zeros(2)], [np.zeros(2), np.zeros(2)])


def test_chain_rejects_non_transformations_and_foreign_state():
    with pytest.raises(TypeError, match="chain argument 1"):
        optim.chain(optim.trace(0.9), lambda g: g)
    opt = optim.chain(optim.trace(0.9), optim.scale_by_learning_rate(0.1))
    with pytest.raises(ValueError, match="state"):
        opt.update([np.ones(2)], (None,), [np.zeros(2)])


def test_functional_update_does_not_modify_its_inputs():
    params = [np.ones(4)]
    grads = [np.full(4, 0.5)]
    opt = optim.adam(0.1)
    state = opt.init(params)
    snapshot = [a.copy() for a in (params[0], grads[0], state[1].mu[0], state[1].nu[0])]
    opt.update(grads, state, params)
    for before, after in zip(snapshot, (params[0], grads[0], state[1].mu[0], state[1].nu[0])):
        np.testing.assert_array_equal(before, after)


def test_bias_correction_off_changes_the_first_step_by_the_known_factor():
    """Without bias correction Adam's first step is (1-b1)/sqrt(1-b2) (3.16) times the corrected one."""
    params, grads = [np.zeros(3)], [np.array([0.3, -2.0, 5.0])]
    b1, b2 = 0.9, 0.999
    with_bc, _ = optim.adam(1.0, b1=b1, b2=b2, eps=0.0).update(grads, optim.adam(1.0).init(params), params)
    without, _ = optim.adam(1.0, b1=b1, b2=b2, eps=0.0, bias_correction=False).update(
        grads, optim.adam(1.0).init(params), params
    )
    np.testing.assert_allclose(without[0], with_bc[0] * (1 - b1) / np.sqrt(1 - b2), rtol=1e-12)


def test_update_works_on_tensors_that_require_grad():
    """Outside the adapter the update is plain, differentiable torch code (no in-place shortcuts)."""
    torch = pytest.importorskip("torch")
    w = torch.ones(3, requires_grad=True)
    opt = optim.adam(0.1, weight_decay=0.01)
    updates, _ = opt.update([torch.full((3,), 0.5)], opt.init([w]), [w])
    updates[0].sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()
