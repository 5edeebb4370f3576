"""Adafactor (companion.optim.adafactor) against torch.optim.Adafactor and keras.optimizers.Adafactor.

The shared problem has a (5, 3) matrix (factored), a (3,) vector (not factored) and a (2, 2, 2) tensor
(a batch of two factored 2x2 matrices in both frameworks). Some settings make Adafactor oscillate
chaotically around the minimum (its step is relative to the weights and its update has RMS near 1, so
it does not settle when weight decay or a large cap keeps the gradient from vanishing): there a
1e-15 change of the start moves torch's own result by 1e-5 to 1e-2 after 200 steps. The cases below
use settings where the frameworks are stable; ``test_chosen_settings_are_not_chaotic`` checks that.
"""

from __future__ import annotations

import numpy as np
import pytest

from companion.optim import apply_updates, scale_by_adam
from companion.optim.adafactor import ADAFACTOR_DEFAULTS, adafactor, scale_by_adafactor
from optim_problem import fit_keras_model, float64_scalars  # noqa: F401 (a fixture: torch's scalar state in float64)
from optim_problem import ATOL, RTOL, make_problem, run_keras, run_reference, run_torch




def assert_matches(ours, theirs):
    start, _, _ = make_problem()
    assert max(np.abs(b - s).max() for b, s in zip(theirs, start)) > 1e-2, "the parameters must move"
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def max_difference(a, b):
    return max(np.abs(x - y).max() for x, y in zip(a, b))


# (id, ours, torch.optim.Adafactor's keyword arguments)
TORCH_CASES = [
    ("defaults", dict(), dict()),
    ("beta2-decay", dict(learning_rate=0.05, beta2_decay=-0.5), dict(lr=0.05, beta2_decay=-0.5)),
    ("capped-by-1/sqrt(t)", dict(learning_rate=0.5), dict(lr=0.5)),  # rho_t = 1/sqrt(t) from t = 5 on
    ("weight-decay", dict(learning_rate=0.02, weight_decay=0.5), dict(lr=0.02, weight_decay=0.5)),
    ("large-eps", dict(learning_rate=0.05, eps1=1e-3, eps2=0.5), dict(lr=0.05, eps=(1e-3, 0.5))),
    ("d-1.5", dict(learning_rate=0.05, clip_threshold=1.5, beta2_decay=-0.3), dict(lr=0.05, d=1.5, beta2_decay=-0.3)),
    ("maximize", dict(learning_rate=0.01, maximize=True), dict(lr=0.01, maximize=True)),  # growing: clipping acts
    ("everything",
     dict(learning_rate=0.25, beta2_decay=-0.5, eps1=1e-4, eps2=1e-2, clip_threshold=2.0, weight_decay=0.1),
     dict(lr=0.25, beta2_decay=-0.5, eps=(1e-4, 1e-2), d=2.0, weight_decay=0.1)),
]


@pytest.mark.parametrize("ours, theirs", [c[1:] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES])
@pytest.mark.usefixtures("float64_scalars")
def test_matches_torch_adafactor(ours, theirs):
    torch = pytest.importorskip("torch")
    assert_matches(run_reference(adafactor(**ours)), run_torch(lambda p: torch.optim.Adafactor(p, **theirs)))


# Keras keeps its learning rate in a float32 variable: dyadic rates are exact there (see test_optim_keras.py).
LR = 2.0**-6
KERAS_CASES = [
    ("capped-by-1/sqrt(t)", dict(learning_rate=0.25, beta2_decay=-0.5), dict(learning_rate=0.25, beta_2_decay=-0.5)),
    ("relative-step-false", dict(learning_rate=0.25, beta2_decay=-0.5),
     dict(learning_rate=0.25, beta_2_decay=-0.5, relative_step=False)),  # the same: Keras 3 ignores it
    ("clip-threshold", dict(learning_rate=LR, clip_threshold=0.5), dict(learning_rate=LR, clip_threshold=0.5)),
    ("weight-decay", dict(learning_rate=2.0**-5, weight_decay=0.5), dict(learning_rate=2.0**-5, weight_decay=0.5)),
    ("large-eps", dict(learning_rate=LR, beta2_decay=-0.5, eps1=2.0**-10, eps2=2.0**-4),
     dict(learning_rate=LR, beta_2_decay=-0.5, epsilon_1=2.0**-10, epsilon_2=2.0**-4)),
]


@pytest.mark.parametrize("ours, theirs", [c[1:] for c in KERAS_CASES], ids=[c[0] for c in KERAS_CASES])
def test_matches_keras_adafactor(ours, theirs):
    keras = pytest.importorskip("keras")
    ours = run_reference(adafactor(**ours, convention="keras"))
    assert_matches(ours, run_keras(lambda: keras.optimizers.Adafactor(**theirs)))


@pytest.mark.parametrize("relative_step", [True, False])
def test_matches_keras_defaults(relative_step):
    """Keras' default rate 0.001 is rounded to float32 (0.0010000000475): a 5e-8 relative difference in every step."""
    keras = pytest.importorskip("keras")
    theirs = run_keras(lambda: keras.optimizers.Adafactor(relative_step=relative_step))
    assert_matches(run_reference(adafactor(float(np.float32(1e-3)), convention="keras")), theirs)
    assert max_difference(run_reference(adafactor(convention="keras")), theirs) < 1e-7


@pytest.mark.usefixtures("float64_scalars")
def test_chosen_settings_are_not_chaotic():
    """Where the tests compare, a 1e-15 change of the start stays tiny; where they do not, it is amplified."""
    torch = pytest.importorskip("torch")
    stable = lambda p: torch.optim.Adafactor(p, lr=0.02, weight_decay=0.5)  # noqa: E731
    chaotic = lambda p: torch.optim.Adafactor(p, lr=0.05, weight_decay=0.2)  # noqa: E731
    assert max_difference(run_torch(stable), run_torch(stable, start_factor=1 + 1e-15)) < 1e-12
    assert max_difference(run_torch(chaotic), run_torch(chaotic, start_factor=1 + 1e-15)) > 1e-4


def _without_the_cap():
    """The relative step without min(lr, 1/sqrt(t)): a constant rate 0.5."""
    from companion.optim import chain, scale_by_learning_rate
    from companion.optim.adafactor import _scale_by_parameter_rms

    return chain(scale_by_adafactor(), _scale_by_parameter_rms(1e-3), scale_by_learning_rate(0.5))


# Plausible mistakes, each more than 1000 times the tolerance away from torch.
WRONG_TORCH = [
    # Keras' convention: RMS(theta) after the weight decay; eps1 added to g^2 instead of flooring the denominators
    ("keras-order-of-decay", lambda: adafactor(0.02, weight_decay=0.5, convention="keras"),
     dict(lr=0.02, weight_decay=0.5)),
    ("keras-eps-placement", lambda: adafactor(0.05, eps1=1e-3, eps2=0.5, convention="keras"),
     dict(lr=0.05, eps=(1e-3, 0.5))),
    ("beta2-decay-off-by-0.05", lambda: adafactor(0.05, beta2_decay=-0.55), dict(lr=0.05, beta2_decay=-0.5)),
    ("no-1/sqrt(t)-cap", _without_the_cap, dict(lr=0.5)),
]


@pytest.mark.parametrize("ours, theirs", [c[1:] for c in WRONG_TORCH], ids=[c[0] for c in WRONG_TORCH])
@pytest.mark.usefixtures("float64_scalars")
def test_wrong_variants_do_not_match_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    difference = max_difference(run_reference(ours()), run_torch(lambda p: torch.optim.Adafactor(p, **theirs)))
    assert difference > 1e3 * RTOL


def test_torch_convention_does_not_match_keras_weight_decay():
    keras = pytest.importorskip("keras")
    ours = run_reference(adafactor(2.0**-5, weight_decay=0.5, eps1=1e-30))  # only the order of the decay differs
    theirs = run_keras(lambda: keras.optimizers.Adafactor(2.0**-5, weight_decay=0.5))
    assert max_difference(ours, theirs) > 1e3 * RTOL


def test_conventions_differ_in_defaults_and_decay():
    """What the docstring says about the two conventions, measured on the shared problem."""
    same_rate = dict(learning_rate=0.02)
    torch_like, keras_like = (run_reference(adafactor(**same_rate, convention=c)) for c in ("torch", "keras"))
    assert max_difference(torch_like, keras_like) < 1e-12  # a tiny eps1 placed either way: no difference
    decayed = dict(learning_rate=0.02, weight_decay=0.5)
    torch_like, keras_like = (run_reference(adafactor(**decayed, convention=c)) for c in ("torch", "keras"))
    assert 1e-5 < max_difference(torch_like, keras_like) < 1e-2


def test_runs_on_torch_tensors_too():
    torch = pytest.importorskip("torch")
    params, curvature, wiggle = make_problem()
    tensors = [torch.tensor(p) for p in params]
    opt = adafactor(0.05, weight_decay=0.5)
    state = opt.init(tensors)
    for _ in range(20):
        grads = [2 * torch.tensor(c) * p + torch.tensor(d) * torch.cos(p)
                 for p, c, d in zip(tensors, curvature, wiggle)]
        updates, state = opt.update(grads, state, tensors)
        tensors = apply_updates(tensors, updates)
    for a, b in zip(tensors, run_reference(adafactor(0.05, weight_decay=0.5), steps=20)):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12)


def _float_count(state) -> int:
    from companion.optim._tree import tree_leaves

    return sum(int(np.size(leaf)) for leaf in tree_leaves(state))


def test_state_is_sublinear():
    """A 1000x1000 matrix: 2000 numbers of state (+ the step count), against Adam's 2 000 000."""
    matrix, vector = np.zeros((1000, 1000)), np.zeros(1000)
    assert _float_count(scale_by_adafactor().init([matrix])) == 2000 + 1
    assert _float_count(scale_by_adafactor().init([vector])) == 1000 + 1  # vectors are not factored
    assert _float_count(scale_by_adafactor().init([np.zeros((7, 1000, 1000))])) == 7 * 2000 + 1
    assert _float_count(scale_by_adam().init([matrix])) == 2 * 1000 * 1000 + 1


def test_frameworks_state_sizes():
    """torch keeps 2000 numbers for the 1000x1000 matrix too; Keras also keeps the full V-hat (1 002 000)."""
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    w = torch.zeros(1000, 1000, requires_grad=True)
    opt = torch.optim.Adafactor([w])
    w.grad = torch.ones_like(w)
    opt.step()
    assert sum(t.numel() for t in opt.state[w].values()) == 2000 + 1
    k_opt = keras.optimizers.Adafactor()
    k_opt.build([keras.Variable(np.zeros((1000, 1000), dtype="float32"))])
    state = [v for v in k_opt.variables if v.path.split("/")[-1] not in ("iteration", "learning_rate")]
    assert sum(int(np.prod(v.shape)) for v in state) == 1000 + 1000 + 1000 * 1000


def test_trains_a_torch_module_like_torch_adafactor():
    """Through ReferenceOptimizer, float32 (torch's eps1 is then float32's machine epsilon, 1.2e-7)."""
    torch = pytest.importorskip("torch")
    from companion.optim.torch_adapter import ReferenceOptimizer

    def train(make_optimizer):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        x, y = torch.randn(32, 4, generator=torch.Generator().manual_seed(1)), torch.randn(32, 2)
        opt = make_optimizer(model.parameters())
        for _ in range(10):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        return [p.detach().numpy() for p in model.parameters()]

    theirs = train(lambda p: torch.optim.Adafactor(p, lr=0.05, weight_decay=0.1))
    ours = train(lambda p: ReferenceOptimizer(p, adafactor(0.05, weight_decay=0.1)))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fits_a_keras_model_like_keras_adafactor():
    keras = pytest.importorskip("keras")
    from companion.optim.keras_adapter import KerasReferenceOptimizer

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.integers(0, 3, size=64)

    def fit(optimizer):
        return fit_keras_model(optimizer, x, y, hidden=8, batch_size=16, epochs=2)

    ours = fit(KerasReferenceOptimizer(adafactor(2.0**-4, weight_decay=0.25, convention="keras")))
    theirs = fit(keras.optimizers.Adafactor(2.0**-4, weight_decay=0.25))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_defaults_table_matches_the_frameworks():
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    d = torch.optim.Adafactor([torch.zeros(1, requires_grad=True)]).defaults
    t = ADAFACTOR_DEFAULTS["torch"]
    assert (d["lr"], d["beta2_decay"], d["eps"], d["d"], d["weight_decay"]) == (
        t["learning_rate"], t["beta2_decay"], (t["eps1"], t["eps2"]), t["clip_threshold"], t["weight_decay"])
    c, k = keras.optimizers.Adafactor().get_config(), ADAFACTOR_DEFAULTS["keras"]
    theirs = (c["learning_rate"], c["beta_2_decay"], c["epsilon_1"], c["epsilon_2"], c["clip_threshold"])
    assert theirs == pytest.approx((k["learning_rate"], k["beta2_decay"], k["eps1"], k["eps2"], k["clip_threshold"]))
    assert c["weight_decay"] is None and k["weight_decay"] == 0.0


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(learning_rate=-0.1), ValueError, "learning_rate"),
    (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate"),
    (dict(beta2_decay=0.5), ValueError, "beta2_decay"),
    (dict(beta2_decay=float("nan")), ValueError, "beta2_decay"),
    (dict(eps1=-1e-3), ValueError, "eps1"),
    (dict(eps2=-1e-3), ValueError, "eps2"),
    (dict(clip_threshold=0.0), ValueError, "clip_threshold"),
    (dict(clip_threshold=0.5), ValueError, "clip_threshold"),  # torch's d must be >= 1
    (dict(clip_threshold=-1.0, convention="keras"), ValueError, "clip_threshold"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(maximize=1), TypeError, "maximize"),
    (dict(maximize=True, convention="keras"), ValueError, "maximize"),
    (dict(convention="jax"), ValueError, "convention"),
])
def test_rejects_bad_hyperparameters(kwargs, error, name):
    with pytest.raises(error, match=rf"\b{name}\b"):
        adafactor(**kwargs)


def test_keras_accepts_a_clip_threshold_below_one():
    assert adafactor(clip_threshold=0.5, convention="keras") is not None


def test_rejects_gradients_that_do_not_fit_the_state():
    params, _, _ = make_problem()
    transform = scale_by_adafactor()
    state = transform.init(params)
    with pytest.raises(ValueError, match="shape mismatch"):
        transform.update([np.ones((3, 5)), params[1], params[2]], state)
    with pytest.raises(ValueError, match="shape mismatch"):
        transform.update([np.ones(5), params[1], params[2]], state)  # a vector where the state is factored
    with pytest.raises(ValueError, match="3 parameters"):
        transform.update(params[:2], state)
    opt = adafactor()
    with pytest.raises(ValueError, match="params"):
        opt.update(params, opt.init(params))  # the relative step needs the weights
    with pytest.raises(ValueError, match="NaN"):
        opt.update([np.full((5, 3), np.nan), params[1], params[2]], opt.init(params), params)
