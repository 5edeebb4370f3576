r"""Adafactor (Shazeer & Stern, 2018): Adam's second moment in sublinear memory, and steps relative to the weights.

For an :math:`n \times m` weight matrix Adafactor keeps the running means of :math:`g^2` over its rows
and over its columns, :math:`n + m` numbers instead of Adam's :math:`2nm`, and rebuilds the second
moment as their (rank-one) outer product. It has no first moment. Its step is relative to the size of
the weights, :math:`\max(\epsilon_2, \mathrm{RMS}(\theta))`, and capped by a decaying
:math:`1/\sqrt t`; updates whose RMS exceeds :math:`d` are scaled down to it. (``torch.optim.Adafactor`` also
keeps :math:`n + m` numbers; ``keras.optimizers.Adafactor`` keeps the rebuilt :math:`nm` as well.)

``adafactor(convention="torch")`` is ``torch.optim.Adafactor`` and ``adafactor(convention="keras")``
is ``keras.optimizers.Adafactor``; the tests check each against its framework over 200 float64 steps.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .._checks import check_choice, check_in_range, check_learning_rate, check_non_negative, check_positive
from . import _ops
from ._tree import tree_leaves, tree_map
from .aliases import _with_gradient_checks
from .base import GradientTransformation, chain
from .transforms import decay_weights, scale, scale_by_learning_rate

__all__ = ["ADAFACTOR_DEFAULTS", "adafactor", "scale_by_adafactor"]

CONVENTIONS = ("torch", "keras")

#: The frameworks' documented defaults. torch's ``eps1=None`` is the machine epsilon of each parameter's
#: dtype (2.2e-16 in float64, 1.2e-7 in float32); Keras' weight_decay=None is no decay.
ADAFACTOR_DEFAULTS = {
    "torch": dict(learning_rate=1e-2, beta2_decay=-0.8, eps1=None, eps2=1e-3, clip_threshold=1.0, weight_decay=0.0),
    "keras": dict(learning_rate=1e-3, beta2_decay=-0.8, eps1=1e-30, eps2=1e-3, clip_threshold=1.0, weight_decay=0.0),
}


# --- element-wise helpers that _ops does not have (dispatching on the library as _ops does) ---------


def _mean(x, axis=None, keepdims=False):
    kind = _ops._library(x)
    if kind == "torch":
        return x.mean() if axis is None else x.mean(dim=axis, keepdim=keepdims)
    if kind == "numpy":
        return np.mean(x, axis=axis, keepdims=keepdims)
    return _ops._keras_ops().mean(x, axis=axis, keepdims=keepdims)


def _at_least(x, floor):
    kind = _ops._library(x)
    if kind == "torch":
        return x.clamp(min=floor)
    if kind == "numpy":
        return np.maximum(x, floor)
    return _ops._keras_ops().maximum(x, floor)


def _rms(x):
    return _ops.sqrt(_mean(x * x))


def _lerp(average, value, weight):
    """:math:`a + w (v - a)`, the running mean with :math:`1 - \\beta = w` (``torch.lerp`` for torch tensors)."""
    if _ops._library(average) == "torch":
        import torch

        return torch.lerp(average, value, weight)
    return average + weight * (value - average)


def _machine_eps(x) -> float:
    kind = _ops._library(x)
    if kind == "torch":
        import torch

        return torch.finfo(x.dtype).eps
    if kind == "numpy":
        return float(np.finfo(np.asarray(x).dtype).eps)
    from keras import backend

    return float(np.finfo(backend.standardize_dtype(x.dtype)).eps)


# --- the factored second moment --------------------------------------------------------------------


class ScaleByAdafactorState(NamedTuple):
    count: Any  # steps taken so far
    # One entry per parameter, in tree_leaves order (a flat list: the factors' shapes differ from the gradient's).
    rows: list  # running mean of g^2 over the last axis, shape (..., n, 1); None where not factored
    cols: list  # running mean of g^2 over the second-to-last axis, shape (..., 1, m); None where not factored
    full: list  # running mean of g^2 for vectors and scalars; None for factored parameters


def scale_by_adafactor(
    beta2_decay: float = -0.8, eps1=None, clip_threshold: float = 1.0, eps1_in_squares: bool = False
) -> GradientTransformation:
    r"""Adafactor's direction (Shazeer & Stern, 2018): the gradient over a factored RMS, clipped by its own RMS.

    With :math:`\beta_{2,t} = 1 - t^{c}` (:math:`c` = ``beta2_decay`` :math:`\le 0`; the first step
    takes :math:`g_1^2` alone), for a parameter with two dimensions or more (the last two are factored,
    the others are a batch of matrices):

    .. math::
        R_t = \beta_{2,t} R_{t-1} + (1-\beta_{2,t})\, \mathrm{mean}_{\text{cols}}(g_t^2), \quad
        C_t = \beta_{2,t} C_{t-1} + (1-\beta_{2,t})\, \mathrm{mean}_{\text{rows}}(g_t^2), \quad
        \hat V_t = \frac{R_t C_t}{\mathrm{mean}(R_t)},

    and :math:`\hat V_t = \beta_{2,t}\hat V_{t-1} + (1-\beta_{2,t})\, g_t^2` for vectors and scalars. Then

    .. math:: U_t = \frac{g_t}{\sqrt{\hat V_t}}, \qquad d_t = \frac{U_t}{\max(1,\ \mathrm{RMS}(U_t)/d)}.

    Where :math:`\epsilon_1` sits: ``eps1_in_squares=True`` adds it to :math:`g_t^2` before any
    averaging (the paper, and Keras); ``False`` floors :math:`\mathrm{mean}(R_t)` at :math:`\epsilon_1`
    and :math:`\sqrt{\hat V_t}` at :math:`\epsilon_1` instead (torch). ``eps1=None`` is the machine
    epsilon of each parameter's dtype, torch's default. The state holds :math:`n + m` numbers for an
    :math:`n \times m` matrix (Adam holds :math:`2nm`). Chain it with :func:`adafactor`'s relative step,
    or with :func:`~companion.optim.scale_by_learning_rate` for a fixed step size.
    """
    beta2_decay = check_in_range("beta2_decay", beta2_decay, -math.inf, 0.0, high_inclusive=True)
    if eps1 is not None:
        eps1 = check_non_negative("eps1", eps1)
    clip_threshold = check_positive("clip_threshold", clip_threshold)
    if not isinstance(eps1_in_squares, bool):
        raise TypeError(f"eps1_in_squares must be True or False, got {eps1_in_squares!r}")

    def init(params):
        rows, cols, full = [], [], []
        for p in tree_leaves(params):
            factored = len(p.shape) >= 2
            rows.append(_ops.zeros_like(p[..., :1]) if factored else None)
            cols.append(_ops.zeros_like(p[..., :1, :]) if factored else None)
            full.append(None if factored else _ops.zeros_like(p))
        return ScaleByAdafactorState(0, rows, cols, full)

    def direction(i, g, row, col, full, weight):
        eps = _machine_eps(g) if eps1 is None else eps1
        weight = _ops.cast_like(weight, g)
        square = g * g + eps if eps1_in_squares else g * g
        shape = tuple(g.shape)
        if full is None:
            expected = (shape[:-1] + (1,), shape[:-2] + (1, shape[-1])) if len(shape) >= 2 else None
            if (tuple(row.shape), tuple(col.shape)) != expected:
                raise ValueError(f"shape mismatch at updates[{i}]: a gradient of shape {shape} for a factored state "
                                 f"of shapes {tuple(row.shape)} and {tuple(col.shape)}")
            row = _lerp(row, _mean(square, -1, keepdims=True), weight)
            col = _lerp(col, _mean(square, -2, keepdims=True), weight)
            row_mean = _mean(row, -2, keepdims=True)
            variance = row * col / (row_mean if eps1_in_squares else _at_least(row_mean, eps))
        else:
            if tuple(full.shape) != shape:
                raise ValueError(f"shape mismatch at updates[{i}]: {shape} vs {tuple(full.shape)}")
            full = variance = _lerp(full, square, weight)
        u = g / _ops.sqrt(variance if eps1_in_squares else _at_least(variance, eps * eps))
        # Clipping by the update's own RMS: after a sudden jump of the gradient the stale V-hat is too small.
        return u / _at_least(_rms(u) / clip_threshold, 1.0), row, col, full

    def update(updates, state, params=None):
        grads = tree_leaves(updates)
        if len(grads) != len(state.full):
            raise ValueError(f"state is for {len(state.full)} parameters, got {len(grads)} gradients")
        weight = (state.count + 1) ** beta2_decay  # 1 - beta2_t = t^c
        leaves = zip(grads, state.rows, state.cols, state.full)
        results = [direction(i, *leaf, weight) for i, leaf in enumerate(leaves)]
        steps = iter([r[0] for r in results])
        new_state = ScaleByAdafactorState(state.count + 1, *([r[k] for r in results] for k in (1, 2, 3)))
        return tree_map(lambda g: next(steps), updates, path="updates"), new_state

    return GradientTransformation(init, update)


# --- the relative step -----------------------------------------------------------------------------


class _ParameterScaleState(NamedTuple):
    count: Any  # steps taken so far (for a learning-rate schedule in Keras' weight decay)


def _scale_by_parameter_rms(eps2: float, weight_decay: float = 0.0, learning_rate=0.0) -> GradientTransformation:
    r"""Make each tensor's step relative to its weights: :math:`u \leftarrow \max(\epsilon_2, \mathrm{RMS}(\theta))\,u`.

    Keras decays the weights, :math:`\theta \leftarrow (1 - \eta_t\lambda)\theta`, before its update rule
    reads them: pass its ``weight_decay`` here to take the RMS of the decayed weights (torch reads them
    before its decay: leave 0).
    """
    eps2 = check_non_negative("eps2", eps2)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("adafactor needs params: call update(grads, state, params)")
        lr = _ops.schedule_value(learning_rate, state.count) if callable(learning_rate) else learning_rate
        shrink = abs(1.0 - lr * weight_decay)

        def scaled(u, p):
            return u * _at_least(_rms(p) * _ops.cast_like(shrink, p), eps2)

        return tree_map(scaled, updates, params, path="updates"), _ParameterScaleState(state.count + 1)

    return GradientTransformation(lambda params: _ParameterScaleState(0), update)


def _relative_step(learning_rate):
    r""":math:`\rho_t = \min(\eta_t, 1/\sqrt t)`: the learning rate caps the paper's decaying relative step."""

    def rate(count):  # count = steps taken so far, t = count + 1
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        return min(lr, 1.0 / math.sqrt(float(count) + 1.0))

    return rate


def adafactor(
    learning_rate=None,
    beta2_decay=None,
    eps1=None,
    eps2=None,
    clip_threshold=None,
    weight_decay=None,
    maximize: bool = False,
    convention: str = "torch",
) -> GradientTransformation:
    r"""Adafactor (Shazeer & Stern, 2018), as ``torch.optim.Adafactor`` or ``keras.optimizers.Adafactor``.

    With :math:`d_t` from :func:`scale_by_adafactor` (factored second moment, update clipping),

    .. math::
        \rho_t = \min\!\left(\eta, \tfrac{1}{\sqrt t}\right), \qquad
        \theta_{t+1} = (1 - \eta\lambda)\,\theta_t - \rho_t \max(\epsilon_2, \mathrm{RMS}(\theta))\, d_t .

    Both frameworks always take this relative step (the paper caps :math:`\rho_t` at 0.01; here
    :math:`\eta` does) and decay the weights by :math:`\eta\lambda` (not :math:`\rho_t\lambda`). They
    differ in:

    * the defaults: :math:`\eta` = 0.01 (torch) or 0.001 (Keras); :math:`\epsilon_1` = the dtype's
      machine epsilon (torch) or :math:`10^{-30}` (Keras);
    * where :math:`\epsilon_1` sits: torch floors :math:`\mathrm{mean}(R_t)` and :math:`\sqrt{\hat V_t}`
      at it, Keras (and the paper) add it to :math:`g_t^2`;
    * weight decay: :math:`\mathrm{RMS}(\theta)` is of the weights before the decay (torch) or after it
      (Keras, whose decay runs before every update rule);
    * torch requires ``clip_threshold`` (its ``d``) :math:`\ge 1` and has ``maximize``; Keras accepts
      any positive threshold. Keras' ``relative_step`` is not an argument here: in Keras 3 it changes
      nothing (the update takes :math:`\min(\eta, 1/\sqrt t)` again either way, as the tests show).

    Names: torch's ``eps=(eps1, eps2)`` and ``d``; Keras' ``epsilon_1``, ``epsilon_2``, ``beta_2_decay``.
    Checked against both over 200 float64 steps, with defaults and changed settings, and through
    :class:`~companion.optim.torch_adapter.ReferenceOptimizer` and
    :class:`~companion.optim.keras_adapter.KerasReferenceOptimizer` against the frameworks' own.
    """
    check_choice("convention", convention, CONVENTIONS)
    given = dict(learning_rate=learning_rate, beta2_decay=beta2_decay, eps1=eps1, eps2=eps2,
                 clip_threshold=clip_threshold, weight_decay=weight_decay)
    s = {key: ADAFACTOR_DEFAULTS[convention][key] if value is None else value for key, value in given.items()}
    lr = check_learning_rate(s["learning_rate"])
    weight_decay = check_non_negative("weight_decay", s["weight_decay"])
    if not isinstance(maximize, bool):
        raise TypeError(f"maximize must be True or False, got {maximize!r}")
    if convention == "keras" and maximize:
        raise ValueError("Invalid maximize: a torch option; keras.optimizers.Adafactor has none")
    if convention == "torch" and check_positive("clip_threshold", s["clip_threshold"]) < 1.0:
        raise ValueError(f"Invalid clip_threshold: {s['clip_threshold']} (torch.optim.Adafactor's d must be >= 1)")
    keras = convention == "keras"
    links = [scale(-1.0)] if maximize else []
    links += [
        scale_by_adafactor(s["beta2_decay"], s["eps1"], s["clip_threshold"], eps1_in_squares=keras),
        _scale_by_parameter_rms(s["eps2"], weight_decay if keras else 0.0, lr),
        scale_by_learning_rate(_relative_step(lr)),
    ]
    links += [decay_weights(weight_decay, lr)] if weight_decay else []
    return _with_gradient_checks(chain(*links))
