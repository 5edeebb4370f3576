r"""The optimizers of Part I, each a chain of the transformations in :mod:`.transforms`.

Every function takes ``convention="torch"`` or ``convention="keras"``. The two
frameworks implement several methods differently (where :math:`\epsilon` sits,
default hyperparameters, whether momentum accumulates gradients or steps); the
convention picks one, and the tests check each against its framework:
``torch.optim`` for ``"torch"``, ``keras.optimizers`` for ``"keras"``. Any
hyperparameter left as ``None`` takes that framework's default.
"""

from __future__ import annotations

import struct

from .._checks import check_choice, check_non_negative
from .base import GradientTransformation, chain, check_gradients
from .transforms import (
    add_decayed_weights,
    decay_weights,
    scale,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_ftrl,
    scale_by_learning_rate,
    scale_by_nadam,
    scale_by_rms,
    scale_by_trust_ratio,
    trace,
)

__all__ = ["DEFAULTS", "adadelta", "adagrad", "adam", "adamax", "adamw", "ftrl", "lamb", "nadam", "rmsprop", "sgd"]

CONVENTIONS = ("torch", "keras")

#: Each framework's default hyperparameters, as documented by ``torch.optim`` and ``keras.optimizers``.
DEFAULTS = {
    "sgd": {"torch": dict(learning_rate=1e-3), "keras": dict(learning_rate=0.01)},
    "adagrad": {
        "torch": dict(learning_rate=0.01, initial_accumulator_value=0.0, eps=1e-10),
        "keras": dict(learning_rate=0.001, initial_accumulator_value=0.1, eps=1e-7),
    },
    "adadelta": {
        "torch": dict(learning_rate=1.0, rho=0.9, eps=1e-6),
        "keras": dict(learning_rate=0.001, rho=0.95, eps=1e-7),
    },
    "rmsprop": {
        "torch": dict(learning_rate=0.01, decay=0.99, eps=1e-8),
        "keras": dict(learning_rate=0.001, decay=0.9, eps=1e-7),
    },
    "adam": {"torch": dict(learning_rate=1e-3, eps=1e-8), "keras": dict(learning_rate=1e-3, eps=1e-7)},
    "adamw": {
        "torch": dict(learning_rate=1e-3, eps=1e-8, weight_decay=0.01),
        "keras": dict(learning_rate=1e-3, eps=1e-7, weight_decay=0.004),
    },
    "adamax": {"torch": dict(learning_rate=2e-3, eps=1e-8), "keras": dict(learning_rate=1e-3, eps=1e-7)},
    "nadam": {
        "torch": dict(learning_rate=2e-3, eps=1e-8, momentum_decay=4e-3),
        "keras": dict(learning_rate=1e-3, eps=1e-7, momentum_decay=1.0),
    },
}


def _settings(name: str, convention: str, **given):
    check_choice("convention", convention, CONVENTIONS)
    defaults = DEFAULTS[name][convention]
    return {key: defaults[key] if given[key] is None else given[key] for key in given}


def _with_gradient_checks(transform: GradientTransformation) -> GradientTransformation:
    """Report NaN/inf gradients and gradients that do not match the parameters, then update."""

    def update(grads, state, params=None):
        check_gradients(grads, params)
        return transform.update(grads, state, params)

    return GradientTransformation(transform.init, update)


def _split_weight_decay(weight_decay: float, convention: str, learning_rate) -> tuple[float, list]:
    """torch's ``weight_decay`` is an L2 term in the gradient (returned as the first value, for the chain to
    place); Keras' is decoupled, applied to the weights outside the update rule (returned as a last link)."""
    weight_decay = check_non_negative("weight_decay", weight_decay)
    if convention == "keras":
        return 0.0, ([decay_weights(weight_decay, learning_rate)] if weight_decay else [])
    return weight_decay, []


def sgd(
    learning_rate=None,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    convention: str = "torch",
    dampening: float = 0.0,
    maximize: bool = False,
) -> GradientTransformation:
    r"""(Stochastic) gradient descent, with optional heavy-ball or Nesterov momentum.

    Plain: :math:`\theta_{t+1} = \theta_t - \eta\,g_t` (Robbins & Monro, 1951). With momentum:

    * torch: :math:`b_t = \mu b_{t-1} + g_t,\ \theta_{t+1} = \theta_t - \eta_t b_t`
      (Nesterov: :math:`\theta_{t+1} = \theta_t - \eta_t (g_t + \mu b_t)`);
    * Keras: :math:`m_t = \mu m_{t-1} - \eta_t g_t,\ \theta_{t+1} = \theta_t + m_t`
      (Nesterov: :math:`\theta_{t+1} = \theta_t + \mu m_t - \eta_t g_t`).

    They agree at a constant learning rate and differ under a schedule. ``weight_decay``: torch adds
    :math:`\lambda\theta` to the gradient (L2); Keras decays the weights outside the momentum,
    :math:`\theta \leftarrow \theta - \eta_t\lambda\theta` (:func:`.transforms.decay_weights`). torch's ``dampening`` :math:`\tau` scales the gradient
    added to the buffer by :math:`1-\tau` after the first step (see :func:`.transforms.trace`), and
    ``maximize=True`` ascends (the gradient's sign is flipped first). Checked against
    ``torch.optim.SGD`` and ``keras.optimizers.SGD``.
    """
    s = _settings("sgd", convention, learning_rate=learning_rate)
    weight_decay, keras_decay = _split_weight_decay(weight_decay, convention, s["learning_rate"])
    if convention != "torch" and (dampening or maximize):
        raise ValueError("Invalid dampening/maximize: torch options; keras.optimizers.SGD has neither")
    if not isinstance(maximize, bool):
        raise TypeError(f"maximize must be True or False, got {maximize!r}")
    links = [scale(-1.0)] if maximize else []  # torch flips the gradient before the weight decay
    links += [add_decayed_weights(weight_decay)] if weight_decay else []
    momentum_link = [trace(momentum, nesterov, dampening)] if momentum or nesterov else []
    if dampening and not momentum_link:
        raise ValueError(f"Invalid dampening: {dampening} (it applies to momentum; momentum is 0)")
    if convention == "torch":
        links += momentum_link + [scale_by_learning_rate(s["learning_rate"])]
    else:
        links += [scale_by_learning_rate(s["learning_rate"])] + momentum_link
    return _with_gradient_checks(chain(*links, *keras_decay))


def adagrad(
    learning_rate=None, initial_accumulator_value=None, eps=None, weight_decay: float = 0.0, convention="torch",
    lr_decay: float = 0.0,
) -> GradientTransformation:
    r"""AdaGrad (Duchi et al., 2011): :math:`\theta_{t+1} = \theta_t - \eta\, g_t / (\sqrt{\textstyle\sum_{i\le t} g_i^2} + \epsilon)`.

    torch: accumulator starts at 0, :math:`\epsilon = 10^{-10}` outside the root; Keras: starts at 0.1,
    :math:`\epsilon = 10^{-7}` inside. torch's ``lr_decay`` :math:`d` divides the rate by
    :math:`1 + d\,(t-1)` at step :math:`t` (:func:`companion.schedules.inverse_time_decay`). Checked against
    ``torch.optim.Adagrad`` and ``keras.optimizers.Adagrad``.
    """
    s = _settings(
        "adagrad", convention, learning_rate=learning_rate, initial_accumulator_value=initial_accumulator_value, eps=eps
    )
    weight_decay, keras_decay = _split_weight_decay(weight_decay, convention, s["learning_rate"])
    if check_non_negative("lr_decay", lr_decay):
        from ..schedules import inverse_time_decay

        if convention != "torch":
            raise ValueError("Invalid lr_decay: a torch option (in Keras, pass a schedule as the learning rate)")
        if callable(s["learning_rate"]):
            raise ValueError("Invalid lr_decay: give a number as the learning rate, or fold the decay into the schedule")
        s["learning_rate"] = inverse_time_decay(s["learning_rate"], lr_decay)
    return _with_gradient_checks(
        chain(
            add_decayed_weights(weight_decay),
            scale_by_adagrad(s["initial_accumulator_value"], s["eps"], eps_inside_sqrt=convention == "keras"),
            scale_by_learning_rate(s["learning_rate"]),
            *keras_decay,
        )
    )


def adadelta(learning_rate=None, rho=None, eps=None, weight_decay: float = 0.0, convention="torch"):
    r"""AdaDelta (Zeiler, 2012); the update rule is in :func:`.transforms.scale_by_adadelta`.

    The same formula in both frameworks, with different defaults: torch :math:`\eta=1, \rho=0.9,
    \epsilon=10^{-6}`; Keras :math:`\eta=10^{-3}, \rho=0.95, \epsilon=10^{-7}`.
    Checked against ``torch.optim.Adadelta`` and ``keras.optimizers.Adadelta``.
    """
    s = _settings("adadelta", convention, learning_rate=learning_rate, rho=rho, eps=eps)
    weight_decay, keras_decay = _split_weight_decay(weight_decay, convention, s["learning_rate"])
    return _with_gradient_checks(
        chain(
            add_decayed_weights(weight_decay),
            scale_by_adadelta(s["rho"], s["eps"]),
            scale_by_learning_rate(s["learning_rate"]),
            *keras_decay,
        )
    )


def rmsprop(
    learning_rate=None,
    decay=None,
    eps=None,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
    convention="torch",
) -> GradientTransformation:
    r"""RMSProp (Tieleman & Hinton, 2012): :math:`\theta_{t+1} = \theta_t - \eta\, g_t / \mathrm{RMS}_t`.

    torch (``alpha`` = ``decay`` = 0.99): :math:`\mathrm{RMS}_t = \sqrt{v_t} + \epsilon`, momentum on
    :math:`g/\mathrm{RMS}` before the learning rate. Keras (``rho`` = 0.9):
    :math:`\mathrm{RMS}_t = \sqrt{v_t + \epsilon}`, momentum on the step after it.
    Checked against ``torch.optim.RMSprop`` and ``keras.optimizers.RMSprop``.
    """
    s = _settings("rmsprop", convention, learning_rate=learning_rate, decay=decay, eps=eps)
    weight_decay, keras_decay = _split_weight_decay(weight_decay, convention, s["learning_rate"])
    scaling = scale_by_rms(s["decay"], s["eps"], eps_inside_sqrt=convention == "keras", centered=centered)
    momentum_link = [trace(momentum)] if momentum else []
    lr = scale_by_learning_rate(s["learning_rate"])
    if convention == "torch":
        links = [add_decayed_weights(weight_decay), scaling, *momentum_link, lr]
    else:
        links = [scaling, lr, *momentum_link, *keras_decay]
    return _with_gradient_checks(chain(*links))


def adam(
    learning_rate=None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps=None,
    weight_decay: float = 0.0,
    bias_correction: bool = True,
    convention="torch",
    amsgrad: bool = False,
) -> GradientTransformation:
    r"""Adam (Kingma & Ba, 2015); the update rule is in :func:`.transforms.scale_by_adam`, and
    ``amsgrad=True`` is its AMSGrad variant (Reddi et al., 2018).

    torch: :math:`\epsilon = 10^{-8}` added to :math:`\sqrt{\hat v_t}`; ``weight_decay`` is an L2 term
    added to the gradient (not decoupled: see :func:`adamw`). Keras: :math:`\epsilon = 10^{-7}` in the
    "epsilon hat" form; ``weight_decay`` is decoupled, as in every Keras optimizer (``Adam`` with it is
    ``AdamW``). Checked against ``torch.optim.Adam`` and ``keras.optimizers.Adam``.
    """
    s = _settings("adam", convention, learning_rate=learning_rate, eps=eps)
    weight_decay, keras_decay = _split_weight_decay(weight_decay, convention, s["learning_rate"])
    return _with_gradient_checks(
        chain(
            add_decayed_weights(weight_decay),
            scale_by_adam(b1, b2, s["eps"], eps_hat=convention == "keras", bias_correction=bias_correction,
                          amsgrad=amsgrad),
            scale_by_learning_rate(s["learning_rate"]),
            *keras_decay,
        )
    )


def adamw(
    learning_rate=None, b1: float = 0.9, b2: float = 0.999, eps=None, weight_decay=None, convention="torch",
    amsgrad: bool = False,
) -> GradientTransformation:
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    .. math:: \theta_{t+1} = \theta_t - \eta_t \left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda\,\theta_t\right)

    Default :math:`\lambda`: 0.01 in torch, 0.004 in Keras. Checked against ``torch.optim.AdamW`` and
    ``keras.optimizers.AdamW``.
    """
    s = _settings("adamw", convention, learning_rate=learning_rate, eps=eps, weight_decay=weight_decay)
    return _with_gradient_checks(
        chain(
            scale_by_adam(b1, b2, s["eps"], eps_hat=convention == "keras", amsgrad=amsgrad),
            add_decayed_weights(s["weight_decay"]),
            scale_by_learning_rate(s["learning_rate"]),
        )
    )


def adamax(
    learning_rate=None, b1: float = 0.9, b2: float = 0.999, eps=None, weight_decay: float = 0.0, convention="torch"
) -> GradientTransformation:
    r"""Adamax (Kingma & Ba, 2015); the update rule is in :func:`.transforms.scale_by_adamax`.

    Checked against ``torch.optim.Adamax`` and ``keras.optimizers.Adamax``.
    """
    s = _settings("adamax", convention, learning_rate=learning_rate, eps=eps)
    weight_decay, keras_decay = _split_weight_decay(weight_decay, convention, s["learning_rate"])
    return _with_gradient_checks(
        chain(
            add_decayed_weights(weight_decay),
            scale_by_adamax(b1, b2, s["eps"], eps_in_max=convention == "torch"),
            scale_by_learning_rate(s["learning_rate"]),
            *keras_decay,
        )
    )


def nadam(
    learning_rate=None,
    b1: float = 0.9,
    b2: float = 0.999,
    eps=None,
    momentum_decay=None,
    weight_decay: float = 0.0,
    convention="torch",
    decoupled_weight_decay: bool = False,
) -> GradientTransformation:
    r"""Nadam (Dozat, 2016); the update rule is in :func:`.transforms.scale_by_nadam`.

    ``weight_decay`` is an L2 term added to the gradient, or with ``decoupled_weight_decay=True``
    (torch's option) AdamW's decoupled decay, :math:`\theta \leftarrow \theta - \eta(d_t + \lambda\theta)`.
    Checked against ``torch.optim.NAdam`` (``momentum_decay`` 0.004, both kinds of decay) and
    ``keras.optimizers.Nadam`` (its :math:`0.96^t` schedule is ``momentum_decay=1``).
    """
    s = _settings("nadam", convention, learning_rate=learning_rate, eps=eps, momentum_decay=momentum_decay)
    weight_decay, keras_decay = _split_weight_decay(weight_decay, convention, s["learning_rate"])
    if not isinstance(decoupled_weight_decay, bool):
        raise TypeError(f"decoupled_weight_decay must be True or False, got {decoupled_weight_decay!r}")
    if decoupled_weight_decay and convention == "keras":
        raise ValueError("Invalid decoupled_weight_decay: a torch option (Keras' weight_decay is always decoupled)")
    decay = add_decayed_weights(weight_decay)
    float32_base = struct.unpack("f", struct.pack("f", 0.96))[0]  # Keras' rounding of 0.96 in its update (scale_by_nadam)
    links = [scale_by_nadam(b1, b2, s["eps"], s["momentum_decay"],
                            schedule_base=float32_base if convention == "keras" else 0.96)]
    links = links + [decay] if decoupled_weight_decay else [decay] + links
    return _with_gradient_checks(chain(*links, scale_by_learning_rate(s["learning_rate"]), *keras_decay))


def ftrl(
    learning_rate: float = 0.001,
    learning_rate_power: float = -0.5,
    initial_accumulator_value: float = 0.1,
    l1: float = 0.0,
    l2: float = 0.0,
    l2_shrinkage: float = 0.0,
    beta: float = 0.0,
) -> GradientTransformation:
    r"""FTRL-Proximal (McMahan et al., 2013) as ``keras.optimizers.Ftrl`` (torch has none).

    The update rule is in :func:`.transforms.scale_by_ftrl`; checked against ``keras.optimizers.Ftrl``.
    """
    return _with_gradient_checks(
        scale_by_ftrl(learning_rate, learning_rate_power, initial_accumulator_value, l1, l2, l2_shrinkage, beta)
    )


def lamb(learning_rate=1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7,
         weight_decay: float = 0.0) -> GradientTransformation:
    r"""LAMB (You et al., 2020): Adam's direction, rescaled layer by layer to the size of the weights.

    .. math::
        r_t^{(l)} = \frac{\hat m_t^{(l)}}{\sqrt{\hat v_t^{(l)}} + \epsilon} + \lambda\,\theta_t^{(l)}, \qquad
        \theta_{t+1}^{(l)} = \theta_t^{(l)} - \eta_t\,
            \frac{\lVert \theta_t^{(l)} \rVert}{\lVert r_t^{(l)} \rVert}\, r_t^{(l)}

    for each layer (tensor) :math:`l`; the ratio is 1 when either norm is 0. PyTorch ships no LAMB;
    with ``weight_decay=0`` this is ``keras.optimizers.Lamb`` (its default :math:`\epsilon = 10^{-7}`),
    checked step by step in the tests. (Keras's own ``weight_decay`` is decoupled and applied outside
    the trust ratio; here :math:`\lambda` sits inside it, as in the paper.)
    """
    return _with_gradient_checks(
        chain(
            scale_by_adam(b1, b2, eps),
            add_decayed_weights(weight_decay),
            scale_by_trust_ratio(),
            scale_by_learning_rate(learning_rate),
        )
    )
