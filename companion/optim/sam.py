r"""Sharpness-Aware Minimization (Foret, Kleiner, Mobahi & Neyshabur, 2021): step with the gradient at
the worst nearby point, so that training prefers wide, flat minima.

SAM minimizes :math:`\max_{\lVert\epsilon\rVert \le \rho} L(\theta + \epsilon)`. To first order the
worst perturbation is along the gradient, and the step uses the gradient *there*:

.. math::
    \hat\epsilon_t = \rho\,\frac{g_t}{\lVert g_t \rVert}, \qquad
    g^{\mathrm{SAM}}_t = \nabla L(\theta_t + \hat\epsilon_t), \qquad
    \theta_{t+1} = \theta_t + \mathrm{base}(g^{\mathrm{SAM}}_t),

with :math:`\lVert\cdot\rVert` the norm over all parameters together and ``base`` any optimizer (SGD
with momentum in the paper). Two forward and backward passes per step, on the same mini-batch: SAM
costs about twice as much per step. On :math:`L = \tfrac12 \theta^\top A \theta` the SAM gradient is
:math:`A\theta + \rho A^2\theta / \lVert A\theta \rVert` in closed form (checked in the tests).

:func:`sam_step` is the functional form (any ``companion.optim`` chain, a gradient function);
:class:`companion.optim.torch_adapter.SAM` wraps a chain or a ``torch.optim`` optimizer for an
``nn.Module`` (its ``step`` takes the closure that recomputes the loss, as ``torch.optim.LBFGS``'s does;
``companion.training.train_classifier`` passes one).
"""

from __future__ import annotations

from .._checks import check_non_negative, check_positive
from ._tree import tree_map
from .base import GradientTransformation, apply_updates

__all__ = ["sam_perturbation", "sam_step"]


def sam_perturbation(grads, rho: float = 0.05, eps: float = 1e-12):
    r"""The ascent step :math:`\hat\epsilon = \rho\, g / (\lVert g \rVert + \epsilon)` (``eps`` guards a zero gradient)."""
    rho = check_positive("rho", rho)
    eps = check_non_negative("eps", eps)
    from ..clipping import global_norm  # the norm clip_by_global_norm uses (clipping imports this package)

    scale = rho / (float(global_norm(grads)) + eps)
    return tree_map(lambda g: scale * g, grads, path="grads")


def sam_step(transformation: GradientTransformation, grad_fn, params, state, rho: float = 0.05):
    """One SAM step of ``transformation``: returns ``(new_params, new_state)``.

    ``grad_fn(params)`` returns the gradient tree at ``params`` (on the same mini-batch both times).
    """
    if not isinstance(transformation, GradientTransformation):
        raise TypeError(f"transformation must be a companion.optim GradientTransformation, got {type(transformation).__name__}")
    if not callable(grad_fn):
        raise TypeError(f"grad_fn must be callable (params -> gradients), got {type(grad_fn).__name__}")
    perturbation = sam_perturbation(grad_fn(params), rho)
    sam_grads = grad_fn(apply_updates(params, perturbation))
    updates, state = transformation.update(sam_grads, state, params)
    return apply_updates(params, updates), state
