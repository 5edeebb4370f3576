"""Train a PyTorch ``nn.Module`` with any reference optimizer, through the ``torch.optim`` interface.

>>> opt = ReferenceOptimizer(model.parameters(), companion.optim.adam(1e-3))
>>> loss.backward(); opt.step(); opt.zero_grad()

The transformations' states live in the adapter; ``state_dict()``/``load_state_dict()`` save and
restore it, so checkpoints work as with ``torch.optim``. The learning rate belongs to the
transformation (a number or a schedule of the step), not to ``param_groups``: use a companion
schedule rather than ``torch.optim.lr_scheduler``.
"""

from __future__ import annotations

import torch

from . import _ops
from .base import GradientTransformation

__all__ = ["ReferenceOptimizer", "SAM"]


class ReferenceOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose update is a :class:`~companion.optim.GradientTransformation`.

    ``params``: tensors, or parameter groups (dicts with ``"params"``), as for ``torch.optim``. A group
    may carry its own ``"transformation"``: different learning rates or weight decays for different
    parts of a model (a pretrained backbone and a new head, weights and biases) are different chains,
    optax's ``multi_transform``::

        ReferenceOptimizer([{"params": backbone.parameters(), "transformation": adamw(1e-4)},
                            {"params": head.parameters()}], adamw(1e-3))

    Groups without one use ``transformation``. Each group's chain keeps its own state. Checked in the
    tests to give the same parameters as ``torch.optim.Adam``/``SGD`` step for step, and as ``Adam``/``AdamW``
    with per-group ``lr``/``weight_decay``.
    """

    def __init__(self, params, transformation: GradientTransformation | None = None):
        if transformation is not None and not isinstance(transformation, GradientTransformation):
            raise TypeError(
                "transformation must be a companion.optim GradientTransformation such as "
                f"companion.optim.adam(1e-3), got {type(transformation).__name__}"
            )
        params = list(params)
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"params must be tensors or parameter-group dicts, got {type(group).__name__} at [{i}]")
            extra = sorted(set(group) - {"params", "transformation"})
            if extra:  # refused, not silently ignored: the transformation owns every hyperparameter
                raise ValueError(
                    f"parameter group {i} sets {', '.join(extra)}: a ReferenceOptimizer takes its learning rate and "
                    "weight decay from a companion.optim chain. For per-group settings, give the group its own "
                    "chain: {'params': ..., 'transformation': companion.optim.adamw(1e-4, weight_decay=0.0)}."
                )
            own = group.get("transformation")
            if own is None and transformation is None:
                raise TypeError(f"parameter group {i} has no 'transformation' and no default transformation was given")
            if own is not None and not isinstance(own, GradientTransformation):
                raise TypeError(f"parameter group {i}: 'transformation' must be a companion.optim GradientTransformation, "
                                f"got {type(own).__name__}")
        groups = [dict(group, params=list(group["params"])) for group in groups]
        super().__init__([_AdapterGroup(group) for group in groups], defaults={})
        self.transformation = transformation
        self._groups = [(group["params"], group.get("transformation") or transformation) for group in self.param_groups]
        self._params = [p for group in self.param_groups for p in group["params"]]
        self._states = [None] * len(self._groups)  # created at the first step, from the parameters' shapes

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        missing = [i for i, p in enumerate(self._params) if p.grad is None]
        if missing:
            raise ValueError(
                f"parameters {missing} have no gradient: call loss.backward() first, and pass only the "
                "parameters that take part in the loss (e.g. filter on p.requires_grad)"
            )
        for g, (params, transformation) in enumerate(self._groups):
            if not params:
                continue
            grads = [p.grad for p in params]
            if self._states[g] is None:
                self._states[g] = transformation.init(params)
            with _ops.reusing_state_buffers():  # the old state is dropped, so its buffers can be reused
                updates, self._states[g] = transformation.update(grads, self._states[g], params)
            torch._foreach_add_(params, updates)
        return loss

    def state_dict(self):
        state = self._states[0] if len(self._states) == 1 else list(self._states)
        return {"transformation_state": state, "num_params": len(self._params)}

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict) or "transformation_state" not in state_dict:
            raise TypeError("state_dict must come from ReferenceOptimizer.state_dict() (a dict with 'transformation_state')")
        if state_dict.get("num_params") != len(self._params):
            raise ValueError(
                f"state_dict is for {state_dict.get('num_params')} parameters, this optimizer has {len(self._params)}"
            )
        loaded = state_dict["transformation_state"]
        states = [loaded] if len(self._groups) == 1 else loaded
        if not isinstance(states, list) or len(states) != len(self._groups):
            raise ValueError(f"state_dict holds the state of {1 if not isinstance(states, list) else len(states)} "
                             f"parameter groups, this optimizer has {len(self._groups)}")
        for g, ((params, transformation), state) in enumerate(zip(self._groups, states)):
            if state is None or not params:
                continue
            expected = _structure(transformation.init(params))
            if _structure(state) != expected:
                raise ValueError(
                    f"state_dict holds the state of another optimizer ({_structure(state)}), "
                    f"not of this one ({expected}): load it into an adapter built with the same companion.optim chain"
                )
        self._states = list(states)


class SAM(torch.optim.Optimizer):
    r"""Sharpness-Aware Minimization (Foret et al., 2021) around a ``companion.optim`` chain or a ``torch.optim`` optimizer.

    >>> opt = SAM(model.parameters(), optim.sgd(0.05, momentum=0.9), rho=0.05)
    >>> loss = loss_fn(model(x), y); loss.backward()
    >>> opt.step(closure)  # closure: zero_grad, the same loss on the same batch, backward, return it

    ``step`` moves the weights to :math:`\theta + \rho g/\lVert g\rVert` (the norm over all parameters), calls
    ``closure`` there, moves them back and lets the base optimizer step with the gradients the closure
    left (:mod:`companion.optim.sam` has the math). Checked against a direct two-pass implementation and
    against :func:`companion.optim.sam.sam_step` in the tests.
    """

    #: ``companion.training.train_classifier`` passes a closure to optimizers that say they need one.
    requires_closure = True

    def __init__(self, params, base, rho: float = 0.05):
        from .._checks import check_positive

        self.rho = check_positive("rho", rho)
        params = list(params)
        if params and isinstance(params[0], dict):
            raise TypeError("SAM takes a flat list of parameters; give parameter groups to the base optimizer's chain")
        if isinstance(base, GradientTransformation):
            base = ReferenceOptimizer(params, base)
        if not isinstance(base, torch.optim.Optimizer):
            raise TypeError("base must be a companion.optim GradientTransformation or a torch.optim optimizer, "
                            f"got {type(base).__name__}")
        self.base = base
        super().__init__(params, defaults={})

    @torch.no_grad()
    def step(self, closure=None):
        if closure is None:
            raise ValueError("SAM needs closure: a function that zeroes the gradients, recomputes the loss on the "
                             "same batch, calls backward() and returns the loss")
        params = [p for group in self.param_groups for p in group["params"]]
        if any(p.grad is None for p in params):
            raise ValueError("parameters without a gradient: call loss.backward() before SAM.step(closure)")
        from ..clipping import global_norm

        norm = global_norm([p.grad for p in params])
        perturbations = torch._foreach_mul([p.grad for p in params], float(self.rho / (norm + 1e-12)))
        torch._foreach_add_(params, perturbations)  # to the worst nearby point
        with torch.enable_grad():
            loss = closure()
        torch._foreach_sub_(params, perturbations)  # back, with the gradient from there
        self.base.step()
        return loss

    def state_dict(self):
        return {"base": self.base.state_dict(), "rho": self.rho}

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict) or set(state_dict) != {"base", "rho"}:
            raise TypeError("state_dict must come from SAM.state_dict() (a dict with 'base' and 'rho')")
        self.base.load_state_dict(state_dict["base"])
        self.rho = state_dict["rho"]


class _AdapterGroup(dict):
    """A parameter group that says what to do when asked for a learning rate it does not hold."""

    def __missing__(self, key):
        if key == "lr":
            raise KeyError(
                "'lr': a ReferenceOptimizer has no param_groups learning rate for torch.optim.lr_scheduler to change; "
                "give the companion.optim transformation a schedule instead, e.g. "
                "optim.adam(companion.schedules.cosine_decay(1e-3, total_steps))"
            )
        raise KeyError(key)


def _structure(state) -> str:
    """The nesting of state types (``ScaleByAdamState(...)`` inside a chain's tuple), without the values."""
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return f"{type(state).__name__}"
    if isinstance(state, (list, tuple)):
        return "(" + ", ".join(_structure(s) for s in state) + ")"
    return type(state).__name__
