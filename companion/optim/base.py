"""The functional optimizer interface: a pair of pure functions, and chains of them.

An optimizer is a :class:`GradientTransformation`, as in optax:

* ``state = init(params)``
* ``updates, state = update(grads, state, params)``

and the parameters move by ``params = apply_updates(params, updates)``, that is
:math:`\\theta_{t+1} = \\theta_t + u_t`. Bigger optimizers are *chains* of small
transformations, e.g. SGD with momentum is ``chain(trace(0.9), scale_by_learning_rate(0.1))``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from . import _ops
from ._tree import tree_leaves, tree_map

__all__ = ["GradientTransformation", "NonFiniteGradientError", "apply_updates", "chain", "check_gradients", "state_size"]


class NonFiniteGradientError(ValueError):
    """A gradient holds NaN or inf values (raised before any parameter or state is changed)."""


class GradientTransformation(NamedTuple):
    """A pure ``init``/``update`` pair. ``update(grads, state, params=None) -> (updates, state)``."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Compose transformations: the updates of each one are the input of the next."""
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(f"chain argument {i} must be a GradientTransformation, got {type(t).__name__}")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(f"state does not belong to this chain of {len(transforms)} transformations")
        new_state = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new_state.append(s)
        return grads, tuple(new_state)

    return GradientTransformation(init, update)


def apply_updates(params, updates):
    r"""Return :math:`\theta + u` leaf by leaf (new arrays; ``params`` is not modified)."""
    return tree_map(lambda p, u: p if u is None else p + u, params, updates, path="params")


def check_gradients(grads, params=None) -> None:
    """Raise ``ValueError`` when a gradient has NaN/inf values or does not match the parameters' tree."""
    if params is not None:
        tree_map(lambda p, g: None, params, grads, path="grads")
    leaves = tree_leaves(grads)
    if _ops.all_finite(leaves) is False:
        bad = [i for i, g in enumerate(leaves) if _ops.all_finite([g]) is False]
        raise NonFiniteGradientError(
            f"gradients {bad} contain NaN or inf values: check the loss and the learning rate "
            "(a diverging run, or log/division of zero in the loss)"
        )




def state_size(transformation: GradientTransformation, params) -> int:
    """How many numbers the optimizer keeps between steps for ``params``: the elements of every array in
    ``transformation.init(params)`` (step counters and other Python scalars not counted).

    Adam keeps two per parameter (:math:`m` and :math:`v`), SGD with momentum one, plain SGD none.
    """
    if not isinstance(transformation, GradientTransformation):
        raise TypeError(f"transformation must be a companion.optim GradientTransformation, got {type(transformation).__name__}")
    total = 0
    for leaf in tree_leaves(transformation.init(params)):
        size = getattr(leaf, "numel", None)
        if callable(size):  # a torch tensor
            total += int(size())
        elif hasattr(leaf, "shape"):  # a NumPy array or a Keras tensor
            total += int(np.prod(leaf.shape))
    return total
