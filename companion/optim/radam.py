r"""RAdam (Liu et al., 2020): Adam whose adaptive step is switched on only once its variance is tame.

In Adam's first steps :math:`\hat v_t` is an average of a handful of squared gradients: a noisy
estimate, and :math:`1/\sqrt{\hat v_t}` noisier still. Warmup schedules hide this; RAdam measures it.
With :math:`\rho_\infty = 2/(1-\beta_2) - 1`, the length of the simple moving average that
:math:`v_t` approximates after :math:`t` steps is

.. math:: \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t},

and the variance of the adaptive factor is finite only for :math:`\rho_t > 4`. RAdam takes a plain
momentum step (SGD with bias-corrected momentum) until :math:`\rho_t` passes a threshold, then Adam's
step times the rectification

.. math:: r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}},

which rises from near 0 towards 1: a warmup derived from :math:`\beta_2`, not tuned.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._checks import check_in_range, check_non_negative
from . import _ops
from ._tree import tree_map
from .aliases import _with_gradient_checks
from .base import GradientTransformation, chain
from .transforms import add_decayed_weights, decay_weights, scale_by_learning_rate

__all__ = ["radam", "radam_rectification", "scale_by_radam"]


def radam_rectification(step: int, b2: float = 0.999) -> tuple[float, float]:
    r"""``(rho_t, r_t)`` at step :math:`t \ge 1`; :math:`r_t` is ``nan`` while :math:`\rho_t \le 4` (no finite variance)."""
    b2 = check_in_range("beta_2", b2, 0.0, 1.0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"Invalid step: {step!r} (an integer >= 1)")
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * step * b2**step / (1.0 - b2**step)
    if rho_t <= 4.0:
        return rho_t, float("nan")
    r_t = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    return rho_t, r_t


class ScaleByRadamState(NamedTuple):
    count: Any
    mu: Any
    nu: Any


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   threshold: float = 5.0) -> GradientTransformation:
    r"""RAdam's direction (Liu et al., 2020), in ``torch.optim.RAdam``'s form.

    .. math::
        m_t, v_t \text{ as in Adam}, \quad \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad
        d_t = \begin{cases} r_t\, \hat m_t\, \dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > \text{threshold} \\
                            \hat m_t & \text{otherwise.} \end{cases}

    The paper switches at :math:`\rho_t > 4`; torch (and this default) at 5, the first step with
    :math:`\rho_t > 5` being the 6th for :math:`\beta_2 = 0.999`. Note where :math:`\epsilon` sits: added to
    :math:`\sqrt{v_t}`, before the bias correction (Adam adds it to :math:`\sqrt{\hat v_t}`).
    """
    b1 = check_in_range("beta_1", b1, 0.0, 1.0)
    b2 = check_in_range("beta_2", b2, 0.0, 1.0)
    eps = check_non_negative("eps", eps)
    threshold = check_in_range("threshold", threshold, 4.0, float("inf"))
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def init(params):
        zeros = tree_map(_ops.zeros_like, params)
        return ScaleByRadamState(0, zeros, tree_map(_ops.zeros_like, params))

    def update(updates, state, params=None):
        t = state.count + 1
        mu = tree_map(lambda g, m: _ops.moving_average(m, g, b1), updates, state.mu, path="updates")
        nu = tree_map(lambda g, v: _ops.moving_average_of_squares(v, g, b2), updates, state.nu, path="updates")
        correction1, correction2 = 1.0 - b1**t, 1.0 - b2**t
        rho_t = rho_inf - 2.0 * t * b2**t / correction2
        if rho_t > threshold:
            r_t = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            factor = r_t * correction2**0.5 / correction1
            directions = tree_map(lambda m, v: factor * m / (_ops.sqrt(v) + eps), mu, nu, path="updates")
        else:  # too few squared gradients for a trustworthy v: a momentum step, bias-corrected
            directions = tree_map(lambda m: m / correction1, mu, path="updates")
        return directions, ScaleByRadamState(t, mu, nu)

    return GradientTransformation(init, update)


def radam(learning_rate=1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
          decoupled_weight_decay: bool = False) -> GradientTransformation:
    r"""RAdam as ``torch.optim.RAdam`` (Keras ships none): :math:`\theta_{t+1} = \theta_t - \eta_t d_t`,
    :math:`d_t` from :func:`scale_by_radam`.

    ``weight_decay`` :math:`\lambda` is an L2 term added to the gradient, or with
    ``decoupled_weight_decay=True`` AdamW's decay, :math:`\theta \leftarrow \theta - \eta_t\lambda\theta`
    before the step. Checked against ``torch.optim.RAdam`` (both kinds of decay) in the tests.
    """
    weight_decay = check_non_negative("weight_decay", weight_decay)
    if not isinstance(decoupled_weight_decay, bool):
        raise TypeError(f"decoupled_weight_decay must be True or False, got {decoupled_weight_decay!r}")
    l2 = [add_decayed_weights(weight_decay)] if weight_decay and not decoupled_weight_decay else []
    decoupled = [decay_weights(weight_decay, learning_rate)] if weight_decay and decoupled_weight_decay else []
    return _with_gradient_checks(chain(*l2, scale_by_radam(b1, b2, eps), scale_by_learning_rate(learning_rate),
                                       *decoupled))
