"""companion.initialization against torch.nn.init and keras.initializers: bounds exactly, variances within sampling error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from companion import initialization

torch = pytest.importorskip("torch")

# Large tensors so that the sample variance is within ~1% of the truth.
SHAPE = (512, 400)  # torch layout (out, in): fan_in 400, fan_out 512
KERAS_SHAPE = (400, 512)  # the same layer in Keras' layout (in, out)
N = SHAPE[0] * SHAPE[1]


def variance_tolerance(variance, kurtosis_excess):
    """Five standard errors of a sample variance: sd = var * sqrt((2 + kurtosis_excess) / N)."""
    return 5 * variance * math.sqrt((2.0 + kurtosis_excess) / N)


UNIFORM_KURTOSIS, NORMAL_KURTOSIS = -1.2, 0.0
TRUNCATED_KURTOSIS = -0.6  # normal cut at 2 sigma: lighter tails than a normal (about -0.63)


def torch_sample(fill, shape=SHAPE):
    torch.manual_seed(0)
    w = torch.empty(shape, dtype=torch.float64)
    fill(w)
    return w.numpy()


def check_uniform(ours, theirs, bound):
    for w in (ours, theirs):
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > bound * (1 - 1e-3)  # the bound is reached: it is the same bound
        assert abs(w.var() - bound**2 / 3) < variance_tolerance(bound**2 / 3, UNIFORM_KURTOSIS)
        assert abs(w.mean()) < 5 * bound / math.sqrt(3 * N)


def check_normal(ours, theirs, std, kurtosis=NORMAL_KURTOSIS):
    for w in (ours, theirs):
        assert abs(w.var() - std**2) < variance_tolerance(std**2, kurtosis), (w.var(), std**2)
        assert abs(w.mean()) < 5 * std / math.sqrt(N)


# --- fans ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(10, 20), (64, 3, 5, 5), (8, 4, 3), (16, 8, 3, 3, 3), (1, 1)])
def test_fans_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert initialization.fan_in_and_fan_out(shape) == expected


@pytest.mark.parametrize("shape", [(20, 10), (5, 5, 3, 64), (3, 4, 8), (3, 3, 3, 8, 16)])
def test_fans_match_keras(shape):
    keras_init = pytest.importorskip("keras.src.initializers.random_initializers")
    fan_in, fan_out = keras_init.compute_fans(shape)
    assert initialization.fan_in_and_fan_out(shape, layout="keras") == (fan_in, fan_out)


def test_the_same_layer_has_the_same_fans_in_both_layouts():
    assert initialization.fan_in_and_fan_out((64, 3, 5, 5)) == initialization.fan_in_and_fan_out((5, 5, 3, 64), layout="keras")


@pytest.mark.parametrize("name, param", [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                                         ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None), ("conv2d", None)])
def test_gains_match_torch(name, param):
    assert initialization.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param), rel=1e-12)


# --- against torch.nn.init -----------------------------------------------------------------------


@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_glorot_uniform_matches_xavier_uniform(gain):
    bound = gain * math.sqrt(6 / (400 + 512))
    check_uniform(initialization.glorot_uniform(SHAPE, gain, rng=0), torch_sample(lambda w: torch.nn.init.xavier_uniform_(w, gain)), bound)


@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_glorot_normal_matches_xavier_normal(gain):
    std = gain * math.sqrt(2 / (400 + 512))
    check_normal(initialization.glorot_normal(SHAPE, gain, rng=0), torch_sample(lambda w: torch.nn.init.xavier_normal_(w, gain)), std)


@pytest.mark.parametrize("nonlinearity, a, mode", [("relu", 0.0, "fan_in"), ("relu", 0.0, "fan_out"),
                                                   ("leaky_relu", math.sqrt(5), "fan_in"), ("tanh", 0.0, "fan_in")])
def test_he_uniform_matches_kaiming_uniform(nonlinearity, a, mode):
    fan = 400 if mode == "fan_in" else 512
    bound = torch.nn.init.calculate_gain(nonlinearity, a) * math.sqrt(3 / fan)
    ours = initialization.he_uniform(SHAPE, nonlinearity, a, mode=mode, rng=0)
    theirs = torch_sample(lambda w: torch.nn.init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity))
    check_uniform(ours, theirs, bound)


@pytest.mark.parametrize("nonlinearity, mode", [("relu", "fan_in"), ("relu", "fan_out"), ("linear", "fan_in")])
def test_he_normal_matches_kaiming_normal(nonlinearity, mode):
    fan = 400 if mode == "fan_in" else 512
    std = torch.nn.init.calculate_gain(nonlinearity) / math.sqrt(fan)
    ours = initialization.he_normal(SHAPE, nonlinearity, mode=mode, rng=0)
    theirs = torch_sample(lambda w: torch.nn.init.kaiming_normal_(w, mode=mode, nonlinearity=nonlinearity))
    check_normal(ours, theirs, std)


def test_nn_linear_default_is_he_uniform_with_a_sqrt5():
    torch.manual_seed(0)
    layer = torch.nn.Linear(400, 512)
    bound = 1 / math.sqrt(400)  # gain sqrt(2 / (1 + 5)) times sqrt(3 / fan_in)
    check_uniform(initialization.he_uniform(SHAPE, "leaky_relu", math.sqrt(5), rng=0), layer.weight.detach().double().numpy(), bound)
    assert np.abs(layer.bias.detach().numpy()).max() <= bound


def test_torch_normals_are_not_truncated_and_keras_style_ones_are():
    std = math.sqrt(2 / 400)
    cut = 2 * std / initialization.TRUNCATED_NORMAL_STD
    plain = initialization.he_normal(SHAPE, rng=0)
    truncated = initialization.he_normal(SHAPE, truncated=True, rng=0)
    theirs = torch_sample(lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu"))
    assert np.abs(truncated).max() <= cut * (1 + 1e-6)
    # A plain normal exceeds 2/0.8796 = 2.27 sigma with probability 2.3%: thousands of weights here.
    assert (np.abs(plain) > cut).mean() > 0.015 and (np.abs(theirs) > cut).mean() > 0.015
    check_normal(truncated, truncated, std, TRUNCATED_KURTOSIS)  # the rescaling keeps the variance


# --- against keras.initializers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def keras_sample(initializer):
    return np.asarray(initializer(KERAS_SHAPE, dtype="float32"), dtype=np.float64)


def test_glorot_uniform_matches_keras(keras):
    bound = math.sqrt(6 / (400 + 512))
    check_uniform(initialization.glorot_uniform(KERAS_SHAPE, layout="keras", rng=0), keras_sample(keras.initializers.GlorotUniform(seed=0)), bound)


def test_he_uniform_and_lecun_uniform_match_keras(keras):
    check_uniform(initialization.he_uniform(KERAS_SHAPE, layout="keras", rng=0), keras_sample(keras.initializers.HeUniform(seed=0)),
                  math.sqrt(6 / 400))
    check_uniform(initialization.lecun_uniform(KERAS_SHAPE, layout="keras", rng=0),
                  keras_sample(keras.initializers.LecunUniform(seed=0)), math.sqrt(3 / 400))


@pytest.mark.parametrize("name", ["glorot", "he", "lecun"])
def test_truncated_normals_match_keras(keras, name):
    std = {"glorot": math.sqrt(2 / 912), "he": math.sqrt(2 / 400), "lecun": math.sqrt(1 / 400)}[name]
    ours = {"glorot": initialization.glorot_normal, "he": initialization.he_normal, "lecun": initialization.lecun_normal}[name](
        KERAS_SHAPE, truncated=True, layout="keras", rng=0
    )
    theirs = keras_sample({"glorot": keras.initializers.GlorotNormal, "he": keras.initializers.HeNormal,
                           "lecun": keras.initializers.LecunNormal}[name](seed=0))
    check_normal(ours, theirs, std, TRUNCATED_KURTOSIS)
    cut = 2 * std / initialization.TRUNCATED_NORMAL_STD
    for w in (ours, theirs):
        assert np.abs(w).max() <= cut * (1 + 1e-6)
        assert np.abs(w).max() > cut * 0.99


def test_dense_default_is_glorot_uniform_and_zero_bias(keras):
    layer = keras.layers.Dense(512)
    layer.build((None, 400))
    kernel, bias = (np.asarray(v, dtype=np.float64) for v in layer.get_weights())
    assert np.all(bias == 0)
    check_uniform(initialization.glorot_uniform(KERAS_SHAPE, layout="keras", rng=0), kernel, math.sqrt(6 / 912))


# --- targets, model helper, statistics -----------------------------------------------------------


def test_fills_numpy_arrays_and_torch_tensors_in_place():
    a = np.zeros((30, 20))
    assert initialization.glorot_uniform(a, rng=1) is a and np.abs(a).max() > 0
    t = torch.zeros(30, 20, requires_grad=True)
    assert initialization.he_normal(t, rng=1) is t and t.abs().max() > 0
    np.testing.assert_allclose(a, initialization.glorot_uniform((30, 20), rng=1), rtol=1e-6)
    assert initialization.lecun_normal((4, 5)).dtype == np.float32


def test_apply_initializer_and_layer_statistics():
    from companion.training import mlp

    torch.manual_seed(0)
    model = initialization.apply_initializer(mlp((50, 64, 64, 64, 10), "relu"), initialization.he_normal, rng=0)
    for layer in (m for m in model.modules() if isinstance(m, torch.nn.Linear)):
        assert torch.all(layer.bias == 0)
    x, y = torch.randn(256, 50), torch.randint(0, 10, (256,))
    stats = initialization.layer_statistics(model, x, y)
    assert len(stats.activation_std) == len(stats.gradient_std) == len(stats.weight_gradient_std) == 4
    assert np.all(stats.activation_std > 0) and np.all(stats.gradient_std > 0)
    assert all(p.grad is None for p in model.parameters())
    # He init keeps the ReLU activations' scale through depth; a 0.01 std makes them vanish.
    assert 0.3 < stats.activation_std[2] / stats.activation_std[0] < 3
    small = initialization.layer_statistics(initialization.apply_initializer(model, torch.nn.init.normal_, std=0.01), x, y)
    assert small.activation_std[2] / small.activation_std[0] < 0.01


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: initialization.fan_in_and_fan_out((10,)), ValueError, "shape"),
        (lambda: initialization.fan_in_and_fan_out(()), ValueError, "shape"),
        (lambda: initialization.glorot_uniform((10,)), ValueError, "shape"),
        (lambda: initialization.fan_in_and_fan_out((3, 4), layout="tf"), ValueError, "layout"),
        (lambda: initialization.he_normal((3, 4), "swish"), ValueError, "nonlinearity"),
        (lambda: initialization.calculate_gain("gelu"), ValueError, "nonlinearity"),
        (lambda: initialization.glorot_uniform((3, 4), gain=-1.0), ValueError, "gain"),
        (lambda: initialization.glorot_normal((3, 4), gain=-0.5), ValueError, "gain"),
        (lambda: initialization.he_uniform((3, 4), mode="fan_mid"), ValueError, "mode"),
        (lambda: initialization.lecun_normal((4, 0)), ValueError, "shape"),
        (lambda: initialization.glorot_uniform("3x4"), TypeError, "target"),
        (lambda: initialization.glorot_uniform((3, 4), rng="seed"), TypeError, "rng"),
    ],
)
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
