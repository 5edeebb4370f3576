"""companion.gradient_descent: softmax regression loss, gradient, mini-batch variance and the SGD loop."""

from __future__ import annotations

import numpy as np
import pytest

from companion import gradient_descent
from companion.optim import sgd


def problem(n=60, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, k, size=n)
    params = (rng.normal(size=(d, k)) * 0.5, rng.normal(size=k) * 0.5)
    return params, X, y


def test_init_gives_log_k():
    W, b = gradient_descent.softmax_regression_init(4, 10)
    X = np.ones((3, 4))
    assert gradient_descent.softmax_regression_loss((W, b), X, np.array([0, 3, 9])) == pytest.approx(np.log(10))


def test_gradient_matches_finite_differences():
    params, X, y = problem()
    dW, db = gradient_descent.softmax_regression_gradient(params, X, y)
    h = 1e-6
    for which, grad in ((0, dW), (1, db)):
        numeric = np.zeros_like(grad)
        for idx in np.ndindex(grad.shape):
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[which][idx] += h
            minus[which][idx] -= h
            numeric[idx] = (gradient_descent.softmax_regression_loss(plus, X, y) - gradient_descent.softmax_regression_loss(minus, X, y)) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_loss_and_gradient_match_torch():
    torch = pytest.importorskip("torch")
    params, X, y = problem()
    W = torch.tensor(params[0], requires_grad=True)
    b = torch.tensor(params[1], requires_grad=True)
    loss = torch.nn.functional.cross_entropy(torch.tensor(X) @ W + b, torch.tensor(y))
    loss.backward()
    assert gradient_descent.softmax_regression_loss(params, X, y) == pytest.approx(loss.item(), rel=1e-12)
    dW, db = gradient_descent.softmax_regression_gradient(params, X, y)
    np.testing.assert_allclose(dW, W.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_loss_is_stable_for_huge_logits():
    params, X, y = problem()
    big = (params[0] * 1e4, params[1])
    assert np.isfinite(gradient_descent.softmax_regression_loss(big, X, y))
    assert all(np.all(np.isfinite(g)) for g in gradient_descent.softmax_regression_gradient(big, X, y))


@pytest.mark.parametrize("batch_size", [1, 4, 20, 59, 60])
def test_minibatch_variance_matches_sampling(batch_size):
    params, X, y = problem(n=60)
    full = np.concatenate([g.ravel() for g in gradient_descent.softmax_regression_gradient(params, X, y)])
    rng = np.random.default_rng(1)
    draws = []
    for _ in range(4000):
        batch = rng.choice(len(X), size=batch_size, replace=False)
        g = np.concatenate([g.ravel() for g in gradient_descent.softmax_regression_gradient(params, X[batch], y[batch])])
        draws.append(np.sum((g - full) ** 2))
    exact = gradient_descent.minibatch_gradient_variance(params, X, y, batch_size)
    if batch_size == len(X):
        assert exact == 0.0
    else:
        assert np.mean(draws) == pytest.approx(exact, rel=0.08)


def test_full_batch_sgd_is_gradient_descent():
    params, X, y = problem()
    lr = 0.3
    expected = params
    for _ in range(3):
        dW, db = gradient_descent.softmax_regression_gradient(expected, X, y)
        expected = (expected[0] - lr * dW, expected[1] - lr * db)
    got, history = gradient_descent.minibatch_sgd(params, X, y, sgd(lr), batch_size=len(X), epochs=3)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-12)
    steps, losses = history.series("loss")
    assert list(steps) == [0, 1, 2, 3] and losses[-1] < losses[0]


def test_minibatch_sgd_matches_torch_sgd():
    torch = pytest.importorskip("torch")
    params, X, y = problem(n=50)
    batch_size, epochs, lr, seed = 8, 2, 0.2, 3
    got, history = gradient_descent.minibatch_sgd(
        params, X, y, sgd(lr, momentum=0.9), batch_size=batch_size, epochs=epochs, seed=seed, evals_per_epoch=3
    )
    W = torch.tensor(params[0], requires_grad=True)
    b = torch.tensor(params[1], requires_grad=True)
    opt = torch.optim.SGD([W, b], lr=lr, momentum=0.9)
    rng = np.random.default_rng(seed)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for k in range(0, len(X), batch_size):
            batch = torch.tensor(order[k : k + batch_size])
            opt.zero_grad()
            torch.nn.functional.cross_entropy(Xt[batch] @ W + b, yt[batch]).backward()
            opt.step()
    np.testing.assert_allclose(got[0], W.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[1], b.detach().numpy(), rtol=1e-10, atol=1e-12)
    epochs_logged = history.series("epoch")[1]
    assert epochs_logged[0] == 0 and epochs_logged[-1] == pytest.approx(2.0)
    assert len(epochs_logged) == 1 + 3 * epochs


def test_bad_input_raises():
    params, X, y = problem()
    with pytest.raises(ValueError, match="X"):
        gradient_descent.softmax_regression_loss(params, X[0], y)
    with pytest.raises(ValueError, match="y"):
        gradient_descent.softmax_regression_gradient(params, X, y[:-1])
    with pytest.raises(TypeError, match="y"):
        gradient_descent.softmax_regression_gradient(params, X, y.astype(float))
    with pytest.raises(ValueError, match="params"):
        gradient_descent.softmax_regression_gradient((params[0][:-1], params[1]), X, y)
    with pytest.raises(ValueError, match="batch_size"):
        gradient_descent.minibatch_gradient_variance(params, X, y, len(X) + 1)
    with pytest.raises(TypeError, match="batch_size"):
        gradient_descent.minibatch_sgd(params, X, y, sgd(0.1), batch_size=2.0)
    with pytest.raises(TypeError, match="optimizer"):
        gradient_descent.minibatch_sgd(params, X, y, "sgd", batch_size=2)
    with pytest.raises(ValueError, match="y has labels"):
        gradient_descent.softmax_regression_loss(params, X, y + 5)
    with pytest.raises(ValueError, match="n_classes"):
        gradient_descent.softmax_regression_init(3, 0)
