"""Each reference optimizer, convention "keras", against keras.optimizers: 200 steps, float64."""

from __future__ import annotations

import numpy as np
import pytest

from companion import optim
from optim_problem import ATOL, RTOL, make_problem, run_keras, run_reference

keras = pytest.importorskip("keras")


# Keras rounds float hyperparameters to float32 in some places (the learning rate variable, the betas
# inside bias corrections) and not in others, even for float64 variables. Hyperparameters that are exact
# in float32 (dyadic fractions) make that rounding a no-op, so 200 float64 steps can be compared tightly.
LR = 2.0**-6  # 0.015625
B1, B2 = 0.875, 1 - 2.0**-7  # 0.875, 0.9921875
RHO = 0.875
EPS_SMALL, EPS_LARGE = 2.0**-20, 2.0**-4  # ~1e-6, and 0.0625 where eps's placement must show
K = keras.optimizers
CASES = [
    ("sgd", lambda: optim.sgd(LR, convention="keras"), lambda: K.SGD(LR)),
    ("momentum", lambda: optim.sgd(LR, momentum=0.875, convention="keras"), lambda: K.SGD(LR, momentum=0.875)),
    (
        "nesterov",
        lambda: optim.sgd(LR, momentum=0.75, nesterov=True, convention="keras"),
        lambda: K.SGD(LR, momentum=0.75, nesterov=True),
    ),
    (
        "adagrad",
        lambda: optim.adagrad(0.125, initial_accumulator_value=0.125, eps=EPS_SMALL, convention="keras"),
        lambda: K.Adagrad(0.125, initial_accumulator_value=0.125, epsilon=EPS_SMALL),
    ),
    (
        "adagrad-large-eps",
        lambda: optim.adagrad(0.25, initial_accumulator_value=0.0, eps=EPS_LARGE, convention="keras"),
        lambda: K.Adagrad(0.25, initial_accumulator_value=0.0, epsilon=EPS_LARGE),
    ),
    (
        "adadelta",
        lambda: optim.adadelta(1.0, rho=RHO, eps=EPS_SMALL, convention="keras"),
        lambda: K.Adadelta(1.0, rho=RHO, epsilon=EPS_SMALL),
    ),
    (
        "rmsprop",
        lambda: optim.rmsprop(LR, decay=RHO, eps=EPS_SMALL, convention="keras"),
        lambda: K.RMSprop(LR, rho=RHO, epsilon=EPS_SMALL),
    ),
    (
        "rmsprop-momentum-large-eps",
        lambda: optim.rmsprop(LR, decay=RHO, eps=EPS_LARGE, momentum=0.5, convention="keras"),
        lambda: K.RMSprop(LR, rho=RHO, epsilon=EPS_LARGE, momentum=0.5),
    ),
    (
        "rmsprop-centered",
        lambda: optim.rmsprop(LR, decay=RHO, eps=EPS_LARGE, centered=True, convention="keras"),
        lambda: K.RMSprop(LR, rho=RHO, epsilon=EPS_LARGE, centered=True),
    ),
    (
        "adam",
        lambda: optim.adam(LR, b1=B1, b2=B2, eps=EPS_SMALL, convention="keras"),
        lambda: K.Adam(LR, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL),
    ),
    (
        "adam-large-eps",
        lambda: optim.adam(LR, b1=B1, b2=B2, eps=EPS_LARGE, convention="keras"),
        lambda: K.Adam(LR, beta_1=B1, beta_2=B2, epsilon=EPS_LARGE),
    ),
    (
        "adam-amsgrad",
        lambda: optim.adam(LR, b1=B1, b2=B2, eps=EPS_SMALL, convention="keras", amsgrad=True),
        lambda: K.Adam(LR, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL, amsgrad=True),
    ),
    (
        "adamw-amsgrad",
        lambda: optim.adamw(LR, b1=B1, b2=B2, eps=EPS_SMALL, weight_decay=0.125, convention="keras", amsgrad=True),
        lambda: K.AdamW(LR, weight_decay=0.125, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL, amsgrad=True),
    ),
    (
        "adamw",
        lambda: optim.adamw(LR, b1=B1, b2=B2, eps=EPS_SMALL, weight_decay=0.125, convention="keras"),
        lambda: K.AdamW(LR, weight_decay=0.125, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL),
    ),
    (
        "adamax",
        lambda: optim.adamax(LR, b1=B1, b2=B2, eps=EPS_SMALL, convention="keras"),
        lambda: K.Adamax(LR, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL),
    ),
    (
        "adamax-large-eps",
        lambda: optim.adamax(LR, b1=B1, b2=B2, eps=EPS_LARGE, convention="keras"),
        lambda: K.Adamax(LR, beta_1=B1, beta_2=B2, epsilon=EPS_LARGE),
    ),
    (
        "nadam",
        lambda: optim.nadam(LR, b1=B1, b2=B2, eps=EPS_SMALL, convention="keras"),
        lambda: K.Nadam(LR, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL),
    ),
    (  # low betas make Keras' float32 rounding of 0.96 in mu_t visible (1e-6 over 60 steps if ignored)
        "nadam-low-betas",
        lambda: optim.nadam(4 * LR, b1=0.75, b2=0.75, eps=EPS_SMALL, convention="keras"),
        lambda: K.Nadam(4 * LR, beta_1=0.75, beta_2=0.75, epsilon=EPS_SMALL),
    ),
    (
        "lamb",
        lambda: optim.lamb(LR, b1=B1, b2=B2, eps=EPS_SMALL),
        lambda: K.Lamb(LR, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL),
    ),
    ("lamb-defaults", lambda: optim.lamb(LR), lambda: K.Lamb(LR)),
    ("ftrl", lambda: optim.ftrl(LR, initial_accumulator_value=0.125), lambda: K.Ftrl(LR, initial_accumulator_value=0.125)),
    (
        "ftrl-regularized",
        lambda: optim.ftrl(0.125, learning_rate_power=-0.75, initial_accumulator_value=0.25, l1=0.0625, l2=0.03125,
                           l2_shrinkage=0.015625, beta=0.125),
        lambda: K.Ftrl(0.125, learning_rate_power=-0.75, initial_accumulator_value=0.25,
                       l1_regularization_strength=0.0625, l2_regularization_strength=0.03125,
                       l2_shrinkage_regularization_strength=0.015625, beta=0.125),
    ),
]


# Keras' weight_decay is decoupled and the same for every optimizer: theta -= lr * wd * theta, outside the rule.
WD = 0.125
WEIGHT_DECAY_CASES = [
    ("sgd-wd", lambda: optim.sgd(LR, weight_decay=WD, convention="keras"), lambda: K.SGD(LR, weight_decay=WD)),
    ("momentum-wd", lambda: optim.sgd(LR, momentum=0.875, weight_decay=WD, convention="keras"),
     lambda: K.SGD(LR, momentum=0.875, weight_decay=WD)),
    ("nesterov-wd", lambda: optim.sgd(LR, momentum=0.75, nesterov=True, weight_decay=WD, convention="keras"),
     lambda: K.SGD(LR, momentum=0.75, nesterov=True, weight_decay=WD)),
    ("adagrad-wd", lambda: optim.adagrad(0.125, initial_accumulator_value=0.125, eps=EPS_SMALL, weight_decay=WD,
                                         convention="keras"),
     lambda: K.Adagrad(0.125, initial_accumulator_value=0.125, epsilon=EPS_SMALL, weight_decay=WD)),
    ("adadelta-wd", lambda: optim.adadelta(1.0, rho=RHO, eps=EPS_SMALL, weight_decay=WD, convention="keras"),
     lambda: K.Adadelta(1.0, rho=RHO, epsilon=EPS_SMALL, weight_decay=WD)),
    # with a tiny eps, RMSprop with momentum amplifies last-bit differences (the decay's rounding, taken in
    # another order than Keras') to 1e-4 in 200 steps; eps = 1/16 keeps the comparison tight
    ("rmsprop-momentum-wd", lambda: optim.rmsprop(LR, decay=RHO, eps=EPS_LARGE, momentum=0.5, weight_decay=WD,
                                                  convention="keras"),
     lambda: K.RMSprop(LR, rho=RHO, epsilon=EPS_LARGE, momentum=0.5, weight_decay=WD)),
    ("adam-wd-is-adamw", lambda: optim.adam(LR, b1=B1, b2=B2, eps=EPS_SMALL, weight_decay=WD, convention="keras"),
     lambda: K.AdamW(LR, weight_decay=WD, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL)),
    ("adam-wd", lambda: optim.adam(LR, b1=B1, b2=B2, eps=EPS_SMALL, weight_decay=WD, convention="keras"),
     lambda: K.Adam(LR, weight_decay=WD, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL)),
    ("adamax-wd", lambda: optim.adamax(LR, b1=B1, b2=B2, eps=EPS_SMALL, weight_decay=WD, convention="keras"),
     lambda: K.Adamax(LR, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL, weight_decay=WD)),
    ("nadam-wd", lambda: optim.nadam(LR, b1=B1, b2=B2, eps=EPS_SMALL, weight_decay=WD, convention="keras"),
     lambda: K.Nadam(LR, beta_1=B1, beta_2=B2, epsilon=EPS_SMALL, weight_decay=WD)),
]
CASES += WEIGHT_DECAY_CASES


@pytest.mark.parametrize("name, reference, framework", [c for c in WEIGHT_DECAY_CASES if c[0] != "adam-wd-is-adamw"],
                         ids=[c[0] for c in WEIGHT_DECAY_CASES if c[0] != "adam-wd-is-adamw"])
def test_keras_weight_decay_changes_the_result(name, reference, framework):
    """The decay must matter in the comparison: without it, the same optimizer ends elsewhere."""
    optimizer = framework()
    without = run_keras(lambda: type(optimizer).from_config({**optimizer.get_config(), "weight_decay": None}))
    with_decay = run_reference(reference())
    assert max(np.abs(a - b).max() for a, b in zip(with_decay, without)) > 1e-3, name


@pytest.mark.parametrize("reference, framework", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_keras_optimizers(reference, framework):
    ours = run_reference(reference())
    theirs = run_keras(framework)
    start, _, _ = make_problem()
    moved = max(np.abs(a - b).max() for a, b in zip(theirs, start))
    assert moved > 1e-4, "the problem must move the parameters for the comparison to mean anything"
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_ftrl_l1_sets_weights_exactly_to_zero():
    """The point of FTRL-Proximal: a strong L1 term makes weights exactly 0, in Keras and in ours."""
    ours = run_reference(optim.ftrl(0.1, l1=5.0), steps=50)
    theirs = run_keras(lambda: K.Ftrl(0.1, l1_regularization_strength=5.0), steps=50)
    assert sum(int((p == 0).sum()) for p in ours) > 0
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a == 0, b == 0)


KERAS_NAMES = {
    "sgd": "SGD", "adagrad": "Adagrad", "adadelta": "Adadelta", "rmsprop": "RMSprop", "adam": "Adam",
    "adamw": "AdamW", "adamax": "Adamax", "nadam": "Nadam",
}
KERAS_KEYS = {"learning_rate": "learning_rate", "eps": "epsilon", "decay": "rho", "rho": "rho",
              "initial_accumulator_value": "initial_accumulator_value", "weight_decay": "weight_decay"}


@pytest.mark.parametrize("name", sorted(KERAS_NAMES))
def test_keras_defaults_table_matches_keras(name):
    config = getattr(K, KERAS_NAMES[name])().get_config()
    for key, value in optim.DEFAULTS[name]["keras"].items():
        if key == "momentum_decay":
            continue  # Keras hard-codes 0.96**t in Nadam: momentum_decay=1 in our form
        assert config[KERAS_KEYS[key]] == pytest.approx(value, rel=1e-6), (name, key)
