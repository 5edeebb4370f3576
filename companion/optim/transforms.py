r"""Small gradient transformations that chain into every optimizer of Part I.

Each function returns a :class:`~companion.optim.base.GradientTransformation`.
Updates flow through a chain; the last link usually is
:func:`scale_by_learning_rate`, which turns a direction :math:`d_t` into the
step :math:`u_t = -\eta_t d_t`. The step counter :math:`t` starts at 1.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

from .._checks import check_in_range, check_learning_rate, check_non_negative, check_positive
from . import _ops
from ._tree import tree_map
from .base import GradientTransformation

__all__ = [
    "add_decayed_weights",
    "decay_weights",
    "scale",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_ftrl",
    "scale_by_learning_rate",
    "scale_by_nadam",
    "scale_by_rms",
    "scale_by_trust_ratio",
    "trace",
]


def _map(fn, *trees):
    return tree_map(fn, *trees, path="updates")


def _zeros(params):
    return tree_map(_ops.zeros_like, params)


# --- stateless links ---------------------------------------------------------------------------


class EmptyState(NamedTuple):
    pass


def scale(factor: float) -> GradientTransformation:
    r"""Multiply every update by a constant: :math:`u \leftarrow c\,u`."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)):
        raise TypeError(f"factor must be a number, got {type(factor).__name__}")

    def update(updates, state, params=None):
        return _map(lambda u: factor * u, updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    r"""Add the weights to the updates: :math:`u \leftarrow u + \lambda\,\theta`.

    Placed *before* an adaptive scaling this is an L2 penalty (``torch.optim.Adam(weight_decay=...)``);
    placed *after* it, it is decoupled weight decay (AdamW, Loshchilov & Hutter, 2019).
    """
    weight_decay = check_non_negative("weight_decay", weight_decay)

    def update(updates, state, params=None):
        if weight_decay == 0.0:
            return updates, state
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        return _map(lambda u, p: u + weight_decay * p, updates, params), state

    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_trust_ratio() -> GradientTransformation:
    r"""Rescale each tensor's update by its trust ratio (LAMB, You et al., 2020; LARS, You et al., 2017):

    .. math:: u^{(l)} \leftarrow \frac{\lVert \theta^{(l)} \rVert}{\lVert u^{(l)} \rVert}\, u^{(l)}
       \quad\text{for each layer (tensor) } l,

    and unchanged when either norm is 0. Every layer's step then has the size of its weights times
    the learning rate, whatever the scale of its gradients: what lets a very large batch use a large
    learning rate in every layer at once.
    """

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_trust_ratio needs params: call update(grads, state, params)")
        return _map(lambda u, p: u * _ops.trust_ratio(p, u), updates, params), state

    return GradientTransformation(lambda params: EmptyState(), update)


# --- learning rate -------------------------------------------------------------------------------


class ScaleByLearningRateState(NamedTuple):
    count: Any  # steps taken so far


def scale_by_learning_rate(learning_rate) -> GradientTransformation:
    r"""Turn a direction into a step: :math:`u_t = -\eta_t\,d_t`.

    ``learning_rate`` is a number or a schedule, a callable of the step count (0, 1, 2, ...).
    """
    learning_rate = check_learning_rate(learning_rate)

    def update(updates, state, params=None):
        lr = _ops.schedule_value(learning_rate, state.count) if callable(learning_rate) else learning_rate
        if callable(learning_rate) and isinstance(lr, numbers.Real) and not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"Invalid learning_rate: the schedule returned {lr} at step {state.count} "
                             "(a learning rate must be finite and >= 0)")
        return (_map(lambda u: _ops.scale_array(u, _ops.cast_like(-lr, u)), updates),
                ScaleByLearningRateState(state.count + 1))

    return GradientTransformation(lambda params: ScaleByLearningRateState(0), update)


class DecayWeightsState(NamedTuple):
    count: Any  # steps taken so far


def decay_weights(weight_decay: float, learning_rate) -> GradientTransformation:
    r"""Keras' decoupled weight decay, as the last link of a chain: :math:`u_t \leftarrow u_t - \eta_t\lambda\,\theta_t`.

    Keras applies ``weight_decay`` to every optimizer the same way, outside its update rule:
    :math:`\theta \leftarrow \theta - \eta_t\lambda\,\theta` before the step (Loshchilov & Hutter,
    2019). The update rules of Part I do not read the weights, so adding :math:`-\eta_t\lambda\theta_t`
    to their step is the same. ``learning_rate`` is the chain's (a number or a schedule of the step);
    checked against ``keras.optimizers`` with ``weight_decay`` set.
    """
    weight_decay = check_non_negative("weight_decay", weight_decay)
    learning_rate = check_learning_rate(learning_rate)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("decay_weights needs params: call update(grads, state, params)")
        lr = _ops.schedule_value(learning_rate, state.count) if callable(learning_rate) else learning_rate
        factor = -lr * weight_decay
        return (_map(lambda u, p: u + _ops.cast_like(factor, u) * p, updates, params),
                DecayWeightsState(state.count + 1))

    return GradientTransformation(lambda params: DecayWeightsState(0), update)


# --- momentum ------------------------------------------------------------------------------------


class TraceState(NamedTuple):
    momentum: Any


class ScheduledTraceState(NamedTuple):
    count: Any  # steps taken so far
    momentum: Any


def _scheduled(name: str, value, high_inclusive: bool = False):
    """A hyperparameter that may be a schedule of the step (a callable) or a number in [0, 1)."""
    if callable(value):
        def at(step):
            v = _ops.schedule_value(value, step)
            if isinstance(v, numbers.Real) and not (0.0 <= v < 1.0 or (high_inclusive and v == 1.0)):
                raise ValueError(f"Invalid {name}: the schedule returned {v} at step {step} (must be in [0, 1))")
            return v

        return at
    return check_in_range(name, value, 0.0, 1.0, high_inclusive=high_inclusive)


class DampedTraceState(NamedTuple):
    count: Any
    momentum: Any


def trace(decay: float, nesterov: bool = False, dampening: float = 0.0) -> GradientTransformation:
    r"""Momentum (Polyak, 1964) and Nesterov's look-ahead form (Sutskever et al., 2013).

    .. math::
        m_t = \mu\,m_{t-1} + g_t, \qquad
        d_t = m_t \ \text{(heavy ball)} \quad\text{or}\quad d_t = g_t + \mu\,m_t \ \text{(Nesterov)}.

    Put before :func:`scale_by_learning_rate` it is PyTorch's SGD; put after it (the buffer then
    holds :math:`-\eta g`) it is Keras' SGD. Both agree at a constant learning rate.

    ``dampening`` :math:`\tau` is PyTorch's: :math:`m_t = \mu m_{t-1} + (1-\tau) g_t` from the second
    step on, with :math:`m_1 = g_1` (the buffer starts as the first gradient, undamped).

    ``decay`` may be a schedule of the step (:math:`\mu_t`, e.g. :func:`companion.schedules.one_cycle_momentum`),
    as PyTorch's ``OneCycleLR`` cycles the momentum.
    """
    if callable(decay):
        if dampening:
            raise ValueError("Invalid dampening: not with a momentum schedule (use dampening=0)")
        momentum_at = _scheduled("momentum", decay)

        def scheduled_update(updates, state, params=None):
            mu = momentum_at(state.count)
            momentum = _map(lambda g, m: _ops.cast_like(mu, g) * m + g, updates, state.momentum)
            if nesterov:
                updates = _map(lambda g, m: g + _ops.cast_like(mu, g) * m, updates, momentum)
            else:
                updates = momentum
            return updates, ScheduledTraceState(state.count + 1, momentum)

        return GradientTransformation(lambda params: ScheduledTraceState(0, _zeros(params)), scheduled_update)
    decay = check_in_range("momentum", decay, 0.0, 1.0)
    dampening = check_in_range("dampening", dampening, 0.0, 1.0, high_inclusive=True)
    if nesterov and decay == 0.0:
        raise ValueError("Nesterov momentum requires a momentum > 0")
    if nesterov and dampening:
        raise ValueError(f"Invalid dampening: {dampening} (Nesterov momentum requires dampening = 0, as in torch)")
    if dampening:
        def damped_update(updates, state, params=None):
            if state.count == 0:
                momentum = _map(lambda g: 1.0 * g, updates)
            else:
                momentum = _map(lambda g, m: decay * m + (1.0 - dampening) * g, updates, state.momentum)
            return momentum, DampedTraceState(state.count + 1, momentum)

        return GradientTransformation(lambda params: DampedTraceState(0, _zeros(params)), damped_update)

    def update(updates, state, params=None):
        momentum = _map(lambda g, m: decay * m + g, updates, state.momentum)
        if nesterov:
            updates = _map(lambda g, m: g + decay * m, updates, momentum)
        else:
            updates = momentum
        return updates, TraceState(momentum)

    return GradientTransformation(lambda params: TraceState(_zeros(params)), update)


# --- adaptive scalings ---------------------------------------------------------------------------


class ScaleByAdagradState(NamedTuple):
    sum_of_squares: Any


def scale_by_adagrad(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10, eps_inside_sqrt: bool = False
) -> GradientTransformation:
    r"""AdaGrad (Duchi, Hazan & Singer, 2011): divide by the root of all past squared gradients.

    .. math:: s_t = s_{t-1} + g_t^2, \qquad d_t = \frac{g_t}{\sqrt{s_t} + \epsilon}
       \quad\text{(torch)}\quad\text{or}\quad d_t = \frac{g_t}{\sqrt{s_t + \epsilon}} \quad\text{(Keras)}.

    torch starts :math:`s_0 = 0`, Keras :math:`s_0 = 0.1`.
    """
    initial = check_non_negative("initial_accumulator_value", initial_accumulator_value)
    eps = check_non_negative("eps", eps)

    def init(params):
        return ScaleByAdagradState(tree_map(lambda p: _ops.full_like(p, initial), params))

    def update(updates, state, params=None):
        sums = _map(lambda g, s: s + g * g, updates, state.sum_of_squares)
        if eps_inside_sqrt:
            updates = _map(lambda g, s: g / _ops.sqrt(s + eps), updates, sums)
        else:
            updates = _map(lambda g, s: g / (_ops.sqrt(s) + eps), updates, sums)
        return updates, ScaleByAdagradState(sums)

    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    mean_square: Any
    mean: Any  # running mean of the gradients (centered variant), else None


def scale_by_rms(
    decay: float = 0.99, eps: float = 1e-8, eps_inside_sqrt: bool = False, centered: bool = False
) -> GradientTransformation:
    r"""RMSProp (Tieleman & Hinton, 2012): divide by a running root mean square of the gradients.

    .. math:: v_t = \rho\,v_{t-1} + (1-\rho)\,g_t^2, \qquad d_t = \frac{g_t}{\sqrt{v_t} + \epsilon}
       \quad\text{(torch)}\quad\text{or}\quad \frac{g_t}{\sqrt{v_t + \epsilon}} \quad\text{(Keras)}.

    ``centered`` subtracts the squared running mean of :math:`g` from :math:`v_t` (a variance estimate).
    """
    decay = check_in_range("decay", decay, 0.0, 1.0)
    eps = check_non_negative("eps", eps)

    def init(params):
        return ScaleByRmsState(_zeros(params), _zeros(params) if centered else None)

    def update(updates, state, params=None):
        mean_square = _map(lambda g, v: _ops.moving_average_of_squares(v, g, decay), updates, state.mean_square)
        mean = None
        variance = mean_square
        if centered:
            mean = _map(lambda g, m: decay * m + (1.0 - decay) * g, updates, state.mean)
            variance = _map(lambda v, m: v - m * m, mean_square, mean)
        if eps_inside_sqrt:
            updates = _map(lambda g, v: g / _ops.sqrt(v + eps), updates, variance)
        else:
            updates = _map(lambda g, v: g / (_ops.sqrt(v) + eps), updates, variance)
        return updates, ScaleByRmsState(mean_square, mean)

    return GradientTransformation(init, update)


class ScaleByAdadeltaState(NamedTuple):
    mean_square_grad: Any
    mean_square_delta: Any


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation:
    r"""AdaDelta (Zeiler, 2012): a step whose units match the parameters.

    .. math::
        v_t = \rho v_{t-1} + (1-\rho) g_t^2, \quad
        d_t = \frac{\sqrt{s_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t, \quad
        s_t = \rho s_{t-1} + (1-\rho) d_t^2.
    """
    rho = check_in_range("rho", rho, 0.0, 1.0)
    eps = check_non_negative("eps", eps)

    def init(params):
        return ScaleByAdadeltaState(_zeros(params), _zeros(params))

    def update(updates, state, params=None):
        grad_sq = _map(lambda g, v: _ops.moving_average_of_squares(v, g, rho), updates, state.mean_square_grad)
        deltas = _map(
            lambda g, v, s: _ops.sqrt(s + eps) / _ops.sqrt(v + eps) * g, updates, grad_sq, state.mean_square_delta
        )
        delta_sq = _map(lambda d, s: _ops.moving_average_of_squares(s, d, rho), deltas, state.mean_square_delta)
        return deltas, ScaleByAdadeltaState(grad_sq, delta_sq)

    return GradientTransformation(init, update)


class ScaleByAdamState(NamedTuple):
    count: Any
    mu: Any  # first moment m
    nu: Any  # second moment v


class ScaleByAMSGradState(NamedTuple):
    count: Any
    mu: Any  # first moment m
    nu: Any  # second moment v
    nu_max: Any  # the largest v so far, element by element


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_hat: bool = False,
    bias_correction: bool = True,
    amsgrad: bool = False,
) -> GradientTransformation:
    r"""Adam (Kingma & Ba, 2015): momentum divided by a running RMS, both bias-corrected.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,
        \quad \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t},
        \quad d_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.

    ``eps_hat=True`` is the form of the paper's section 2 that Keras uses,
    :math:`d_t = \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m_t}{\sqrt{v_t} + \hat\epsilon}`: the
    same up to where :math:`\epsilon` sits. ``bias_correction=False`` shows why the corrections exist:
    early steps are then too large by the factor :math:`(1-\beta_1^t)/\sqrt{1-\beta_2^t}`
    (3.16 at :math:`t=1` with the defaults).

    ``amsgrad=True`` is AMSGrad (Reddi et al., 2018): the denominator uses the running maximum
    :math:`v^{\max}_t = \max(v^{\max}_{t-1}, v_t)` in place of :math:`v_t` (bias-corrected the same way), so
    the step can never grow because :math:`v_t` shrank; as ``torch.optim.Adam(amsgrad=True)`` and
    ``keras.optimizers.Adam(amsgrad=True)`` do.

    ``b1`` may be a schedule of the step, :math:`\beta_{1,t}` (PyTorch's ``OneCycleLR`` cycles it); the
    bias correction then uses the current value, :math:`1 - \beta_{1,t}^t`, as ``torch.optim.Adam`` does.
    """
    b1_at = _scheduled("beta_1", b1)
    b2 = check_in_range("beta_2", b2, 0.0, 1.0)
    eps = check_non_negative("eps", eps)
    if not isinstance(amsgrad, bool):
        raise TypeError(f"amsgrad must be True or False, got {amsgrad!r}")

    def init(params):
        if amsgrad:
            return ScaleByAMSGradState(0, _zeros(params), _zeros(params), _zeros(params))
        return ScaleByAdamState(0, _zeros(params), _zeros(params))

    def update(updates, state, params=None):
        t = state.count + 1
        b1 = b1_at(state.count) if callable(b1_at) else b1_at
        mu = _map(lambda g, m: _ops.moving_average(m, g, b1), updates, state.mu)
        nu = _map(lambda g, v: _ops.moving_average_of_squares(v, g, b2), updates, state.nu)
        nu_max = _map(_ops.maximum, state.nu_max, nu) if amsgrad else None
        denominator_moment = nu_max if amsgrad else nu
        if not bias_correction:
            updates = _map(lambda m, v: m / (_ops.sqrt(v) + eps), mu, denominator_moment)
        elif eps_hat:
            step = (1.0 - b2**t) ** 0.5 / (1.0 - b1**t)
            updates = _map(lambda m, v: step * m / (_ops.sqrt(v) + eps), mu, denominator_moment)
        else:
            correction1, root_correction2 = 1.0 - b1**t, (1.0 - b2**t) ** 0.5

            # m_hat / (sqrt(v_hat) + eps) = (sqrt(1-b2^t) / (1-b1^t)) * m / (sqrt(v) + eps sqrt(1-b2^t)):
            # one pass less over the arrays.
            step_size, scaled_eps = root_correction2 / correction1, eps * root_correction2

            def direction(m, v):
                if not _ops.in_place_allowed():
                    return step_size * m / (_ops.sqrt(v) + scaled_eps)
                denominator = _ops.sqrt(v)  # inside the torch adapter: reuse the temporaries' memory
                denominator += scaled_eps
                step = _ops.divide_reusing(m, denominator)
                step *= step_size
                return step

            updates = _map(direction, mu, denominator_moment)
        if amsgrad:
            return updates, ScaleByAMSGradState(t, mu, nu, nu_max)
        return updates, ScaleByAdamState(t, mu, nu)

    return GradientTransformation(init, update)


class ScaleByAdamaxState(NamedTuple):
    count: Any
    mu: Any
    max_norm: Any  # u_t, an exponentially weighted infinity norm


def scale_by_adamax(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_in_max: bool = True
) -> GradientTransformation:
    r"""Adamax (Kingma & Ba, 2015, section 7): Adam with the infinity norm.

    .. math:: m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
       u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \quad d_t = \frac{m_t}{(1-\beta_1^t)\,u_t}

    (torch). Keras takes :math:`u_t = \max(\beta_2 u_{t-1}, |g_t|)` and divides by :math:`u_t + \epsilon`.
    """
    b1 = check_in_range("beta_1", b1, 0.0, 1.0)
    b2 = check_in_range("beta_2", b2, 0.0, 1.0)
    eps = check_non_negative("eps", eps)

    def init(params):
        return ScaleByAdamaxState(0, _zeros(params), _zeros(params))

    def update(updates, state, params=None):
        t = state.count + 1
        mu = _map(lambda g, m: _ops.moving_average(m, g, b1), updates, state.mu)
        correction1 = 1.0 - b1**t
        if eps_in_max:
            u = _map(lambda g, n: _ops.maximum(b2 * n, abs(g) + eps), updates, state.max_norm)
            updates = _map(lambda m, n: m / (correction1 * n), mu, u)
        else:
            u = _map(lambda g, n: _ops.maximum(b2 * n, abs(g)), updates, state.max_norm)
            updates = _map(lambda m, n: m / (correction1 * (n + eps)), mu, u)
        return updates, ScaleByAdamaxState(t, mu, u)

    return GradientTransformation(init, update)


class ScaleByNadamState(NamedTuple):
    count: Any
    mu_product: Any  # product of the momentum coefficients mu_1 ... mu_t
    mu: Any
    nu: Any


def scale_by_nadam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, momentum_decay: float = 4e-3, *,
    schedule_base: float = 0.96,
) -> GradientTransformation:
    r"""Nadam (Dozat, 2016): Adam with Nesterov's look-ahead and a warming momentum schedule.

    .. math::
        \mu_t = \beta_1\bigl(1 - \tfrac12\, 0.96^{t\,\psi}\bigr), \quad
        d_t = \left(\frac{\mu_{t+1}\, m_t}{1-\prod_{i\le t+1}\mu_i}
            + \frac{(1-\mu_t)\, g_t}{1-\prod_{i\le t}\mu_i}\right)
            \Big/ \left(\sqrt{\tfrac{v_t}{1-\beta_2^t}} + \epsilon\right)

    with :math:`m_t, v_t` as in Adam. torch uses :math:`\psi` = ``momentum_decay`` = 0.004; Keras
    hard-codes :math:`0.96^t`, that is :math:`\psi = 1`. ``schedule_base`` is the 0.96 of
    :math:`\mu_t` and :math:`\mu_{t+1}` in the fraction (the running product always uses 0.96):
    Keras computes those two with 0.96 rounded to float32 (``ops.cast(0.96, dtype)`` converts the
    Python number through a float32 tensor), 0.9599999785..., which ``nadam(convention="keras")``
    passes here so that the two agree to the last bit.
    """
    b1 = check_in_range("beta_1", b1, 0.0, 1.0)
    b2 = check_in_range("beta_2", b2, 0.0, 1.0)
    eps = check_non_negative("eps", eps)
    momentum_decay = check_non_negative("momentum_decay", momentum_decay)
    schedule_base = check_in_range("schedule_base", schedule_base, 0.0, 1.0)

    def init(params):
        return ScaleByNadamState(0, 1.0, _zeros(params), _zeros(params))

    def update(updates, state, params=None):
        t = state.count + 1
        mu_t = b1 * (1.0 - 0.5 * schedule_base ** (t * momentum_decay))
        mu_next = b1 * (1.0 - 0.5 * schedule_base ** ((t + 1) * momentum_decay))
        product_factor = b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_product = state.mu_product * product_factor
        correction2 = 1.0 - b2**t
        mu = _map(lambda g, m: _ops.moving_average(m, g, b1), updates, state.mu)
        nu = _map(lambda g, v: _ops.moving_average_of_squares(v, g, b2), updates, state.nu)
        grad_weight = (1.0 - mu_t) / (1.0 - mu_product)
        momentum_weight = mu_next / (1.0 - mu_product * mu_next)
        updates = _map(
            lambda g, m, v: (grad_weight * g + momentum_weight * m) / (_ops.sqrt(v / correction2) + eps),
            updates,
            mu,
            nu,
        )
        return updates, ScaleByNadamState(t, mu_product, mu, nu)

    return GradientTransformation(init, update)


class ScaleByFtrlState(NamedTuple):
    accumulator: Any  # n_t, the sum of squared gradients
    linear: Any  # z_t


def scale_by_ftrl(
    learning_rate: float = 0.001,
    learning_rate_power: float = -0.5,
    initial_accumulator_value: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    l2_shrinkage: float = 0.0,
    beta: float = 0.0,
) -> GradientTransformation:
    r"""FTRL-Proximal (McMahan et al., 2013), in the form of ``keras.optimizers.Ftrl``.

    With :math:`c = -` ``learning_rate_power`` (1/2 in the paper) and :math:`\sigma_t = (n_t^{c} - n_{t-1}^{c})/\eta`:

    .. math::
        n_t = n_{t-1} + g_t^2, \quad z_t = z_{t-1} + g_t - \sigma_t\,\theta_t, \quad
        \theta_{t+1} = \frac{\operatorname{clip}(z_t, -\lambda_1, \lambda_1) - z_t}{n_t^{c}/\eta + 2\lambda_2}

    (a closed-form proximal step that sets weights with :math:`|z_t| \le \lambda_1` exactly to zero).
    FTRL sets the weights rather than stepping them, so this transformation needs ``params`` and
    returns :math:`u_t = \theta_{t+1} - \theta_t`; it already contains the learning rate.
    """
    learning_rate = check_positive("learning_rate", learning_rate)
    if learning_rate_power > 0:
        raise ValueError(f"Invalid learning_rate_power: {learning_rate_power} (must be <= 0)")
    initial = check_non_negative("initial_accumulator_value", initial_accumulator_value)
    l1 = check_non_negative("l1", l1)
    l2 = check_non_negative("l2", l2)
    l2_shrinkage = check_non_negative("l2_shrinkage", l2_shrinkage)
    beta = check_non_negative("beta", beta)
    power = -learning_rate_power
    l2_total = l2 + beta / (2.0 * learning_rate)

    def init(params):
        return ScaleByFtrlState(tree_map(lambda p: _ops.full_like(p, initial), params), _zeros(params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_ftrl needs params: call update(grads, state, params)")
        new_acc = _map(lambda g, n: n + g * g, updates, state.accumulator)
        linear = _map(
            lambda g, p, z, n, n_new: z + (g + 2.0 * l2_shrinkage * p) - (n_new**power - n**power) / learning_rate * p,
            updates,
            params,
            state.linear,
            state.accumulator,
            new_acc,
        )

        def new_minus_old(z, n_new, p):
            quadratic = n_new**power / learning_rate + 2.0 * l2_total
            return (_ops.clip(z, -l1, l1) - z) / quadratic - p

        updates = _map(new_minus_old, linear, new_acc, params)
        return updates, ScaleByFtrlState(new_acc, linear)

    return GradientTransformation(init, update)
