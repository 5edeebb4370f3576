"""Muon against torch.optim.Muon and keras.optimizers.Muon: 200 float64 steps, tight tolerance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from companion import optim
from companion.optim.muon import MUON_DEFAULTS, muon, newton_schulz, scale_by_muon
from optim_problem import fit_keras_model, ATOL, RTOL, STEPS, float64_scalars, make_problem, run_keras, run_reference  # noqa: F401

torch = pytest.importorskip("torch")

# --- a problem of matrices only, for torch.optim.Muon (it rejects the shared problem's 1-D and 3-D leaves) ---

MATRIX_SHAPES = [(6, 4), (4, 7), (5, 5)]  # tall, wide, square: every case of the shape factor
# Muon's step has a fixed size whatever the gradient's, so once at the minimum it keeps jumping around it and
# last-bit differences grow (after ~150 steps at lr=0.02). At lr <= 0.01 the parameters are still arriving
# after 200 steps and the float64 runs agree to ~1e-15.
LR = 0.01


def make_matrix_problem(seed: int = 0):
    """f(P) = sum(c P^2 + d sin P) over three matrices, strongly convex (2c > |d|), as in optim_problem."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in MATRIX_SHAPES]
    curvature = [rng.uniform(0.5, 2.0, size=s) for s in MATRIX_SHAPES]
    wiggle = [rng.uniform(-0.9, 0.9, size=s) for s in MATRIX_SHAPES]
    return params, curvature, wiggle


def run_reference_on_matrices(transform, as_torch: bool = False, steps: int = STEPS):
    """Our transformation on the matrix problem, on NumPy arrays or (``as_torch``) float64 torch tensors."""
    params, curvature, wiggle = make_matrix_problem()
    lib = torch if as_torch else np
    if as_torch:
        params, curvature, wiggle = ([torch.tensor(x) for x in tree] for tree in (params, curvature, wiggle))
    state = transform.init(params)
    for _ in range(steps):
        grads = [2 * c * p + d * lib.cos(p) for p, c, d in zip(params, curvature, wiggle)]
        updates, state = transform.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    return [np.asarray(p) for p in params]


def run_torch_muon(steps: int = STEPS, **kwargs):
    params, curvature, wiggle = make_matrix_problem()
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    c, d = [torch.tensor(x) for x in curvature], [torch.tensor(x) for x in wiggle]
    opt = torch.optim.Muon(tensors, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        sum((ci * p * p + di * torch.sin(p)).sum() for p, ci, di in zip(tensors, c, d)).backward()
        opt.step()
    return [p.detach().numpy() for p in tensors]


@pytest.fixture
def torch_newton_schulz_in_float64(monkeypatch):
    """torch.optim.Muon with its Newton–Schulz iteration run in the weights' dtype instead of bfloat16.

    The rest of torch's step (momentum, shape factor, weight decay) is unchanged; the iteration itself is
    checked against torch's helper bit for bit in bfloat16 (test_newton_schulz_is_torchs_bit_for_bit).
    """
    from torch.optim import _muon

    monkeypatch.setattr(_muon, "_zeropower_via_newtonschulz",
                        lambda grad, coefficients, steps, eps: newton_schulz(grad, steps, coefficients, eps))


def max_difference(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


TORCH_CASES = [
    # (id, our keywords, torch.optim.Muon keywords)
    ("defaults", {}, {}),
    ("lr", dict(learning_rate=LR), dict(lr=LR)),
    ("no-nesterov-match-rms-adamw-wd",
     dict(learning_rate=LR, nesterov=False, adjust_lr_fn="match_rms_adamw", weight_decay=0.05),
     dict(lr=LR, nesterov=False, adjust_lr_fn="match_rms_adamw", weight_decay=0.05)),
    ("ns-coefficients-steps-eps",
     dict(learning_rate=LR, momentum=0.8, ns_steps=3, ns_coefficients=(2.0, -1.5, 0.5), eps=1e-3),
     dict(lr=LR, momentum=0.8, ns_steps=3, ns_coefficients=(2.0, -1.5, 0.5), eps=1e-3)),
    ("original-no-wd", dict(learning_rate=LR, adjust_lr_fn="original", weight_decay=0.0, momentum=0.9),
     dict(lr=LR, adjust_lr_fn="original", weight_decay=0.0, momentum=0.9)),
]


@pytest.mark.parametrize("ours, theirs", [c[1:] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_muon_in_bfloat16(float64_scalars, ours, theirs):
    """On torch tensors with bfloat16=True (torch's precision) the reference follows torch.optim.Muon to ~1e-15:
    the same bfloat16 iterations, and float64 steps that differ only in the order of their last roundings."""
    reference = run_reference_on_matrices(muon(**ours, bfloat16=True), as_torch=True)
    framework = run_torch_muon(**theirs)
    assert max_difference(framework, make_matrix_problem()[0]) > 0.1
    for a, b in zip(reference, framework):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("ours, theirs", [c[1:] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES])
def test_matches_torch_muon_in_float64(float64_scalars, torch_newton_schulz_in_float64, ours, theirs):
    """On NumPy float64 arrays, against torch's update with its iteration in float64 (the fixture)."""
    reference = run_reference_on_matrices(muon(**ours))
    framework = run_torch_muon(**theirs)
    for a, b in zip(reference, framework):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


WRONG_VARIANTS = [
    # a plausible mistake, and the smallest difference it makes after 200 steps
    ("float64-vs-torch-bfloat16", dict(learning_rate=LR), 1e-4),  # torch really runs the iteration in bfloat16
    ("four-ns-steps", dict(learning_rate=LR, ns_steps=4, bfloat16=True), 1e-3),
    ("match-rms-adamw", dict(learning_rate=LR, adjust_lr_fn="match_rms_adamw", bfloat16=True), 1e-2),
    ("no-nesterov", dict(learning_rate=LR, nesterov=False, bfloat16=True), 1e-3),
]


@pytest.mark.parametrize("ours, at_least", [c[1:] for c in WRONG_VARIANTS], ids=[c[0] for c in WRONG_VARIANTS])
def test_wrong_variants_do_not_match_torch(float64_scalars, ours, at_least):
    """The tolerance means something: each of these ends far from torch.optim.Muon(lr=0.01)."""
    reference = run_reference_on_matrices(muon(**ours), as_torch=True)
    assert max_difference(reference, run_torch_muon(lr=LR)) > at_least


def test_keras_convention_differs_from_torch_on_matrices(float64_scalars, torch_newton_schulz_in_float64):
    """The same hyperparameters in the other convention: Keras' shape factor 0.2 sqrt(max(m, n)) moves elsewhere."""
    keras_form = run_reference_on_matrices(muon(LR, weight_decay=0.1, convention="keras"))
    assert max_difference(keras_form, run_torch_muon(lr=LR)) > 1e-2
    # with the same (no) shape factor they differ only through eps: the momentum's scale cancels in the iteration
    runs = [run_reference_on_matrices(optim.chain(scale_by_muon(shape_factor=None, convention=convention),
                                                  optim.scale_by_learning_rate(LR)))
            for convention in ("torch", "keras")]
    assert max_difference(*runs) < 1e-6


# --- Newton–Schulz alone ----------------------------------------------------------------------------


def singular_values(x):
    return np.linalg.svd(np.asarray(x, dtype=np.float64), compute_uv=False)


def test_newton_schulz_brings_singular_values_into_a_band():
    """Five quintic steps map every singular value of a random 20x50 matrix into [0.68, 1.14]: not exactly 1.

    The band comes from p(s) = a s + b s^3 + c s^5: its local minimum p(1.05) = 0.68 and p(0.68) = 1.13 are
    the ends of the interval that p maps into itself, where the values settle.
    """
    g = np.random.default_rng(0).normal(size=(20, 50))
    before, after = singular_values(g), singular_values(newton_schulz(g))
    assert before.max() / before.min() > 4
    assert 0.68 < after.min() and after.max() < 1.14
    a, b, c = 3.4445, -4.775, 2.0315
    p = lambda s: a * s + b * s**3 + c * s**5  # noqa: E731
    s_min = math.sqrt((-3 * b + math.sqrt(9 * b * b - 20 * a * c)) / (10 * c))  # where p' = 0, past the maximum
    assert p(s_min) == pytest.approx(0.682, abs=1e-3) and p(p(s_min)) == pytest.approx(1.134, abs=1e-3)


def test_newton_schulz_on_a_tall_matrix_returns_its_shape():
    g = np.random.default_rng(1).normal(size=(64, 32))
    out = newton_schulz(g)
    assert out.shape == (64, 32)
    assert 0.68 < singular_values(out).min() and singular_values(out).max() < 1.14
    # more steps do not converge to 1: the values cycle inside the band
    assert singular_values(newton_schulz(g, steps=20)).min() < 0.75


@pytest.mark.parametrize("shape", [(20, 50), (50, 20), (64, 32), (5, 5)])
@pytest.mark.parametrize("steps, coefficients", [(5, (3.4445, -4.775, 2.0315)), (3, (2.0, -1.5, 0.5))])
def test_newton_schulz_is_torchs_bit_for_bit(shape, steps, coefficients):
    """torch.optim.Muon's private helper casts to bfloat16; with bfloat16=True ours gives the same bits."""
    from torch.optim._muon import _zeropower_via_newtonschulz

    g = torch.tensor(np.random.default_rng(2).normal(size=shape))
    theirs = _zeropower_via_newtonschulz(g, coefficients, steps, 1e-7)
    ours = newton_schulz(g, steps, coefficients, bfloat16=True)
    assert theirs.dtype == ours.dtype == torch.bfloat16
    assert torch.equal(ours, theirs)
    # in float64 (what the NumPy path computes) the result is the same up to bfloat16's precision
    exact = newton_schulz(g.numpy(), steps, coefficients)
    np.testing.assert_allclose(exact, newton_schulz(g, steps, coefficients).numpy(), rtol=0, atol=1e-13)
    assert 1e-4 < np.abs(exact - theirs.double().numpy()).max() < 3e-2


def test_newton_schulz_of_zero_is_zero():
    assert np.all(newton_schulz(np.zeros((3, 4))) == 0)
    assert torch.all(newton_schulz(torch.zeros(3, 4), bfloat16=True) == 0)


# --- the shape factors ------------------------------------------------------------------------------


def first_update(shape, convention, **kwargs):
    g = np.random.default_rng(3).normal(size=shape)
    transform = muon(1.0, weight_decay=0.0, convention=convention, **kwargs)
    updates, _ = transform.update([g], transform.init([np.zeros(shape)]), [np.zeros(shape)])
    return updates[0]


def rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def test_shape_factors_of_the_two_conventions():
    """torch scales a 64x32 update by sqrt(2) and a 32x64 one by 1; Keras both by 0.2 sqrt(64) = 1.6."""
    for shape, torch_factor in (((64, 32), math.sqrt(2)), ((32, 64), 1.0)):
        torch_step, keras_step = first_update(shape, "torch"), first_update(shape, "keras")
        np.testing.assert_allclose(keras_step, 1.6 / torch_factor * torch_step, rtol=0, atol=1e-7)
        unscaled = first_update(shape, "keras", rms_rate=None)
        np.testing.assert_allclose(torch_step, torch_factor * unscaled, rtol=0, atol=1e-7)
        # an orthogonal 64x32 matrix has RMS 1/sqrt(64) = 1/8, so Keras aims at an RMS of 1.6/8 = 0.2, AdamW's
        # typical step; five Newton-Schulz steps leave singular values of 0.68-1.13 (RMS 0.83), hence 0.166
        assert 0.15 < rms(keras_step) < 0.2
        assert rms(torch_step) == pytest.approx(torch_factor * rms(unscaled))


# --- Keras ------------------------------------------------------------------------------------------

def _keras():
    return pytest.importorskip("keras")


# Keras rounds float hyperparameters to float32 (the learning rate, weight decays, betas in the bias
# corrections): dyadic values are exact in float32, so 200 float64 steps can be compared tightly.
KLR, KB1, KB2, KWD = 2.0**-6, 0.875, 1 - 2.0**-7, 2.0**-8
DYADIC = dict(learning_rate=KLR, adam_beta_1=KB1, adam_beta_2=KB2, weight_decay=KWD, adam_weight_decay=KWD)


def keras_muon(**kwargs):
    """keras.optimizers.Muon, with one fix for float64 weights: its shape factor multiplies the float64 update
    by sqrt(max(m, n)) computed from the integer shape in float32, which TensorFlow refuses; here that float32
    root is cast to the weights' dtype (the value is unchanged)."""
    k = _keras()

    class Muon(k.optimizers.Muon):
        def lr_adjust(self, x):
            if self.rms_rate is None:
                return x
            root = k.ops.sqrt(k.ops.maximum(x.shape[0], x.shape[1]))
            return x * k.ops.cast(root, x.dtype) * self.rms_rate

    return Muon(**kwargs)


KERAS_CASES = [
    ("defaults", DYADIC, {}),
    ("no-nesterov-no-rms-rate", dict(learning_rate=KLR, adam_beta_1=KB1, adam_beta_2=KB2, nesterov=False, rms_rate=None,
                                     weight_decay=0.125, adam_weight_decay=0.0625, adam_lr_ratio=0.5), {}),
    ("ns-coefficients-steps-eps", dict(learning_rate=KLR, adam_beta_1=KB1, adam_beta_2=KB2, momentum=0.875, ns_steps=3,
                                       eps=2.0**-20, rms_rate=0.25, weight_decay=0.0, adam_weight_decay=0.0),
     dict(ns_coefficients=(2.0, -1.5, 0.5))),
    ("matrix-excluded", DYADIC, dict(adamw_mask=[True, False, False])),
]
KERAS_NAMES = {"eps": "epsilon", "ns_coefficients": None, "adamw_mask": None}


def keras_arguments(ours, only_ours):
    theirs = {KERAS_NAMES.get(k, k): v for k, v in ours.items()}
    if "ns_coefficients" in only_ours:
        theirs.update(zip(("muon_a", "muon_b", "muon_c"), only_ours["ns_coefficients"]))
    if "adamw_mask" in only_ours:
        theirs["exclude_layers"] = ["variable"]  # every path in run_keras: the matrix goes to AdamW, like the rest
    return theirs


@pytest.mark.parametrize("ours, only_ours", [c[1:] for c in KERAS_CASES], ids=[c[0] for c in KERAS_CASES])
def test_matches_keras_muon(ours, only_ours):
    """Muon on the shared problem's 5x3 matrix, AdamW on its 1-D and 3-D leaves, as keras.optimizers.Muon."""
    reference = run_reference(muon(**ours, **only_ours, convention="keras"))
    framework = run_keras(lambda: keras_muon(**keras_arguments(ours, only_ours)))
    start, _, _ = make_problem()
    assert min(float(np.abs(a - b).max()) for a, b in zip(framework, start)) > 0.1  # every leaf moved
    for a, b in zip(reference, framework):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_keras_literal_defaults_agree_to_float32_rounding():
    """With Keras' own defaults (0.9, 0.999, 0.004, 1e-3: not exact in float32) the runs differ by ~1e-6."""
    difference = max_difference(run_reference(muon(convention="keras")), run_keras(lambda: keras_muon()))
    assert 1e-10 < difference < 1e-5


def test_keras_shape_factor_in_float32_is_ours():
    """Keras' own lr_adjust (float32 weights, where it works unpatched) is rms_rate * sqrt(max(m, n))."""
    k = _keras()
    x = np.random.default_rng(4).normal(size=(5, 3)).astype("float32")
    theirs = np.asarray(k.optimizers.Muon().lr_adjust(k.ops.convert_to_tensor(x)))
    factor = first_update((5, 3), "keras") / first_update((5, 3), "keras", rms_rate=None)
    np.testing.assert_allclose(factor, 0.2 * float(np.float32(math.sqrt(5))), rtol=1e-12)  # the float32 root
    np.testing.assert_allclose(theirs, factor * x, rtol=1e-7)


def test_keras_wrong_variant_does_not_match():
    """A changed constant (rms_rate 0.25 instead of 0.2) ends far from Keras: the tolerance means something."""
    framework = run_keras(lambda: keras_muon(**DYADIC))
    assert max_difference(run_reference(muon(**DYADIC, rms_rate=0.25, convention="keras")), framework) > 1e-3


def test_newton_schulz_matches_keras_in_float64():
    """Keras' iteration adds its fixed 1e-7 to the norm (add_eps=True); on Keras tensors ours runs in keras.ops."""
    k = _keras()
    for shape in ((20, 50), (50, 20), (5, 3)):
        g = np.random.default_rng(5).normal(size=shape)
        theirs = np.asarray(k.optimizers.Muon().zeropower_via_newtonschulz5(k.ops.convert_to_tensor(g), 5))
        np.testing.assert_allclose(newton_schulz(g, add_eps=True), theirs, rtol=0, atol=1e-13)
        on_keras = np.asarray(newton_schulz(k.ops.convert_to_tensor(g), add_eps=True))
        np.testing.assert_allclose(on_keras, theirs, rtol=0, atol=1e-13)


def test_keras_convention_on_torch_tensors_gives_the_numpy_result():
    """The Muon/AdamW split works on any library's arrays: torch tensors follow the NumPy run."""
    params, curvature, wiggle = make_problem()
    tensors = [torch.tensor(p) for p in params]
    opt = muon(KLR, convention="keras")
    state = opt.init(tensors)
    for _ in range(20):
        grads = [2 * torch.tensor(c) * p + torch.tensor(d) * torch.cos(p) for p, c, d in zip(tensors, curvature, wiggle)]
        updates, state = opt.update(grads, state, tensors)
        tensors = optim.apply_updates(tensors, updates)
    for a, b in zip(tensors, run_reference(muon(KLR, convention="keras"), steps=20)):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12, atol=1e-14)


# --- the adapters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_adapter_trains_like_torch_muon(dtype):
    """A bias-free MLP (Muon takes matrices only) trained by ReferenceOptimizer and by torch.optim.Muon.

    In float64 they agree to the last bits. In float32 the step's last bit differs (torch decays and adds
    ``-lr * O`` to the weights in two operations, the chain adds one update), and where that flips the
    bfloat16 rounding of the momentum the difference grows: ~2e-5 after 30 steps, against moves of 0.1.
    """
    from companion.optim.torch_adapter import ReferenceOptimizer

    dtype = getattr(torch, dtype)

    def train(make_optimizer):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 16, bias=False), torch.nn.Tanh(),
                                    torch.nn.Linear(16, 3, bias=False)).to(dtype)
        gen = torch.Generator().manual_seed(1)
        x, y = torch.randn(64, 6, generator=gen, dtype=dtype), torch.randint(0, 3, (64,), generator=gen)
        opt = make_optimizer(model.parameters())
        for _ in range(30):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return [p.detach().double().numpy() for p in model.parameters()]

    ours = train(lambda p: ReferenceOptimizer(p, muon(0.02, bfloat16=True)))
    theirs = train(lambda p: torch.optim.Muon(p, lr=0.02))
    start = train(lambda p: torch.optim.Muon(p, lr=0.0))
    assert max_difference(theirs, start) > 0.1
    tolerance = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-3, atol=1e-4)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, **tolerance)


def test_keras_adapter_fits_like_keras_muon():
    """A tiny Dense model in float32: kernels by Muon, biases by AdamW, through KerasReferenceOptimizer."""
    k = _keras()
    from companion.optim.keras_adapter import KerasReferenceOptimizer

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(128, 6)).astype("float32"), rng.integers(0, 3, size=128)

    def fit(optimizer):
        return fit_keras_model(optimizer, x, y, hidden=16, batch_size=32, epochs=3)

    settings = DYADIC
    ours = fit(KerasReferenceOptimizer(muon(**settings, convention="keras")))
    theirs = fit(k.optimizers.Muon(**settings))
    start = fit(k.optimizers.Muon(learning_rate=0.0))
    assert max_difference(theirs, start) > 1e-2
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


# --- defaults and bad input -------------------------------------------------------------------------


def test_defaults_table_matches_the_frameworks():
    opt = torch.optim.Muon([torch.zeros(2, 2, requires_grad=True)])
    torch_names = {"learning_rate": "lr", "weight_decay": "weight_decay", "eps": "eps"}
    for key, name in torch_names.items():
        assert opt.defaults[name] == MUON_DEFAULTS["torch"][key]
    assert opt.defaults["adjust_lr_fn"] is None and MUON_DEFAULTS["torch"]["adjust_lr_fn"] == "original"
    assert tuple(opt.defaults["ns_coefficients"]) == (3.4445, -4.775, 2.0315)
    config = _keras().optimizers.Muon().get_config()
    for key, value in MUON_DEFAULTS["keras"].items():
        assert config["epsilon" if key == "eps" else key] == pytest.approx(value, rel=1e-7), key


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="params"):
        muon().init([np.zeros((3, 2)), np.zeros(3)])  # torch.optim.Muon refuses a bias the same way
    with pytest.raises(ValueError, match="2D param"):
        torch.optim.Muon([torch.zeros(3, requires_grad=True)])
    for kwargs, error, name in [
        (dict(learning_rate=-1.0), ValueError, "learning_rate"),
        (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
        (dict(momentum=1.0), ValueError, "momentum"),
        (dict(weight_decay=-0.1), ValueError, "weight_decay"),
        (dict(ns_steps=2.5), TypeError, "ns_steps"),
        (dict(ns_coefficients=(1.0, 2.0)), ValueError, "ns_coefficients"),
        (dict(eps=-1.0), ValueError, "eps"),
        (dict(nesterov="yes"), TypeError, "nesterov"),
        (dict(adjust_lr_fn="sqrt"), ValueError, "adjust_lr_fn"),
        (dict(convention="jax"), ValueError, "convention"),
        (dict(adam_beta_1=0.9), ValueError, "adam_beta_1"),  # a Keras option
        (dict(adamw_mask=[True]), ValueError, "adamw_mask"),
        (dict(rms_rate=0.3), ValueError, "rms_rate"),  # torch fixes it at 0.2
        (dict(adjust_lr_fn="original", convention="keras"), ValueError, "adjust_lr_fn"),
        (dict(bfloat16=True, convention="keras"), ValueError, "bfloat16"),
        (dict(adam_beta_2=1.0, convention="keras"), ValueError, "beta_2"),
        (dict(adam_lr_ratio=-1.0, convention="keras"), ValueError, "adam_lr_ratio"),
        (dict(rms_rate=-0.2, convention="keras"), ValueError, "rms_rate"),
    ]:
        with pytest.raises(error, match=name):
            muon(**kwargs)
    with pytest.raises(ValueError, match="matrix"):
        newton_schulz(np.zeros(3))
    with pytest.raises(TypeError, match="bfloat16"):
        newton_schulz(np.zeros((2, 2)), bfloat16=True)
    with pytest.raises(ValueError, match="steps"):
        newton_schulz(np.zeros((2, 2)), steps=-1)
    opt = muon()
    with pytest.raises(ValueError, match="NaN"):
        opt.update([np.full((2, 2), np.nan)], opt.init([np.zeros((2, 2))]), [np.zeros((2, 2))])
    keras_opt = muon(convention="keras", adamw_mask=[True])
    with pytest.raises(ValueError, match="adamw_mask"):
        keras_opt.init([np.zeros((2, 2)), np.zeros(2)])
