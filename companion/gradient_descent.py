r"""Softmax (multinomial logistic) regression in NumPy: a convex problem with exact gradients.

Chapter 1 uses it to study gradient descent where everything can be computed exactly: the loss

.. math:: J(W, b) = \frac{1}{n} \sum_{i=1}^{n} \ell_i, \qquad
   \ell_i = -\log \operatorname{softmax}(W^\top x_i + b)_{y_i},

its gradient :math:`\nabla_W J = \frac{1}{n} X^\top (P - Y)`, :math:`\nabla_b J = \frac{1}{n} \mathbf{1}^\top (P - Y)`
(:math:`P` the predicted probabilities, :math:`Y` the one-hot labels), the variance of a mini-batch
gradient, and a mini-batch SGD loop driven by any :mod:`companion.optim` transformation.

Parameters are a tuple ``(W, b)`` with ``W`` of shape ``(d, k)`` and ``b`` of shape ``(k,)``, so the
reference optimizers update them directly. The tests check the gradient against finite differences
and against ``torch.autograd``, the variance formula against sampling, and the loop against
``torch.optim.SGD``.
"""

from __future__ import annotations

import time

import numpy as np

from ._checks import check_positive_int
from .history import History

__all__ = [
    "minibatch_gradient_variance",
    "minibatch_sgd",
    "softmax_regression_gradient",
    "softmax_regression_init",
    "softmax_regression_loss",
]


def _check_data(X, y, params=None):
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (examples, features), got shape {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must be a 1-D array of {len(X)} integer labels, got shape {y.shape}")
    if len(X) == 0:
        raise ValueError("X must hold at least one example")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    if params is not None:
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise TypeError("params must be a pair (W, b)")
        W, b = params
        if np.ndim(W) != 2 or np.shape(W)[0] != X.shape[1] or np.shape(b) != (np.shape(W)[1],):
            raise ValueError(
                f"params do not fit X: W must be ({X.shape[1]}, k) and b (k,), got {np.shape(W)} and {np.shape(b)}"
            )
        if y.min() < 0 or y.max() >= np.shape(W)[1]:
            raise ValueError(f"y has labels outside [0, {np.shape(W)[1]})")
    return X, y


def softmax_regression_init(n_features: int, n_classes: int, dtype=np.float64):
    """Zero parameters ``(W, b)``: the loss is convex, so no random start is needed (:math:`J = \\log k`)."""
    n_features = check_positive_int("n_features", n_features)
    n_classes = check_positive_int("n_classes", n_classes)
    return np.zeros((n_features, n_classes), dtype=dtype), np.zeros(n_classes, dtype=dtype)


def _probabilities(params, X):
    W, b = params
    logits = X @ W + b
    logits = logits - logits.max(axis=1, keepdims=True)  # exp never overflows
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return logits, p


def softmax_regression_loss(params, X, y) -> float:
    """Mean cross-entropy :math:`J(W, b)` of softmax regression on ``X, y``."""
    X, y = _check_data(X, y, params)
    W, b = params
    logits = X @ W + b
    m = logits.max(axis=1, keepdims=True)
    log_z = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    return float(np.mean(log_z - logits[np.arange(len(y)), y]))


def softmax_regression_gradient(params, X, y):
    r"""Gradient ``(dW, db)`` of the mean cross-entropy.

    :math:`\nabla_W J = \frac{1}{n} X^\top (P - Y)` and :math:`\nabla_b J = \frac{1}{n}\mathbf{1}^\top (P - Y)`.
    """
    X, y = _check_data(X, y, params)
    _, p = _probabilities(params, X)
    p[np.arange(len(y)), y] -= 1.0  # P - Y
    p /= len(y)
    return X.T @ p, p.sum(axis=0)


def minibatch_gradient_variance(params, X, y, batch_size: int) -> float:
    r"""Exact :math:`\mathbb{E}\,\lVert g_B - \nabla J \rVert^2` for a batch of ``batch_size`` examples.

    The batch is drawn uniformly without replacement.

    With per-example gradients :math:`g_i` and their mean :math:`\bar g = \nabla J`,

    .. math:: \mathbb{E}\,\lVert g_B - \bar g\rVert^2 = \frac{n - B}{n - 1}\,\frac{\sigma^2}{B}, \qquad
       \sigma^2 = \frac{1}{n}\sum_i \lVert g_i - \bar g\rVert^2,

    the :math:`1/B` law with a finite-population correction (zero at :math:`B = n`). For softmax
    regression :math:`\lVert g_i\rVert^2 = \lVert p_i - y_i\rVert^2 (\lVert x_i\rVert^2 + 1)`, so no
    per-example gradient is ever stored. Checked against sampled mini-batches in the tests.
    """
    X, y = _check_data(X, y, params)
    n = len(X)
    batch_size = check_positive_int("batch_size", batch_size)
    if batch_size > n:
        raise ValueError(f"Invalid batch_size: {batch_size} (must be <= the {n} examples)")
    if n == 1:
        return 0.0
    _, r = _probabilities(params, X)
    r[np.arange(n), y] -= 1.0
    per_example = (r**2).sum(axis=1) * ((X**2).sum(axis=1) + 1.0)
    dW, db = softmax_regression_gradient(params, X, y)
    sigma2 = per_example.mean() - (np.sum(dW**2) + np.sum(db**2))
    return float((n - batch_size) / (n - 1) * max(sigma2, 0.0) / batch_size)


def minibatch_sgd(
    params,
    X,
    y,
    optimizer,
    *,
    batch_size: int,
    epochs: int = 1,
    seed: int = 0,
    evals_per_epoch: int = 1,
    name: str | None = None,
):
    r"""Mini-batch SGD on softmax regression; returns the final ``params`` and a :class:`History`.

    Each epoch shuffles the examples (``np.random.default_rng(seed).permutation`` once per epoch)
    and takes :math:`\lceil n/B \rceil` steps :math:`\theta_{t+1} = \theta_t + u_t`, where ``optimizer``
    (a :mod:`companion.optim` transformation, e.g. ``sgd(0.1)`` for :math:`u_t = -\eta\, g_{B_t}`) turns
    the mini-batch gradient :math:`g_{B_t}` into the update. ``batch_size = n`` is full-batch gradient
    descent. The full training loss ``loss`` is recorded ``evals_per_epoch`` times per epoch (and at
    step 0) with ``epoch`` (fractional) and ``seconds``: the training time so far, *excluding* the
    time spent evaluating the loss. SGD: Robbins & Monro (1951); its analysis for machine learning:
    Bottou, Curtis & Nocedal (2018). Checked against ``torch.optim.SGD`` in the tests.
    """
    from .optim import GradientTransformation, apply_updates

    X, y = _check_data(X, y, params)
    if not isinstance(optimizer, GradientTransformation):
        raise TypeError(f"optimizer must be a companion.optim GradientTransformation, got {type(optimizer).__name__}")
    batch_size = check_positive_int("batch_size", batch_size)
    epochs = check_positive_int("epochs", epochs)
    evals_per_epoch = check_positive_int("evals_per_epoch", evals_per_epoch)
    n = len(X)
    steps_per_epoch = -(-n // batch_size)
    eval_steps = {
        min(steps_per_epoch, round(steps_per_epoch * (k + 1) / evals_per_epoch)) for k in range(evals_per_epoch)
    }
    rng = np.random.default_rng(seed)
    params = tuple(np.array(p, dtype=np.result_type(p, np.float32)) for p in params)
    state = optimizer.init(params)
    history = History(name)
    history.log(0, loss=softmax_regression_loss(params, X, y), epoch=0.0, seconds=0.0)
    step, seconds = 0, 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(n)
        for k in range(steps_per_epoch):
            batch = order[k * batch_size : (k + 1) * batch_size]
            grads = softmax_regression_gradient(params, X[batch], y[batch])
            updates, state = optimizer.update(grads, state, params)
            params = apply_updates(params, updates)
            step += 1
            if k + 1 in eval_steps:
                seconds += time.perf_counter() - start
                loss = softmax_regression_loss(params, X, y)
                history.log(step, loss=loss, epoch=epoch + (k + 1) / steps_per_epoch, seconds=seconds)
                if not np.isfinite(loss):
                    history.meta["diverged_at_step"] = step
                    return params, history
                start = time.perf_counter()
    return params, history
