"""Property tests, Keras convention: for random valid settings, every reference optimizer with
``convention="keras"`` runs and matches ``keras.optimizers``.

As in ``test_optim_properties.py`` (the torch convention), Hypothesis draws the settings together and
the examples are derandomized. Keras keeps its learning rate and some hyperparameters in float32 even
for float64 variables, so every drawn value is exact in float32 (``width=32``): the comparison then
tests the formulas, not the rounding of the settings. 60 float64 steps each.
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
keras = pytest.importorskip("keras")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from companion import optim  # noqa: E402
from optim_problem import run_keras, run_reference  # noqa: E402

STEPS = 60
EXAMPLES = settings(max_examples=12, deadline=None, derandomize=True, database=None)
PROPERTY_RTOL, PROPERTY_ATOL = 1e-5, 1e-6  # see test_optim_properties.py
K = keras.optimizers


def f32(low, high):
    """Floats in [low, high] that are exact in float32 (the bounds rounded inwards to float32)."""
    low32, high32 = np.float32(low), np.float32(high)
    low32 = low32 if low32 >= low else np.nextafter(low32, np.float32(np.inf))
    high32 = high32 if high32 <= high else np.nextafter(high32, np.float32(-np.inf))
    return st.floats(float(low32), float(high32), width=32)


learning_rates = f32(1e-4, 0.1)
betas = f32(0.0, 0.999)
second_moment_decays = f32(0.5, 0.9999)
epsilons = st.sampled_from([2.0**-26, 2.0**-20, 2.0**-10, 2.0**-3])  # 1.5e-8 to 0.125, exact in float32
decays = st.one_of(st.just(None), f32(1e-3, 0.1))  # Keras' decoupled weight decay, or none


def assert_same(reference, framework):
    ours = run_reference(reference, steps=STEPS)
    theirs = run_keras(framework, steps=STEPS)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=PROPERTY_RTOL, atol=PROPERTY_ATOL)


@EXAMPLES
@given(lr=learning_rates, momentum=f32(0.0, 0.95), nesterov=st.booleans(), weight_decay=decays)
def test_sgd_matches_keras_for_any_valid_settings(lr, momentum, nesterov, weight_decay):
    if nesterov and momentum == 0.0:
        nesterov = False  # companion refuses Nesterov without momentum (tested elsewhere)
    assert_same(optim.sgd(lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay or 0.0,
                          convention="keras"),
                lambda: K.SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))


@EXAMPLES
@given(lr=learning_rates, b1=betas, b2=second_moment_decays, eps=epsilons, weight_decay=decays, amsgrad=st.booleans(),
       decoupled=st.booleans())
def test_adam_and_adamw_match_keras_for_any_valid_settings(lr, b1, b2, eps, weight_decay, amsgrad, decoupled):
    if decoupled:  # AdamW: the decay is part of the method (Keras' default 0.004 when none is drawn)
        wd = 0.004 if weight_decay is None else weight_decay
        reference = optim.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd, amsgrad=amsgrad, convention="keras")
        framework = lambda: K.AdamW(lr, beta_1=b1, beta_2=b2, epsilon=eps, weight_decay=wd, amsgrad=amsgrad)  # noqa: E731
    else:
        reference = optim.adam(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay or 0.0, amsgrad=amsgrad,
                               convention="keras")
        framework = lambda: K.Adam(lr, beta_1=b1, beta_2=b2, epsilon=eps, weight_decay=weight_decay,  # noqa: E731
                                   amsgrad=amsgrad)
    assert_same(reference, framework)


@EXAMPLES
@given(lr=learning_rates, rho=second_moment_decays, eps=epsilons, momentum=f32(0.0, 0.9), centered=st.booleans(),
       weight_decay=decays)
def test_rmsprop_matches_keras_for_any_valid_settings(lr, rho, eps, momentum, centered, weight_decay):
    if centered:  # the centered variance v - m^2 reaches 0 near the minimum: eps sets how hard it divides
        eps = max(eps, 2.0**-10)
    assert_same(optim.rmsprop(lr, decay=rho, eps=eps, momentum=momentum, centered=centered,
                              weight_decay=weight_decay or 0.0, convention="keras"),
                lambda: K.RMSprop(lr, rho=rho, epsilon=eps, momentum=momentum, centered=centered,
                                  weight_decay=weight_decay))


@EXAMPLES
@given(lr=learning_rates, initial=f32(0.0, 1.0), eps=epsilons, weight_decay=decays)
def test_adagrad_matches_keras_for_any_valid_settings(lr, initial, eps, weight_decay):
    assert_same(optim.adagrad(lr, initial_accumulator_value=initial, eps=eps, weight_decay=weight_decay or 0.0,
                              convention="keras"),
                lambda: K.Adagrad(lr, initial_accumulator_value=initial, epsilon=eps, weight_decay=weight_decay))


@EXAMPLES
@given(lr=f32(0.05, 1.0), rho=second_moment_decays, eps=epsilons, weight_decay=decays)
def test_adadelta_matches_keras_for_any_valid_settings(lr, rho, eps, weight_decay):
    assert_same(optim.adadelta(lr, rho=rho, eps=eps, weight_decay=weight_decay or 0.0, convention="keras"),
                lambda: K.Adadelta(lr, rho=rho, epsilon=eps, weight_decay=weight_decay))


@EXAMPLES
@given(lr=learning_rates, b1=betas, b2=second_moment_decays, eps=epsilons, weight_decay=decays)
def test_adamax_matches_keras_for_any_valid_settings(lr, b1, b2, eps, weight_decay):
    assert_same(optim.adamax(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay or 0.0, convention="keras"),
                lambda: K.Adamax(lr, beta_1=b1, beta_2=b2, epsilon=eps, weight_decay=weight_decay))


@EXAMPLES
@given(lr=learning_rates, b1=betas, b2=second_moment_decays, eps=epsilons, weight_decay=decays)
def test_nadam_matches_keras_for_any_valid_settings(lr, b1, b2, eps, weight_decay):
    assert_same(optim.nadam(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay or 0.0, convention="keras"),
                lambda: K.Nadam(lr, beta_1=b1, beta_2=b2, epsilon=eps, weight_decay=weight_decay))
