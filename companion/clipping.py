r"""Gradient clipping as chainable :class:`~companion.optim.GradientTransformation` links (Part II).

Put a clipping link first in a chain, before momentum or adaptive scaling, the way optax does:
``chain(clip_by_global_norm(1.0), scale_by_learning_rate(0.1))``. Three rules:

* by value: every coordinate into :math:`[-c, c]` (``torch.nn.utils.clip_grad_value_``, Keras ``clipvalue``);
* by global norm: the whole gradient rescaled, :math:`g \leftarrow g \cdot \min(1, c/\|g\|)`, with
  :math:`\|g\|` the norm of all parameters' gradients together (``torch.nn.utils.clip_grad_norm_``,
  Keras ``global_clipnorm``); the direction of the step is kept;
* by norm, per leaf: each parameter's gradient rescaled on its own (Keras ``clipnorm``), which changes
  the direction of the step.

Clipping against exploding gradients in recurrent networks: Pascanu, Mikolov & Bengio (2013).
Checked in ``tests/test_clipping.py`` against torch's two functions and Keras' three options.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._checks import check_non_negative, check_positive
from .optim import _ops
from .optim._tree import tree_leaves, tree_map
from .optim.base import GradientTransformation

__all__ = ["ClipState", "clip_by_global_norm", "clip_by_norm_per_leaf", "clip_by_value", "global_norm"]


class ClipState(NamedTuple):
    """Clipping keeps no state."""


def _square_norm(x):
    """:math:`\\sum_i x_i^2` of one array, in its own library (a 0-d tensor for torch and Keras)."""
    kind = _ops._library(x)
    if kind == "torch":
        import torch

        return torch.linalg.vector_norm(x) ** 2
    if kind == "numpy":
        x = np.asarray(x)
        return np.sum(x * x)
    from keras import ops

    return ops.sum(ops.square(x))


def _norm(x):
    kind = _ops._library(x)
    if kind == "torch":
        import torch

        return torch.linalg.vector_norm(x)
    if kind == "numpy":
        return np.sqrt(_square_norm(x))
    from keras import ops

    return ops.sqrt(_square_norm(x))


def global_norm(tree):
    r"""The Euclidean norm of all leaves together, :math:`\|g\| = \sqrt{\sum_{\text{leaves}} \sum_i g_i^2}`.

    A float for NumPy leaves; a 0-d tensor for torch tensors (no device-to-host copy) and Keras tensors.
    For torch it is computed as ``clip_grad_norm_`` does, as the norm of the per-tensor norms.
    An empty tree has norm 0.
    """
    leaves = tree_leaves(tree)
    if not leaves:
        return 0.0
    kind = _ops._library(leaves[0])
    if kind == "torch":
        import torch

        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in leaves]))
    if kind == "numpy":
        return float(np.sqrt(sum(float(_square_norm(g)) for g in leaves)))
    from keras import ops

    return ops.sqrt(sum(_square_norm(g) for g in leaves))


def _check_max_norm(name: str, value) -> float:
    value = check_positive(name, value)
    if math.isinf(value):
        raise ValueError(f"Invalid {name}: {value} (must be finite; to disable clipping, leave the link out)")
    return value


def clip_by_value(limit: float) -> GradientTransformation:
    r"""Clip every coordinate: :math:`g_i \leftarrow \max(-c, \min(c, g_i))`.

    Equal to ``torch.nn.utils.clip_grad_value_(params, c)`` and to a Keras optimizer's ``clipvalue=c``.
    Coordinates are clipped independently, so a clipped gradient generally points elsewhere than
    :math:`g`; NaN coordinates stay NaN.
    """
    limit = _check_max_norm("limit", limit)

    def update(updates, state, params=None):
        return tree_map(lambda g: _ops.clip(g, -limit, limit), updates, path="updates"), state

    return GradientTransformation(lambda params: ClipState(), update)


def clip_by_global_norm(max_norm: float, eps: float = 1e-6) -> GradientTransformation:
    r"""Rescale the whole gradient when its global norm exceeds ``max_norm``:

    .. math:: g \leftarrow g \cdot \min\!\left(1, \frac{c}{\|g\| + \epsilon}\right),
       \qquad \|g\| = \sqrt{\textstyle\sum_{\text{leaves}} \|g_\ell\|^2}.

    The default :math:`\epsilon = 10^{-6}` is the one ``torch.nn.utils.clip_grad_norm_`` adds (it keeps
    :math:`c/\|g\|` finite at :math:`g = 0`; a clipped gradient then has norm slightly *below* :math:`c`).
    Keras' ``global_clipnorm`` uses :math:`\min(1, c/\|g\|)` exactly: pass ``eps=0`` to match it.
    A NaN or infinite norm makes every update NaN, as in both frameworks, so a diverged run is not
    hidden (the optimizers' gradient check then reports it). Pascanu, Mikolov & Bengio (2013), Algorithm 1.
    """
    max_norm = _check_max_norm("max_norm", max_norm)
    eps = check_non_negative("eps", eps)

    def update(updates, state, params=None):
        leaves = tree_leaves(updates)
        if not leaves:
            return updates, state
        norm = global_norm(updates)
        kind = _ops._library(leaves[0])
        if kind == "torch":
            import torch

            factor = torch.clamp(max_norm / (norm + eps), max=1.0)  # inf at norm 0 clamps to 1
        elif kind == "numpy":
            if not math.isfinite(norm):
                factor = math.nan
            else:
                factor = 1.0 if norm + eps == 0.0 else min(1.0, max_norm / (norm + eps))
        else:
            from keras import ops

            # Keras' own form: c * min(1/|g|, 1/c) is 1 at |g| = 0 and NaN at a NaN/inf norm.
            factor = max_norm * ops.minimum(1.0 / (norm + eps), 1.0 / max_norm) + (norm - norm)
        return tree_map(lambda g: g * factor, updates, path="updates"), state

    return GradientTransformation(lambda params: ClipState(), update)


def clip_by_norm_per_leaf(max_norm: float) -> GradientTransformation:
    r"""Rescale each leaf (each parameter tensor) on its own:
    :math:`g_\ell \leftarrow g_\ell \cdot \min(1, c/\|g_\ell\|)`.

    This is Keras' ``clipnorm=c`` (computed as Keras does, :math:`c\,g_\ell / \max(\|g_\ell\|, c)`),
    **not** ``torch.nn.utils.clip_grad_norm_``: with several parameter tensors the total norm may reach
    :math:`c\sqrt{L}`, and tensors are shrunk by different factors, so the step changes direction.
    Use :func:`clip_by_global_norm` for torch's rule (Keras' ``global_clipnorm``).
    """
    max_norm = _check_max_norm("max_norm", max_norm)

    def clip_leaf(g):
        norm = _norm(g)
        if _ops._library(g) == "torch":
            import torch

            return g * max_norm / torch.clamp(norm, min=max_norm)
        return g * max_norm / _ops.maximum(norm, max_norm)

    def update(updates, state, params=None):
        return tree_map(clip_leaf, updates, path="updates"), state

    return GradientTransformation(lambda params: ClipState(), update)
