r"""Schedule-Free AdamW (Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, 2024, "The Road Less Scheduled").

A learning-rate schedule that decays to zero at the last step works well, but it must know the last
step in advance. Schedule-Free learning keeps a constant learning rate and replaces the decay by an
*average*. Three sequences share one gradient per step:

* :math:`z_t`, the base sequence: plain (Adam-scaled) gradient steps at a constant rate;
* :math:`x_t`, the running average of the :math:`z`'s: the weights to evaluate and ship;
* :math:`y_t = (1-\beta_1)\,z_t + \beta_1\,x_t`, between the two: where the gradient is taken, so
  these are the weights the model trains with (:math:`\beta_1` plays the part of momentum).

.. math::
    v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad g_t = \nabla f(y_{t-1}),

    z_t = z_{t-1} - \gamma_t\, \frac{g_t}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}, \qquad
    x_t = (1 - c_t)\, x_{t-1} + c_t\, z_t, \qquad
    y_t = (1-\beta_1)\, z_t + \beta_1\, x_t,

with :math:`z_0 = x_0 = y_0` (the initial weights), :math:`\gamma_t = \eta\,\min(t/T_\text{warmup}, 1)`
and, in Keras, :math:`c_t = 1/t`: :math:`x_t` is the plain mean of :math:`z_1, \dots, z_t`.

Why no schedule: a decaying rate damps the noise of the last steps; the mean of all the
:math:`z`'s damps it too (the noise of :math:`t` steps averages out as :math:`1/\sqrt{t}`), and a
mean needs no end date. Taking the gradient at :math:`y`, near the mean, keeps the steps of
:math:`z` relevant to where the model actually is.

The functional form here returns :math:`u_t = y_t - y_{t-1}`, since the model's parameters are
:math:`y`; the state holds :math:`z` and :math:`x`. Evaluate at :math:`x`, read with
:func:`schedule_free_eval_params` (Keras' ``model.evaluate`` tests the training weights :math:`y`).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from .._checks import check_choice, check_in_range, check_learning_rate, check_non_negative, check_non_negative_int
from . import _ops
from ._tree import tree_map
from .aliases import _with_gradient_checks
from .base import GradientTransformation

__all__ = [
    "SCHEDULE_FREE_DEFAULTS",
    "ScheduleFreeAdamState",
    "scale_by_schedule_free_adam",
    "schedule_free_adamw",
    "schedule_free_eval_params",
]

#: ``keras.optimizers.ScheduleFreeAdamW``'s defaults (torch.optim ships no Schedule-Free optimizer).
SCHEDULE_FREE_DEFAULTS = {"keras": dict(learning_rate=0.0025, eps=1e-8, weight_decay=0.0)}


class ScheduleFreeAdamState(NamedTuple):
    count: Any  # steps taken so far
    z: Any  # the base sequence, where the gradient steps land (Keras calls it "momentum")
    x: Any  # the average of the z's: the weights to evaluate
    nu: Any  # Adam's second moment v


def _copy(p):
    kind = _ops._library(p)
    if kind == "torch":
        return p.detach().clone()
    if kind == "numpy":
        return np.array(p, copy=True)
    return _ops._keras_ops().copy(p)


def _at_most_one(value):
    """``min(value, 1)``, also for the step count of a compiled Keras step (a tensor)."""
    if isinstance(value, numbers.Real):
        return min(value, 1.0)
    return _ops._keras_ops().minimum(value, 1.0)


def scale_by_schedule_free_adam(
    learning_rate=0.0025, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, warmup_steps: int = 0,
    weight_decay: float = 0.0, x_from_updated_z: bool = False,
) -> GradientTransformation:
    r"""Schedule-Free Adam's step, as ``keras.optimizers.ScheduleFreeAdamW`` means it (rule in the module docstring).

    Like :func:`.transforms.scale_by_ftrl` it sets the weights rather than scaling a direction, so it
    holds the learning rate :math:`\eta` (a number or a schedule of the step) and needs ``params``
    (:math:`y_{t-1}`); it returns :math:`y_t - y_{t-1}`. The state keeps :math:`z` and :math:`x`
    apart; Keras (and the authors' fast code) store only :math:`z` and recover
    :math:`x = (y - (1-\beta_1) z)/\beta_1`, one array less.

    ``warmup_steps`` :math:`T`: the rate of the :math:`z` step ramps up, :math:`\gamma_t = \eta\min(t/T, 1)`;
    Keras keeps the averaging weight :math:`c_t = 1/t`, so the small warmup steps count fully in
    the average. (The authors' code weights :math:`z_t` by the largest rate so far, squared, so they
    count less, and multiplies the rate by :math:`\sqrt{1-\beta_2^t}` instead of dividing :math:`v`.)

    ``weight_decay`` :math:`\lambda`, as Keras applies it to every optimizer: before the step,
    :math:`y \leftarrow y - \eta\lambda\,y` with the rate *without* warmup, :math:`z` left alone.
    Since :math:`y = (1-\beta_1) z + \beta_1 x`, the decay lands on the average:
    :math:`x \leftarrow x - (\eta\lambda/\beta_1)\, y`. (The authors' code evaluates the decay
    at :math:`y` too but subtracts :math:`\gamma_t\lambda y` from :math:`z`.)

    ``x_from_updated_z=True`` reproduces ``keras.optimizers.ScheduleFreeAdamW`` as Keras 3.15 runs it
    on the TensorFlow and torch backends: it recovers :math:`x_{t-1}` from :math:`y_{t-1}` and the
    *new* :math:`z_t` (its ``momentum.value`` still points at the variable it updates in place), so
    :math:`x_{t-1}` is first pushed by :math:`\tfrac{1-\beta_1}{\beta_1}(z_{t-1} - z_t)`, against
    the step; :math:`y` then moves by only :math:`1/t` of the :math:`z` step. The default, ``False``,
    is the rule the Keras code states, and what Keras computes on JAX (``stateless_apply``).
    """
    learning_rate = check_learning_rate(learning_rate)
    b1 = check_in_range("beta_1", b1, 0.0, 1.0)
    b2 = check_in_range("beta_2", b2, 0.0, 1.0)
    eps = check_non_negative("eps", eps)
    warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
    weight_decay = check_non_negative("weight_decay", weight_decay)
    if not isinstance(x_from_updated_z, bool):
        raise TypeError(f"x_from_updated_z must be True or False, got {x_from_updated_z!r}")
    if b1 == 0.0 and (weight_decay or x_from_updated_z):  # both reach x through a division by beta_1, as in Keras
        raise ValueError("Invalid beta_1: 0.0 (must be > 0 with weight_decay or x_from_updated_z)")

    def init(params):
        return ScheduleFreeAdamState(0, tree_map(_copy, params), tree_map(_copy, params),
                                     tree_map(_ops.zeros_like, params))

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("scale_by_schedule_free_adam needs params: call update(grads, state, params)")
        t = state.count + 1
        lr = _ops.schedule_value(learning_rate, state.count) if callable(learning_rate) else learning_rate
        x = state.x
        if weight_decay:  # Keras shrinks y with z fixed; y = (1-b1) z + b1 x, so x takes it all, over b1
            x = tree_map(lambda x, y: x - _ops.cast_like(lr * weight_decay / b1, y) * y, x, params)
        gamma = lr * _at_most_one(t / warmup_steps) if warmup_steps else lr
        correction2 = 1.0 - b2**t
        nu = tree_map(lambda g, v: _ops.moving_average_of_squares(v, g, b2), grads, state.nu, path="grads")
        z = tree_map(lambda z, g, v: z - _ops.cast_like(gamma, g) * g / (_ops.sqrt(v / correction2) + eps),
                     state.z, grads, nu)
        if x_from_updated_z:  # Keras 3.15 on TF/torch: x_{t-1} = (y_{t-1} - (1-b1) z_t) / b1, with the new z
            x = tree_map(lambda x, z_old, z: x + ((1.0 - b1) / b1) * (z_old - z), x, state.z, z)
        c = 1.0 / t  # x_t is the plain mean of z_1 ... z_t
        x = tree_map(lambda x, z: (1.0 - _ops.cast_like(c, z)) * x + _ops.cast_like(c, z) * z, x, z)
        updates = tree_map(lambda z, x, y: (1.0 - b1) * z + b1 * x - y, z, x, params)
        return updates, ScheduleFreeAdamState(t, z, x, nu)

    return GradientTransformation(init, update)


def schedule_free_eval_params(state):
    r"""The weights to evaluate and ship, :math:`x_t`, from the state of :func:`schedule_free_adamw`.

    The model trains at :math:`y_t`; test it at :math:`x_t`. ``state`` is the alias's state (or any
    chain state holding one :class:`ScheduleFreeAdamState`); with the torch adapter it is
    ``opt.state_dict()["transformation_state"]``. The arrays are the state's own: copy them before
    changing them in place, e.g. ``p.copy_(x)`` into a model kept for evaluation. (Keras'
    ``ScheduleFreeAdamW`` keeps no :math:`x`; it is :math:`(y - (1-\beta_1) z)/\beta_1` from its
    ``momentum`` variables, and ``model.evaluate`` tests :math:`y`.)
    """
    found = _find_state(state)
    if len(found) != 1:
        raise ValueError(f"state must hold one ScheduleFreeAdamState (from schedule_free_adamw), found {len(found)}")
    return found[0].x


def _find_state(state) -> list:
    if isinstance(state, ScheduleFreeAdamState):
        return [state]
    if isinstance(state, (list, tuple)):
        return [s for child in state for s in _find_state(child)]
    return []


def schedule_free_adamw(
    learning_rate=None, b1: float = 0.9, b2: float = 0.999, eps=None, warmup_steps: int = 0, weight_decay=None,
    convention: str = "keras", x_from_updated_z: bool = False,
) -> GradientTransformation:
    r"""Schedule-Free AdamW (Defazio et al., 2024) as ``keras.optimizers.ScheduleFreeAdamW``: no schedule needed.

    The rule is in the module docstring and :func:`scale_by_schedule_free_adam` (warmup, weight decay,
    and ``x_from_updated_z``, the Keras 3.15 TensorFlow/torch behaviour). Defaults are Keras':
    :math:`\eta = 0.0025, \epsilon = 10^{-8}`, no weight decay. torch.optim has no Schedule-Free
    optimizer (the authors' PyTorch code is the ``schedulefree`` package), so ``convention`` is
    ``"keras"`` only. The alias is that single transformation with gradient checks: its state is a
    :class:`ScheduleFreeAdamState`, and :func:`schedule_free_eval_params` reads :math:`x` from it.

    Checked in the tests over 200 float64 steps (defaults, warmup, other betas, weight decay):
    with ``x_from_updated_z=True`` against ``keras.optimizers.ScheduleFreeAdamW.apply_gradients``
    (TensorFlow backend), :math:`x` included; by default against its ``stateless_apply`` on the
    torch backend, the path Keras takes on JAX.
    """
    if convention == "torch":
        raise ValueError("Invalid convention: 'torch' (torch.optim has no Schedule-Free optimizer; the authors' "
                         "PyTorch code is the separate `schedulefree` package). Use convention='keras'.")
    check_choice("convention", convention, tuple(SCHEDULE_FREE_DEFAULTS))
    defaults = SCHEDULE_FREE_DEFAULTS[convention]
    given = dict(learning_rate=learning_rate, eps=eps, weight_decay=weight_decay)
    s = {key: defaults[key] if value is None else value for key, value in given.items()}
    return _with_gradient_checks(scale_by_schedule_free_adam(
        s["learning_rate"], b1, b2, s["eps"], warmup_steps, s["weight_decay"], x_from_updated_z))
