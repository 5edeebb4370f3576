r"""L-BFGS (Liu & Nocedal, 1989): a quasi-Newton direction from the last few steps, in the form of ``torch.optim.LBFGS``.

BFGS keeps an approximation :math:`H_k` of the *inverse* Hessian and updates it after each step
:math:`s_k = \theta_{k+1} - \theta_k` with the gradient change :math:`y_k = g_{k+1} - g_k`:

.. math::
    H_{k+1} = (I - \rho_k s_k y_k^\top)\, H_k\, (I - \rho_k y_k s_k^\top) + \rho_k s_k s_k^\top,
    \qquad \rho_k = 1 / (y_k^\top s_k).

L-BFGS never forms :math:`H_k`. It keeps the last :math:`m` pairs :math:`(s_i, y_i)`, starts from
:math:`H^0 = \gamma I` with :math:`\gamma = s^\top y / y^\top y` (the newest pair), and computes
:math:`H_k g` with the *two-loop recursion* (Nocedal & Wright, 2006, Algorithm 7.4) in :math:`O(mn)`:

.. math::
    q \leftarrow g;\quad \text{for } i = k-1, \dots, k-m:\ \alpha_i = \rho_i s_i^\top q,\ q \leftarrow q - \alpha_i y_i;
    \quad r \leftarrow \gamma q;\quad \text{for } i = k-m, \dots, k-1:\ \beta_i = \rho_i y_i^\top r,\
    r \leftarrow r + (\alpha_i - \beta_i) s_i .

:func:`lbfgs_direction` returns the descent direction :math:`d = -H_k g` (checked in the tests against the
explicit BFGS matrix above). :func:`lbfgs` is the optimizer of ``torch.optim.LBFGS(params, lr, history_size,
max_iter=1, line_search_fn=None)``, one iteration per step, reproduced step for step in float64 in the tests,
with its details: the first step is :math:`-\min(1, 1/\lVert g\rVert_1)\,\eta\, g`; a pair enters the history
only if :math:`y^\top s > 10^{-10}` (otherwise the Hessian estimate would not stay positive definite);
no step is taken when :math:`\max_i |g_i| \le` ``tolerance_grad`` (the state is left as it was), nor when the
directional derivative :math:`g^\top d > -` ``tolerance_change`` (the direction is still remembered, as torch does).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._checks import check_non_negative, check_positive_int
from ._tree import tree_leaves
from .base import GradientTransformation, check_gradients

__all__ = ["LBFGSState", "lbfgs", "lbfgs_direction"]


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _dot(a, b):
    return float((a * b).sum())


def lbfgs_direction(grad, s_history, y_history):
    r"""The L-BFGS descent direction :math:`-H g` by the two-loop recursion (oldest pair first in the histories).

    ``grad`` is a 1-D NumPy array or torch tensor; ``s_history`` and ``y_history`` are equally long sequences of
    vectors of its shape, with :math:`s_i^\top y_i > 0`. With empty histories :math:`H = I` and the direction is
    :math:`-g`; otherwise :math:`H^0 = \gamma I`, :math:`\gamma = s^\top y / y^\top y` of the newest pair.
    """
    if not (isinstance(grad, np.ndarray) or _is_torch(grad)):
        raise TypeError(f"grad must be a NumPy array or a torch tensor, got {type(grad).__name__}")
    if grad.ndim != 1:
        raise ValueError(f"grad must be a 1-D vector, got shape {tuple(grad.shape)}")
    s_history, y_history = list(s_history), list(y_history)
    if len(s_history) != len(y_history):
        raise ValueError(f"s_history and y_history must be equally long, got {len(s_history)} and {len(y_history)}")
    for name, history in (("s_history", s_history), ("y_history", y_history)):
        for v in history:
            if tuple(v.shape) != tuple(grad.shape):
                raise ValueError(f"{name} holds a vector of shape {tuple(v.shape)}, expected {tuple(grad.shape)}")
    rho = []
    for s, y in zip(s_history, y_history):
        ys = _dot(y, s)
        if not ys > 0:
            raise ValueError(f"s_history and y_history must satisfy s^T y > 0 (got {ys:.3g}): the curvature condition")
        rho.append(1.0 / ys)
    q = -grad  # the same order of operations as torch.optim.LBFGS, so float64 results agree to the last bits
    alpha = [0.0] * len(s_history)
    for i in range(len(s_history) - 1, -1, -1):
        alpha[i] = _dot(s_history[i], q) * rho[i]
        q = q - alpha[i] * y_history[i]
    gamma = _dot(s_history[-1], y_history[-1]) / _dot(y_history[-1], y_history[-1]) if s_history else 1.0
    r = q * gamma
    for i in range(len(s_history)):
        beta = _dot(y_history[i], r) * rho[i]
        r = r + (alpha[i] - beta) * s_history[i]
    return r


class LBFGSState(NamedTuple):
    count: int  # iterations taken (torch's state["n_iter"])
    direction: Any  # the last direction d (flat), None before the first step
    step_size: float  # the last step length t
    prev_grad: Any  # the gradient at the last iteration (flat)
    s_history: tuple  # s_i = t d (oldest first)
    y_history: tuple  # y_i = g_{i+1} - g_i


def _flatten(leaves):
    if _is_torch(leaves[0]):
        import torch

        return torch.cat([g.reshape(-1) for g in leaves])
    return np.concatenate([np.asarray(g).reshape(-1) for g in leaves])


def _unflatten(flat, like):
    out, start = [], 0
    for p in like:
        size = int(np.prod(tuple(p.shape)))
        out.append(flat[start : start + size].reshape(tuple(p.shape)))
        start += size
    return out


def _rebuild(tree, leaves):
    """A tree like ``tree`` (lists, tuples, dicts) whose leaves, in order, are ``leaves``."""
    it = iter(leaves)

    def build(node):
        if isinstance(node, dict):
            return {k: build(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            children = [build(c) for c in node]
            return children if isinstance(node, list) else tuple(children)
        return None if node is None else next(it)

    return build(tree)


def lbfgs(
    learning_rate: float = 1.0, history_size: int = 10, tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9
) -> GradientTransformation:
    r"""L-BFGS with a fixed step length, as ``torch.optim.LBFGS(params, lr, history_size, max_iter=1)``.

    Step :math:`k`: append :math:`(s, y) = (t_{k-1} d_{k-1},\ g_k - g_{k-1})` to the history if :math:`y^\top s > 10^{-10}`
    (keeping the last ``history_size``), :math:`d_k =` :func:`lbfgs_direction`, and
    :math:`u_k = t_k d_k` with :math:`t_1 = \min(1, 1/\lVert g_1\rVert_1)\,\eta` and :math:`t_k = \eta` after.
    The rule and the torch details are in the module docstring (Liu & Nocedal, 1989). It needs the full
    (deterministic) gradient: the pairs measure curvature only if :math:`g` is the same function at every step.
    Checked against ``torch.optim.LBFGS`` over many steps in float64.
    """
    learning_rate = check_non_negative("learning_rate", learning_rate)
    history_size = check_positive_int("history_size", history_size)
    tolerance_grad = check_non_negative("tolerance_grad", tolerance_grad)
    tolerance_change = check_non_negative("tolerance_change", tolerance_change)

    def init(params):
        return LBFGSState(0, None, 0.0, None, (), ())

    def update(grads, state, params=None):
        if not isinstance(state, LBFGSState):
            raise TypeError(f"state must be an LBFGSState from lbfgs().init, got {type(state).__name__}")
        check_gradients(grads, params)
        leaves = tree_leaves(grads)
        g = _flatten(leaves)
        zeros = _rebuild(grads, [0 * leaf for leaf in leaves])
        if float(abs(g).max()) <= tolerance_grad:  # already optimal: torch returns before touching its state
            return zeros, state
        count = state.count + 1
        s_history, y_history = state.s_history, state.y_history
        if count == 1:
            d = -g
        else:
            y = g - state.prev_grad
            s = state.direction * state.step_size
            if _dot(y, s) > 1e-10:
                s_history = (s_history + (s,))[-history_size:]
                y_history = (y_history + (y,))[-history_size:]
            d = lbfgs_direction(g, s_history, y_history)
        t = min(1.0, 1.0 / float(abs(g).sum())) * learning_rate if count == 1 else learning_rate
        new_state = LBFGSState(count, d, t, g, s_history, y_history)
        if _dot(g, d) > -tolerance_change:  # not a descent direction (to tolerance): torch stops before moving
            return zeros, new_state
        return _rebuild(grads, _unflatten(t * d, leaves)), new_state

    return GradientTransformation(init, update)
