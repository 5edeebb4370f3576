"""A shared random test problem for the optimizer tests: a nonconvex loss over a small tree of arrays."""

from __future__ import annotations

import numpy as np
import pytest

SHAPES = [(5, 3), (3,), (2, 2, 2)]
STEPS = 200
# After 200 float64 steps the reference and the framework agree to ~1e-15 on most methods; a wrong
# formula (eps inside instead of outside the root, a missing bias correction) shows as 1e-4 or more.
RTOL, ATOL = 1e-7, 1e-9


def make_problem(seed: int = 0):
    """Initial parameters and the constants of f(p) = sum(c p^2 + d sin(p)) (gradient 2 c p + d cos(p))."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in SHAPES]
    # 2c > |d| keeps f strongly convex: rounding differences shrink instead of growing chaotically,
    # so 200 steps can be compared to a tight tolerance.
    curvature = [rng.uniform(0.5, 2.0, size=s) for s in SHAPES]
    wiggle = [rng.uniform(-0.9, 0.9, size=s) for s in SHAPES]
    return params, curvature, wiggle


def numpy_gradients(params, curvature, wiggle):
    return [2 * c * p + d * np.cos(p) for p, c, d in zip(params, curvature, wiggle)]


def run_reference(transform, seed: int = 0, steps: int = STEPS):
    """Run a companion optimizer on the problem in float64 NumPy; return the final parameters."""
    from companion.optim import apply_updates

    params, curvature, wiggle = make_problem(seed)
    state = transform.init(params)
    for _ in range(steps):
        grads = numpy_gradients(params, curvature, wiggle)
        updates, state = transform.update(grads, state, params)
        params = apply_updates(params, updates)
    return params


def run_keras(make_optimizer, seed: int = 0, steps: int = STEPS):
    """Run a ``keras.optimizers`` optimizer on the same problem with float64 variables."""
    import keras

    params, curvature, wiggle = make_problem(seed)
    variables = [keras.Variable(p, dtype="float64") for p in params]
    opt = make_optimizer()
    for _ in range(steps):
        values = [np.asarray(v.numpy()) for v in variables]
        grads = numpy_gradients(values, curvature, wiggle)
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g, dtype="float64") for g in grads], variables))
    return [np.asarray(v.numpy()) for v in variables]


def run_torch(make_optimizer, seed: int = 0, steps: int = STEPS, scheduler=None, start_factor: float = 1.0):
    """Run a ``torch.optim`` optimizer (``make_optimizer(tensors)``) on the same problem in float64
    (``start_factor`` scales the starting point: 1 + 1e-15 shows whether a setting is chaotic)."""
    import torch

    params, curvature, wiggle = make_problem(seed)
    tensors = [torch.tensor(p * start_factor, dtype=torch.float64, requires_grad=True) for p in params]
    c = [torch.tensor(x) for x in curvature]
    d = [torch.tensor(x) for x in wiggle]
    opt = make_optimizer(tensors)
    sched = scheduler(opt) if scheduler else None
    for _ in range(steps):
        opt.zero_grad()
        loss = sum((ci * p * p + di * torch.sin(p)).sum() for p, ci, di in zip(tensors, c, d))
        loss.backward()
        opt.step()
        if sched:
            sched.step()
    return [p.detach().numpy() for p in tensors]


@pytest.fixture
def float64_scalars():
    """torch keeps scalar state (NAdam's mu_product) in the default dtype: make it float64 too."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def fit_keras_model(optimizer, x, y, *, hidden: int, batch_size: int, epochs: int):
    """Fit a small Dense(tanh)-Dense Keras classifier on ``x, y`` with ``optimizer``; return its weights."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(hidden, activation="tanh"),
                              keras.layers.Dense(int(y.max()) + 1)])
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return model.get_weights()
