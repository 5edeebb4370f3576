"""Property tests: for random valid settings, every reference optimizer runs and matches torch.optim.

The hand-picked cases of ``test_optim_torch.py`` check each option once; here Hypothesis draws the
learning rate, betas, epsilon, weight decay, momentum and flags together, so that a combination
nobody thought of (Nesterov with weight decay and a large epsilon, AMSGrad with a tiny beta_2, ...)
is checked too. The examples are derandomized: the same ones on every run. 60 float64 steps each,
on the strongly convex problem of ``optim_problem``, to the suite's tolerance.

The second-moment decay is drawn from [0.5, 0.9999] and epsilon from 1e-8 up: with a decay near 0
and a tiny epsilon, Adam, RMSprop and their kin become sign descent, :math:`g/|g|`, whose path turns
on the sign of gradients that are pure rounding noise near the minimum. Two correct
implementations then part after a few dozen steps (Hypothesis finds such cases at once: the
difference is chaos, not a formula).
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from companion import optim  # noqa: E402
from optim_problem import float64_scalars, make_problem, run_reference, run_torch  # noqa: E402, F401 (a fixture)

STEPS = 60
EXAMPLES = settings(max_examples=25, deadline=None, derandomize=True, database=None)
# Near the minimum the gradients are small and every adaptive method divides them by their own size,
# so last-bit differences grow to ~1e-7 over 60 steps at some settings; a wrong formula moves the
# result by far more than this tolerance (the targeted cases of test_optim_torch.py are tighter).
PROPERTY_RTOL, PROPERTY_ATOL = 1e-5, 1e-6

learning_rates = st.floats(1e-4, 0.1)
betas = st.floats(0.0, 0.999)
second_moment_decays = st.floats(0.5, 0.9999)
epsilons = st.sampled_from([1e-8, 1e-6, 1e-3, 0.1])
decays = st.floats(0.0, 0.1)




def assert_same(reference, framework):
    ours = run_reference(reference, steps=STEPS)
    theirs = run_torch(framework, steps=STEPS)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=PROPERTY_RTOL, atol=PROPERTY_ATOL)


@pytest.fixture(autouse=True)
def _float64(float64_scalars):
    """Every test here runs with float64 as torch's default dtype (optim_problem.float64_scalars)."""


@EXAMPLES
@given(lr=learning_rates, momentum=st.floats(0.0, 0.95), nesterov=st.booleans(), weight_decay=decays,
       dampening=st.floats(0.0, 0.9), maximize=st.booleans())
def test_sgd_matches_torch_for_any_valid_settings(lr, momentum, nesterov, weight_decay, dampening, maximize):
    if nesterov and momentum == 0.0:
        nesterov = False  # torch and companion both refuse Nesterov without momentum (tested elsewhere)
    if nesterov or momentum == 0.0:
        dampening = 0.0
    lr = lr if not maximize else lr * 0.01  # an ascent runs away from the minimum: keep it finite in 60 steps
    reference = optim.sgd(lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, dampening=dampening,
                          maximize=maximize)
    assert_same(reference, lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum, nesterov=nesterov,
                                                      weight_decay=weight_decay, dampening=dampening,
                                                      maximize=maximize))


@EXAMPLES
@given(lr=learning_rates, b1=betas, b2=second_moment_decays, eps=epsilons, weight_decay=decays, amsgrad=st.booleans(),
       decoupled=st.booleans())
def test_adam_and_adamw_match_torch_for_any_valid_settings(lr, b1, b2, eps, weight_decay, amsgrad, decoupled):
    if decoupled:
        reference = optim.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        framework = lambda p: torch.optim.AdamW(p, lr=lr, betas=(b1, b2), eps=eps,  # noqa: E731
                                                weight_decay=weight_decay, amsgrad=amsgrad)
    else:
        reference = optim.adam(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        framework = lambda p: torch.optim.Adam(p, lr=lr, betas=(b1, b2), eps=eps,  # noqa: E731
                                               weight_decay=weight_decay, amsgrad=amsgrad)
    assert_same(reference, framework)


@EXAMPLES
@given(lr=learning_rates, decay=second_moment_decays, eps=epsilons, momentum=st.floats(0.0, 0.9), centered=st.booleans(),
       weight_decay=decays)
def test_rmsprop_matches_torch_for_any_valid_settings(lr, decay, eps, momentum, centered, weight_decay):
    if centered:  # the centered variance v - m^2 reaches 0 near the minimum: eps sets how hard it divides
        eps = max(eps, 1e-3)
    assert_same(optim.rmsprop(lr, decay=decay, eps=eps, momentum=momentum, centered=centered,
                              weight_decay=weight_decay),
                lambda p: torch.optim.RMSprop(p, lr=lr, alpha=decay, eps=eps, momentum=momentum, centered=centered,
                                              weight_decay=weight_decay))


@EXAMPLES
@given(lr=learning_rates, initial=st.floats(0.0, 1.0), eps=epsilons, weight_decay=decays,
       lr_decay=st.floats(0.0, 0.1))
def test_adagrad_matches_torch_for_any_valid_settings(lr, initial, eps, weight_decay, lr_decay):
    assert_same(optim.adagrad(lr, initial_accumulator_value=initial, eps=eps, weight_decay=weight_decay,
                              lr_decay=lr_decay),
                lambda p: torch.optim.Adagrad(p, lr=lr, initial_accumulator_value=initial, eps=eps,
                                              weight_decay=weight_decay, lr_decay=lr_decay))


@EXAMPLES
@given(lr=learning_rates, b1=betas, b2=second_moment_decays, eps=epsilons, weight_decay=decays,
       momentum_decay=st.floats(0.0, 0.01), decoupled=st.booleans())
def test_nadam_matches_torch_for_any_valid_settings(lr, b1, b2, eps, weight_decay, momentum_decay, decoupled):
    assert_same(optim.nadam(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                            decoupled_weight_decay=decoupled),
                lambda p: torch.optim.NAdam(p, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay,
                                            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled))


@EXAMPLES
@given(lr=learning_rates, b1=betas, b2=second_moment_decays, eps=epsilons, weight_decay=decays)
def test_adamax_matches_torch_for_any_valid_settings(lr, b1, b2, eps, weight_decay):
    assert_same(optim.adamax(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay),
                lambda p: torch.optim.Adamax(p, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay))
