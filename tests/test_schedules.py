"""companion.schedules against torch.optim.lr_scheduler and keras.optimizers.schedules, step by step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from companion import optim, schedules

torch = pytest.importorskip("torch")


def torch_lrs(make_scheduler, steps, lr=0.1, momentum=0.0):
    """The rate torch uses at steps 0..steps-1 (one scheduler.step() per optimizer step)."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr, momentum=momentum)
    scheduler = make_scheduler(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return np.array(out)


def ours(schedule, steps):
    return np.array([schedule(t) for t in range(steps)])


# torch's schedulers are recursive (each rate from the previous one), so they drift by float64 rounding.
TORCH_TOL = dict(rtol=1e-9, atol=1e-13)
# Keras computes its schedules in float32 (resolution ~7e-9 at 0.1).
KERAS_TOL = dict(rtol=2e-6, atol=1e-8)

LR_SCHED = torch.optim.lr_scheduler


@pytest.mark.parametrize("step_size, gamma", [(7, 0.1), (3, 0.5), (1, 0.9)])
def test_step_decay_matches_step_lr(step_size, gamma):
    expected = torch_lrs(lambda o: LR_SCHED.StepLR(o, step_size=step_size, gamma=gamma), 40)
    np.testing.assert_allclose(ours(schedules.step_decay(0.1, step_size, gamma), 40), expected, **TORCH_TOL)


@pytest.mark.parametrize("mode, down", [("triangular", None), ("triangular2", 3), ("exp_range", 7)])
def test_cyclic_matches_cyclic_lr(mode, down):
    expected = torch_lrs(lambda o: LR_SCHED.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, step_size_down=down,
                                                     mode=mode, gamma=0.97, cycle_momentum=False), 60)
    got = ours(schedules.cyclic(0.01, 0.1, 5, down, mode=mode, gamma=0.97), 60)
    np.testing.assert_allclose(got, expected, **TORCH_TOL)


def test_cyclic_bad_input():
    with pytest.raises(ValueError, match="Unknown mode"):
        schedules.cyclic(0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="step_size_up"):
        schedules.cyclic(0.01, 0.1, 0)


def test_step_decay_default_gamma_is_torch_default():
    expected = torch_lrs(lambda o: LR_SCHED.StepLR(o, step_size=5), 30)
    np.testing.assert_allclose(ours(schedules.step_decay(0.1, 5), 30), expected, **TORCH_TOL)


@pytest.mark.parametrize("gamma", [0.9, 0.5, math.exp(-0.1)])
def test_exponential_decay_matches_exponential_lr(gamma):
    expected = torch_lrs(lambda o: LR_SCHED.ExponentialLR(o, gamma=gamma), 60)
    np.testing.assert_allclose(ours(schedules.exponential_decay(0.1, gamma), 60), expected, **TORCH_TOL)


def test_exponential_decay_transition_begin_is_the_keras_callback_rule():
    # The LearningRateScheduler example: `lr if epoch < 10 else lr * exp(-0.1)`, applied at the start of
    # every epoch. Epochs 0..9 keep lr and epoch 10 already has one factor: transition_begin=9.
    def scheduler(epoch, lr):
        return lr if epoch < 10 else lr * math.exp(-0.1)

    lr, expected = 0.01, []
    for epoch in range(30):
        lr = scheduler(epoch, lr)
        expected.append(lr)
    schedule = schedules.exponential_decay(0.01, math.exp(-0.1), transition_begin=9)
    np.testing.assert_allclose(ours(schedule, 30), expected, rtol=1e-12)


@pytest.mark.parametrize("t_max, alpha", [(50, 0.0), (37, 0.1)])
def test_cosine_decay_matches_cosine_annealing_lr(t_max, alpha):
    expected = torch_lrs(lambda o: LR_SCHED.CosineAnnealingLR(o, T_max=t_max, eta_min=alpha * 0.1), t_max + 1)
    np.testing.assert_allclose(ours(schedules.cosine_decay(0.1, t_max, alpha), t_max + 1), expected, **TORCH_TOL)


def test_cosine_decay_stays_at_the_floor_after_decay_steps():
    schedule = schedules.cosine_decay(0.1, 10, alpha=0.2)
    assert schedule(10) == pytest.approx(0.02) and schedule(25) == pytest.approx(0.02)


@pytest.mark.parametrize("t_0, t_mult, alpha", [(10, 1, 0.0), (7, 2, 0.0), (5, 3, 0.05)])
def test_warm_restarts_match_torch(t_0, t_mult, alpha):
    steps = 120
    expected = torch_lrs(
        lambda o: LR_SCHED.CosineAnnealingWarmRestarts(o, T_0=t_0, T_mult=t_mult, eta_min=alpha * 0.1), steps
    )
    got = ours(schedules.cosine_annealing_warm_restarts(0.1, t_0, t_mult, alpha=alpha), steps)
    np.testing.assert_allclose(got, expected, **TORCH_TOL)


@pytest.mark.parametrize("start_factor, total_iters", [(1 / 3, 5), (0.01, 10), (0.25, 1)])
def test_linear_warmup_matches_linear_lr(start_factor, total_iters):
    expected = torch_lrs(lambda o: LR_SCHED.LinearLR(o, start_factor=start_factor, total_iters=total_iters), 30)
    got = ours(schedules.linear_warmup(0.1, total_iters, start_factor), 30)
    np.testing.assert_allclose(got, expected, **TORCH_TOL)


def test_linear_lr_with_end_factor_is_linear_polynomial_decay():
    expected = torch_lrs(lambda o: LR_SCHED.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=12), 20)
    got = ours(schedules.polynomial_decay(0.1, 12, end_value=0.02, power=1.0), 20)
    np.testing.assert_allclose(got, expected, **TORCH_TOL)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_polynomial_decay_matches_polynomial_lr(power):
    expected = torch_lrs(lambda o: LR_SCHED.PolynomialLR(o, total_iters=20, power=power), 30)
    got = ours(schedules.polynomial_decay(0.1, 20, end_value=0.0, power=power), 30)
    np.testing.assert_allclose(got, expected, **TORCH_TOL)


def test_linear_warmup_composes_with_a_schedule():
    schedule = schedules.linear_warmup(schedules.cosine_decay(1.0, 10), 5)
    np.testing.assert_allclose(ours(schedule, 5), [0.0, 0.2, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(ours(schedule, 16)[5:], ours(schedules.cosine_decay(1.0, 10), 11))


def test_one_cycle_matches_torch_defaults():
    # Only max_lr and total_steps given: pct_start 0.3, div_factor 25, final_div_factor 1e4, cos, two phases.
    expected = torch_lrs(lambda o: LR_SCHED.OneCycleLR(o, max_lr=0.5, total_steps=100), 100, momentum=0.9)
    got = ours(schedules.one_cycle(0.5, 100), 100)
    np.testing.assert_allclose(got, expected, **TORCH_TOL)
    assert got[0] == pytest.approx(0.5 / 25) and got[-1] == pytest.approx(0.5 / 25 / 1e4)
    assert int(np.argmax(got)) == 29  # the peak at step pct_start * total - 1


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
        dict(anneal_strategy="linear"),
        dict(three_phase=True),
        dict(three_phase=True, anneal_strategy="linear", pct_start=0.4),
    ],
)
def test_one_cycle_matches_torch_options(kwargs):
    expected = torch_lrs(lambda o: LR_SCHED.OneCycleLR(o, max_lr=0.3, total_steps=73, **kwargs), 73, momentum=0.9)
    np.testing.assert_allclose(ours(schedules.one_cycle(0.3, 73, **kwargs), 73), expected, **TORCH_TOL)


def test_one_cycle_holds_its_final_value():
    schedule = schedules.one_cycle(1.0, 10)
    assert schedule(50) == schedule(9)


def test_constant_and_piecewise():
    assert ours(schedules.constant(0.3), 3).tolist() == [0.3, 0.3, 0.3]
    schedule = schedules.piecewise_constant([3, 6], [1.0, 0.5, 0.1])
    assert ours(schedule, 9).tolist() == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1]


def test_a_schedule_drives_a_companion_optimizer():
    # SGD on f(x) = x^2 / 2 (gradient x): x_{t+1} = (1 - lr_t) x_t.
    schedule = schedules.step_decay(0.5, 2, 0.5)
    opt = optim.sgd(schedule)
    x, state = np.array([1.0]), opt.init(np.array([1.0]))
    expected = 1.0
    for t in range(6):
        updates, state = opt.update(x, state, x)
        x = optim.apply_updates(x, updates)
        expected *= 1 - schedule(t)
    assert x[0] == pytest.approx(expected, rel=1e-12)


# --- Keras ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_schedules():
    keras = pytest.importorskip("keras")
    return keras.optimizers.schedules


def keras_lrs(schedule, steps):
    return np.array([float(schedule(t)) for t in range(steps)])


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_matches_keras(keras_schedules, staircase):
    expected = keras_lrs(keras_schedules.ExponentialDecay(0.1, decay_steps=7, decay_rate=0.6, staircase=staircase), 50)
    got = ours(schedules.exponential_decay(0.1, 0.6, 7, staircase=staircase), 50)
    np.testing.assert_allclose(got, expected, **KERAS_TOL)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay_matches_keras(keras_schedules, staircase):
    expected = keras_lrs(keras_schedules.InverseTimeDecay(0.1, decay_steps=5, decay_rate=0.7, staircase=staircase), 50)
    got = ours(schedules.inverse_time_decay(0.1, 0.7, 5, staircase=staircase), 50)
    np.testing.assert_allclose(got, expected, **KERAS_TOL)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_cosine_decay_matches_keras(keras_schedules, alpha):
    expected = keras_lrs(keras_schedules.CosineDecay(0.1, decay_steps=40, alpha=alpha), 60)
    np.testing.assert_allclose(ours(schedules.cosine_decay(0.1, 40, alpha), 60), expected, **KERAS_TOL)


@pytest.mark.parametrize("initial", [0.0, 0.01])
def test_cosine_decay_with_warmup_matches_keras(keras_schedules, initial):
    expected = keras_lrs(
        keras_schedules.CosineDecay(initial, decay_steps=40, alpha=0.1, warmup_target=0.2, warmup_steps=10), 70
    )
    got = ours(schedules.linear_warmup(schedules.cosine_decay(0.2, 40, 0.1), 10, initial / 0.2), 70)
    np.testing.assert_allclose(got, expected, **KERAS_TOL)


@pytest.mark.parametrize(
    "t_mul, m_mul, alpha", [(2.0, 1.0, 0.0), (1.0, 1.0, 0.1), (2.0, 0.7, 0.05), (1.5, 0.9, 0.0)]
)
def test_warm_restarts_match_keras(keras_schedules, t_mul, m_mul, alpha):
    expected = keras_lrs(
        keras_schedules.CosineDecayRestarts(0.1, first_decay_steps=8, t_mul=t_mul, m_mul=m_mul, alpha=alpha), 150
    )
    got = ours(schedules.cosine_annealing_warm_restarts(0.1, 8, t_mul, alpha=alpha, decay_mult=m_mul), 150)
    np.testing.assert_allclose(got, expected, **KERAS_TOL)


def test_piecewise_constant_matches_keras(keras_schedules):
    expected = keras_lrs(keras_schedules.PiecewiseConstantDecay([5, 12, 20], [0.1, 0.05, 0.01, 0.001]), 30)
    got = ours(schedules.piecewise_constant([5, 12, 20], [0.1, 0.05, 0.01, 0.001]), 30)
    np.testing.assert_allclose(got, expected, **KERAS_TOL)


@pytest.mark.parametrize("power, cycle", [(1.0, False), (2.0, False), (0.5, True), (1.0, True)])
def test_polynomial_decay_matches_keras(keras_schedules, power, cycle):
    expected = keras_lrs(keras_schedules.PolynomialDecay(0.1, decay_steps=15, power=power, cycle=cycle), 50)
    got = ours(schedules.polynomial_decay(0.1, 15, power=power, cycle=cycle), 50)
    np.testing.assert_allclose(got, expected, **KERAS_TOL)


@pytest.mark.parametrize("run_eagerly", [True, False], ids=["eager", "compiled"])
def test_a_schedule_drives_the_keras_adapter(keras_schedules, run_eagerly):
    import keras

    from companion.optim.keras_adapter import KerasReferenceOptimizer

    schedule = schedules.step_decay(0.1, 2, 0.5)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([np.ones((1, 1), dtype="float32")])
    model.compile(optimizer=KerasReferenceOptimizer(optim.sgd(schedule)), loss="mse", run_eagerly=run_eagerly)
    model.fit(np.ones((1, 1), "float32"), np.zeros((1, 1), "float32"), epochs=5, batch_size=1, verbose=0)
    w = 1.0
    for t in range(5):  # mse gradient 2 w
        w -= schedule(t) * 2 * w
    assert model.get_weights()[0][0, 0] == pytest.approx(w, rel=1e-6)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: schedules.constant(-0.1), "value"),
        (lambda: schedules.step_decay(-0.1, 5), "init_value"),
        (lambda: schedules.step_decay(0.1, 0), "step_size"),
        (lambda: schedules.exponential_decay(-1.0, 0.9), "init_value"),
        (lambda: schedules.exponential_decay(0.1, 0.9, decay_steps=0), "decay_steps"),
        (lambda: schedules.cosine_decay(0.1, 0), "decay_steps"),
        (lambda: schedules.cosine_decay(-0.1, 10), "init_value"),
        (lambda: schedules.cosine_annealing_warm_restarts(0.1, 0), "first_period"),
        (lambda: schedules.cosine_annealing_warm_restarts(0.1, -3), "first_period"),
        (lambda: schedules.cosine_annealing_warm_restarts(0.1, 10, 0.5), "period_mult"),
        (lambda: schedules.linear_warmup(-0.1, 5), "after"),
        (lambda: schedules.linear_warmup(0.1, 0), "warmup_steps"),
        (lambda: schedules.linear_warmup(0.1, 5, start_factor=1.5), "start_factor"),
        (lambda: schedules.one_cycle(-0.1, 100), "max_value"),
        (lambda: schedules.one_cycle(0.1, 0), "total_steps"),
        (lambda: schedules.one_cycle(0.1, -5), "total_steps"),
        (lambda: schedules.one_cycle(0.1, 100, pct_start=0.0), "pct_start"),
        (lambda: schedules.one_cycle(0.1, 100, pct_start=1.0), "pct_start"),
        (lambda: schedules.one_cycle(0.1, 100, pct_start=1.2), "pct_start"),
        (lambda: schedules.one_cycle(0.1, 100, anneal_strategy="cosine"), "anneal_strategy"),
        (lambda: schedules.polynomial_decay(0.1, 0), "decay_steps"),
        (lambda: schedules.piecewise_constant([5, 3], [1.0, 0.5, 0.1]), "boundaries"),
        (lambda: schedules.piecewise_constant([5], [1.0]), "values"),
        (lambda: schedules.step_decay(0.1, 5)(-1), "step"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="step_size"):
        schedules.step_decay(0.1, 2.5)
    with pytest.raises(TypeError, match="step"):
        schedules.constant(0.1)("three")


# --- the range test ------------------------------------------------------------------------------


def _toy_problem():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 10, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def test_lr_range_test_sweeps_geometrically_and_suggests_a_rate():
    x, y = _toy_problem()

    def model_fn():
        torch.manual_seed(0)
        return torch.nn.Linear(10, 2)

    lrs, losses, suggestion = schedules.lr_range_test(
        model_fn, lambda lr: optim.sgd(lr), x, y, min_lr=1e-4, max_lr=1e3, num_steps=80, batch_size=32
    )
    assert lrs[0] == pytest.approx(1e-4) and len(lrs) == len(losses)
    np.testing.assert_allclose(np.diff(np.log(lrs)), np.log(1e7) / 79, rtol=1e-9)
    assert len(lrs) < 80  # lr = 1000 diverges: the test stops early
    assert 1e-3 < suggestion < 10.0
    assert suggestion == pytest.approx(lrs[np.argmin(losses)] / 10)


def test_lr_range_test_bad_input():
    x, y = _toy_problem()
    make = lambda: torch.nn.Linear(10, 2)  # noqa: E731
    with pytest.raises(ValueError, match="max_lr"):
        schedules.lr_range_test(make, optim.sgd, x, y, min_lr=1.0, max_lr=0.1)
    with pytest.raises(ValueError, match="min_lr"):
        schedules.lr_range_test(make, optim.sgd, x, y, min_lr=-1.0)
    with pytest.raises(ValueError, match="num_steps"):
        schedules.lr_range_test(make, optim.sgd, x, y, num_steps=1)
    with pytest.raises(TypeError, match="model_fn"):
        schedules.lr_range_test(None, optim.sgd, x, y)


def test_a_schedule_in_a_compiled_keras_fit_matches_keras_own_schedule(keras_schedules):
    """Adam with a cosine schedule and Keras' decoupled weight decay, in a compiled fit: as Keras does it."""
    import keras

    from companion.optim.keras_adapter import KerasReferenceOptimizer

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, size=64)

    def fit(optimizer):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(2)])
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
        return model.get_weights()

    ours = fit(KerasReferenceOptimizer(optim.adam(schedules.cosine_decay(2.0**-5, 16), b1=0.875, b2=1 - 2.0**-7,
                                                  eps=2.0**-20, weight_decay=0.25, convention="keras")))
    theirs = fit(keras.optimizers.Adam(keras_schedules.CosineDecay(2.0**-5, 16), beta_1=0.875, beta_2=1 - 2.0**-7,
                                       epsilon=2.0**-20, weight_decay=0.25))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("three_phase", [False, True], ids=["two-phase", "three-phase"])
@pytest.mark.parametrize("method", ["sgd", "nesterov", "adam"])
def test_one_cycle_with_momentum_cycling_trains_like_torch_onecyclelr(method, three_phase):
    """OneCycleLR cycles SGD's momentum (Adam's beta_1) inversely to the rate: the same run, step by step."""
    torch = pytest.importorskip("torch")
    from companion.optim.torch_adapter import ReferenceOptimizer

    total, settings = 40, dict(pct_start=0.25, three_phase=three_phase)

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2)).double()

    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    lr = schedules.one_cycle(0.5, total, **settings)
    momentum = schedules.one_cycle_momentum(total, base_momentum=0.8, max_momentum=0.95, **settings)
    ours_model, theirs_model = make(), make()
    if method == "adam":
        ours = ReferenceOptimizer(ours_model.parameters(), optim.adam(lr, b1=momentum, b2=0.99))
        theirs = torch.optim.Adam(theirs_model.parameters(), lr=0.5, betas=(0.9, 0.99))
    else:
        nesterov = method == "nesterov"
        ours = ReferenceOptimizer(ours_model.parameters(), optim.sgd(lr, momentum=momentum, nesterov=nesterov))
        theirs = torch.optim.SGD(theirs_model.parameters(), lr=0.5, momentum=0.9, nesterov=nesterov)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(theirs, max_lr=0.5, total_steps=total, base_momentum=0.8,
                                                    max_momentum=0.95, **settings)
    seen = []
    for step in range(total):
        group = theirs.param_groups[0]
        seen.append(group["betas"][0] if method == "adam" else group["momentum"])
        assert momentum(step) == pytest.approx(seen[-1], rel=1e-12, abs=1e-15)
        for model, opt in ((ours_model, ours), (theirs_model, theirs)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        scheduler.step()
    assert max(seen) - min(seen) > 0.1  # the momentum did cycle
    for a, b in zip(ours_model.parameters(), theirs_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_one_cycle_momentum_refuses_bad_settings():
    with pytest.raises(ValueError, match="base_momentum"):
        schedules.one_cycle_momentum(10, base_momentum=0.99, max_momentum=0.9)
    with pytest.raises(ValueError, match="max_momentum"):
        schedules.one_cycle_momentum(10, max_momentum=1.0)
    with pytest.raises(ValueError, match="pct_start"):
        schedules.one_cycle_momentum(10, pct_start=1.5)
    with pytest.raises(ValueError, match="momentum"):  # a schedule that leaves [0, 1) is caught when it does
        opt = optim.sgd(0.1, momentum=lambda step: 1.2)
        opt.update([np.ones(2)], opt.init([np.zeros(2)]), [np.zeros(2)])
    with pytest.raises(ValueError, match="dampening"):
        optim.sgd(0.1, momentum=schedules.one_cycle_momentum(10), dampening=0.1)
