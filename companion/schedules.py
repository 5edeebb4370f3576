r"""Learning-rate schedules: pure functions of the step count.

Each function here returns a *schedule* :math:`t \mapsto \eta_t`, a callable of the step count
:math:`t = 0, 1, 2, \dots` (the number of optimizer steps already taken) that returns a float. Every
``companion.optim`` optimizer accepts one as its ``learning_rate``::

    optim.sgd(schedules.one_cycle(0.1, total_steps=1000), momentum=0.9)

The formulas follow ``torch.optim.lr_scheduler`` and ``keras.optimizers.schedules``; the tests compare
each schedule with those classes step by step. PyTorch's schedulers count *calls to*
``scheduler.step()`` (often once per epoch), Keras' schedules count optimizer steps; a pure function of
the step serves both: call it with whichever counter you mean. With
``companion.optim.keras_adapter.KerasReferenceOptimizer`` the step is a tensor: the schedules need it
concrete, so compile the Keras model with ``run_eagerly=True``.

:func:`lr_range_test` is the learning-rate range test of Smith (2017).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._checks import check_choice, check_in_range, check_non_negative, check_positive, check_positive_int

__all__ = [
    "constant",
    "cosine_annealing_warm_restarts",
    "cosine_decay",
    "cyclic",
    "exponential_decay",
    "inverse_time_decay",
    "linear_warmup",
    "lr_range_test",
    "one_cycle",
    "one_cycle_momentum",
    "piecewise_constant",
    "polynomial_decay",
    "step_decay",
]


def _step(step) -> float:
    """The step count as a float (a Python/NumPy number or a 0-d tensor); negative steps are refused."""
    if isinstance(step, bool):
        raise TypeError(f"step must be a number, got bool: {step!r}")
    try:
        value = float(step)
    except (TypeError, ValueError, AttributeError, NotImplementedError):
        raise TypeError(
            f"step must be a number, got {type(step).__name__}: {step!r} (a schedule is a Python function of a "
            "concrete step; in a compiled Keras step, KerasReferenceOptimizer evaluates it with tf.numpy_function)"
        ) from None
    if not value >= 0.0:  # also catches NaN
        raise ValueError(f"Invalid step: {step} (must be >= 0)")
    return value


def _named(schedule, text: str):
    schedule.__name__ = schedule.__qualname__ = text
    return schedule


def _as_schedule(value, name: str):
    if callable(value):
        return value
    value = check_non_negative(name, value)
    return lambda step: value


def constant(value: float):
    r""":math:`\eta_t = \eta_0` for every step (Keras/torch: a plain float learning rate)."""
    value = check_non_negative("value", value)

    def schedule(step):
        _step(step)
        return value

    return _named(schedule, f"constant({value:g})")


def step_decay(init_value: float, step_size: int, gamma: float = 0.1):
    r"""Multiply the rate by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_t = \eta_0\, \gamma^{\lfloor t / s \rfloor}

    Checked against ``torch.optim.lr_scheduler.StepLR(step_size, gamma)`` (same default ``gamma=0.1``).
    """
    init_value = check_non_negative("init_value", init_value)
    step_size = check_positive_int("step_size", step_size)
    gamma = check_non_negative("gamma", gamma)

    def schedule(step):
        return init_value * gamma ** (int(_step(step)) // step_size)

    return _named(schedule, f"step_decay({init_value:g}, step_size={step_size}, gamma={gamma:g})")


def piecewise_constant(boundaries, values):
    r"""``values[i]`` on the i-th interval between ``boundaries``.

    .. math:: \eta_t = v_0 \text{ for } t \le b_0,\quad v_i \text{ for } b_{i-1} < t \le b_i,\quad v_n \text{ for } t > b_{n-1}

    Checked against ``keras.optimizers.schedules.PiecewiseConstantDecay`` (note the ``<=``: the new
    value starts one step *after* each boundary). ``torch.optim.lr_scheduler.MultiStepLR`` switches
    *at* its milestones: pass ``milestone - 1``.
    """
    boundaries = [check_non_negative("boundaries", b) for b in boundaries]
    values = [check_non_negative("values", v) for v in values]
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            f"Invalid values: {len(values)} values for {len(boundaries)} boundaries (need one more value than boundaries)"
        )
    if any(b >= c for b, c in zip(boundaries[:-1], boundaries[1:])):
        raise ValueError(f"Invalid boundaries: {boundaries} (must be strictly increasing)")

    def schedule(step):
        t = _step(step)
        for boundary, value in zip(boundaries, values):
            if t <= boundary:
                return value
        return values[-1]

    return _named(schedule, f"piecewise_constant({boundaries}, {values})")


def exponential_decay(
    init_value: float, decay_rate: float, decay_steps: int = 1, *, staircase: bool = False, transition_begin: int = 0
):
    r"""Multiply the rate by ``decay_rate`` every ``decay_steps`` steps, smoothly or in stairs.

    .. math:: \eta_t = \eta_0\, r^{\,(t - t_0)^+ / T}\quad(\text{staircase: } r^{\lfloor (t - t_0)^+ / T \rfloor})

    With ``decay_steps=1`` it is ``torch.optim.lr_scheduler.ExponentialLR(gamma=decay_rate)``; otherwise
    ``keras.optimizers.schedules.ExponentialDecay(init_value, decay_steps, decay_rate, staircase)``
    (both checked in the tests). ``transition_begin`` :math:`t_0` holds :math:`\eta_0` for that many steps
    first, as in optax (e.g. "keep the rate for 10 epochs, then multiply it by :math:`e^{-0.1}` per epoch").
    """
    init_value = check_non_negative("init_value", init_value)
    decay_rate = check_positive("decay_rate", decay_rate)
    decay_steps = check_positive("decay_steps", decay_steps)
    transition_begin = check_non_negative("transition_begin", transition_begin)

    def schedule(step):
        p = max(_step(step) - transition_begin, 0.0) / decay_steps
        if staircase:
            p = math.floor(p)
        return init_value * decay_rate**p

    return _named(schedule, f"exponential_decay({init_value:g}, rate={decay_rate:g}, steps={decay_steps:g})")


def inverse_time_decay(init_value: float, decay_rate: float, decay_steps: int = 1, *, staircase: bool = False):
    r"""Divide the rate by a count that grows linearly with the step.

    .. math:: \eta_t = \frac{\eta_0}{1 + r\, t / T}\quad(\text{staircase: } \frac{\eta_0}{1 + r \lfloor t / T\rfloor})

    ``keras.optimizers.schedules.InverseTimeDecay(init_value, decay_steps, decay_rate, staircase)``; with
    ``decay_steps=1`` it is also the ``lr_decay`` of ``torch.optim.Adagrad`` (both checked in the tests).
    """
    init_value = check_non_negative("init_value", init_value)
    decay_rate = check_non_negative("decay_rate", decay_rate)
    decay_steps = check_positive("decay_steps", decay_steps)

    def schedule(step):
        p = _step(step) / decay_steps
        if staircase:
            p = math.floor(p)
        return init_value / (1.0 + decay_rate * p)

    return _named(schedule, f"inverse_time_decay({init_value:g}, rate={decay_rate:g}, steps={decay_steps:g})")


def cyclic(base_value: float, max_value: float, step_size_up: int = 2000, step_size_down: int | None = None, *,
           mode: str = "triangular", gamma: float = 1.0):
    r"""Cyclical learning rates (Smith, 2017): up and down between two bounds, forever.

    With a cycle of :math:`T = T_\uparrow + T_\downarrow` steps, :math:`c = \lfloor 1 + t/T \rfloor` and
    :math:`x = 1 + t/T - c`, the rate rises linearly for the first :math:`T_\uparrow` steps of each cycle
    and falls for the rest,

    .. math:: \eta_t = \eta_{\min} + (\eta_{\max} - \eta_{\min})\, h(x)\, s_t, \qquad
              h(x) = \begin{cases} x\,T/T_\uparrow & x \le T_\uparrow/T \\ (1 - x)\,T/T_\downarrow & \text{otherwise} \end{cases}

    with :math:`s_t = 1` (``"triangular"``), :math:`2^{1-c}` (``"triangular2"``: the amplitude halves
    every cycle) or :math:`\gamma^t` (``"exp_range"``). ``torch.optim.lr_scheduler.CyclicLR`` with
    ``cycle_momentum=False`` (checked in the tests).
    """
    base_value = check_non_negative("base_value", base_value)
    max_value = check_non_negative("max_value", max_value)
    step_size_up = check_positive("step_size_up", step_size_up)
    step_size_down = step_size_up if step_size_down is None else check_positive("step_size_down", step_size_down)
    check_choice("mode", mode, ("triangular", "triangular2", "exp_range"))
    gamma = check_positive("gamma", gamma)
    total = step_size_up + step_size_down
    up_ratio = step_size_up / total

    def schedule(step):
        t = _step(step)
        cycle = math.floor(1.0 + t / total)
        x = 1.0 + t / total - cycle
        height = x / up_ratio if x <= up_ratio else (x - 1.0) / (up_ratio - 1.0)
        scale = {"triangular": 1.0, "triangular2": 1.0 / 2.0 ** (cycle - 1), "exp_range": gamma**t}[mode]
        return base_value + (max_value - base_value) * height * scale

    return _named(schedule, f"cyclic({base_value:g}, {max_value:g}, up={step_size_up:g}, mode={mode})")


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0):
    r"""Half a cosine from :math:`\eta_0` down to :math:`\alpha\eta_0` over ``decay_steps``, then constant.

    .. math:: \eta_t = \eta_0\Big(\alpha + (1-\alpha)\,\tfrac12\big(1 + \cos(\pi \min(t, T)/T)\big)\Big)

    Checked against ``keras.optimizers.schedules.CosineDecay(init_value, decay_steps, alpha)`` and
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=decay_steps, eta_min=alpha*init_value)`` for
    :math:`t \le T` (beyond :math:`T` torch's cosine climbs back up; this one, like Keras', stays at the
    floor). Loshchilov & Hutter (2017). For Keras' ``warmup_steps``/``warmup_target``, wrap it in
    :func:`linear_warmup`.
    """
    init_value = check_non_negative("init_value", init_value)
    decay_steps = check_positive_int("decay_steps", decay_steps)
    alpha = check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)

    def schedule(step):
        fraction = min(_step(step), decay_steps) / decay_steps
        return init_value * (alpha + (1.0 - alpha) * 0.5 * (1.0 + math.cos(math.pi * fraction)))

    return _named(schedule, f"cosine_decay({init_value:g}, {decay_steps})")


def cosine_annealing_warm_restarts(
    init_value: float, first_period: int, period_mult: float = 1.0, *, alpha: float = 0.0, decay_mult: float = 1.0
):
    r"""SGDR: cosine annealing that restarts at :math:`\eta_0`, with periods growing by ``period_mult``.

    Within restart :math:`i` (period :math:`T_i = T_0 m^i`, :math:`t_{cur}` steps into it):

    .. math:: \eta_t = \eta_0\Big(\alpha + (1-\alpha)\, d^{\,i}\,\tfrac12\big(1 + \cos(\pi\, t_{cur}/T_i)\big)\Big)

    Loshchilov & Hutter (2017). Checked against
    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0, T_mult, eta_min=alpha*init_value)`` (which
    needs an integer ``T_mult`` and has no ``decay_mult``) and
    ``keras.optimizers.schedules.CosineDecayRestarts(init_value, first_period, t_mul, m_mul=decay_mult, alpha)``
    (whose ``t_mul`` defaults to 2; here, as in torch, the default is 1).
    """
    init_value = check_non_negative("init_value", init_value)
    first_period = check_positive("first_period", first_period)
    if check_positive("period_mult", period_mult) < 1.0:
        raise ValueError(f"Invalid period_mult: {period_mult} (must be >= 1)")
    alpha = check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    decay_mult = check_non_negative("decay_mult", decay_mult)

    def schedule(step):
        t = _step(step)
        if period_mult == 1.0:
            restart = math.floor(t / first_period)
            t_cur, period = t - restart * first_period, first_period
        else:  # walk the geometrically growing periods (exact for integer steps, unlike a log formula)
            restart, t_cur, period = 0, t, first_period
            while t_cur >= period:
                t_cur -= period
                period *= period_mult
                restart += 1
        cosine = 0.5 * decay_mult**restart * (1.0 + math.cos(math.pi * t_cur / period))
        return init_value * (alpha + (1.0 - alpha) * cosine)

    return _named(schedule, f"cosine_annealing_warm_restarts({init_value:g}, {first_period:g}, x{period_mult:g})")


def linear_warmup(after, warmup_steps: int, start_factor: float = 0.0):
    r"""Ramp linearly up to ``after`` for ``warmup_steps`` steps, then follow ``after`` (shifted).

    ``after`` is a number or a schedule; :math:`\eta^\star = ` ``after(0)`` is the target and
    :math:`f` = ``start_factor`` the fraction of it to start from:

    .. math:: \eta_t = \eta^\star\big(f + (1 - f)\,t/W\big) \text{ for } t < W, \qquad \eta_t = \text{after}(t - W) \text{ for } t \ge W.

    Goyal et al. (2017) warm up over 5 epochs for large mini-batches. Checked against
    ``torch.optim.lr_scheduler.LinearLR(start_factor, end_factor=1, total_iters=W)`` (``after`` a
    number) and ``keras.optimizers.schedules.CosineDecay(init, decay_steps, alpha, warmup_target,
    warmup_steps)`` = ``linear_warmup(cosine_decay(warmup_target, decay_steps, alpha), warmup_steps,
    init / warmup_target)``.
    """
    after = _as_schedule(after, "after")
    warmup_steps = check_positive_int("warmup_steps", warmup_steps)
    start_factor = check_in_range("start_factor", start_factor, 0.0, 1.0, high_inclusive=True)

    def schedule(step):
        t = _step(step)
        if t < warmup_steps:
            return after(0) * (start_factor + (1.0 - start_factor) * t / warmup_steps)
        return after(t - warmup_steps)

    return _named(schedule, f"linear_warmup({getattr(after, '__name__', 'schedule')}, {warmup_steps})")


def one_cycle(
    max_value: float,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
):
    r"""The one-cycle policy: up from :math:`\eta_{max}/d` to :math:`\eta_{max}`, then far below the start.

    Phase 1 (the first ``pct_start`` of the steps) anneals from :math:`\eta_{max}/d` to :math:`\eta_{max}`;
    phase 2 anneals down to :math:`\eta_{max}/(d\,d_f)`. With ``anneal_strategy="cos"`` each phase is
    :math:`\eta = \eta_{end} + (\eta_{start} - \eta_{end})\tfrac12(1 + \cos \pi p)`, :math:`p` the
    fraction of the phase done. ``three_phase=True`` comes back to :math:`\eta_{max}/d` symmetrically
    before the final annealing (the paper's shape). Smith & Topin (2019); defaults and phase boundaries
    (at step ``pct_start * total_steps - 1``) as ``torch.optim.lr_scheduler.OneCycleLR``, checked in the
    tests. After ``total_steps`` steps the rate stays at its final value (torch raises instead). Torch
    also cycles the momentum, inversely: :func:`one_cycle_momentum`, given as SGD's ``momentum`` or
    Adam's ``b1``.
    """
    max_value = check_non_negative("max_value", max_value)
    total_steps = check_positive_int("total_steps", total_steps)
    pct_start = _check_pct_start(pct_start)
    div_factor = check_positive("div_factor", div_factor)
    final_div_factor = check_positive("final_div_factor", final_div_factor)
    check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
    initial = max_value / div_factor
    final = initial / final_div_factor
    schedule = _one_cycle_shape(total_steps, pct_start, anneal_strategy, three_phase,
                                (initial, max_value, initial, final) if three_phase else (initial, max_value, final))
    return _named(schedule, f"one_cycle({max_value:g}, {total_steps})")


def one_cycle_momentum(
    total_steps: int,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
):
    r"""The momentum of the one-cycle policy: down while the learning rate goes up, and back.

    From ``max_momentum`` to ``base_momentum`` over the first phase of :func:`one_cycle`, then back to
    ``max_momentum`` (with ``three_phase=True``: back during the second phase, then constant). A large
    rate with a large momentum is unstable; Smith & Topin (2019) lower one while raising the other.
    Give it as ``sgd(momentum=...)`` or ``adam(b1=...)``; checked against
    ``torch.optim.lr_scheduler.OneCycleLR(cycle_momentum=True)`` with SGD and Adam.
    """
    total_steps = check_positive_int("total_steps", total_steps)
    base_momentum = check_in_range("base_momentum", base_momentum, 0.0, 1.0)
    max_momentum = check_in_range("max_momentum", max_momentum, 0.0, 1.0)
    if base_momentum > max_momentum:
        raise ValueError(f"Invalid base_momentum: {base_momentum} (larger than max_momentum={max_momentum})")
    pct_start = _check_pct_start(pct_start)
    check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
    values = (max_momentum, base_momentum, max_momentum, max_momentum) if three_phase else \
        (max_momentum, base_momentum, max_momentum)
    schedule = _one_cycle_shape(total_steps, pct_start, anneal_strategy, three_phase, values)
    return _named(schedule, f"one_cycle_momentum({total_steps})")


def _check_pct_start(pct_start) -> float:
    value = float(pct_start) if isinstance(pct_start, numbers.Real) and not isinstance(pct_start, bool) else pct_start
    if not isinstance(value, float) or not 0.0 < value < 1.0:
        raise ValueError(f"Invalid pct_start: {pct_start} (must be in (0, 1))")
    return value


def _one_cycle_shape(total_steps, pct_start, anneal_strategy, three_phase, values):
    """The piecewise-annealed curve through ``values`` at OneCycleLR's phase boundaries."""
    if three_phase:
        ends = (float(pct_start * total_steps) - 1, float(2 * pct_start * total_steps) - 2, total_steps - 1)
    else:
        ends = (float(pct_start * total_steps) - 1, total_steps - 1)
    phases = [(end, start, stop) for end, start, stop in zip(ends, values[:-1], values[1:])]

    def anneal(start, end, p):
        if anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * p) + 1)
        return (end - start) * p + start

    def schedule(step):
        t = min(_step(step), total_steps - 1)
        start_step = 0.0
        for i, (end_step, start, end) in enumerate(phases):
            if t <= end_step or i == len(phases) - 1:
                span = end_step - start_step
                return anneal(start, end, (t - start_step) / span if span else 1.0)
            start_step = end_step
        raise AssertionError("unreachable")

    return schedule


def polynomial_decay(
    init_value: float, decay_steps: int, end_value: float = 1e-4, power: float = 1.0, *, cycle: bool = False
):
    r"""Decay from :math:`\eta_0` to :math:`\eta_T` along a polynomial of degree ``power``.

    .. math:: \eta_t = (\eta_0 - \eta_T)\,(1 - \min(t, T)/T)^{p} + \eta_T

    With ``cycle=True``, :math:`T` grows to the next multiple of ``decay_steps`` above :math:`t`.
    Checked against ``keras.optimizers.schedules.PolynomialDecay`` (same defaults) and, with
    ``end_value=0``, ``torch.optim.lr_scheduler.PolynomialLR(total_iters=T, power)``; ``power=1``
    with ``end_value`` a fraction of ``init_value`` is ``torch``'s ``LinearLR``.
    """
    init_value = check_non_negative("init_value", init_value)
    decay_steps = check_positive_int("decay_steps", decay_steps)
    end_value = check_non_negative("end_value", end_value)
    power = check_positive("power", power)

    def schedule(step):
        t = _step(step)
        if cycle:
            horizon = decay_steps * max(math.ceil(t / decay_steps), 1)
        else:
            horizon, t = decay_steps, min(t, decay_steps)
        return (init_value - end_value) * (1.0 - t / horizon) ** power + end_value

    return _named(schedule, f"polynomial_decay({init_value:g}, {decay_steps}, power={power:g})")


def lr_range_test(
    model_fn,
    optimizer_fn,
    x,
    y,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    num_steps: int = 100,
    batch_size: int = 64,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    loss_fn=None,
    seed: int = 0,
):
    r"""The learning-rate range test ("LR finder") of Smith (2017).

    Train a fresh model (``model_fn()``) for at most ``num_steps`` mini-batches while the rate grows
    geometrically from ``min_lr`` to ``max_lr``,

    .. math:: \eta_t = \eta_{min}\,(\eta_{max}/\eta_{min})^{t/(N-1)},

    and record the loss, smoothed by a bias-corrected moving average
    (:math:`\bar\ell_t = \beta \bar\ell_{t-1} + (1-\beta)\ell_t`, reported as :math:`\bar\ell_t/(1-\beta^{t+1})`).
    The test stops early once the smoothed loss exceeds ``diverge_factor`` times its minimum.

    ``optimizer_fn(schedule)`` returns a ``companion.optim`` transformation (e.g.
    ``lambda lr: optim.sgd(lr, momentum=0.9)``); it trains the torch model through the
    ``torch.optim`` adapter. ``x, y`` are tensors on the model's device.

    Returns ``(lrs, losses, suggestion)``: the rates and smoothed losses as arrays, and the usual
    suggestion, one tenth of the rate at the smoothed loss' minimum (the minimum itself is already
    at the edge of instability).
    """
    from .training import LambdaCallback, train_classifier

    min_lr = check_positive("min_lr", min_lr)
    max_lr = check_positive("max_lr", max_lr)
    if max_lr <= min_lr:
        raise ValueError(f"Invalid max_lr: {max_lr} (must be > min_lr = {min_lr})")
    num_steps = check_positive_int("num_steps", num_steps)
    if num_steps < 2:
        raise ValueError(f"Invalid num_steps: {num_steps} (must be >= 2)")
    batch_size = check_positive_int("batch_size", batch_size)
    smoothing = check_in_range("smoothing", smoothing, 0.0, 1.0)
    if check_positive("diverge_factor", diverge_factor) <= 1.0:
        raise ValueError(f"Invalid diverge_factor: {diverge_factor} (must be > 1)")
    if not callable(model_fn):
        raise TypeError(f"model_fn must be a callable returning a torch model, got {type(model_fn).__name__}")
    if not callable(optimizer_fn):
        raise TypeError(f"optimizer_fn must be a callable of a schedule, got {type(optimizer_fn).__name__}")
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} vs {len(y)}")

    ratio = max_lr / min_lr

    def schedule(step):
        return min_lr * ratio ** (min(_step(step), num_steps - 1) / (num_steps - 1))

    lrs, losses = [], []
    smoothed_loss = {"average": 0.0, "best": math.inf}

    def record(state):
        if not math.isfinite(state.loss):
            return True
        t = state.step - 1
        smoothed_loss["average"] = smoothing * smoothed_loss["average"] + (1.0 - smoothing) * state.loss
        smoothed = smoothed_loss["average"] / (1.0 - smoothing ** (t + 1))
        lrs.append(schedule(t))
        losses.append(smoothed)
        smoothed_loss["best"] = min(smoothed_loss["best"], smoothed)
        return smoothed > diverge_factor * smoothed_loss["best"]

    # Only full mini-batches, reshuffled at every pass over the data, for as many passes as it takes.
    if batch_size > len(x):
        raise ValueError(f"Invalid batch_size: {batch_size} (larger than the {len(x)} examples)")
    passes = -(-num_steps // (len(x) // batch_size))
    train_classifier(model_fn(), optimizer_fn(schedule), x, y, epochs=passes, max_steps=num_steps,
                     batch_size=batch_size, drop_last=True, loss_fn=loss_fn, seed=seed,
                     callbacks=[LambdaCallback(on_step=record)], progress=False)
    lrs, losses = np.asarray(lrs), np.asarray(losses)
    if len(lrs) == 0:
        raise ValueError(f"the loss was not finite at the first step: lower min_lr ({min_lr})")
    suggestion = float(lrs[int(np.argmin(losses))] / 10.0)
    return lrs, losses, suggestion
