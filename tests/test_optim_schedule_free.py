"""Schedule-Free AdamW against keras.optimizers.ScheduleFreeAdamW: 200 float64 steps, and the adapters."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from companion.clipping import clip_by_global_norm
from companion.optim import NonFiniteGradientError, adam, apply_updates, chain
from companion.optim.schedule_free import (
    SCHEDULE_FREE_DEFAULTS,
    scale_by_schedule_free_adam,
    schedule_free_adamw,
    schedule_free_eval_params,
)
from optim_problem import fit_keras_model, ATOL, RTOL, STEPS, make_problem, numpy_gradients, run_keras

keras = pytest.importorskip("keras")


def f32(value: float) -> float:
    """Keras holds the learning rate in a float32 variable and casts beta_1, beta_2, epsilon and
    weight_decay through float32 even for float64 weights; our float64 run takes the same numbers."""
    return float(np.float32(value))


KERAS_DEFAULTS = dict(learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8)  # checked below


def ours_like(keras_kwargs, **extra):
    """Our alias with the hyperparameters of ``keras.optimizers.ScheduleFreeAdamW(**keras_kwargs)``."""
    keras_kwargs = dict(KERAS_DEFAULTS, **keras_kwargs)
    names = dict(learning_rate="learning_rate", beta_1="b1", beta_2="b2", epsilon="eps", weight_decay="weight_decay")
    given = {names[k]: f32(v) for k, v in keras_kwargs.items() if k in names}
    return schedule_free_adamw(**given, warmup_steps=keras_kwargs.get("warmup_steps", 0), **extra)


def run(transform, steps: int = STEPS):
    """Like ``optim_problem.run_reference``, but also return the final state."""
    params, curvature, wiggle = make_problem(0)
    state = transform.init(params)
    for _ in range(steps):
        updates, state = transform.update(numpy_gradients(params, curvature, wiggle), state, params)
        params = apply_updates(params, updates)
    return params, state


def loss(params) -> float:
    _, curvature, wiggle = make_problem(0)
    return sum(float(np.sum(c * p * p + d * np.sin(p))) for p, c, d in zip(params, curvature, wiggle))


CASES = {
    "defaults": {},
    "warmup": dict(learning_rate=0.05, warmup_steps=20),
    "betas-eps": dict(learning_rate=0.05, beta_1=0.5, beta_2=0.99, epsilon=1e-3),
    "weight-decay": dict(learning_rate=0.05, weight_decay=0.1),
    # Keras decays with the rate *without* warmup, also during the warmup
    "warmup-weight-decay": dict(learning_rate=0.05, warmup_steps=20, weight_decay=0.1),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_keras_as_shipped(case):
    """Keras 3.15 on TensorFlow recovers x from the already-updated z: x_from_updated_z=True."""
    kwargs = CASES[case]
    ours = run(ours_like(kwargs, x_from_updated_z=True))[0]
    theirs = run_keras(lambda: keras.optimizers.ScheduleFreeAdamW(**kwargs))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_defaults_are_keras_defaults():
    signature = inspect.signature(keras.optimizers.ScheduleFreeAdamW).parameters
    assert KERAS_DEFAULTS == {name: signature[name].default for name in KERAS_DEFAULTS}
    assert SCHEDULE_FREE_DEFAULTS["keras"]["learning_rate"] == signature["learning_rate"].default
    assert SCHEDULE_FREE_DEFAULTS["keras"]["eps"] == signature["epsilon"].default
    assert signature["weight_decay"].default is None and SCHEDULE_FREE_DEFAULTS["keras"]["weight_decay"] == 0.0
    ours = inspect.signature(schedule_free_adamw).parameters
    assert (ours["b1"].default, ours["b2"].default) == (signature["beta_1"].default, signature["beta_2"].default)
    assert ours["warmup_steps"].default == signature["warmup_steps"].default == 0


def test_eval_params_are_the_x_keras_holds():
    """Keras stores y (the model's weights) and z ("momentum"); its x is (y - (1 - b1) z) / b1."""
    kwargs = CASES["warmup-weight-decay"]
    built = []
    theirs_y = run_keras(lambda: built.append(keras.optimizers.ScheduleFreeAdamW(**kwargs)) or built[-1])
    theirs_z = [np.asarray(m.numpy()) for m in built[0]._momentums]
    b1 = f32(0.9)
    theirs_x = [(y - (1 - b1) * z) / b1 for y, z in zip(theirs_y, theirs_z)]
    ours_y, state = run(ours_like(kwargs, x_from_updated_z=True))
    for ours, theirs in ((ours_y, theirs_y), (state.z, theirs_z), (schedule_free_eval_params(state), theirs_x)):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    # and x is not y: evaluating the model at y, as model.evaluate does, tests other weights
    assert max(np.abs(x - y).max() for x, y in zip(theirs_x, theirs_y)) > 1e-2


_STATELESS_SCRIPT = """
import json, sys
import numpy as np, keras
from optim_problem import make_problem, numpy_gradients
out = {}
for name, kwargs in json.loads(sys.argv[1]).items():
    params, curvature, wiggle = make_problem(0)
    variables = [keras.Variable(p, dtype="float64") for p in params]
    opt = keras.optimizers.ScheduleFreeAdamW(**kwargs)
    opt.build(variables)
    weights, slots = [v.value for v in variables], [v.value for v in opt.variables]
    for _ in range(int(sys.argv[2])):
        grads = numpy_gradients([keras.ops.convert_to_numpy(w) for w in weights], curvature, wiggle)
        weights, slots = opt.stateless_apply(slots, [keras.ops.convert_to_tensor(g, "float64") for g in grads], weights)
    out[name] = [keras.ops.convert_to_numpy(w).tolist() for w in weights]
print(json.dumps(out))
"""


def test_default_rule_matches_keras_stateless_path():
    """Keras' stateless_apply (the path Keras takes on JAX) reads z before updating it: our default rule.

    TensorFlow refuses stateless_apply, so this runs Keras on the torch backend in a subprocess.
    """
    pytest.importorskip("torch")
    cases = {
        "defaults": {},
        "betas-eps": dict(learning_rate=0.05, beta_1=0.5, beta_2=0.99, epsilon=2.0**-4),
        "weight-decay": CASES["weight-decay"],
        # ops.minimum(float64 tensor, 1.0) is float32 on the torch backend: t / 16 is exact in float32
        "warmup-weight-decay": dict(learning_rate=0.05, warmup_steps=16, weight_decay=0.1),
    }
    tests = Path(__file__).parent
    env = dict(os.environ, KERAS_BACKEND="torch",
               PYTHONPATH=os.pathsep.join([str(tests), str(tests.parent), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", _STATELESS_SCRIPT, json.dumps(cases), str(STEPS)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, kwargs in cases.items():
        ours = run(ours_like(kwargs))[0]
        for a, b in zip(ours, results[name]):
            # the torch backend rounds a little more than TensorFlow (1e-11 at the first step, 3e-8 after 200):
            # far below the 1e-2 that separates the two rules (next test)
            np.testing.assert_allclose(a, np.asarray(b), rtol=1e-6, atol=1e-8, err_msg=name)


def test_the_two_keras_paths_differ_so_the_tolerance_means_something():
    kwargs = CASES["warmup"]
    first = [run(ours_like(kwargs, x_from_updated_z=flag), steps=1)[0] for flag in (False, True)]
    for a, b in zip(*first):  # x_1 = z_1 whatever x_0 was: the rules part from step 2 on
        np.testing.assert_array_equal(a, b)
    intended, shipped = (run(ours_like(kwargs, x_from_updated_z=flag))[0] for flag in (False, True))
    assert max(np.abs(a - b).max() for a, b in zip(intended, shipped)) > 1e-2
    theirs = run_keras(lambda: keras.optimizers.ScheduleFreeAdamW(**kwargs))
    assert max(np.abs(a - b).max() for a, b in zip(intended, theirs)) > 1e-2


def test_x_is_the_mean_of_z_and_y_lies_between():
    transform = schedule_free_adamw(0.05, b1=0.75)
    params, curvature, wiggle = make_problem(0)
    state, zs = transform.init(params), []
    for _ in range(30):
        updates, state = transform.update(numpy_gradients(params, curvature, wiggle), state, params)
        params = apply_updates(params, updates)
        zs.append(state.z)
    for i, (p, x, z) in enumerate(zip(params, state.x, state.z)):
        np.testing.assert_allclose(x, np.mean([zk[i] for zk in zs], axis=0), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(p, 0.25 * z + 0.75 * x, rtol=1e-12, atol=1e-14)


def test_average_beats_the_training_weights_at_a_large_rate():
    """At a rate where z oscillates, the average x is the best of the three (f at the minimum: f_star)."""
    params, state = run(schedule_free_adamw(0.1))
    minimum, curvature, wiggle = make_problem(0)
    for _ in range(50):  # Newton, coordinate by coordinate: f is separable and strongly convex
        minimum = [p - (2 * c * p + d * np.cos(p)) / (2 * c - d * np.sin(p))
                   for p, c, d in zip(minimum, curvature, wiggle)]
    f_star = loss(minimum)
    at_x, at_y, at_z = (loss(p) - f_star for p in (schedule_free_eval_params(state), params, state.z))
    assert at_x < 0.5 * at_y < 0.1 * at_z


def test_in_a_chain_eval_params_find_the_link():
    """The transformation chains like any other; schedule_free_eval_params finds its state in the chain's."""
    clipped = chain(clip_by_global_norm(1.0), scale_by_schedule_free_adam(0.05))
    params, state = run(clipped, steps=20)
    assert isinstance(state, tuple) and len(state) == 2
    np.testing.assert_array_equal(schedule_free_eval_params(state)[0], state[1].x[0])
    assert max(np.abs(x - p).max() for x, p in zip(schedule_free_eval_params(state), params)) > 1e-3


def test_bad_input():
    for kwargs, error, match in [
        (dict(learning_rate=-1.0), ValueError, "learning_rate"),
        (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
        (dict(b1=1.0), ValueError, "beta_1"),
        (dict(b2=-0.1), ValueError, "beta_2"),
        (dict(eps=-1e-8), ValueError, "eps"),
        (dict(warmup_steps=-1), ValueError, "warmup_steps"),
        (dict(warmup_steps=2.5), TypeError, "warmup_steps"),
        (dict(weight_decay=-0.1), ValueError, "weight_decay"),
        (dict(weight_decay="0.1"), TypeError, "weight_decay"),
        (dict(b1=0.0, weight_decay=0.1), ValueError, "beta_1"),
        (dict(x_from_updated_z="yes"), TypeError, "x_from_updated_z"),
        (dict(convention="torch"), ValueError, "schedulefree"),
        (dict(convention="jax"), ValueError, "convention"),
    ]:
        with pytest.raises(error, match=match):
            schedule_free_adamw(**kwargs)
    transform = schedule_free_adamw()
    params = [np.zeros(3)]
    state = transform.init(params)
    with pytest.raises(ValueError, match="needs params"):
        transform.update([np.ones(3)], state)
    with pytest.raises(ValueError, match="shape"):
        transform.update([np.ones(2)], state, params)
    with pytest.raises(NonFiniteGradientError):
        transform.update([np.array([1.0, np.nan, 0.0])], state, params)
    with pytest.raises(ValueError, match="ScheduleFreeAdamState"):
        schedule_free_eval_params(adam().init(params))


def _torch_and_keras_models(torch):
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    theirs = keras.Sequential([keras.Input((4,), dtype="float64"),
                               keras.layers.Dense(8, activation="tanh", dtype="float64"),
                               keras.layers.Dense(2, dtype="float64")])
    theirs.set_weights([p.detach().numpy().T for p in ours.parameters()])  # kernels are transposed
    return ours, theirs


def test_torch_adapter_trains_like_keras():
    """A torch nn.Module through ReferenceOptimizer, and the same network in Keras with its own optimizer."""
    torch = pytest.importorskip("torch")
    import tensorflow as tf

    from companion.optim.torch_adapter import ReferenceOptimizer

    rng = np.random.default_rng(0)
    inputs, targets = rng.normal(size=(32, 4)), rng.normal(size=(32, 2))
    kwargs = dict(learning_rate=0.05, warmup_steps=5, weight_decay=0.1)
    model, keras_model = _torch_and_keras_models(torch)
    opt = ReferenceOptimizer(model.parameters(), ours_like(kwargs, x_from_updated_z=True))
    keras_opt = keras.optimizers.ScheduleFreeAdamW(**kwargs)
    for _ in range(20):
        opt.zero_grad()
        ((model(torch.from_numpy(inputs)) - torch.from_numpy(targets)) ** 2).mean().backward()
        opt.step()
        with tf.GradientTape() as tape:
            keras_loss = keras.ops.mean((keras_model(inputs) - targets) ** 2)
        keras_opt.apply_gradients(zip(tape.gradient(keras_loss, keras_model.trainable_variables),
                                      keras_model.trainable_variables))
    for a, b in zip(model.parameters(), keras_model.get_weights()):
        np.testing.assert_allclose(a.detach().numpy().T, b, rtol=1e-9, atol=1e-11)
    # evaluate at x: copy it into the model (Keras: x = (y - (1 - b1) z) / b1 from its momentum)
    with torch.no_grad():
        for p, x in zip(model.parameters(), schedule_free_eval_params(opt.state_dict()["transformation_state"])):
            p.copy_(x)
    b1 = f32(0.9)
    for a, y, z in zip(model.parameters(), keras_model.get_weights(), keras_opt._momentums):
        keras_x = (y - (1 - b1) * np.asarray(z.numpy())) / b1
        np.testing.assert_allclose(a.detach().numpy().T, keras_x, rtol=1e-9, atol=1e-11)


def test_keras_adapter_fits_like_keras():
    from companion.optim.keras_adapter import KerasReferenceOptimizer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = rng.integers(0, 3, size=128)

    def fit(optimizer):
        return fit_keras_model(optimizer, x, y, hidden=16, batch_size=32, epochs=3)

    kwargs = dict(learning_rate=0.01, warmup_steps=4, weight_decay=0.05)
    ours = fit(KerasReferenceOptimizer(ours_like(kwargs, x_from_updated_z=True)))
    theirs = fit(keras.optimizers.ScheduleFreeAdamW(**kwargs))
    intended = fit(KerasReferenceOptimizer(ours_like(kwargs)))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert max(np.abs(a - b).max() for a, b in zip(intended, theirs)) > 1e-3
