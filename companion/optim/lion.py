r"""Lion (Chen et al., 2023): the sign of an interpolated momentum; one state array instead of Adam's two.

Found by a program search over update rules, Lion keeps one moving average :math:`m` and steps by
the *sign* of a blend of it with the new gradient:

.. math::
    c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
    \theta_{t+1} = \theta_t - \eta_t\,\bigl(\operatorname{sign}(c_t) + \lambda\,\theta_t\bigr), \qquad
    m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t.

Every coordinate moves by exactly :math:`\eta` (the sign is :math:`\pm 1`), so the step is larger
than Adam's for the same :math:`\eta`: the paper uses a learning rate 3 to 10 times smaller and a
weight decay 3 to 10 times larger. Two betas, because the update (:math:`\beta_1 = 0.9`) looks less far
back than the state it keeps (:math:`\beta_2 = 0.99`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._checks import check_in_range, check_non_negative
from . import _ops
from ._tree import tree_map
from .aliases import _with_gradient_checks
from .base import GradientTransformation, chain
from .transforms import decay_weights, scale_by_learning_rate

__all__ = ["lion", "scale_by_lion"]


class ScaleByLionState(NamedTuple):
    mu: Any


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> GradientTransformation:
    r"""Lion's direction :math:`d_t = \operatorname{sign}(\beta_1 m_{t-1} + (1-\beta_1) g_t)`, then
    :math:`m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t` (Chen et al., 2023)."""
    b1 = check_in_range("beta_1", b1, 0.0, 1.0, high_inclusive=True)
    b2 = check_in_range("beta_2", b2, 0.0, 1.0, high_inclusive=True)

    def update(updates, state, params=None):
        directions = tree_map(lambda g, m: _ops.sign(b1 * m + (1.0 - b1) * g), updates, state.mu, path="updates")
        mu = tree_map(lambda g, m: b2 * m + (1.0 - b2) * g, updates, state.mu, path="updates")
        return directions, ScaleByLionState(mu)

    return GradientTransformation(lambda params: ScaleByLionState(tree_map(_ops.zeros_like, params)), update)


def lion(learning_rate=1e-3, b1: float = 0.9, b2: float = 0.99, weight_decay: float = 0.0) -> GradientTransformation:
    r"""Lion as ``keras.optimizers.Lion`` (torch.optim ships none); the rule is in the module docstring.

    ``weight_decay`` :math:`\lambda` is decoupled (:math:`\theta \leftarrow \theta - \eta_t\lambda\theta`), as in
    the paper and in Keras. Checked against ``keras.optimizers.Lion`` (with and without weight decay).
    """
    weight_decay = check_non_negative("weight_decay", weight_decay)
    decay = [decay_weights(weight_decay, learning_rate)] if weight_decay else []
    return _with_gradient_checks(chain(scale_by_lion(b1, b2), scale_by_learning_rate(learning_rate), *decay))
